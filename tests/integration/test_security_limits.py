"""The hub's limits against floods on real sockets: frame size, pending handshakes,
handshake expiry, and one client's flood against another client's progress."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
import zmq
from zmq.utils.monitor import recv_monitor_message

from hub import protocol
from hub.pb import synchub_pb2 as pb
from hub.server import Front, Hub
from synchub_testing import (
    CLIENT,
    OTHER_CLIENT,
    STRANGER,
    DealerSwarm,
    RawClient,
    client_hello,
    connected_client,
    diff_frame,
    front_of,
    hub_text_with,
    operation,
    running_hub,
    send_operations_frame,
    stored_operations,
    wait_until,
    write_config,
)

pytestmark = [pytest.mark.integration, pytest.mark.alone]

SMALL_FRAMES = 64 * 1024


def in_sync(client: RawClient, ids: list[int], keyid: str = CLIENT.keyid,
            timeout: float = 10.0) -> bool:
    client.send(diff_frame(keyid, ids, [1] * len(ids)))
    reply = client.recv_action("diff_operations", timeout=timeout)
    return list(reply.diff_operations.request_operations) == []


def frame_of_size(op_id: int, size: int) -> bytes:
    """A send_operations frame of exactly ``size`` bytes."""
    padding = size
    for _ in range(8):
        frame = send_operations_frame([operation(op_id, message="p" * padding)])
        if len(frame) == size:
            return frame
        padding -= len(frame) - size
    raise AssertionError(f"cannot build a frame of {size} bytes")


def test_oversized_frames_are_cut_by_libzmq_and_others_keep_syncing(tmp_path: Path) -> None:
    config = write_config(tmp_path, hub_text_with(max_frame_bytes=SMALL_FRAMES))
    with running_hub(config) as hub:
        good = connected_client(hub)
        attacker = connected_client(hub, OTHER_CLIENT, "db1")
        monitor = attacker.socket.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        try:
            # Exactly the limit is accepted, one byte more is not.
            good.send(frame_of_size(1, SMALL_FRAMES))
            attacker.send(frame_of_size(1, SMALL_FRAMES + 1))
            for first in range(2, 202, 50):
                good.send(send_operations_frame([operation(i) for i in range(first, first + 50)]))
            assert in_sync(good, list(range(1, 202)))

            assert monitor.poll(5000), "the oversized frame did not cut the connection"
            assert recv_monitor_message(monitor)["event"] == zmq.EVENT_DISCONNECTED
            assert stored_operations(hub, OTHER_CLIENT.keyid) == []
            assert len(stored_operations(hub, CLIENT.keyid)) == 201
            # The oversized frame never reached a session; the front kept serving.
            assert hub.status().front.backlog == (0, 0)
            assert hub.oplog.ping().get(timeout=5)
        finally:
            attacker.socket.disable_monitor()
            monitor.close(linger=0)
            attacker.close()
            good.close()


def decoded(frames: list[bytes]) -> list[pb.SyncStreamItem]:
    return [protocol.decode_item(frame) for frame in frames]


def test_a_hello_flood_is_bounded_and_pending_handshakes_expire(tmp_path: Path) -> None:
    limit, flood = 50, 300
    config = write_config(
        tmp_path, hub_text_with(max_pending_handshakes=limit, handshake_timeout=1)
    )
    with running_hub(config) as hub:
        swarm = DealerSwarm(hub.endpoint, hub.identity.curve.public, flood)
        try:
            for index in range(flood):
                assert swarm.send(index, client_hello(STRANGER, f"flood{index}", os.urandom(32)))
            started = time.monotonic()
            wait_until(
                lambda: (c := hub.status().front).sessions_started + c.refused == flood,
                30.0, "every HELLO to be taken or refused",
            )
            took = time.monotonic() - started
            counters = hub.status().front
            # Every session started was challenged; collect until each has its answer.
            first: dict[int, list[bytes]] = {}
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                for index, frames in swarm.collect(flood, timeout=0.5).items():
                    first.setdefault(index, []).extend(frames)
                if sum(1 for f in first.values() if decoded(f)[0].HasField("handshake")) >= (
                    counters.sessions_started
                ):
                    break
            replies = {index: decoded(frames) for index, frames in first.items()}
            challenged = [i for i, items in replies.items() if items[0].HasField("handshake")]
            told = [i for i, items in replies.items() if items[0].HasField("error")]
            assert len(challenged) == counters.sessions_started
            # Random early drop refuses some from half the limit on, all at the limit.
            assert len(challenged) >= limit // 2
            assert counters.refused == flood - len(challenged)
            # Refusals are answered (RETRY_WAIT) at most 10 a second from one address,
            # then silently: a peer retrying at once gets nothing to retry on.
            assert 1 <= len(told) <= 10 * (int(took) + 2)
            for index in told:
                [error] = replies[index]
                assert error.error.state == pb.CONNECTION_STATE_RETRY_WAIT
            assert limit // 2 <= counters.pending_high_water <= limit
            refused = [i for i in range(flood) if i not in challenged]

            # Every pending session expires on the hub's own ticks.
            expiries = swarm.collect(
                len(challenged) - sum(len(replies[i]) - 1 for i in challenged), timeout=10
            )
            for index in challenged:
                items = replies[index][1:] + decoded(expiries.get(index, []))
                assert len(items) == 1, f"dealer {index} got {items}"
                assert items[0].error.state == pb.CONNECTION_STATE_ERROR_AUTH
                assert "timed out" in items[0].error.message
            wait_until(lambda: hub.status().front.sessions == 0, 5.0, "expired sessions to close")
            assert hub.status().front.pending_handshakes == 0
            assert all(not swarm.drain(index) for index in refused)
        finally:
            swarm.close()
        assert hub.peers.list().get(timeout=5) == []
        good = connected_client(hub)
        good.close()


class Flooder:
    """Sends send_operations batches as fast as the socket takes them, in its own thread,
    sampling the front's counters (without asking any actor) after each send."""

    def __init__(self, client: RawClient, front: Front, cap: int = 200_000) -> None:
        self.client = client
        self.front = front
        self.cap = cap
        self.sent = 0
        self.deepest_backlog = 0
        self._stop = threading.Event()
        self._frames = [
            send_operations_frame(
                [operation(i, modno=round_) for i in range(1, 51)], "updated_operations"
            )
            for round_ in range(1, 5)
        ]
        self._thread = threading.Thread(target=self._run, name="flooder")

    def __enter__(self) -> Flooder:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        sock = self.client.socket
        while not self._stop.is_set() and self.sent < self.cap:
            try:
                sock.send(self._frames[self.sent % len(self._frames)], zmq.NOBLOCK)
                self.sent += 1
            except zmq.Again:
                sock.poll(20, zmq.POLLOUT)
            backlog = self.front.counters().backlog_frames
            self.deepest_backlog = max(self.deepest_backlog, backlog)


