"""The operator's commands as real processes against `synchub start` as a real process."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.config import load_config
from hub.identity import SigningIdentity, load_identity
from hub.pb import synchub_pb2 as pb
from synchub_testing import (
    CLIENT,
    LAUNCHER,
    STRANGER,
    HubProcess,
    RawClient,
    free_tcp_port,
    hub_config_text,
    wait_until,
)

pytestmark = pytest.mark.integration


def synchub(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(LAUNCHER), "--config", str(config), *args],
        capture_output=True, text=True, timeout=60, check=False,
    )


@pytest.fixture
def hub_config(tmp_path: Path) -> Path:
    path = tmp_path / "hub.toml"
    path.write_text(
        "# kept across authorize and revoke\n"
        + hub_config_text().replace(
            "heartbeat_interval = 10",
            f'heartbeat_interval = 10\nbind = "tcp://127.0.0.1:{free_tcp_port()}"',
        )
    )
    return path


@pytest.fixture
def hub(hub_config: Path) -> Iterator[HubProcess]:
    process = HubProcess(hub_config)
    try:
        process.wait_for_output("listening on")
        yield process
    finally:
        process.kill()


def dial(hub: HubProcess, identity: SigningIdentity, instance_id: str) -> RawClient:
    """A client that has sent its proof; the hub's answer is next."""
    config = load_config(hub.config_path)
    node = load_identity(config.data_dir)
    assert config.hub is not None
    client = RawClient(config.hub.bind, node.curve.public)
    client.handshake(node.signing.keyid, identity=identity, instance_id=instance_id)
    return client


def connect(
    hub: HubProcess, identity: SigningIdentity = CLIENT, instance_id: str = "web1"
) -> RawClient:
    client = dial(hub, identity, instance_id)
    client.recv_action("send_config")
    client.recv_action("list_resources")
    return client


def test_peers_and_status_from_the_running_hub_then_from_the_files(hub: HubProcess) -> None:
    client = connect(hub)
    try:
        shown = synchub(hub.config_path, "-v", "peers", "--json")
        assert shown.returncode == 0, shown.stderr
        assert "answered by the running hub" in shown.stderr
        [web1] = json.loads(shown.stdout)
        assert web1["peer_instance_id"] == "web1"
        assert web1["peer_keyid"] == CLIENT.keyid
        assert web1["state"] == "CONNECTION_STATE_CONNECTED"
        assert web1["last_heartbeat_millis"] > 0

        status = synchub(hub.config_path, "status", "--json")
        assert status.returncode == 0
        details = json.loads(status.stdout)
        assert details["peers_connected"] == 1
        assert details["pid"] == hub.process.pid
    finally:
        client.close()

    assert hub.stop() == 0
    assert "Traceback" not in hub.stderr
    stopped = synchub(hub.config_path, "status")
    assert stopped.returncode == 3
    assert stopped.stdout.startswith("not running")
    offline = synchub(hub.config_path, "-v", "peers")
    assert offline.returncode == 0
    assert "peers.sqlite directly" in offline.stderr
    [_, row] = offline.stdout.splitlines()
    assert row.split()[:3] == ["web1", CLIENT.keyid[8:20], "disconnected"]


def test_authorize_lets_a_new_client_in_at_once(hub: HubProcess) -> None:
    refused = dial(hub, STRANGER, "new1")
    try:
        assert refused.recv_action("error").error.state == pb.CONNECTION_STATE_ERROR_AUTH
    finally:
        refused.close()

    done = synchub(hub.config_path, "-v", "authorize", STRANGER.keyid, "--instance", "new1",
                   "--perm", "read_config:repo:nas", "--yes")
    assert done.returncode == 0, done.stderr
    assert "the running hub applied it" in done.stdout
    assert "applied by the running hub" in done.stderr
    assert hub.config_path.read_text().startswith("# kept across authorize and revoke\n")

    client = connect(hub, STRANGER, "new1")
    client.close()


@pytest.mark.alone
def test_revoke_ends_a_live_session_within_a_second(hub: HubProcess) -> None:
    client = connect(hub)
    try:
        done = synchub(hub.config_path, "revoke", CLIENT.keyid, "--yes")
        assert done.returncode == 0, done.stderr
        error = client.recv_action("error", timeout=1.0)
        assert error.error.state == pb.CONNECTION_STATE_ERROR_AUTH
    finally:
        client.close()
    assert load_config(hub.config_path).authorized_client(CLIENT.keyid) is None
    wait_until(
        lambda: "error_auth" in synchub(hub.config_path, "peers").stdout
        or "disconnected" in synchub(hub.config_path, "peers").stdout,
        timeout=10, what="the revoked peer to be shown as down",
    )


def test_bad_input_to_a_running_hub_is_one_line(hub: HubProcess) -> None:
    for args, fragment in [
        (("authorize", "ed25519.x", "--instance", "a", "--yes"), "malformed key id"),
        (("authorize", STRANGER.keyid, "--instance", "a", "--perm", "read_config:nas",
          "--yes"), "unknown scope 'nas'"),
        (("revoke", STRANGER.keyid, "--yes"), "no authorized client has keyid"),
    ]:
        result = synchub(hub.config_path, *args)
        assert result.returncode == 1, result
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("synchub: error: "), result.stderr
        assert fragment in lines[0]
    assert synchub(hub.config_path, "status").returncode == 0
