"""hostile writes: revocation, displacement and fairness while one authorized key floods.

    synchub bench hostile --attack revoke|displace|fairness

(``synchub bench hostile-writes --attack ...`` is the older spelling: the same run,
flags and figures, its scenario named ``hostile-writes``.)

The attacker is a bare DEALER holding an authorized key that pipelines frames without
waiting for anything (it ignores ``throttle``; its send queue is unbounded), against
``synchub start`` running as a process. What was applied is read from the hub's oplog
file itself.

``revoke``: the attacker pipelines ``batches`` batches of 256 operations, then the
operator runs ``synchub revoke``. Figures: seconds from the command returning to the
attacker's ``ERROR_AUTH`` (baseline: the same revoke of an idle client, same hub), and
the operations of the revoked key applied after the command returned (goal 0).

``displace``: session A1 pipelines ``batches`` batches that keep rewriting the same 256
operations with ever higher modnos; A2 (the same key, a new connection) connects,
writes them once more and gets its acknowledging diff. Figures: the operations A2 wrote
found overwritten afterwards (goal 0), and for how long (goal 0 s), watched ``watch``
seconds.

``fairness``: the attacker keeps ``depth`` diffs of ``diff_ids`` ids each in flight;
meanwhile another client syncs 1,000 operations (4 batches and a diff, timed to the diff's
reply), ``syncs`` times. Figures: the median and the worst sync (baseline: the same sync
on the idle hub, same run; goal 2 s).
"""

from __future__ import annotations

import dataclasses
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import zmq

from hub import protocol
from hub.bench.report import Goal, Result, figure, goal_figure
from hub.bench.rig import (
    HUB_INSTANCE,
    REPO_GUID,
    BenchClient,
    HubNode,
    bench_clients,
    bench_dir,
    bench_operation,
    hub_process,
    make_hub_node,
)
from hub.errors import BenchError
from hub.pb import synchub_pb2 as pb
from hub.protocol import ClientHandshake, DiffSelection, HubPin

ATTACKS = ("revoke", "displace", "fairness")
BATCH = 256
SYNC_OPS = 1000
FAIR_WITHIN = 2.0
ANSWER_TIMEOUT = 60.0

Say = Callable[[str], None]


def _quiet(_text: str) -> None:
    pass


@dataclass(frozen=True)
class Params:
    batches: int = 3000
    diff_ids: int = 1_000_000
    depth: int = 8
    syncs: int = 5
    watch: float = 5.0


class WireClient:
    """One connection of an authorized key, speaking the protocol with no flow control."""

    def __init__(
        self, node: HubNode, endpoint: str, client: BenchClient, *, sndhwm: int = 0,
    ) -> None:
        """``sndhwm`` 0 (the default): its send queue is unbounded, it never blocks."""
        self.client = client
        self._context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.socket = self._context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.SNDHWM, sndhwm)
        public, secret = zmq.curve_keypair()
        self.socket.curve_serverkey = node.identity.curve.public
        self.socket.curve_publickey = public
        self.socket.curve_secretkey = secret
        self.socket.connect(endpoint)
        handshake = ClientHandshake(
            client.signing, client.instance_id,
            HubPin(HUB_INSTANCE, node.identity.signing.keyid),
        )
        self.send(handshake.hello_frame())
        challenge = self.wait_for("handshake", time.monotonic() + ANSWER_TIMEOUT)
        self.send(handshake.proof_frame(challenge.handshake))
        self.wait_for("list_resources", time.monotonic() + ANSWER_TIMEOUT)

    def send(self, frame: bytes) -> None:
        self.socket.send(frame)

    def next_item(self, deadline: float) -> pb.SyncStreamItem | None:
        left = deadline - time.monotonic()
        if left <= 0 or not self.socket.poll(int(left * 1000)):
            return None
        return protocol.decode_item(self.socket.recv())

    def wait_for(self, action: str, deadline: float) -> pb.SyncStreamItem:
        """The next item of ``action``; BenchError on an error item or the deadline."""
        while True:
            item = self.next_item(deadline)
            if item is None:
                raise BenchError(f"{self.client.instance_id}: no {action} from the hub in time")
            kind = item.WhichOneof("action")
            if kind == action:
                return item
            if kind == "error":
                raise BenchError(f"{self.client.instance_id}: hub said {item.error.message}")

    def error_by(self, deadline: float) -> pb.SyncStreamItem.Error | None:
        """The first error item before ``deadline``, skipping everything else."""
        while (item := self.next_item(deadline)) is not None:
            if item.HasField("error"):
                return item.error
        return None

    def close(self) -> None:
        self.socket.close(linger=0)
        self._context.term()