def test_a_flooding_client_does_not_starve_another(tmp_path: Path) -> None:
    with running_hub(write_config(tmp_path, hub_text_with())) as hub:
        front = front_of(hub)
        flooder_client = connected_client(hub)
        try:
            with Flooder(flooder_client, front) as flooder:
                wait_until(
                    lambda: front.counters().backlog_frames > 500, 10.0, "the flood to build up"
                )
                started = time.monotonic()
                other = connected_client(hub, OTHER_CLIENT, "db1")
                try:
                    other.send(send_operations_frame([operation(i) for i in range(1, 11)]))
                    assert in_sync(other, list(range(1, 11)), OTHER_CLIENT.keyid)
                finally:
                    other.close()
                elapsed = time.monotonic() - started
            assert elapsed < 5.0, f"the second client needed {elapsed:.1f}s"
            assert flooder.deepest_backlog > 500
            # The flooder was told to slow down.
            items = [protocol.decode_item(f) for f in iter_frames(flooder_client)]
            assert any(item.HasField("throttle") for item in items)
        finally:
            flooder_client.close()
        wait_until(
            lambda: hub.status().front.backlog == (0, 0), 60.0, "the flood's backlog to drain"
        )


def iter_frames(client: RawClient, limit: int = 10_000) -> list[bytes]:
    frames = []
    for _ in range(limit):
        try:
            frames.append(client.socket.recv(zmq.NOBLOCK))
        except zmq.Again:
            break
    return frames


def test_the_hub_stops_promptly_under_a_deep_backlog(tmp_path: Path) -> None:
    """Frames still queued at shutdown are skipped (a client resends them after its next
    diff), so stopping does not wait for a flood to be applied."""
    hub = Hub(write_config(tmp_path, hub_text_with()))
    try:
        hub.start()
        front = front_of(hub)
        client = connected_client(hub)
        try:
            with Flooder(client, front):
                wait_until(
                    lambda: front.counters().backlog_frames > 1000, 10.0, "the flood to build up"
                )
            started = time.monotonic()
            hub.stop()
            assert time.monotonic() - started < 2.0
            errors = []
            deadline = time.monotonic() + 3.0
            while time.monotonic() < deadline and client.socket.poll(300):
                item = protocol.decode_item(client.socket.recv())
                if item.HasField("error"):
                    errors.append(item.error)
            assert len(errors) == 1, errors
            assert errors[0].state == pb.CONNECTION_STATE_DISCONNECTED
            assert "shutting down" in errors[0].message
        finally:
            client.close()
    finally:
        hub.stop()


def test_silent_and_vanished_peers_are_dropped_on_the_hubs_own_ticks(tmp_path: Path) -> None:
    """A connected peer that says nothing is dropped after three heartbeat intervals; one
    whose connection is gone is dropped at the hub's next send to it (ROUTER_MANDATORY)."""
    config = write_config(tmp_path, hub_text_with(heartbeat_interval=0.3))
    with running_hub(config) as hub:
        silent = connected_client(hub)
        try:
            gone = connected_client(hub, OTHER_CLIENT, "db1")
            gone.close()
            started = time.monotonic()
            wait_until(lambda: hub.status().front.sessions == 0, 5.0, "both sessions to end")
            elapsed = time.monotonic() - started
            assert elapsed < 3.0
            heartbeats = 0
            while silent.socket.poll(0):
                item = protocol.decode_item(silent.socket.recv())
                assert item.HasField("heartbeat"), item  # no error: it may just be asleep
                heartbeats += 1
            assert heartbeats >= 2
        finally:
            silent.close()
        states = {state.peer_keyid: state for state in hub.peers.list().get(timeout=5)}
        assert states[CLIENT.keyid].state == pb.CONNECTION_STATE_DISCONNECTED
        assert "3 heartbeat intervals" in states[CLIENT.keyid].status_message
        assert states[OTHER_CLIENT.keyid].state == pb.CONNECTION_STATE_DISCONNECTED
        assert "connection lost" in states[OTHER_CLIENT.keyid].status_message
