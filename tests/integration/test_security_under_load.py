"""Revocation, displacement and fairness while a hostile wire client floods a real hub.

The hostile client is a bare DEALER that pipelines frames without waiting for anything
(it ignores ``throttle``; its send queue is unbounded), so thousands of its frames wait in
the hub while the test acts. The hub runs in this process (``hub.server.Hub``) with real
sockets and SQLite files; revocations go through the real ``synchub`` command and the
admin socket. What was applied is read from the oplog file itself. Every receive has a
deadline.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from hub.admin import ask_hub
from hub.pb import synchub_pb2 as pb
from hub.store import oplog_path
from synchub_testing import (
    CLIENT,
    LAUNCHER,
    OTHER_CLIENT,
    RawClient,
    connected_client,
    diff_frame,
    hub_text_with,
    operation,
    running_hub,
    send_operations_frame,
    wait_until,
    write_config,
)

pytestmark = [pytest.mark.integration, pytest.mark.alone]

ERROR_AUTH = pb.CONNECTION_STATE_ERROR_AUTH
QUEUED_BATCHES = 3000
OPS_PER_BATCH = 20


@pytest.fixture
def hub_and_path(tmp_path: Path) -> Iterator[tuple[Any, Path]]:
    config = write_config(tmp_path, hub_text_with())
    assert config.path is not None
    with running_hub(config) as hub:
        hub.test_data_dir = config.data_dir
        yield hub, config.path


def flooding_client(hub: Any) -> RawClient:
    """CLIENT connected, with a send queue that never blocks (it ignores throttle)."""
    client = RawClient(hub.endpoint, hub.identity.curve.public)
    client.socket.setsockopt(zmq.SNDHWM, 0)
    client.handshake(hub.identity.signing.keyid)
    client.recv_action("send_config")
    client.recv_action("list_resources")
    return client


def batch(first_id: int, count: int = OPS_PER_BATCH, modno: int = 1) -> bytes:
    return send_operations_frame([operation(i, modno=modno) for i in range(first_id,
                                                                          first_id + count)])


def stored(hub: Any, keyid: str) -> dict[int, int]:
    """The key's operations in the oplog file: original id -> modno (committed rows only)."""
    path = oplog_path(hub.test_data_dir)
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT original_id, modno FROM operations WHERE original_instance_keyid = ?",
            (keyid,),
        ).fetchall()
    return dict(rows)


def error_within(client: RawClient, deadline: float) -> pb.SyncStreamItem.Error:
    """The first error item before ``deadline``, skipping throttles and heartbeats."""
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not client.socket.poll(int(left * 1000)):
            raise AssertionError("no error item in time")
        item = pb.SyncStreamItem.FromString(client.socket.recv())
        if item.HasField("error"):
            return item.error


def synchub(config_path: Path, *args: str) -> None:
    subprocess.run(
        [sys.executable, str(LAUNCHER), "-c", str(config_path), *args],
        check=True, capture_output=True, timeout=60,
    )


def revoke_with_the_command(hub: Any, path: Path) -> None:
    synchub(path, "revoke", CLIENT.keyid, "--yes")


def unverify_through_the_admin_socket(hub: Any, _path: Path) -> None:
    ask_hub(hub.test_data_dir, "authorize", timeout=30, keyid=CLIENT.keyid,
            instance_id="web1", verified=False)


def edit_the_file_and_reload(hub: Any, path: Path) -> None:
    path.write_text(path.read_text().replace(CLIENT.keyid, "ed25519." + "A" * 43))
    synchub(path, "reload")


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (revoke_with_the_command, "revoked by the operator"),
        (unverify_through_the_admin_socket, "not verified"),
        (edit_the_file_and_reload, "revoked by the operator"),
    ],
    ids=["synchub-revoke", "unverify", "file-and-reload"],
)
def test_revocation_bites_at_once_whatever_the_client_has_queued(
    hub_and_path: tuple[Any, Path], change: Callable[[Any, Path], None], fragment: str
) -> None:
    hub, path = hub_and_path
    client = flooding_client(hub)
    try:
        for index in range(QUEUED_BATCHES):
            client.send(batch(1 + index * OPS_PER_BATCH))
        wait_until(lambda: len(stored(hub, CLIENT.keyid)) > 0, 10.0, "the first batches")
        # The premise: hundreds of this client's frames are waiting in the hub (how many at
        # one instant depends on how fast it applies them; thousands more are on the way).
        wait_until(lambda: hub.status().front.backlog_frames >= 300, 10.0,
                   "hundreds of frames waiting in the hub")

        change(hub, path)
        returned = time.monotonic()
        at_return = stored(hub, CLIENT.keyid)

        error = error_within(client, returned + 1.0)
        assert error.state == ERROR_AUTH
        assert fragment in error.message
        wait_until(lambda: hub.status().front.sessions == 0, 5.0, "the session to close")
        wait_until(lambda: hub.status().front.backlog_frames == 0, 5.0, "its frames dropped")
        # Not one batch of that key was applied after the command returned.
        assert stored(hub, CLIENT.keyid) == at_return
        assert len(at_return) < QUEUED_BATCHES * OPS_PER_BATCH
    finally:
        client.close()