@contextmanager
def _connected(node: HubNode, endpoint: str, client: BenchClient) -> Iterator[WireClient]:
    wire = WireClient(node, endpoint, client)
    try:
        yield wire
    finally:
        wire.close()


def _batch(first_id: int, count: int = BATCH, modno: int = 1) -> bytes:
    ops = []
    for op_id in range(first_id, first_id + count):
        op = bench_operation(op_id)
        op.id, op.flow_id, op.modno = op_id, op_id, modno
        ops.append(op)
    return protocol.encode_item(protocol.operations_item(ops, "created_operations"))


def diff_frame(keyid: str, ids: range | list[int], modno: int = 1) -> bytes:
    ids = list(ids)
    return protocol.encode_item(
        protocol.diff_item(DiffSelection(REPO_GUID), keyid, ids, [modno] * len(ids)))


def _stored(node: HubNode, keyid: str) -> dict[int, int]:
    """original id -> modno of ``keyid``'s committed operations, from the oplog file."""
    with sqlite3.connect(f"file:{node.oplog_path}?mode=ro", uri=True, timeout=30) as db:
        return dict(db.execute(
            "SELECT original_id, modno FROM operations WHERE original_instance_keyid = ?",
            (keyid,),
        ).fetchall())


def _wait_applied(node: HubNode, keyid: str, timeout: float = ANSWER_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not _stored(node, keyid):
        if time.monotonic() >= deadline:
            raise BenchError("the hub applied none of the attacker's batches")
        time.sleep(0.02)


def _synchub(node: HubNode, *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from hub.cli import main; main()",
         "--config", str(node.config_path), *args],
        capture_output=True, text=True, timeout=120, check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"synchub {' '.join(args)} failed: {done.stderr.strip()}")


def _settled(node: HubNode, keyid: str, quiet: float = 1.0) -> dict[int, int]:
    """The key's operations once nothing of them changed for ``quiet`` seconds."""
    last, since = _stored(node, keyid), time.monotonic()
    while time.monotonic() - since < quiet:
        time.sleep(0.1)
        now = _stored(node, keyid)
        if now != last:
            last, since = now, time.monotonic()
    return last


def _revoke_latency(node: HubNode, wire: WireClient) -> float:
    _synchub(node, "revoke", wire.client.keyid, "--yes")
    returned = time.monotonic()
    error = wire.error_by(returned + ANSWER_TIMEOUT)
    if error is None or error.state != pb.CONNECTION_STATE_ERROR_AUTH:
        raise BenchError(f"no ERROR_AUTH after the revoke (got {error})")
    return time.monotonic() - returned


