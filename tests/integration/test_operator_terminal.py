"""Peer text on the operator's terminal: every table and log line shows it inert, JSON exact.

A hostile client (its own wire client) puts ESC/OSC sequences and newlines in
everything it controls; `synchub ops`, `peers`, `logs` and the hub's own log lines
run as real processes must show them as escapes, never act on them or forge rows.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.admin import ask_hub
from hub.config import load_config
from hub.identity import load_identity
from hub.pb import synchub_pb2 as pb
from hub.protocol import encode_item
from hub.text import inert
from synchub_testing import (
    CLIENT,
    LAUNCHER,
    HubProcess,
    RawClient,
    free_tcp_port,
    hub_config_text,
    send_operations_frame,
    wait_until,
)

pytestmark = pytest.mark.integration

CLEAR_SCREEN = "\x1b[2J\x1b[H"
OSC_CLIPBOARD = "\x1b]52;c;cm0gLXJmIH4K\x07"
OSC_TITLE = "\x1b]0;owned\x1b\\"
FORGED_ROW = "\n  9999  2026-01-01 00:00:00  success      web1  nightly  all fine"
HOSTILE = CLEAR_SCREEN + OSC_CLIPBOARD + OSC_TITLE + "\u202e\r" + FORGED_ROW
TERMINAL_ACTS = ("\x1b", "\x07", "\r", "\u202e", "\x9b")


def synchub(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(LAUNCHER), "--config", str(config), *args],
        capture_output=True, text=True, timeout=60, check=False,
    )


def assert_inert(text: str, shown: str = "\\x1b]52;c;") -> None:
    for control in TERMINAL_ACTS:
        assert control not in text, (control, text)
    assert shown in text


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[HubProcess]:
    path = tmp_path / "hub.toml"
    path.write_text(hub_config_text().replace(
        "heartbeat_interval = 10",
        f'heartbeat_interval = 10\nbind = "tcp://127.0.0.1:{free_tcp_port()}"',
    ))
    process = HubProcess(path, "-v")
    try:
        process.wait_for_output("listening on")
        yield process
    finally:
        process.kill()


def admin(hub: HubProcess, op: str) -> dict[str, Any]:
    """An admin request to the hub process, from this process (cheap to poll)."""
    return ask_hub(load_config(hub.config_path).data_dir, op, timeout=10)


def peer_states(hub: HubProcess) -> list[pb.PeerState]:
    return [pb.PeerState.FromString(raw) for raw in admin(hub, "peers")["peers"]]


def hostile_client(hub: HubProcess) -> RawClient:
    config = load_config(hub.config_path)
    node = load_identity(config.data_dir)
    assert config.hub is not None
    client = RawClient(config.hub.bind, node.curve.public)
    client.handshake(node.signing.keyid, identity=CLIENT, instance_id="web1")
    client.recv_action("send_config")
    client.recv_action("list_resources")
    return client


def hostile_operation() -> pb.Operation:
    return pb.Operation(
        id=1, modno=1, flow_id=1, repo_guid="guid-nas", status=pb.STATUS_ERROR,
        plan_id="nightly" + HOSTILE, instance_id="web1" + HOSTILE,
        display_message="failed" + HOSTILE,
    )


def test_ops_and_peers_show_peer_text_inert_and_json_exact(hub: HubProcess) -> None:
    client = hostile_client(hub)
    try:
        client.send(encode_item(pb.SyncStreamItem(list_resources=pb.SyncStreamItem.ListResources(
            repo_ids=["nas" + HOSTILE], plan_ids=["nightly" + HOSTILE],
        ))))
        client.send(send_operations_frame([hostile_operation()]))
        wait_until(lambda: bool(admin(hub, "ops")["operations"]),
                   timeout=30, what="the hostile operation to be stored")
        wait_until(lambda: any(state.known_repos for state in peer_states(hub)),
                   timeout=30, what="the hostile resources to reach the peer state")

        table = synchub(hub.config_path, "ops")
        assert table.returncode == 0, table.stderr
        assert_inert(table.stdout)
        assert len(table.stdout.splitlines()) == 2, table.stdout  # header and one row
        [op] = json.loads(synchub(hub.config_path, "ops", "--json").stdout)
        assert op["display_message"] == "failed" + HOSTILE
        assert op["plan_id"] == "nightly" + HOSTILE
        assert op["instance_id"] == "web1" + HOSTILE

        peers = synchub(hub.config_path, "peers")
        assert peers.returncode == 0, peers.stderr
        assert_inert(peers.stdout, "nas\\x1b[2J\\x1b[H")
        assert len(peers.stdout.splitlines()) == 2, peers.stdout
        [state] = json.loads(synchub(hub.config_path, "peers", "--json").stdout)
        assert state["known_repos"] == ["nas" + HOSTILE]

        client.send(encode_item(pb.SyncStreamItem(error=pb.SyncStreamItem.Error(
            message="disk on fire" + HOSTILE,
        ))))
        wait_until(
            lambda: any("disk on fire" in state.status_message for state in peer_states(hub)),
            timeout=30, what="the peer's error to reach the peer state",
        )
    finally:
        client.close()

    peers = synchub(hub.config_path, "peers", "--wide")
    assert_inert(peers.stdout)
    assert len(peers.stdout.splitlines()) == 2, peers.stdout
    assert "disk on fire\\x1b[2J" in peers.stdout
    [state] = json.loads(synchub(hub.config_path, "peers", "--json").stdout)
    # The status quotes the peer's text inert (its own record of what the peer said).
    assert state["status_message"] == "peer reported: disk on fire" + inert(HOSTILE)

    assert hub.stop() == 0
    # The hub's own log lines (-v) quote the peer's text: inert too, one line each.
    assert "disk on fire\\x1b[2J" in hub.stderr
    assert_inert(hub.stderr)
    assert not any(line.lstrip().startswith("9999") for line in hub.stderr.splitlines())


def test_an_error_line_quoting_peer_text_is_inert(tmp_path: Path) -> None:
    config = tmp_path / "hub.toml"
    config.write_text(hub_config_text())
    result = synchub(config, "ops", "--plan", "x" + HOSTILE, "--json")
    assert result.returncode == 0 and json.loads(result.stdout) == []
    refused = synchub(config, "logs", "7")
    assert refused.returncode == 1
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("synchub: error: "), refused.stderr


def run_on_terminal(args: list[str], timeout: float = 30.0) -> bytes:
    """``args`` as a process whose stdout is a terminal (a pseudo-terminal): what it wrote."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(args, stdout=follower, stderr=subprocess.PIPE,
                               stdin=subprocess.DEVNULL)
    os.close(follower)
    written = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # EIO: the process closed the terminal
                    break
                if not chunk:
                    break
                written += chunk
            elif process.poll() is not None:
                break
        assert process.wait(timeout=max(0.1, deadline - time.monotonic())) == 0, (
            process.stderr.read() if process.stderr else ""
        )
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()
        os.close(leader)
    return written