def test_a_displaced_session_applies_nothing_once_the_newer_one_is_in(
    hub_and_path: tuple[Any, Path],
) -> None:
    hub, _path = hub_and_path
    first = flooding_client(hub)
    second = None
    try:
        # A1 keeps rewriting operations 1-20, with ever higher modnos.
        for modno in range(1, 1501):
            first.send(batch(1, modno=modno))
        wait_until(lambda: len(stored(hub, CLIENT.keyid)) > 0, 10.0, "the first batches")
        # The premise: many of A1's frames wait in the hub (how many at one instant
        # depends on how fast it applies them, and libzmq now buffers only 16 of them).
        wait_until(lambda: hub.status().front.backlog_frames >= 150, 10.0,
                   "a hundred and more of A1's frames waiting in the hub")

        second = connected_client(hub)
        final = 10**9
        second.send(batch(1, modno=final))
        second.send(diff_frame(CLIENT.keyid, list(range(1, 21)), [final] * 20))
        reply = second.recv_action("diff_operations", timeout=10)
        assert list(reply.diff_operations.request_operations) == []  # acknowledged

        goodbye = error_within(first, time.monotonic() + 2.0)
        assert goodbye.message == "displaced by a newer connection"
        wait_until(lambda: hub.status().front.sessions == 1, 5.0, "A1's session to close")
        wait_until(lambda: hub.status().front.backlog_frames == 0, 5.0, "A1's frames dropped")
        assert stored(hub, CLIENT.keyid) == dict.fromkeys(range(1, 21), final)
        hub.peers.flush().get(timeout=5)
        assert hub.peers.get(CLIENT.keyid).get(timeout=5).state == (
            pb.CONNECTION_STATE_CONNECTED)
    finally:
        first.close()
        if second is not None:
            second.close()


HUGE_DIFF_IDS = 1_000_000
HUGE_DIFFS = 12


def test_a_flood_of_huge_diffs_does_not_hold_up_another_clients_sync(
    hub_and_path: tuple[Any, Path],
) -> None:
    hub, _path = hub_and_path
    hostile = flooding_client(hub)
    stop = threading.Event()
    huge = diff_frame(CLIENT.keyid, list(range(1, HUGE_DIFF_IDS + 1)), [1] * HUGE_DIFF_IDS)

    def keep_flooding() -> None:
        sent = 0
        while not stop.is_set():
            while hostile.socket.poll(0):
                hostile.socket.recv()
            if sent - hub.status().front.backlog_frames < HUGE_DIFFS:
                hostile.send(huge)
                sent += 1
            stop.wait(0.05)

    flooder = threading.Thread(target=keep_flooding, name="test-flooder")
    flooder.start()
    good = None
    try:
        wait_until(lambda: hub.status().front.backlog_frames >= 4, 20.0, "huge diffs queued")
        started = time.monotonic()
        good = connected_client(hub, OTHER_CLIENT, "db1")
        for first_id in range(1, 1001, 250):
            good.send(send_operations_frame([operation(i) for i in range(first_id,
                                                                          first_id + 250)]))
        good.send(diff_frame(OTHER_CLIENT.keyid, list(range(1, 1001)), [1] * 1000))
        reply = good.recv_action("diff_operations", timeout=10)
        elapsed = time.monotonic() - started
        assert list(reply.diff_operations.request_operations) == []
        assert elapsed < 2.0, f"the 1,000-operation sync took {elapsed:.2f}s"
        # The premise: the hostile diffs were still being worked through meanwhile.
        assert hub.status().front.backlog_frames >= 1
    finally:
        stop.set()
        flooder.join(timeout=10)
        hostile.close()
        if good is not None:
            good.close()
