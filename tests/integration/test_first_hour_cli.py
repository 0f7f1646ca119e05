"""A new operator's first hour with the command line, as real processes.

Global options after the command name, the address clients are told to dial,
the small edges of `id` and `authorize`, and what the errors point to.
"""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from hub.config import load_config
from synchub_testing import LAUNCHER, STRANGER, HubProcess, free_tcp_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def synchub(
    *args: str, cwd: Path, stdin: int | None = subprocess.DEVNULL, merged: bool = False
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SYNCHUB_CONFIG"}
    return subprocess.run(
        [sys.executable, str(LAUNCHER), *args],
        cwd=cwd, stdin=stdin, capture_output=not merged,
        stdout=subprocess.PIPE if merged else None,
        stderr=subprocess.STDOUT if merged else None,
        text=True, timeout=60, check=False, env=env,
    )


def one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    assert result.returncode == 1, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("synchub: error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def hub_file(directory: Path, bind: str, extra: str = "") -> Path:
    path = directory / "hub.toml"
    path.write_text(f'instance = "hub-1"\ndata_dir = "data"\n\n[hub]\nbind = "{bind}"\n{extra}')
    return path


# -- 1. global options anywhere -----------------------------------------------------------


def test_start_takes_config_and_verbose_after_the_command(tmp_path: Path) -> None:
    config = hub_file(tmp_path, f"tcp://127.0.0.1:{free_tcp_port()}", '[web]\nbind = ""\n')
    env = {k: v for k, v in os.environ.items() if k != "SYNCHUB_CONFIG"}
    process = subprocess.Popen(
        [sys.executable, str(LAUNCHER), "start", "--config", str(config), "-v"],
        cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True, env=env,
    )
    hub = HubProcess.__new__(HubProcess)
    hub.config_path, hub.stderr, hub.process = config, "", process
    try:
        hub.wait_for_output("synchub hub hub-1 listening on")
        assert " INFO " in hub.stderr  # -v after the command still means info logging
        status = synchub("status", "-c", str(config), "--json", cwd=tmp_path)
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["instance"] == "hub-1"
    finally:
        assert hub.stop() == 0


def test_global_options_mean_the_same_before_and_after(tmp_path: Path) -> None:
    config = hub_file(tmp_path, "tcp://127.0.0.1:7470")
    assert synchub("keygen", f"--config={config}", cwd=tmp_path).returncode == 0
    before = synchub("--config", str(config), "id", "--json", cwd=tmp_path)
    after = synchub("id", "--json", "-c", str(config), cwd=tmp_path)
    assert before.returncode == after.returncode == 0, (before.stderr, after.stderr)
    assert json.loads(before.stdout) == json.loads(after.stdout)
    assert json.loads(after.stdout)["instance_id"] == "hub-1"

    # A job's own arguments are the job's: -v and -c after its command stay with it.
    ran = synchub("run", "-c", str(config), "--", "sh", "-c", "echo x -v", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert "x -v" in ran.stdout


# -- 2. the address clients dial ----------------------------------------------------------


def test_id_prints_the_advertised_endpoint(tmp_path: Path) -> None:
    config = hub_file(tmp_path, "tcp://0.0.0.0:17010", 'advertise = "tcp://hub.example.org:7470"\n')
    synchub("-c", str(config), "keygen", cwd=tmp_path)
    shown = synchub("-c", str(config), "id", "--json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["endpoint"] == "tcp://hub.example.org:7470"
    assert shown.stderr == ""
    text = synchub("-c", str(config), "id", cwd=tmp_path).stdout
    assert 'endpoint = "tcp://hub.example.org:7470"' in text


def test_a_wildcard_bind_without_advertise_guesses_and_says_so(tmp_path: Path) -> None:
    config = hub_file(tmp_path, "tcp://0.0.0.0:17010")
    synchub("-c", str(config), "keygen", cwd=tmp_path)
    shown = synchub("-c", str(config), "id", "--json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["endpoint"] == f"tcp://{socket.getfqdn()}:17010"
    assert "guessed" in shown.stderr and "advertise" in shown.stderr
    assert str(config) in shown.stderr


def test_a_bad_advertise_is_one_line_naming_the_key(tmp_path: Path) -> None:
    config = hub_file(tmp_path, "tcp://0.0.0.0:17010", 'advertise = "hub.example.org"\n')
    one_line_error(synchub("-c", str(config), "id", cwd=tmp_path), "hub.advertise", "tcp://")
    config = hub_file(tmp_path, "tcp://0.0.0.0:17010", 'advertise = "tcp://*:7470"\n')
    one_line_error(synchub("-c", str(config), "id", cwd=tmp_path), "hub.advertise")


# -- 9. small edges -----------------------------------------------------------------------


def test_id_json_carries_the_fingerprint_that_authorize_accepts(tmp_path: Path) -> None:
    client_dir = tmp_path / "client"
    client_dir.mkdir()
    client = client_dir / "client.toml"
    client.write_text('instance = "web1"\ndata_dir = "data"\n')
    synchub("-c", str(client), "keygen", cwd=client_dir)
    details = json.loads(synchub("-c", str(client), "id", "--json", cwd=client_dir).stdout)
    keyid, fingerprint = details["keyid"], details["fingerprint"]
    assert fingerprint.replace(" ", "") == keyid.removeprefix("ed25519.")
    assert re.fullmatch(r"(\S{4} ){10}\S{3}", fingerprint)

    hub_dir = tmp_path / "hub"
    hub_dir.mkdir()
    done = synchub("authorize", fingerprint, "--instance", "web1", "--yes", cwd=hub_dir)
    assert done.returncode == 0, done.stderr
    [authorized] = load_config(hub_dir / "synchub.toml").authorized_clients
    assert authorized.keyid == keyid

    again = synchub("authorize", f"  {keyid}\n", "--instance", "web1", "--yes", cwd=hub_dir)
    assert again.returncode == 0, again.stderr
    assert [c.keyid for c in load_config(hub_dir / "synchub.toml").authorized_clients] == [keyid]
    assert synchub("revoke", f" {keyid} ", "--yes", cwd=hub_dir).returncode == 0
    assert load_config(hub_dir / "synchub.toml").authorized_clients == ()


def test_id_on_a_client_prints_the_line_to_run_on_the_hub(tmp_path: Path) -> None:
    client = tmp_path / "client.toml"
    client.write_text('instance = "web1"\ndata_dir = "data"\n')
    synchub("-c", str(client), "keygen", cwd=tmp_path)
    keyid = json.loads(synchub("-c", str(client), "id", "--json", cwd=tmp_path).stdout)["keyid"]
    shown = synchub("-c", str(client), "id", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "HUB-ADDRESS" not in shown.stdout and "[[known_hosts]]" not in shown.stdout
    assert f"synchub authorize {keyid} --instance web1" in shown.stdout


def test_authorize_without_a_terminal_keeps_prompt_and_error_apart(tmp_path: Path) -> None:
    merged = synchub("authorize", STRANGER.keyid, "--instance", "new1", cwd=tmp_path,
                     merged=True)
    assert merged.returncode == 1
    lines = merged.stdout.splitlines()
    assert lines[-1].startswith("synchub: error: not authorized"), merged.stdout
    assert lines[-2].startswith("Have you checked this fingerprint"), merged.stdout
    assert not (tmp_path / "synchub.toml").exists()


def test_authorize_says_a_new_client_without_perm_gets_none(tmp_path: Path) -> None:
    new = synchub("authorize", STRANGER.keyid, "--instance", "new1", "--yes", cwd=tmp_path)
    assert new.returncode == 0, new.stderr
    assert "permissions  none (a new client" in new.stdout
    assert "unchanged" not in new.stdout
    synchub("authorize", STRANGER.keyid, "--instance", "new1", "--perm", "read_config:*",
            "--yes", cwd=tmp_path)
    kept = synchub("authorize", STRANGER.keyid, "--instance", "new1", "--yes", cwd=tmp_path)
    assert "permissions  unchanged (read_config: *)" in kept.stdout


# -- 10. docs and what the errors point to ------------------------------------------------


def test_keygen_creates_data_dir_0700(tmp_path: Path) -> None:
    assert synchub("keygen", cwd=tmp_path).returncode == 0
    assert stat.S_IMODE((tmp_path / "synchub-data").stat().st_mode) == 0o700


def test_a_missing_config_points_to_an_example_that_exists(tmp_path: Path) -> None:
    line = one_line_error(synchub("-c", "nope.toml", "id", cwd=tmp_path), "nope.toml")
    match = re.search(r"example of every key: (\S+)\)", line)
    assert match is not None, line
    example = Path(match[1])
    assert example.is_file()
    assert load_config(example).hub is not None


def test_docs_agree_on_the_lookup_order_and_list_every_doc() -> None:
    configuration = (ROOT / "docs" / "configuration.md").read_text()
    assert "`synchub.toml` in the current directory" in configuration
    readme = (ROOT / "README.md").read_text()
    for doc in sorted((ROOT / "docs").glob("*.md")):
        assert f"(docs/{doc.name})" in readme, doc.name
    help_text = synchub("--help", cwd=ROOT).stdout
    assert "./synchub.toml" in help_text


# -- 7. guard the identity ----------------------------------------------------------------


def start_hub(config: Path, cwd: Path, *extra: str) -> HubProcess:
    env = {k: v for k, v in os.environ.items() if k != "SYNCHUB_CONFIG"}
    process = subprocess.Popen(
        [sys.executable, str(LAUNCHER), "start", "-c", str(config), *extra],
        cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True, env=env,
    )
    hub = HubProcess.__new__(HubProcess)
    hub.config_path, hub.stderr, hub.process = config, "", process
    return hub


def test_first_start_says_its_new_identity_at_info_and_keygen_cannot_replace_it(
    tmp_path: Path,
) -> None:
    config = hub_file(tmp_path, f"tcp://127.0.0.1:{free_tcp_port()}", '[web]\nbind = ""\n')
    hub = start_hub(config, tmp_path, "-v")
    try:
        hub.wait_for_output("synchub hub hub-1 listening on")
        [line] = [ln for ln in hub.stderr.splitlines() if "identity" in ln and "created" in ln]
        assert " INFO " in line and "fingerprint" in line and "synchub invite" in line
        assert " WARNING " not in hub.stderr
        before = json.loads(synchub("-c", str(config), "id", "--json", cwd=tmp_path).stdout)

        forced = synchub("-c", str(config), "keygen", "--force", cwd=tmp_path)
        one_line_error(forced, "a hub runs on data_dir", "stop it")
        after = json.loads(synchub("-c", str(config), "id", "--json", cwd=tmp_path).stdout)
        status = json.loads(synchub("-c", str(config), "status", "--json", cwd=tmp_path).stdout)
        assert before["keyid"] == after["keyid"] == status["keyid"]
    finally:
        assert hub.stop() == 0
    assert synchub("-c", str(config), "keygen", "--force", cwd=tmp_path).returncode == 0


def test_a_start_that_fails_leaves_no_new_identity(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = hub_file(tmp_path, f"tcp://127.0.0.1:{port}", '[web]\nbind = ""\n')
        hub = start_hub(config, tmp_path)
        status = hub.wait_exit(timeout=60)
    assert status != 0, hub.stderr
    identity = tmp_path / "data" / "identity"
    assert not (identity / "ed25519.key").exists(), hub.stderr
    assert not identity.exists()
    assert "Traceback" not in hub.stderr


# -- 6. looking while fixing --------------------------------------------------------------


def test_status_and_peers_reach_the_running_hub_while_its_file_is_broken(
    tmp_path: Path,
) -> None:
    config = hub_file(tmp_path, f"tcp://127.0.0.1:{free_tcp_port()}", '[web]\nbind = ""\n')
    hub = start_hub(config, tmp_path)
    try:
        hub.wait_for_output("synchub hub hub-1 listening on")
        good = config.read_text()
        config.write_text(good.replace("[hub]", "[hub]\nheartbeat_interval = fast"))
        status = synchub("status", "-c", str(config), "--json", cwd=tmp_path)
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["instance"] == "hub-1"
        [warning] = status.stderr.strip().splitlines()
        assert warning.startswith("synchub: warning: ") and "invalid TOML" in warning
        assert "synchub reload" in warning
        peers = synchub("peers", "-c", str(config), "--json", cwd=tmp_path)
        assert peers.returncode == 0, peers.stderr
        assert json.loads(peers.stdout) == []
        reload = synchub("reload", "-c", str(config), cwd=tmp_path)
        one_line_error(reload, "invalid TOML")
        config.write_text(good)
        assert synchub("reload", "-c", str(config), cwd=tmp_path).returncode == 0
    finally:
        assert hub.stop() == 0
    config.write_text(good.replace("[hub]", "[hub]\nheartbeat_interval = fast"))
    one_line_error(synchub("status", "-c", str(config), cwd=tmp_path), "invalid TOML")