def revoke_once(params: Params, say: Say) -> tuple[float, float, float, int]:
    """(idle revoke s, flooded revoke s, ops applied after the command, batches queued)."""
    attacker, idle_client = bench_clients(2)
    with bench_dir() as root:
        node = make_hub_node(root / "hub", [attacker, idle_client])
        with hub_process(node) as (_hub, endpoint):
            with _connected(node, endpoint, idle_client) as idle:
                idle.send(_batch(1))
                idle_seconds = _revoke_latency(node, idle)
            with _connected(node, endpoint, attacker) as wire:
                for index in range(params.batches):
                    wire.send(_batch(1 + index * BATCH))
                _wait_applied(node, attacker.keyid)
                _synchub(node, "revoke", attacker.keyid, "--yes")
                returned = time.monotonic()
                at_return = len(_stored(node, attacker.keyid))
                error = wire.error_by(returned + ANSWER_TIMEOUT)
                seconds = time.monotonic() - returned
                if error is None or error.state != pb.CONNECTION_STATE_ERROR_AUTH:
                    raise BenchError(f"no ERROR_AUTH after the revoke (got {error})")
                after = len(_settled(node, attacker.keyid)) - at_return
    queued = params.batches - at_return // BATCH
    say(f"revoke: ERROR_AUTH {seconds:.3f}s after the command, {after} ops applied after it, "
        f"{queued} batches still queued at the command's return")
    return idle_seconds, seconds, float(after), queued


def displace_once(params: Params, say: Say) -> tuple[float, float]:
    """(operations found overwritten after A2's acknowledgement, for how many seconds)."""
    [client] = bench_clients(1)
    final = 10**12
    with bench_dir() as root:
        node = make_hub_node(root / "hub", [client])
        with hub_process(node) as (_hub, endpoint), _connected(node, endpoint, client) as first:
            for modno in range(1, params.batches + 1):
                first.send(_batch(1, modno=modno))
            _wait_applied(node, client.keyid)
            with _connected(node, endpoint, client) as second:
                second.send(_batch(1, modno=final))
                second.send(diff_frame(client.keyid, range(1, BATCH + 1), final))
                reply = second.wait_for("diff_operations", time.monotonic() + ANSWER_TIMEOUT)
                acked = time.monotonic()
                if reply.diff_operations.request_operations:
                    say("displace: A2's write was overwritten before its acknowledgement")
                worst, last_seen = 0, acked
                while time.monotonic() - acked < params.watch:
                    wrong = sum(m != final for m in _stored(node, client.keyid).values())
                    if wrong:
                        worst, last_seen = max(worst, wrong), time.monotonic()
                    time.sleep(0.05)
    say(f"displace: at most {worst} of A2's operations overwritten, "
        f"for {last_seen - acked:.2f}s after its acknowledgement")
    return float(worst), last_seen - acked


def _victim_sync(node: HubNode, endpoint: str, client: BenchClient, modno: int) -> float:
    started = time.monotonic()
    with _connected(node, endpoint, client) as wire:
        for first_id in range(1, SYNC_OPS + 1, 250):
            wire.send(_batch(first_id, 250, modno=modno))
        wire.send(diff_frame(client.keyid, range(1, SYNC_OPS + 1), modno))
        reply = wire.wait_for("diff_operations", started + ANSWER_TIMEOUT)
        if reply.diff_operations.request_operations:
            raise BenchError("the victim's sync was not complete")
    return time.monotonic() - started


def _flood_diffs(wire: WireClient, params: Params, stop: threading.Event) -> None:
    """Keep ``depth`` huge diffs in flight (a new one for each reply); in its own thread."""
    huge = diff_frame(wire.client.keyid, range(1, params.diff_ids + 1))
    in_flight = 0
    while not stop.is_set():
        while in_flight < params.depth:
            wire.send(huge)
            in_flight += 1
        item = wire.next_item(time.monotonic() + 0.1)
        if item is not None and item.HasField("diff_operations"):
            in_flight -= 1


