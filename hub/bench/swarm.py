"""Many bench clients in one thread: each a DEALER speaking the wire protocol.

A client agent is one thread per hub and a few sockets; a thousand of them would
measure this machine's thread scheduler, not the hub. A swarm drives ``count``
DEALERs from one poller instead, each through the real handshake (CURVE, HELLO,
the hub's signed CHALLENGE checked against the pinned keyid, PROOF) and then one
of these jobs. It uses the protocol package's pieces (``ClientHandshake``, the
item builders, ``decode_hub_item``) rather than a ``ClientSession`` per client,
since its jobs are simpler than an agent's and one poller serves them all:

``handshake``  done once the hub's send_config arrives (the session is CONNECTED),
               and no longer polled (only those in progress are: a lean client, so
               the bench measures the hub);
``sync``       diff ``ops`` operations, send what the hub requests in one batch,
               diff again; done when that second diff comes back empty;
``idle``       done once CONNECTED, then heartbeat until told to stop;
``latency``    done once CONNECTED, then send one operation every ``interval``
               seconds (``latency_ops`` of them), its send time in its message.

At most ``window`` clients of a swarm are between connecting and CONNECTED at
once, so many swarms together stay under the hub's bound on pending handshakes.
Times are ``time.monotonic_ns()``, one clock for every process on the machine.
"""

from __future__ import annotations

import heapq
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import zmq

from hub.bench.rig import PLAN_ID, REPO_GUID, BenchClient, bench_client
from hub.errors import ProtocolError, SynchubError
from hub.pb import synchub_pb2 as pb
from hub.protocol import (
    ClientHandshake,
    DiffSelection,
    HubPin,
    action_of,
    decode_hub_item,
    diff_item,
    encode_item,
    heartbeat_frame,
    operations_item,
)

MODES = ("handshake", "sync", "idle", "latency")
LATENCY_PREFIX = "bench-sent-ns="


@dataclass(frozen=True)
class SwarmSpec:
    """What one swarm does; travels to a worker process as JSON."""

    mode: str
    endpoint: str
    hub_keyid: str
    hub_instance: str
    hub_curve_public: str | None
    first_client: int
    count: int
    window: int = 100
    ops: int = 100
    heartbeat_interval: float = 15.0
    interval: float = 1.0
    latency_ops: int = 10

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SwarmSpec:
        return cls(**data)


@dataclass
class _Client:
    index: int
    identity: BenchClient
    socket: zmq.Socket[Any]
    handshake: ClientHandshake
    state: str = "new"
    started_ns: int = 0
    done_ns: int = 0
    next_heartbeat: float = 0.0
    sent_ops: int = 0
    error: str = ""


