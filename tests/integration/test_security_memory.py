"""Memory bounded in bytes, against `synchub start` as a process (RSS read from /proc):
pipelined big batches, a config flood and a client that never reads its replies, each
from one authorized key that ignores throttles; the hub stays under its bound, ends
that session with an error, falls back afterwards and keeps serving."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq

from hub.identity import load_identity
from hub.pb import synchub_pb2 as pb
from synchub_testing import (
    CLIENT,
    HubProcess,
    RawClient,
    diff_frame,
    free_tcp_port,
    hub_text_with,
    operation,
    process_rss_bytes,
    send_operations_frame,
)

pytestmark = [pytest.mark.integration, pytest.mark.alone]

MIB = 1024 * 1024
RSS_BOUND = 512 * MIB


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[tuple[HubProcess, str]]:
    endpoint = f"tcp://127.0.0.1:{free_tcp_port()}"
    path = tmp_path / "hub.toml"
    path.write_text(hub_text_with(bind=endpoint, heartbeat_interval=10, handshake_timeout=5))
    process = HubProcess(path)
    try:
        process.wait_for_output("listening on")
        yield process, endpoint
    finally:
        process.kill()


def connect(hub: HubProcess, endpoint: str) -> RawClient:
    identity = load_identity(hub.config_path.parent / "data")
    client = RawClient(endpoint, identity.curve.public)
    client.socket.setsockopt(zmq.SNDHWM, 100_000)
    client.handshake(identity.signing.keyid)
    client.recv_action("send_config")
    client.recv_action("list_resources")
    return client


def peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def flood(client: RawClient, frame: bytes, count: int, within: float = 120.0) -> int:
    """Send ``frame`` up to ``count`` times without reading; how many went."""
    sent = 0
    deadline = time.monotonic() + within
    while sent < count and time.monotonic() < deadline:
        try:
            client.socket.send(frame, zmq.NOBLOCK)
            sent += 1
        except zmq.Again:
            client.socket.poll(50, zmq.POLLOUT)
    return sent


def error_among(client: RawClient, timeout: float = 60.0) -> pb.SyncStreamItem.Error:
    """Read (and drop) everything until the hub's error item."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        item = client.recv(max(0.1, deadline - time.monotonic()))
        if item.WhichOneof("action") == "error":
            return item.error
    raise AssertionError("no error item")


def error_or_caught_up(
    client: RawClient, timeout: float = 120.0,
) -> pb.SyncStreamItem.Error | None:
    """Ask for a diff behind everything sent: the hub's error item if it cut the session
    first, or None once the answer shows it applied all that came before."""
    client.send(diff_frame(CLIENT.keyid, [], []))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        item = client.recv(max(0.1, deadline - time.monotonic()))
        if item.WhichOneof("action") == "error":
            return item.error
        if item.WhichOneof("action") == "diff_operations":
            return None
    raise AssertionError("neither an error nor the diff's answer")


def falls_back(pid: int, below: int, within: float = 60.0) -> int:
    deadline = time.monotonic() + within
    while (rss := process_rss_bytes(pid)) >= below and time.monotonic() < deadline:
        time.sleep(0.5)
    return rss


def still_serves(hub: HubProcess, endpoint: str) -> None:
    client = connect(hub, endpoint)
    try:
        client.send(diff_frame(CLIENT.keyid, [], []))
        assert client.recv_action("diff_operations", timeout=10).HasField("diff_operations")
    finally:
        client.close()


def test_pipelined_big_batches_that_ignore_throttle_are_cut(
    hub: tuple[HubProcess, str],
) -> None:
    process, endpoint = hub
    pid = process.process.pid
    before = process_rss_bytes(pid)
    client = connect(process, endpoint)
    try:
        batch = send_operations_frame(
            [operation(i, message="x" * (512 * 1024)) for i in range(1, 17)]
        )  # 8 MiB a frame
        flood(client, batch, 80)  # 640 MiB, throttles ignored
        # A hub that applies the batches as fast as they come (a quiet machine) never
        # has 128 MiB waiting and sends nothing; one that falls behind cuts the session.
        # Either way its memory stays bounded, which is the promise checked below.
        error = error_or_caught_up(client)
        if error is not None:
            assert error.state == pb.CONNECTION_STATE_ERROR_PROTOCOL
            assert "sent ahead" in error.message
    finally:
        client.close()
    assert peak_rss(pid) < RSS_BOUND, peak_rss(pid) // MIB
    assert falls_back(pid, before + 150 * MIB) < before + 150 * MIB
    still_serves(process, endpoint)


def test_a_config_flood_is_waited_for_and_bounded(hub: tuple[HubProcess, str]) -> None:
    process, endpoint = hub
    pid = process.process.pid
    before = process_rss_bytes(pid)
    client = connect(process, endpoint)
    try:
        item = pb.SyncStreamItem()
        for index in range(2000):
            item.send_config.config.plans.add(id=f"plan-{index}", repo="nas",
                                              paths=["/" + "p" * 200])
        frame = item.SerializeToString()  # ~440 KiB
        flood(client, frame, 1500)  # ~650 MiB
        error = error_among(client)
        assert error.state == pb.CONNECTION_STATE_ERROR_PROTOCOL
        assert "sent ahead" in error.message
    finally:
        client.close()
    assert peak_rss(pid) < RSS_BOUND, peak_rss(pid) // MIB
    assert falls_back(pid, before + 150 * MIB) < before + 150 * MIB
    still_serves(process, endpoint)


def test_a_client_that_never_reads_its_replies_is_cut(hub: tuple[HubProcess, str]) -> None:
    process, endpoint = hub
    pid = process.process.pid
    client = connect(process, endpoint)
    try:
        # Each diff lists 400,000 operations the hub lacks: the answer requests them all.
        ids = list(range(1, 400_001))
        frame = diff_frame(CLIENT.keyid, ids, [1] * len(ids))
        flood(client, frame, 120)
        error = error_among(client, timeout=120)
        assert error.state == pb.CONNECTION_STATE_ERROR_PROTOCOL
        # Whichever bound it reaches first: its diffs waiting in the hub, or the
        # answers it left unread (that bound alone: tests/unit/test_memory_bounds.py).
        assert "sent ahead" in error.message or "left unread" in error.message
    finally:
        client.close()
    assert peak_rss(pid) < RSS_BOUND, peak_rss(pid) // MIB
    still_serves(process, endpoint)
