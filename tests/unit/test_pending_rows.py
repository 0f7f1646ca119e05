"""`synchub pending`'s rows: the authorize line, the fingerprint, and who is left out."""

from __future__ import annotations

from pathlib import Path

from actors import PendingKey
from hub.admin import authorize_command, pending_rows
from hub.config import load_config
from synchub_testing import CLIENT, OTHER_CLIENT, STRANGER


def key(keyid: str, instance: str) -> PendingKey:
    return PendingKey(keyid, instance, "10.0.0.5", 3, 1000.0, 1060.5, "not authorized")


def test_the_authorize_line_is_one_a_shell_runs_as_printed() -> None:
    assert authorize_command(CLIENT.keyid, "web1") == (
        f"synchub authorize {CLIENT.keyid} --instance web1"
    )
    # A claimed name that is no valid instance id: the operator chooses one.
    assert authorize_command(CLIENT.keyid, "web1; rm -rf /") == (
        f"synchub authorize {CLIENT.keyid} --instance NAME"
    )


def test_rows_leave_out_keys_the_config_lets_in(tmp_path: Path) -> None:
    path = tmp_path / "hub.toml"
    path.write_text(f"""
instance = "hub-1"
[hub]
bind = "tcp://127.0.0.1:0"
[[authorized_clients]]
instance_id = "web1"
keyid = "{CLIENT.keyid}"
keyid_verified = true
[[authorized_clients]]
instance_id = "db1"
keyid = "{OTHER_CLIENT.keyid}"
keyid_verified = false
""")
    config = load_config(path)
    rows = pending_rows(config, [
        key(CLIENT.keyid, "web1"),            # authorized since: left out
        key(OTHER_CLIENT.keyid, "db1"),       # not verified yet: still waiting
        key(STRANGER.keyid, "<b>x</b>"),      # unknown
    ])
    assert [r["keyid"] for r in rows] == [OTHER_CLIENT.keyid, STRANGER.keyid]
    assert rows[0] == {
        "instance_id": "db1",
        "keyid": OTHER_CLIENT.keyid,
        "fingerprint": " ".join(
            OTHER_CLIENT.keyid[8:][i:i + 4] for i in range(0, 43, 4)),
        "source_address": "10.0.0.5",
        "attempts": 3,
        "first_seen_ms": 1_000_000,
        "last_seen_ms": 1_060_500,
        "reason": "not authorized",
        "authorize_command": f"synchub authorize {OTHER_CLIENT.keyid} --instance db1",
    }
    assert rows[1]["authorize_command"].endswith("--instance NAME")
    # An instance claimed as another one's key is shown too (the line would move it).
    assert [r["keyid"] for r in pending_rows(config, [key(CLIENT.keyid, "web2")])] == [
        CLIENT.keyid]