@dataclass
class SwarmReport:
    """Per-swarm results: completion times and what went wrong."""

    started_ns: list[int] = field(default_factory=list)
    done_ns: list[int] = field(default_factory=list)
    failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    connected_at_stop: int = 0
    hub_heartbeats: int = 0
    sent_ops: int = 0
    bytes_sent: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Swarm:
    """Run with ``start()`` then ``turn()`` until ``settled``, then ``close()``; one thread."""

    def __init__(self, spec: SwarmSpec) -> None:
        if spec.mode not in MODES:
            raise SynchubError(f"unknown swarm mode {spec.mode!r}")
        self.spec = spec
        self.context: zmq.Context[Any] = zmq.Context()
        self.context.set(zmq.MAX_SOCKETS, max(1024, 2 * spec.count + 64))
        self.poller = zmq.Poller()
        self.clients: list[_Client] = []
        self._by_socket: dict[zmq.Socket[Any], _Client] = {}
        self._waiting = list(range(spec.count))
        self._waiting.reverse()
        self._in_handshake = 0
        self._unsettled = spec.count
        self._sends: list[tuple[float, int]] = []
        self._next_heartbeat_scan = 0.0
        self._errors: Counter[str] = Counter()
        self.report = SwarmReport()
        curve = spec.hub_curve_public.encode() if spec.hub_curve_public else None
        pin = HubPin(spec.hub_instance, spec.hub_keyid)
        try:
            for index in range(spec.count):
                sock = self.context.socket(zmq.DEALER)
                sock.setsockopt(zmq.LINGER, 0)
                sock.setsockopt(zmq.RECONNECT_IVL, 1000)
                if curve is not None:
                    public, secret = zmq.curve_keypair()
                    sock.curve_serverkey = curve
                    sock.curve_publickey = public
                    sock.curve_secretkey = secret
                identity = bench_client(spec.first_client + index)
                handshake = ClientHandshake(identity.signing, identity.instance_id, pin)
                client = _Client(index, identity, sock, handshake)
                self.clients.append(client)
                self._by_socket[sock] = client
        except BaseException:
            self.close()
            raise

    # -- driving -----------------------------------------------------------------------

    @property
    def settled(self) -> bool:
        """Every client reached its goal (or failed)."""
        return self._unsettled == 0 and not self._sends

    def start(self) -> None:
        self._admit()

    def turn(self, timeout_ms: int) -> list[Any]:
        """Wait up to ``timeout_ms`` for frames, handle them, send what is due.

        Returns the other ready items of the poller (file descriptors registered
        by the caller).
        """
        others: list[Any] = []
        for item, _ in self.poller.poll(timeout_ms):
            client = self._by_socket.get(item) if isinstance(item, zmq.Socket) else None
            if client is not None:
                self._drain(client)
            else:
                others.append(item)
        now = time.monotonic()
        self._heartbeats(now)
        self._send_due_operations(now)
        return others

    def close(self) -> SwarmReport:
        connected = 0
        for client in self.clients:
            if client.state in ("done", "connected") and not client.error:
                connected += 1
            client.socket.close(linger=0)
        self.report.connected_at_stop = connected
        self.report.errors = dict(self._errors)
        self.context.term()
        return self.report

    # -- one client's life -------------------------------------------------------------

    def _admit(self) -> None:
        while self._waiting and self._in_handshake < self.spec.window:
            client = self.clients[self._waiting.pop()]
            self._in_handshake += 1
            client.started_ns = time.monotonic_ns()
            self.report.started_ns.append(client.started_ns)
            client.socket.connect(self.spec.endpoint)
            self.poller.register(client.socket, zmq.POLLIN)
            self._send_frame(client, client.handshake.hello_frame())
            client.state = "challenge"

    def _drain(self, client: _Client) -> None:
        while True:
            try:
                frames = client.socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if len(frames) != 1:
                self._fail(client, "multi-frame message from the hub")
                return
            try:
                item = decode_hub_item(frames[0])
            except ProtocolError:
                self._fail(client, "a frame from the hub that is not a SyncStreamItem")
                return
            if item is not None:
                self._on_item(client, item)

    def _on_item(self, client: _Client, item: pb.SyncStreamItem) -> None:
        action = action_of(item)
        handler = _ANY_STATE.get(action) or _IN_STATE.get((client.state, action))
        if handler is not None:
            handler(self, client, item)

    def _on_heartbeat(self, client: _Client, item: pb.SyncStreamItem) -> None:
        self.report.hub_heartbeats += 1

    def _on_error(self, client: _Client, item: pb.SyncStreamItem) -> None:
        state = pb.ConnectionState.Name(item.error.state)
        self._fail(client, f"{state}: {item.error.message[:80]}")

    def _on_challenge(self, client: _Client, item: pb.SyncStreamItem) -> None:
        try:
            proof = client.handshake.proof_frame(item.handshake)
        except SynchubError as exc:
            self._fail(client, f"bad challenge: {exc}")
            return
        self._send_frame(client, proof)
        client.state = "config"

    def _on_confirm_reply(self, client: _Client, item: pb.SyncStreamItem) -> None:
        if item.diff_operations.request_operations:
            self._fail(client, "the confirming diff still requested operations")
        else:
            self._finish(client)

    def _on_connected(self, client: _Client, item: pb.SyncStreamItem) -> None:
        self._in_handshake -= 1
        self._admit()
        client.next_heartbeat = time.monotonic() + self.spec.heartbeat_interval
        mode = self.spec.mode
        if mode == "sync":
            self._send(client, self._diff(client))
            client.state = "diff"
            return
        if mode == "latency":
            # Spread the first sends over one interval so the peers do not march in step.
            offset = self.spec.interval * (client.index + 0.5) / max(1, self.spec.count)
            heapq.heappush(self._sends, (time.monotonic() + offset, client.index))
        self._finish(client)

    def _on_first_reply(self, client: _Client, item: pb.SyncStreamItem) -> None:
        wanted = set(item.diff_operations.request_operations)
        ops = [self._operation(client, i) for i in range(1, self.spec.ops + 1) if i in wanted]
        if ops:
            self._send(client, operations_item(ops, "created_operations"))
            client.sent_ops += len(ops)
            self.report.sent_ops += len(ops)
        self._send(client, self._diff(client))
        client.state = "confirm"

    def _finish(self, client: _Client) -> None:
        self._settle(client)
        client.state = "done"
        client.done_ns = time.monotonic_ns()
        self.report.done_ns.append(client.done_ns)
        if self.spec.mode == "handshake":
            # Done for good: polling its socket again would only make every later
            # turn of the swarm slower (the hub's heartbeats wait in its queue).
            self.poller.unregister(client.socket)

    def _settle(self, client: _Client) -> None:
        if client.state not in ("done", "failed"):
            self._unsettled -= 1

    def _fail(self, client: _Client, message: str) -> None:
        if client.state in ("challenge", "config"):
            self._in_handshake -= 1
            self._admit()
        if client.state != "failed":
            self.report.failed += 1
            self._errors[message] += 1
        self._settle(client)
        client.state = "failed"
        client.error = message

    # -- what the clients send ---------------------------------------------------------

    def _diff(self, client: _Client) -> pb.SyncStreamItem:
        ids = list(range(1, self.spec.ops + 1))
        return diff_item(DiffSelection(REPO_GUID), client.identity.keyid, ids, [1] * len(ids))

    def _operation(self, client: _Client, op_id: int, message: str = "") -> pb.Operation:
        return pb.Operation(
            id=op_id,
            flow_id=op_id,
            modno=1,
            instance_id=client.identity.instance_id,
            repo_guid=REPO_GUID,
            plan_id=PLAN_ID,
            status=pb.STATUS_SUCCESS,
            unix_time_start_ms=1_700_000_000_000 + op_id * 1000,
            display_message=message or f"bench job {op_id} on {client.identity.instance_id}",
        )

    def _heartbeats(self, now: float) -> None:
        if now < self._next_heartbeat_scan:
            return
        self._next_heartbeat_scan = now + min(0.1, self.spec.heartbeat_interval / 10)
        frame = heartbeat_frame()
        for client in self.clients:
            if client.state in ("new", "failed", "challenge", "config"):
                continue
            if now >= client.next_heartbeat:
                client.next_heartbeat = now + self.spec.heartbeat_interval
                self._send_frame(client, frame)

    def _send_due_operations(self, now: float) -> None:
        while self._sends and self._sends[0][0] <= now:
            _, index = heapq.heappop(self._sends)
            client = self.clients[index]
            if client.state == "failed":
                continue
            client.sent_ops += 1
            self.report.sent_ops += 1
            op = self._operation(
                client, client.sent_ops, f"{LATENCY_PREFIX}{time.monotonic_ns()}"
            )
            self._send(client, operations_item([op], "created_operations"))
            if client.sent_ops < self.spec.latency_ops:
                heapq.heappush(self._sends, (now + self.spec.interval, index))

    def _send(self, client: _Client, item: pb.SyncStreamItem) -> None:
        self._send_frame(client, encode_item(item))

    def _send_frame(self, client: _Client, frame: bytes) -> None:
        try:
            client.socket.send(frame, zmq.NOBLOCK)
        except zmq.Again:
            self._fail(client, "send queue full")
            return
        self.report.bytes_sent += len(frame)


_Handler = Callable[[Swarm, _Client, pb.SyncStreamItem], None]

_ANY_STATE: Mapping[str, _Handler] = {
    "heartbeat": Swarm._on_heartbeat,
    "error": Swarm._on_error,
}
"""Items handled the same in every state of a client."""

_IN_STATE: Mapping[tuple[str, str], _Handler] = {
    ("challenge", "handshake"): Swarm._on_challenge,
    ("config", "send_config"): Swarm._on_connected,
    ("diff", "diff_operations"): Swarm._on_first_reply,
    ("confirm", "diff_operations"): Swarm._on_confirm_reply,
}
"""Items a client in a given state acts on; anything else is ignored."""


def sent_ns(op: pb.Operation) -> int | None:
    """The send time a latency-mode operation carries, or None."""
    message = op.display_message
    if not message.startswith(LATENCY_PREFIX):
        return None
    try:
        return int(message[len(LATENCY_PREFIX):])
    except ValueError:
        return None