def fairness_once(params: Params, say: Say) -> tuple[list[float], list[float]]:
    """(the victim's syncs on the idle hub, its syncs during the flood), in seconds."""
    attacker, victim = bench_clients(2)
    with bench_dir() as root:
        node = make_hub_node(root / "hub", [attacker, victim])
        with hub_process(node) as (_hub, endpoint):
            idle = [_victim_sync(node, endpoint, victim, m) for m in range(1, params.syncs + 1)]
            with _connected(node, endpoint, attacker) as wire:
                stop = threading.Event()
                flooder = threading.Thread(target=_flood_diffs, args=(wire, params, stop),
                                           name="bench-diff-flood")
                flooder.start()
                try:
                    time.sleep(2.0)  # let the flood fill the hub first
                    loaded = [_victim_sync(node, endpoint, victim, 100 + m)
                              for m in range(params.syncs)]
                finally:
                    stop.set()
                    flooder.join(timeout=ANSWER_TIMEOUT)
    say(f"fairness: syncs {', '.join(f'{s:.2f}' for s in loaded)} s under the flood, "
        f"{', '.join(f'{s:.2f}' for s in idle)} s idle")
    return idle, loaded


def run(
    attack: str, params: Params, repeat: int = 1, *, say: Say = _quiet,
    scenario: str = "hostile-writes",
) -> Result:
    """One attack's figures; ``scenario`` names the command that ran it (``hostile``, or
    ``hostile-writes``, its older spelling, which scripts read)."""
    if attack not in ATTACKS:
        raise BenchError(f"unknown attack {attack!r}: expected one of {', '.join(ATTACKS)}")
    shown: dict[str, object] = {"attack": attack, "repeat": repeat}
    if attack == "revoke":
        result = _revoke_result(params, repeat, say, shown)
    elif attack == "displace":
        result = _displace_result(params, repeat, say, shown)
    else:
        result = _fairness_result(params, repeat, say, shown)
    return dataclasses.replace(result, scenario=scenario)


def _revoke_result(params: Params, repeat: int, say: Say, shown: dict[str, object]) -> Result:
    runs = [revoke_once(params, say) for _ in range(repeat)]
    figures = (
        figure("revoke.error_auth_seconds", [r[1] for r in runs], "s",
               [r[0] for r in runs], baseline_label="an idle client's revoke"),
        figure("revoke.ops_applied_after_return", [r[2] for r in runs], "ops"),
        figure("revoke.batches_queued", [r[3] for r in runs], "batches"),
    )
    goals = (
        Goal("ERROR_AUTH within 1 s of synchub revoke returning",
             all(r[1] < 1.0 for r in runs)),
        Goal("no operation of the revoked key applied after it returned",
             all(r[2] == 0 for r in runs)),
    )
    return Result("hostile-writes", figures, goals, {**shown, "batches": params.batches})


def _displace_result(params: Params, repeat: int, say: Say, shown: dict[str, object]) -> Result:
    runs = [displace_once(params, say) for _ in range(repeat)]
    figures = (
        figure("displace.ops_overwritten", [r[0] for r in runs], "ops"),
        figure("displace.overwritten_seconds", [r[1] for r in runs], "s"),
    )
    goals = (Goal("nothing of the older session applied once the newer one is in",
                  all(r[0] == 0 for r in runs)),)
    return Result("hostile-writes", figures, goals,
                  {**shown, "batches": params.batches, "watch": params.watch})


def _fairness_result(params: Params, repeat: int, say: Say, shown: dict[str, object]) -> Result:
    idle: list[float] = []
    loaded: list[float] = []
    for _ in range(repeat):
        one_idle, one_loaded = fairness_once(params, say)
        idle += one_idle
        loaded += one_loaded
    figures = (
        figure("fairness.sync_seconds", loaded, "s", idle,
               baseline_label="the same sync on the idle hub"),
        goal_figure("fairness.worst_sync_seconds", [max(loaded)], "s", FAIR_WITHIN),
    )
    goals = (Goal(f"another client's {SYNC_OPS:,}-operation sync within {FAIR_WITHIN:g} s",
                  max(loaded) < FAIR_WITHIN),)
    return Result("hostile-writes", figures, goals,
                  {**shown, "diff_ids": params.diff_ids, "depth": params.depth,
                   "syncs": params.syncs})