def test_a_jobs_log_is_inert_on_a_terminal_and_exact_in_a_pipe(tmp_path: Path) -> None:
    config = tmp_path / "node.toml"
    config.write_text('instance = "laptop"\ndata_dir = "data"\n')
    hostile_output = "line one\x1b]52;c;cm0gLXJmIH4K\x07\r\nline\ttwo\x1b[2J\rthree\n"
    run = subprocess.run(
        [sys.executable, str(LAUNCHER), "--config", str(config), "run", "--",
         sys.executable, "-c", f"import sys; sys.stdout.write({hostile_output!r})"],
        capture_output=True, timeout=60, check=False,
    )
    assert run.returncode == 0, run.stderr
    [op] = json.loads(synchub(config, "ops", "--json").stdout)
    op_id = str(op["id"])

    piped = subprocess.run(
        [sys.executable, str(LAUNCHER), "--config", str(config), "logs", op_id],
        capture_output=True, timeout=60, check=False,
    )
    assert piped.returncode == 0, piped.stderr
    assert hostile_output.encode() in piped.stdout

    shown = run_on_terminal(
        [sys.executable, str(LAUNCHER), "--config", str(config), "logs", op_id]
    ).decode()
    # The terminal's own line discipline turns each \n into \r\n.
    lines = shown.replace("\r\n", "\n")
    assert "\x1b" not in lines and "\x07" not in lines and "\r" not in lines, repr(shown)
    assert "line one\\x1b]52;c;cm0gLXJmIH4K\\x07\nline\ttwo\\x1b[2J\\rthree\n" in lines

    raw = run_on_terminal(
        [sys.executable, str(LAUNCHER), "--config", str(config), "logs", "--raw", op_id]
    )
    assert b"\x1b]52;c;cm0gLXJmIH4K\x07" in raw
