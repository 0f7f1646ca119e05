"""`synchub peers / authorize / revoke / status / reload / ops / id` through click's runner,
with and without a hub running in this process on the same data_dir."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from hub.cli import admin_cmds
from hub.cli.admin_cmds import ago, duration, peers_table
from hub.cli.main import cli
from hub.config import load_config
from hub.pb import synchub_pb2 as pb
from hub.server import Hub
from hub.store import PeerStore, new_operation, open_oplog
from synchub_testing import CLIENT, OTHER_CLIENT, STRANGER, UNVERIFIED, hub_config_text

NOW_MS = 1_800_000_000_000

PEER_STATE_FIELDS = {
    "peer_instance_id", "peer_keyid", "state", "status_message", "known_plans",
    "known_repos", "last_heartbeat_millis", "last_disconnect_millis", "last_error",
    "last_error_millis",
}


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def assert_one_line_error(result: Result, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("synchub: error: ")
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SYNCHUB_CONFIG", raising=False)
    monkeypatch.setattr(admin_cmds, "_now_ms", lambda: NOW_MS)
    return tmp_path


@pytest.fixture
def hub_file(in_tmp: Path) -> Path:
    path = in_tmp / "synchub.toml"
    path.write_text(
        "# the operator's header comment\n"
        + hub_config_text().replace(
            "heartbeat_interval = 10", 'heartbeat_interval = 10\nbind = "tcp://127.0.0.1:0"'
        )
    )
    return path


@pytest.fixture
def hub(hub_file: Path) -> Iterator[Hub]:
    running = Hub(load_config(hub_file), config_write_path=hub_file)
    try:
        running.start()
        yield running
    finally:
        running.stop()


def save_peers(data_dir: Path, *states: pb.PeerState) -> None:
    store = PeerStore(data_dir)
    try:
        store.save(states)
    finally:
        store.close()


def web1_state() -> pb.PeerState:
    return pb.PeerState(
        peer_instance_id="web1",
        peer_keyid=CLIENT.keyid,
        state=pb.CONNECTION_STATE_CONNECTED,
        known_repos=["nas"],
        known_plans=["nightly"],
        last_heartbeat_millis=NOW_MS - 12_400,
    )


def db1_state() -> pb.PeerState:
    return pb.PeerState(
        peer_instance_id="db1",
        peer_keyid=OTHER_CLIENT.keyid,
        state=pb.CONNECTION_STATE_ERROR_AUTH,
        status_message="client is not authorized",
        last_heartbeat_millis=NOW_MS - 3 * 3600_000,
    )


# --- formatting ---------------------------------------------------------------------------------


def test_durations_read_like_a_person_would_say_them() -> None:
    assert [duration(s) for s in (0, 59, 60, 3599, 3600, 86399, 86400 * 3)] == [
        "0s", "59s", "1m", "59m", "1h", "23h", "3d",
    ]
    assert ago(NOW_MS - 12_999, NOW_MS) == "12s ago"
    assert ago(0, NOW_MS) == "-"
    assert ago(NOW_MS + 5000, NOW_MS) == "0s ago"  # a clock ahead of ours


def test_peers_table_columns() -> None:
    header, web1 = peers_table([web1_state()], NOW_MS)
    assert header.split() == [
        "INSTANCE", "KEYID", "STATE", "HEARD", "REPOS", "/", "PLANS", "LAST", "DISCONNECT",
        "LAST", "ERROR",
    ]
    assert web1.split() == [
        "web1", CLIENT.keyid[8:20], "connected", "12s", "ago", "nas", "/", "nightly", "-", "-",
    ]


def test_a_normal_end_is_a_disconnect_reason_not_an_error() -> None:
    closed = pb.PeerState(
        peer_instance_id="web1", peer_keyid=CLIENT.keyid, state=pb.CONNECTION_STATE_DISCONNECTED,
        status_message="peer reported: closing", last_disconnect_millis=NOW_MS - 60_000,
        last_error="bad frame", last_error_millis=NOW_MS - 7200_000,
    )
    revoked = pb.PeerState(
        peer_instance_id="db1", peer_keyid=OTHER_CLIENT.keyid,
        state=pb.CONNECTION_STATE_ERROR_AUTH, status_message="revoked by the operator",
        last_disconnect_millis=NOW_MS - 5000, last_error="revoked by the operator",
        last_error_millis=NOW_MS - 5000,
    )
    _, web1, db1 = peers_table([closed, revoked], NOW_MS, wide=True)
    assert "1m ago: peer reported: closing" in web1
    assert web1.endswith("2h ago: bad frame")
    assert "5s ago: revoked by the operator" in db1


def test_peer_text_cannot_break_the_table() -> None:
    odd = pb.PeerState(
        peer_instance_id="web1", peer_keyid=CLIENT.keyid, state=pb.CONNECTION_STATE_DISCONNECTED,
        status_message="peer reported: line\nbreak\x1b[2J" + "x" * 100,
    )
    lines = peers_table([odd], NOW_MS)
    assert len(lines) == 2
    assert "\x1b" not in lines[1] and "\n" not in lines[1]
    assert "…" in lines[1]
    assert "x" * 100 in peers_table([odd], NOW_MS, wide=True)[1]


# --- peers --------------------------------------------------------------------------------------


def test_peers_without_a_hub_reads_the_peer_file(
    hub_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    save_peers(hub_file.parent / "data", web1_state(), db1_state())
    table = run("peers")
    assert table.exit_code == 0
    lines = table.stdout.splitlines()
    assert lines[0].startswith("INSTANCE")
    as_of = dt.datetime.fromtimestamp((NOW_MS - 12_400) / 1000, tz=dt.UTC).astimezone()
    assert table.stderr == (
        f"no hub is running on {hub_file.parent / 'data'}: states as of "
        f"{as_of.isoformat(timespec='seconds')}, when it last recorded them\n"
    )
    assert lines[1].split()[:3] == ["db1", OTHER_CLIENT.keyid[8:20], "error_auth"]
    assert lines[1].endswith("client is not authorized")
    assert "3h ago" in lines[1]
    assert "12s ago" in lines[2] and "nas / nightly" in lines[2]
    assert any("reading" in r.message and "peers.sqlite" in r.message for r in caplog.records)

    listed = json.loads(run("peers", "--json").output)
    assert [p["peer_instance_id"] for p in listed] == ["db1", "web1"]
    assert set(listed[1]) == PEER_STATE_FIELDS
    assert listed[1]["state"] == "CONNECTION_STATE_CONNECTED"
    assert listed[1]["last_heartbeat_millis"] == NOW_MS - 12_400
    assert listed[1]["known_repos"] == ["nas"]


def test_peers_on_a_fresh_node(in_tmp: Path) -> None:
    assert run("peers").output.strip() == "no peers"
    assert json.loads(run("peers", "--json").output) == []
    assert not (in_tmp / "synchub-data").exists()


def test_peers_from_the_running_hub(hub: Hub, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    hub.peers.connected(CLIENT.keyid, "web1", "session-1")
    hub.peers.set_remote_config(CLIENT.keyid, pb.RemoteConfig(version=1, modno=7))
    listed = json.loads(run("peers", "--json").output)
    [web1] = listed
    assert web1["state"] == "CONNECTION_STATE_CONNECTED"
    assert web1["remote_config"] == {"modno": 7, "version": 1, "repos": [], "plans": []}
    assert set(web1) == PEER_STATE_FIELDS | {"remote_config"}
    assert any("answered by the running hub" in r.message for r in caplog.records)
    assert "web1" in run("peers").output


def test_peers_with_a_broken_config_is_one_line(in_tmp: Path) -> None:
    (in_tmp / "synchub.toml").write_text('instance = "x"\ndata_dir = 5\n')
    assert_one_line_error(run("peers"), "synchub.toml", "data_dir")


# --- ops through the running hub -------------------------------------------------------------


def test_ops_are_read_beside_the_running_hub(hub: Hub, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    config = load_config(Path("synchub.toml"))
    hub.oplog.add([
        new_operation(config, display_message="from the hub", plan_id="nightly"),
        new_operation(config, display_message="other"),
    ]).get(timeout=5)
    listed = json.loads(run("ops", "--json", "--plan", "nightly").output)
    assert [op["display_message"] for op in listed] == ["from the hub"]
    assert any("reading" in r.message and "oplog.sqlite" in r.message for r in caplog.records)
    assert "from the hub" in run("ops").output


def test_ops_without_a_hub_says_it_reads_the_file(
    hub_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    config = load_config(hub_file)
    with open_oplog(config) as oplog:
        oplog.add_local([new_operation(config, display_message="direct")])
    assert json.loads(run("ops", "--json").output)[0]["display_message"] == "direct"
    assert any("reading" in r.message and "oplog.sqlite" in r.message for r in caplog.records)


# --- authorize ----------------------------------------------------------------------------------


def test_authorize_on_defaults_creates_the_config_file(in_tmp: Path) -> None:
    result = run(
        "authorize", STRANGER.keyid, "--instance", "web9", "--perm", "read_config:*",
        "--perm", "read_config:!plan:secret", "--perm", "read_operations:repo:nas", "--yes",
    )
    assert result.exit_code == 0, result.output
    groups = STRANGER.keyid.removeprefix("ed25519.")
    assert f"fingerprint  {groups[:4]} {groups[4:8]} " in result.output
    assert "no hub is running" in result.output
    config = load_config(in_tmp / "synchub.toml")
    [client] = config.authorized_clients
    assert (client.instance_id, client.keyid, client.keyid_verified) == (
        "web9", STRANGER.keyid, True,
    )
    assert client.permissions.to_toml() == [
        {"type": "read_config", "scopes": ["*", "!plan:secret"]},
        {"type": "read_operations", "scopes": ["repo:nas"]},
    ]


def test_authorize_asks_first_and_changes_nothing_on_no(hub_file: Path) -> None:
    before = hub_file.read_bytes()
    refused = run("authorize", STRANGER.keyid, "--instance", "web9", input="n\n")
    assert_one_line_error(refused, "not authorized", "--yes")
    assert "Have you checked this fingerprint" in refused.stdout
    assert_one_line_error(run("authorize", STRANGER.keyid, "--instance", "web9", input=""),
                          "not authorized")
    assert hub_file.read_bytes() == before

    accepted = run("authorize", STRANGER.keyid, "--instance", "web9", input="y\n")
    assert accepted.exit_code == 0
    text = hub_file.read_text()
    assert text.startswith("# the operator's header comment\n")
    assert load_config(hub_file).authorized_client(STRANGER.keyid) is not None


def test_authorize_a_known_client_keeps_its_permissions(hub_file: Path) -> None:
    result = run("authorize", UNVERIFIED.keyid, "--instance", "mail1", "--yes")
    assert result.exit_code == 0
    assert "permissions  unchanged" in result.output
    client = load_config(hub_file).authorized_client(UNVERIFIED.keyid)
    assert client is not None and client.keyid_verified is True


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (("ed25519.tooshort", "--instance", "x"), ("malformed key id 'ed25519.tooshort'",)),
        (("ed25519." + "A" * 42 + "B", "--instance", "x"), ("not canonical",)),
        ((CLIENT.keyid, "--instance", "bad name"), ("bad instance id 'bad name'",)),
        ((CLIENT.keyid, "--instance", "x", "--perm", "read_config"), ("TYPE:SCOPE",)),
        ((CLIENT.keyid, "--instance", "x", "--perm", "read_config:host:a"),
         ("unknown scope 'host:a'",)),
        ((CLIENT.keyid, "--instance", "x", "--perm", "read_confg:*"),
         ("unknown permission type 'read_confg'", "read_config")),
        ((CLIENT.keyid, "--instance", "x", "--perm", "read_config:repo:a b"), ("bad id",)),
    ],
)
def test_authorize_bad_input_is_one_line(
    in_tmp: Path, args: tuple[str, ...], fragments: tuple[str, ...]
) -> None:
    assert_one_line_error(run("authorize", *args, "--yes"), *fragments)
    assert not (in_tmp / "synchub.toml").exists()


def test_authorize_warns_of_a_plan_or_repo_nothing_has_and_keeps_it(hub_file: Path) -> None:
    save_peers(load_config(hub_file).data_dir, pb.PeerState(
        peer_keyid=CLIENT.keyid, peer_instance_id="web1", known_plans=["hourly"]))
    result = run("authorize", STRANGER.keyid, "--instance", "web9",
                 "--perm", "read_config:plan:nosuch", "--perm", "read_config:plan:nightli",
                 "--perm", "read_config:plan:hourly", "--perm", "read_config:repo:nas",
                 "--perm", "read_operations:!repo:tapes", "--yes")
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 3, result.stderr
    assert "read_config:plan:nosuch: no plan 'nosuch'" in warnings[0]
    assert "did you mean 'nightly'?" in warnings[1]
    assert "no repo 'tapes'" in warnings[2]
    client = load_config(hub_file).authorized_client(STRANGER.keyid)
    assert client is not None
    assert client.permissions.can_read_config("plan:nosuch")


def test_authorize_without_instance_is_a_usage_error(in_tmp: Path) -> None:
    result = run("authorize", CLIENT.keyid)
    assert result.exit_code == 2
    assert "--instance" in result.stderr


def test_authorize_applies_live_on_the_running_hub(
    hub: Hub, hub_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    result = run("authorize", STRANGER.keyid, "--instance", "web9", "--perm",
                 "read_config:repo:nas", "--yes")
    assert result.exit_code == 0, result.output
    assert "the running hub applied it" in result.output
    live = hub.config_actor.get().get(timeout=5).authorized_client(STRANGER.keyid)
    assert live is not None and live.instance_id == "web9"
    assert load_config(hub_file).authorized_client(STRANGER.keyid) == live
    assert hub_file.read_text().startswith("# the operator's header comment\n")
    assert any("applied by the running hub" in r.message for r in caplog.records)


# --- revoke -------------------------------------------------------------------------------------


def test_revoke_without_a_hub_edits_the_file(hub_file: Path) -> None:
    refused = run("revoke", OTHER_CLIENT.keyid, input="n\n")
    assert_one_line_error(refused, "not revoked")
    assert "db1" in refused.stdout
    result = run("revoke", OTHER_CLIENT.keyid, "--yes")
    assert result.exit_code == 0
    assert "revoked db1" in result.output
    config = load_config(hub_file)
    assert config.authorized_client(OTHER_CLIENT.keyid) is None
    assert config.authorized_client(CLIENT.keyid) is not None
    assert hub_file.read_text().startswith("# the operator's header comment\n")


def test_revoke_bad_input_is_one_line(hub_file: Path) -> None:
    assert_one_line_error(run("revoke", "nonsense", "--yes"), "malformed key id")
    assert_one_line_error(run("revoke", STRANGER.keyid, "--yes"),
                          "no authorized client has keyid")


def test_revoke_applies_live_on_the_running_hub(hub: Hub, hub_file: Path) -> None:
    result = run("revoke", OTHER_CLIENT.keyid, "-y")
    assert result.exit_code == 0, result.output
    assert "the running hub ended its sessions" in result.output
    assert hub.config_actor.get().get(timeout=5).authorized_client(OTHER_CLIENT.keyid) is None
    assert load_config(hub_file).authorized_client(OTHER_CLIENT.keyid) is None


# --- status, reload, id ------------------------------------------------------------------------


def test_status_and_reload_without_a_hub(hub_file: Path) -> None:
    stopped = run("status")
    assert stopped.exit_code == 3
    assert stopped.output.startswith("not running: no hub is running on")
    assert json.loads(run("status", "--json").output)["running"] is False
    assert_one_line_error(run("reload"), "nothing to reload")


def test_status_and_reload_with_a_hub(hub: Hub, hub_file: Path) -> None:
    shown = run("status")
    assert shown.exit_code == 0
    assert shown.output.startswith("hub hub-1 running (pid ")
    assert f"endpoint  {hub.endpoint}" in shown.output
    details = json.loads(run("status", "--json").output)
    assert details["running"] is True
    assert details["authorized_clients"] == 3
    assert details["config_path"] == str(hub_file)

    assert run("reload").output.strip() == f"reloaded {hub_file}"
    hub_file.write_text(hub_file.read_text() + "\n[hub.nonsense\n")
    assert_one_line_error(run("reload"), "invalid TOML")


def test_id_shows_the_same_fingerprint_authorize_shows(in_tmp: Path) -> None:
    run("keygen")
    keyid = json.loads(run("id", "--json").output)["keyid"]
    snippet = run("id").output
    fingerprint_line = snippet.splitlines()[0]
    assert fingerprint_line.startswith("# fingerprint: ")
    shown = run("authorize", keyid, "--instance", "me", "--yes").output
    fingerprint = next(
        line.split("fingerprint", 1)[1].strip() for line in shown.splitlines()
        if "fingerprint" in line
    )
    assert fingerprint_line.startswith(f"# fingerprint: {fingerprint} (")
