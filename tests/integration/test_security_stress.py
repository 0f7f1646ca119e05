"""`synchub start` under a storm of bad frames while a good client syncs.

The hub runs as a child process so its memory can be read from /proc and so that
nothing in this process can keep it alive or shield it.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest

from hub.identity import load_identity
from hub.pb import synchub_pb2 as pb
from hub.protocol import error_frame, heartbeat_frame, hello_item, proof_item
from hub.store import SqliteOplogStore, oplog_path
from synchub_testing import (
    CLIENT,
    STRANGER,
    DealerSwarm,
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

MAX_FRAME = 64 * 1024
BAD_FRAMES = 10_000
BAD_PEERS = 50
GOOD_OPS = 1_000
ROUNDS = 25


def valid_item(rng: random.Random) -> pb.SyncStreamItem:
    """A well-formed item of a random action, with random content."""
    choice = rng.randrange(7)
    if choice == 0:
        return hello_item(STRANGER, f"storm{rng.randrange(1000)}", rng.randbytes(32))
    if choice == 1:
        return proof_item(rng.randbytes(64))
    if choice == 2:
        ids = [rng.randrange(-5, 1 << 40) for _ in range(rng.randrange(5))]
        return pb.SyncStreamItem.FromString(diff_frame(CLIENT.keyid, ids, ids[:rng.randrange(6)]))
    if choice == 3:
        ops = [operation(rng.randrange(-3, 50)) for _ in range(rng.randrange(1, 4))]
        for op in ops:
            op.original_instance_keyid = CLIENT.keyid
            op.display_message = rng.randbytes(20).hex()
        return pb.SyncStreamItem.FromString(send_operations_frame(ops))
    if choice == 4:
        return pb.SyncStreamItem.FromString(heartbeat_frame())
    if choice == 5:
        return pb.SyncStreamItem.FromString(error_frame(rng.randrange(13), "storm"))
    # Built raw on purpose: a throttle is the hub's item; a client sending one is odd
    # (the hub ignores it), and random delays are the point.
    return pb.SyncStreamItem(throttle=pb.SyncStreamItem.Throttle(delay_ms=rng.randrange(1 << 20)))


def bad_message(rng: random.Random) -> list[bytes]:
    """One hostile message: random, truncated, mutated, unknown, oversized or multi-frame."""
    kind = rng.randrange(100)
    body = valid_item(rng).SerializeToString()
    if kind < 20:
        return [rng.randbytes(rng.randrange(1, 200))]
    if kind < 40:
        return [body[: rng.randrange(max(1, len(body)))]]
    if kind < 60:
        mutated = bytearray(body)
        for _ in range(rng.randrange(1, 4)):
            if mutated:
                mutated[rng.randrange(len(mutated))] ^= 1 << rng.randrange(8)
        return [bytes(mutated)]
    if kind < 70:
        field = rng.choice([1, 2, 5, 23, 26, 49, 51, 999, 1001, 536870911])
        return [bytes(_varint(field << 3 | 2)) + b"\x03abc"]
    if kind < 95:
        return [body]  # well-formed, but out of order for its session
    if kind < 99:
        return [body, rng.randbytes(8)]
    return [rng.randbytes(MAX_FRAME + 1 + rng.randrange(4096))]


def _varint(value: int) -> bytearray:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return out


def probe_until_answered(swarm: DealerSwarm, deadline: float) -> set[int]:
    """Send each peer's HELLO until it is answered (a CHALLENGE or a refusal)."""
    answered: set[int] = set()
    while len(answered) < len(swarm.sockets) and time.monotonic() < deadline:
        waiting = [i for i in range(len(swarm.sockets)) if i not in answered]
        for index in waiting:
            swarm.drain(index)
            swarm.send(index, hello_item(STRANGER, "probe", os.urandom(32)).SerializeToString())
        replies = swarm.collect(len(waiting), timeout=0.5)
        answered.update(index for index, frames in replies.items() if frames)
    return answered


def test_a_storm_of_bad_frames_does_not_stop_a_good_client(tmp_path: Path) -> None:
    config_path = tmp_path / "hub.toml"
    config_path.write_text(hub_text_with(
        bind=f"tcp://127.0.0.1:{free_tcp_port()}", max_frame_bytes=MAX_FRAME,
        max_pending_handshakes=BAD_PEERS, handshake_timeout=2,
    ))
    endpoint = next(
        line.split('"')[1] for line in config_path.read_text().splitlines()
        if line.startswith("bind = ")
    )
    hub = HubProcess(config_path)
    try:
        hub.wait_for_output("listening on")
        identity = load_identity(tmp_path / "data")
        good = RawClient(endpoint, identity.curve.public)
        swarm = DealerSwarm(endpoint, identity.curve.public, BAD_PEERS)
        try:
            good.handshake(identity.signing.keyid)
            good.recv_action("send_config")
            good.recv_action("list_resources")
            rss_before = process_rss_bytes(hub.process.pid)

            rng = random.Random(20240917)
            queued = replies = 0
            per_round = BAD_FRAMES // ROUNDS
            ops_per_round = GOOD_OPS // ROUNDS
            started = time.monotonic()
            for round_ in range(ROUNDS):
                for index in range(per_round):
                    peer = (round_ * per_round + index) % BAD_PEERS
                    queued += swarm.send(peer, bad_message(rng))
                first = round_ * ops_per_round + 1
                good.send(send_operations_frame(
                    [operation(i) for i in range(first, first + ops_per_round)]
                ))
                # Let the round's sessions answer, so the next round meets fresh ones.
                answers = swarm.collect(BAD_PEERS, timeout=0.5)
                replies += sum(len(frames) for frames in answers.values())
            assert queued >= BAD_FRAMES * 0.95, f"only {queued} bad frames could be queued"
            # Every bad peer's storm has reached the hub once a HELLO sent after it is
            # answered (frames of one connection arrive in order).
            answered = probe_until_answered(swarm, time.monotonic() + 30)
            assert answered == set(range(BAD_PEERS))

            all_ids = list(range(1, GOOD_OPS + 1))
            good.send(diff_frame(CLIENT.keyid, all_ids, [1] * GOOD_OPS))
            deadline = time.monotonic() + 60
            reply = None
            while reply is None:
                item = good.recv(max(0.1, deadline - time.monotonic()))
                if item.HasField("diff_operations"):
                    reply = item
                else:
                    assert item.WhichOneof("action") in {"heartbeat", "throttle"}, item
            assert list(reply.diff_operations.request_operations) == []
            assert time.monotonic() - started < 60

            assert hub.process.poll() is None, "the hub died"
            growth = process_rss_bytes(hub.process.pid) - rss_before
            assert growth < 100 * 1024 * 1024, f"the hub grew by {growth / 2**20:.0f} MiB"
        finally:
            swarm.close()
            good.close()
        assert hub.stop() == 0
        assert "Traceback" not in hub.stderr, hub.stderr[-4000:]
    finally:
        hub.kill()

    store = SqliteOplogStore(oplog_path(tmp_path / "data"))
    try:
        stored = store.query(pb.OpSelector(original_instance_keyid=CLIENT.keyid))
    finally:
        store.close()
    assert sorted(op.original_id for op in stored) == list(range(1, GOOD_OPS + 1))
    assert {op.original_instance_keyid for op in stored} == {CLIENT.keyid}
    assert os.path.exists(oplog_path(tmp_path / "data"))
