"""`synchub start` as a real process on loopback, spoken to by a bare DEALER client."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.identity import load_identity
from hub.pb import synchub_pb2 as pb
from synchub_testing import (
    CLIENT,
    HubProcess,
    RawClient,
    diff_frame,
    free_tcp_port,
    hub_config_text,
    operation,
    send_operations_frame,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def hub_config(tmp_path: Path) -> Path:
    port = free_tcp_port()
    path = tmp_path / "hub.toml"
    path.write_text(
        hub_config_text().replace(
            "heartbeat_interval = 10", f'heartbeat_interval = 10\nbind = "tcp://127.0.0.1:{port}"'
        )
    )
    return path


def endpoint_of(path: Path) -> str:
    for line in path.read_text().splitlines():
        if line.startswith("bind = "):
            return line.split('"')[1]
    raise AssertionError("no bind in config")


@pytest.fixture
def hub(hub_config: Path) -> Iterator[HubProcess]:
    process = HubProcess(hub_config)
    try:
        process.wait_for_output("listening on")
        yield process
    finally:
        process.kill()


def connect(hub: HubProcess) -> RawClient:
    identity = load_identity(hub.config_path.parent / "data")
    client = RawClient(endpoint_of(hub.config_path), identity.curve.public)
    client.handshake(identity.signing.keyid)
    client.recv_action("send_config")
    client.recv_action("list_resources")
    return client


def test_sigterm_stops_cleanly_and_keeps_acknowledged_operations(hub: HubProcess) -> None:
    client = connect(hub)
    try:
        client.send(send_operations_frame([operation(i) for i in range(1, 101)]))
        client.send(diff_frame(CLIENT.keyid, list(range(1, 101)), [1] * 100))
        acknowledged = client.recv_action("diff_operations")
        assert list(acknowledged.diff_operations.request_operations) == []

        assert hub.stop() == 0
        goodbye = client.recv_action("error")
        assert goodbye.error.state == pb.CONNECTION_STATE_DISCONNECTED
        assert "shutting down" in goodbye.error.message
        assert "hub stopped" in hub.stderr
        assert "Traceback" not in hub.stderr
    finally:
        client.close()

    again = HubProcess(hub.config_path)
    try:
        again.wait_for_output("listening on")
        client = connect(again)
        try:
            client.send(diff_frame(CLIENT.keyid, list(range(1, 101)), [1] * 100))
            after_restart = client.recv_action("diff_operations")
            assert list(after_restart.diff_operations.request_operations) == []
        finally:
            client.close()
        assert again.stop() == 0
    finally:
        again.kill()


@pytest.mark.alone
def test_sighup_reload_cuts_a_removed_client(hub: HubProcess) -> None:
    client = connect(hub)
    try:
        text = hub.config_path.read_text().replace(CLIENT.keyid, "ed25519." + "A" * 43)
        hub.config_path.write_text(text)
        hub.signal(signal.SIGHUP)
        error = client.recv_action("error", timeout=3.0)
        assert error.error.state == pb.CONNECTION_STATE_ERROR_AUTH
        assert error.error.message == "revoked by the operator"
    finally:
        client.close()


def test_sighup_with_a_broken_file_keeps_the_running_config(hub: HubProcess) -> None:
    client = connect(hub)
    try:
        hub.config_path.write_text(hub.config_path.read_text() + "\n[hub.nonsense\n")
        hub.signal(signal.SIGHUP)
        hub.wait_for_output("reload refused")
        client.send(diff_frame(CLIENT.keyid, [], []))
        assert client.recv_action("diff_operations").WhichOneof("action") == "diff_operations"
    finally:
        client.close()


def test_bad_config_is_one_line_and_nonzero(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('instance = "x"\n[hub]\nmax_frame_bytes = -1\n')
    process = HubProcess(path)
    status = process.wait_exit()
    lines = process.stderr.strip().splitlines()
    assert status == 1
    assert len(lines) == 1
    assert "hub.max_frame_bytes" in lines[0]
