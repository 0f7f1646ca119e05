"""The front: the one thread that owns the hub's ROUTER socket.

Who owns what: this thread owns the ROUTER, the sessions' pipe (an inproc PULL socket)
and, with CURVE on, the context's ZAP socket; nothing else touches them (ZeroMQ
sockets are not thread-safe). What it knows about its sessions lives in its
``SessionTable``, which decides; the front does the socket I/O and the telling.

Frames arrive on the ROUTER and are told, as ``InboundFrame`` messages, to the
SessionActor of their routing id. Sessions answer through their own ``PipeOutbox``
(created in the session's thread) into the pipe this thread polls.

Connections are pinned: the ZAP policy (``_zap``) names each CURVE connection by its
client key, so libzmq stamps every inbound frame with it (the ``User-Id`` property).
A session only ever sees frames of the connection that started it. libzmq lets a peer
choose its routing id, and reuse one whose connection has gone; such a frame is never
taken for the old session's (docs/protocol.md §2.2 (Encryption: CurveZMQ)).

Hostile peers are bounded here (the table's limits): at most ``max_pending_handshakes``
sessions before authentication (the excess get one ``RETRY_WAIT`` error, sent without
blocking), at most ``pending_backlog_high`` frames queued for a peer that has not
completed its handshake, and the ROUTER is not read while all sessions together have
``total_backlog_high`` frames or ``total_backlog_bytes`` bytes waiting, so TCP pushes
back instead of memory growing (§7.2 (Throttle), §7.4 (Limits on handshakes in progress)).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence

import pykka
import zmq

from actors import (
    Displace,
    ExpireHandshake,
    FrontMessage,
    InboundFrame,
    Outbox,
    PeerVanished,
    ProtocolViolation,
    SessionActor,
    Tick,
)
from hub import protocol
from hub.errors import FrontError, SynchubError
from hub.identity import CurveKeyPair
from hub.pb import synchub_pb2 as pb
from hub.server._admission import AdmittedKeys
from hub.server._budget import Outbound, OutboundBudget
from hub.server._connections import SilentConnections
from hub.server._pipe import AUTH, CLOSED, DONE, SEND, PipeOutbox, parse_pipe_message
from hub.server._settings import FrontSettings
from hub.server._table import SessionEntry, SessionTable
from hub.server._zap import ZAP_DOMAIN, ZAP_ENDPOINT, zap_reply
from hub.status import FrontCounters
from hub.threads import ThreadService

log = logging.getLogger(__name__)

Context = zmq.Context[zmq.Socket[bytes]]
Socket = zmq.Socket[bytes]
SessionRef = pykka.ActorRef[SessionActor]
Entry = SessionEntry[SessionRef]

# A CURVE MESSAGE command: its name (1 + 7 bytes), an 8-byte nonce, then the
# box of one flags byte, the payload and a 16-byte MAC.
CURVE_MESSAGE_OVERHEAD = 8 + 8 + 1 + 16
STOP_RELAY_SECONDS = 5.0

SessionFactory = Callable[[bytes, float, Callable[[], Outbox], str], SessionRef]
"""(routing id, now, outbox factory, the peer's address) -> a started SessionActor's ActorRef."""


class Front(ThreadService):
    """Owns the ROUTER; create it, ``start()`` it, and ``stop()`` it in a finally.

    ``counters()`` may be read from any thread; it gives a recent value.
    """

    def __init__(
        self,
        *,
        context: Context,
        settings: FrontSettings,
        session_factory: SessionFactory,
        curve: CurveKeyPair | None,
        clock: Callable[[], float] = time.monotonic,
        refusal: Callable[[], str | None] = lambda: None,
        admitted_keys: frozenset[str] = frozenset(),
    ) -> None:
        """``refusal``: why no new session can be served now (its database cannot be
        reached), or None; new peers then get RETRY_WAIT with the reason."""
        super().__init__(
            thread_name="synchub-front",
            what="the front",
            failure_note="peers will reconnect after a restart",
        )
        self._context = context
        self._settings = settings
        self._session_factory = session_factory
        self._curve = curve
        self._clock = clock
        self._refusal = refusal
        self._pipe_endpoint = f"inproc://synchub-front-{uuid.uuid4().hex}"
        self._table: SessionTable[SessionRef] = SessionTable(settings)
        self._admitted = AdmittedKeys(admitted_keys)
        self._unread = OutboundBudget(settings)
        self._router: Socket | None = None
        self._pipe: Socket | None = None
        self._zap: Socket | None = None
        self._monitor: Socket | None = None
        self._silent = SilentConnections(
            timeout=settings.silent_connection_timeout or float("inf"),
            per_source=settings.max_pending_per_source,
        )
        self._from_sessions: Mapping[bytes, Callable[[Entry, list[bytes]], None]] = {
            SEND: self._relay,
            DONE: lambda entry, _payload: self._table.frame_done(entry),
            AUTH: lambda entry, payload: self._on_authenticated(entry, payload[0].decode()),
            CLOSED: lambda entry, _payload: self._table.forget(entry),
        }
        self.endpoint: str | None = None

    def counters(self) -> FrontCounters:
        return self._table.counters()

    def admitted_keys_changed(self, keys: frozenset[str]) -> None:
        """From any thread: the key ids the hub now admits (listed and verified)."""
        self._admitted.publish(keys)

    # -- the thread ----------------------------------------------------------------------

    def _startup_timeout(self, timeout: float) -> SynchubError:
        return FrontError(f"the front did not bind {self._settings.bind} within {timeout}s")

    def _startup_failed(self, error: Exception) -> SynchubError:
        return FrontError(
            f"cannot listen on {self._settings.bind}: {error}; "
            "check [hub].bind and that no other hub uses the port"
        )

    def _open(self) -> str:
        self._pipe = self._context.socket(zmq.PULL)
        self._pipe.setsockopt(zmq.LINGER, 0)
        self._pipe.bind(self._pipe_endpoint)
        if self._curve is not None:
            self._zap = self._context.socket(zmq.REP)
            self._zap.setsockopt(zmq.LINGER, 0)
            self._zap.bind(ZAP_ENDPOINT)
        self._router = open_router(self._context, self._settings, self._curve)
        if self._settings.silent_connection_timeout is not None:
            self._monitor = self._router.get_monitor_socket(
                zmq.EVENT_ACCEPTED | zmq.EVENT_DISCONNECTED
            )
        endpoint = self._router.getsockopt(zmq.LAST_ENDPOINT)
        self.endpoint = endpoint.decode() if isinstance(endpoint, bytes) else str(endpoint)
        return self.endpoint

    def _close(self) -> None:
        try:
            if self._pipe is not None and self._router is not None:
                self._stop_sessions(self._pipe, self._router)
        finally:
            if self._monitor is not None and self._router is not None:
                with contextlib.suppress(zmq.ZMQError):
                    self._router.disable_monitor()
            for sock in (self._monitor, self._router, self._pipe, self._zap):
                if sock is not None:
                    sock.close(linger=0)

    def _serve(self) -> None:
        router, pipe, zap = self._router, self._pipe, self._zap
        assert router is not None and pipe is not None
        poller = zmq.Poller()
        poller.register(pipe, zmq.POLLIN)
        if zap is not None:
            poller.register(zap, zmq.POLLIN)
        monitor = self._monitor
        if monitor is not None:
            poller.register(monitor, zmq.POLLIN)
        reading_router = False
        next_tick = self._clock() + self._settings.tick_interval
        while not self.stopping.is_set():
            want_router = not self._table.over_backlog()
            if want_router != reading_router:
                if want_router:
                    poller.register(router, zmq.POLLIN)
                else:
                    poller.unregister(router)
                reading_router = want_router
            wait_ms = max(0, min(100, int((next_tick - self._clock()) * 1000)))
            events = dict(poller.poll(wait_ms))
            if zap is not None and zap in events:
                _answer_zap(zap)
            if monitor is not None and monitor in events:
                self._silent.take_events(monitor, self._clock())
            if pipe in events:
                self._drain_pipe(pipe, router)
            if router in events:
                self._drain_router(router)
            now = self._clock()
            if now >= next_tick:
                next_tick = now + self._settings.tick_interval
                self._tick(now)

    def _tick(self, now: float) -> None:
        self._silent.sweep(now)
        self._unread.sweep(now)
        due, overdue = self._table.sweep(now)
        for entry in due:
            self._tell(entry, Tick(now), now)
        for entry in overdue:
            if not entry.handle.is_alive():
                log.warning("session %d stopped without closing; forgetting it", entry.serial)
                self._table.forget(entry)

    def _drain_router(self, router: Socket, budget: int = 256) -> None:
        for _ in range(budget):
            if self._table.over_backlog():
                return
            try:
                frames = router.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            self._on_inbound(router, frames[0].bytes, frames[1:])

    def _drain_pipe(self, pipe: Socket, router: Socket, budget: int = 1024) -> None:
        for _ in range(budget):
            try:
                message = pipe.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            serial, kind, payload = parse_pipe_message(message)
            entry = self._table.get(serial)
            handler = self._from_sessions.get(kind)
            if entry is not None and handler is not None:
                handler(entry, payload)

    # -- inbound frames --------------------------------------------------------------------

    def _on_inbound(self, router: Socket, rid: bytes, body: list[zmq.Frame]) -> None:
        now = self._clock()
        table = self._table
        connection = _connection_of(body[0]) if self._curve is not None else None
        stale = table.pinned_elsewhere(rid, connection)
        if stale is not None:
            # The connection that started this session is gone and another one
            # took its routing id: the old session ends without seeing this frame.
            log.warning("routing id %s was reused by another connection", rid.hex())
            if table.detach(stale, now):
                self._tell(stale, PeerVanished(), now)
        entry = table.current(rid) or self._open_session(router, rid, connection, body[0], now)
        if entry is None:
            return
        verdict = table.check_inbound(entry, len(body), now)
        if verdict.violation is not None:
            self._tell(entry, ProtocolViolation(verdict.violation), now)
        if not verdict.deliver:
            return
        frame = body[0].bytes
        if not self._tell(entry, InboundFrame(frame, now, _Skip(entry, self.stopping)), now):
            table.undelivered(entry, now)
            return
        delay = table.delivered(entry, len(frame), now)
        if delay is not None:
            self._send(router, rid, [protocol.throttle_frame(delay)])

    def _open_session(
        self, router: Socket, rid: bytes, connection: bytes | None, first: zmq.Frame,
        now: float,
    ) -> Entry | None:
        refusal = self._refusal()
        if refusal is not None:
            self._send(router, rid, [protocol.error_frame(
                pb.CONNECTION_STATE_RETRY_WAIT, f"{refusal}; retry later",
            )])
            return None
        with contextlib.suppress(zmq.ZMQError):
            self._silent.spoke(int(first.get(zmq.SRCFD)))
        source = _peer_address(first)
        claimed = self._admitted.claimed_by(first.bytes)
        admission = self._table.admit_new(source, claimed, now)
        if not admission.admit:
            if admission.refusal:
                self._send(router, rid, [protocol.error_frame(
                    pb.CONNECTION_STATE_RETRY_WAIT, admission.refusal,
                )])
            return None
        if admission.supersede is not None:
            older = admission.supersede
            self._table.gone(older, now)
            self._tell(older, ExpireHandshake(), now)
        serial = self._table.reserve_serial()
        try:
            ref = self._session_factory(rid, now, self._outbox_factory(serial), source)
        except Exception:
            log.exception("could not start a session for %s", rid.hex())
            self._send(router, rid, [protocol.error_frame(
                pb.CONNECTION_STATE_RETRY_WAIT, "the hub cannot take a connection now; retry later",
            )])
            return None
        return self._table.open(
            serial, rid, connection, ref, now, source=source, claimed_key=claimed
        )

    def _outbox_factory(self, serial: int) -> Callable[[], Outbox]:
        endpoint = self._pipe_endpoint
        context = self._context
        return lambda: PipeOutbox(context, endpoint, serial)

    def _tell(self, entry: Entry, message: FrontMessage, now: float) -> bool:
        """Queue a message for a session; False (and closing) if it has already stopped."""
        try:
            entry.handle.tell(message)
        except pykka.ActorDeadError:
            self._table.gone(entry, now)
            return False
        return True

    # -- what sessions send through the pipe ---------------------------------------------

    def _relay(self, entry: Entry, frames: list[bytes]) -> None:
        router = self._router
        assert router is not None
        now = self._clock()
        if not self._table.outgoing(entry, now):
            return  # detached: its connection is gone
        if entry.keyid is not None and not entry.closing:
            verdict = self._unread.sent(entry.keyid, sum(map(len, frames)), now)
            if verdict is Outbound.OVER:
                self._table.gone(entry, now, cut=True)
                self._tell(entry, ProtocolViolation(self._unread.over_message), now)
                return
            if verdict is Outbound.THROTTLE:
                frames = [protocol.throttle_frame(self._settings.throttle_delay_ms), *frames]
        if not self._send(router, entry.rid, frames) and self._table.send_failed(entry):
            self._tell(entry, PeerVanished(), now)

    def _on_authenticated(self, entry: Entry, keyid: str) -> None:
        older = self._table.authenticated(entry, keyid)
        if older is not None:
            self._tell(older, Displace(), self._clock())

    def _send(self, router: Socket, rid: bytes, frames: Sequence[bytes]) -> bool:
        try:
            for frame in frames:
                router.send_multipart([rid, frame], zmq.NOBLOCK)
        except zmq.ZMQError as exc:
            # EHOSTUNREACH: the peer is gone (ROUTER_MANDATORY); EAGAIN: it stopped
            # reading and its queue is full. Either way this session is over.
            log.debug("send to %s failed: %s", rid.hex(), exc)
            return False
        return True

    def _stop_sessions(self, pipe: Socket, router: Socket) -> None:
        now = self._clock()
        for entry in self._table.close_all(now):
            with contextlib.suppress(pykka.ActorDeadError):
                entry.handle.stop(block=False)
        # Keep relaying while sessions say goodbye, so their last frames go out;
        # a session forgets itself with its close notice, after its goodbye.
        deadline = now + STOP_RELAY_SECONDS
        stopped_at: dict[int, float] = {}
        while len(self._table) and self._clock() < deadline:
            if pipe.poll(50):
                self._drain_pipe(pipe, router)
            moment = self._clock()
            for entry in self._table.entries():
                if entry.handle.is_alive():
                    continue
                if moment - stopped_at.setdefault(entry.serial, moment) >= 0.5:
                    self._table.forget(entry)


class _Skip:
    """An inbound frame's cancellation: set once the hub stops or the front cut the
    session (``SessionEntry.cut``), so a session ended for going past a bound drops
    what it had queued quickly, freeing its memory and its backlog credit, instead of
    applying all of it before it reads its ending."""

    __slots__ = ("_entry", "_stopping")

    def __init__(self, entry: Entry, stopping: threading.Event) -> None:
        self._entry = entry
        self._stopping = stopping

    def is_set(self) -> bool:
        return self._entry.cut or self._stopping.is_set()


def open_router(
    context: Context, settings: FrontSettings, curve: CurveKeyPair | None
) -> Socket:
    """The hub's ROUTER with its options (docs/protocol.md §2.3 (Socket options and the
    frame size limit)), bound to ``settings.bind``."""
    router = context.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    router.setsockopt(zmq.ROUTER_MANDATORY, 1)
    # libzmq applies MAXMSGSIZE to the frame as it travels; under CURVE that is
    # the MESSAGE command wrapping the item, a fixed overhead longer.
    overhead = CURVE_MESSAGE_OVERHEAD if curve is not None else 0
    router.setsockopt(zmq.MAXMSGSIZE, settings.max_frame_bytes + overhead)
    router.setsockopt(zmq.SNDHWM, settings.hwm)
    router.setsockopt(zmq.RCVHWM, settings.recv_hwm)
    # Room in the kernel's accept queue for a burst of connections, and a bound on
    # the time a connection may take over its ZMTP/CURVE greeting.
    router.setsockopt(zmq.BACKLOG, settings.listen_backlog)
    if settings.silent_connection_timeout is not None:
        router.setsockopt(zmq.HANDSHAKE_IVL, int(settings.silent_connection_timeout * 1000))
    if curve is not None:
        router.setsockopt(zmq.CURVE_SERVER, 1)
        router.setsockopt(zmq.CURVE_SECRETKEY, curve.secret)
        router.setsockopt_string(zmq.ZAP_DOMAIN, ZAP_DOMAIN)
    else:
        log.warning("CURVE is off: traffic to %s is NOT encrypted", settings.bind)
    try:
        router.bind(settings.bind)
    except zmq.ZMQError:
        router.close(linger=0)
        raise
    return router


def _answer_zap(zap: Socket, budget: int = 256) -> None:
    for _ in range(budget):
        try:
            request = zap.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            return
        zap.send_multipart(zap_reply(request))


def _connection_of(frame: zmq.Frame) -> bytes | None:
    """The CURVE public key the frame's connection authenticated with."""
    try:
        user_id = frame.get("User-Id")
    except zmq.ZMQError:
        return None
    return user_id.encode() if isinstance(user_id, str) else bytes(user_id)


def _peer_address(frame: zmq.Frame) -> str:
    """The address the frame's connection comes from (libzmq's Peer-Address), or ""."""
    try:
        address = frame.get("Peer-Address")
    except zmq.ZMQError:
        return ""
    return address if isinstance(address, str) else str(address)
