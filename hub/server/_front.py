"""The front: the one thread that owns the hub's ROUTER socket.

Frames arrive on the ROUTER and are handed, by routing id, to that peer's
SessionActor. Sessions answer through their own PUSH socket (created in the
session's thread) into one inproc PULL socket that this thread polls; only this
thread ever touches the ROUTER (ZeroMQ sockets are not thread-safe).

Every session gets a serial number when it starts. Pipe messages from a session
are multipart: ``[serial, kind, *payload]`` with kind ``S`` (send the payload
frames), ``D`` (one inbound frame handled), ``A`` (authenticated as keyid
``payload[0]``) or ``C`` (session closed). Serials, not routing ids, name the
session, so nothing a finished session still had queued can reach a later
session or connection that has the same routing id.

Connections are pinned: with CURVE on, this thread also answers the context's
ZAP requests, so libzmq stamps every inbound frame with the sender's CURVE
public key (the ``User-Id`` property). A session only ever sees frames of the
connection that started it. libzmq lets a peer choose its routing id, and
reuse one whose connection has gone; such a frame is never taken for the old
session's.

Hostile peers are bounded here: at most ``max_pending_handshakes`` sessions
before authentication (the excess get one ``RETRY_WAIT`` error, sent without
blocking), at most ``pending_backlog_high`` frames queued for a peer that has
not completed its handshake, and the ROUTER is not read while all sessions
together have ``total_backlog_high`` frames or ``total_backlog_bytes`` bytes
waiting, so TCP pushes back instead of memory growing.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pykka
import zmq
from zmq.utils import z85

from actors import Outbox, tell_call
from hub import protocol
from hub.errors import FrontError
from hub.identity import CurveKeyPair
from hub.pb import synchub_pb2 as pb

log = logging.getLogger(__name__)

_SEND, _DONE, _AUTH, _CLOSED = b"S", b"D", b"A", b"C"
_SERIAL_BYTES = 8

ZAP_ENDPOINT = "inproc://zeromq.zap.01"
ZAP_DOMAIN = "synchub"
_ZAP_VERSION = b"1.0"
# A CURVE MESSAGE command: its name (1 + 7 bytes), an 8-byte nonce, then the
# box of one flags byte, the payload and a 16-byte MAC.
CURVE_MESSAGE_OVERHEAD = 8 + 8 + 1 + 16


@dataclass(frozen=True)
class FrontSettings:
    bind: str
    max_frame_bytes: int = 16 * 1024 * 1024
    max_pending_handshakes: int = 1000
    tick_interval: float = 1.0
    # A session this many frames behind gets a throttle; the whole front stops
    # reading the ROUTER while all sessions together are this far behind, so
    # TCP pushes back on clients instead of mailboxes growing without bound.
    session_backlog_high: int = 64
    total_backlog_high: int = 4096
    total_backlog_bytes: int = 256 * 1024 * 1024
    # HELLO and PROOF are all a peer may send before the hub's send_config;
    # a peer this many frames ahead before authenticating is refused.
    pending_backlog_high: int = 16
    throttle_delay_ms: int = 500
    hwm: int = 1000
    # How long a session that stopped without saying so (its close notice was
    # lost) is kept before the front forgets it.
    closed_grace: float = 2.0
    # The sessions' heartbeat interval. When set, an authenticated session is
    # ticked only once its heartbeat or its silence limit (3 intervals) is due by
    # the traffic the front relayed, instead of every tick_interval: thousands of
    # idle sessions need not all wake every second.
    heartbeat_interval: float | None = None


SessionFactory = Callable[[bytes, float, Callable[[], Outbox]], Any]
"""(routing_id, now, outbox_factory) -> a started SessionActor's ActorRef."""


@dataclass
class _Peer:
    rid: bytes
    serial: int
    ref: Any
    connection: bytes | None
    keyid: str | None = None
    in_flight: int = 0
    sizes: deque[int] = field(default_factory=deque)
    throttled_until: float = 0.0
    closing_since: float | None = None
    last_in: float = 0.0
    last_out: float = 0.0

    @property
    def closing(self) -> bool:
        return self.closing_since is not None


class PipeOutbox:
    """A session's way out: a PUSH socket into the front, used by one thread only."""

    def __init__(self, context: zmq.Context[Any], endpoint: str, serial: int) -> None:
        self._serial = serial.to_bytes(_SERIAL_BYTES, "big")
        self._socket = context.socket(zmq.PUSH)
        # Long enough to hand the last frames (the error item) to the front.
        self._socket.setsockopt(zmq.LINGER, 2000)
        self._socket.connect(endpoint)

    def send(self, frames: Sequence[bytes]) -> None:
        self._socket.send_multipart([self._serial, _SEND, *frames])

    def frame_done(self) -> None:
        self._socket.send_multipart([self._serial, _DONE])

    def authenticated(self, keyid: str) -> None:
        self._socket.send_multipart([self._serial, _AUTH, keyid.encode()])

    def close(self) -> None:
        if not self._socket.closed:
            self._socket.send_multipart([self._serial, _CLOSED])
            self._socket.close()


class Front:
    """Owns the ROUTER; create it, ``start()`` it, and ``stop()`` it in a finally.

    The counters (``pending_count``, ``session_count``...) are plain ints owned by
    the front thread; reading them from another thread gives a recent value.
    """

    def __init__(
        self,
        *,
        context: zmq.Context[Any],
        settings: FrontSettings,
        session_factory: SessionFactory,
        curve: CurveKeyPair | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._context = context
        self._settings = settings
        self._session_factory = session_factory
        self._curve = curve
        self._clock = clock
        self._pipe_endpoint = f"inproc://synchub-front-{uuid.uuid4().hex}"
        self._stopping = threading.Event()
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._sessions: dict[int, _Peer] = {}
        self._current: dict[bytes, int] = {}
        self._by_keyid: dict[str, int] = {}
        self._next_serial = 1
        self._pending = 0
        self._pending_high_water = 0
        self._in_flight = 0
        self._in_flight_bytes = 0
        self._sessions_started = 0
        self._refused = 0
        self._dropped = 0
        self.endpoint: str | None = None

    # -- read-only counters --------------------------------------------------------

    @property
    def pending_count(self) -> int:
        """Sessions started and not yet authenticated (nor closed)."""
        return self._pending

    @property
    def pending_high_water(self) -> int:
        """The most sessions ever pending at once."""
        return self._pending_high_water

    @property
    def session_count(self) -> int:
        """Sessions the front knows, in any phase (closing ones included)."""
        return len(self._sessions)

    @property
    def sessions_started(self) -> int:
        return self._sessions_started

    @property
    def refused_count(self) -> int:
        """New peers turned away with RETRY_WAIT (too many handshakes in progress)."""
        return self._refused

    @property
    def dropped_count(self) -> int:
        """Inbound frames discarded because their session was already closing."""
        return self._dropped

    @property
    def backlog(self) -> tuple[int, int]:
        """(frames, bytes) handed to sessions and not yet handled."""
        return self._in_flight, self._in_flight_bytes

    # -- lifecycle -------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> str:
        """Bind and start serving; return the bound endpoint (real port for :0)."""
        self._thread = threading.Thread(target=self._run, name="synchub-front", daemon=False)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise FrontError(f"the front did not bind {self._settings.bind} within {timeout}s")
        if self._startup_error is not None:
            self._thread.join()
            raise FrontError(
                f"cannot listen on {self._settings.bind}: {self._startup_error}; "
                "check [hub].bind and that no other hub uses the port"
            ) from self._startup_error
        assert self.endpoint is not None
        return self.endpoint

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("the front did not stop within %.0fs", timeout)

    def _outbox_factory(self, serial: int) -> Callable[[], Outbox]:
        endpoint = self._pipe_endpoint
        context = self._context
        return lambda: PipeOutbox(context, endpoint, serial)

    # -- the loop --------------------------------------------------------------

    def _open_router(self) -> zmq.Socket[Any]:
        router: zmq.Socket[Any] = self._context.socket(zmq.ROUTER)
        router.setsockopt(zmq.LINGER, 0)
        router.setsockopt(zmq.ROUTER_MANDATORY, 1)
        # libzmq applies MAXMSGSIZE to the frame as it travels; under CURVE that is
        # the MESSAGE command wrapping the item, a fixed overhead longer.
        overhead = CURVE_MESSAGE_OVERHEAD if self._curve is not None else 0
        router.setsockopt(zmq.MAXMSGSIZE, self._settings.max_frame_bytes + overhead)
        router.setsockopt(zmq.SNDHWM, self._settings.hwm)
        router.setsockopt(zmq.RCVHWM, self._settings.hwm)
        if self._curve is not None:
            router.setsockopt(zmq.CURVE_SERVER, 1)
            router.setsockopt(zmq.CURVE_SECRETKEY, self._curve.secret)
            router.setsockopt_string(zmq.ZAP_DOMAIN, ZAP_DOMAIN)
        else:
            log.warning("CURVE is off: traffic to %s is NOT encrypted", self._settings.bind)
        try:
            router.bind(self._settings.bind)
        except zmq.ZMQError:
            router.close(linger=0)
            raise
        endpoint = router.getsockopt(zmq.LAST_ENDPOINT)
        self.endpoint = endpoint.decode() if isinstance(endpoint, bytes) else str(endpoint)
        return router

    def _run(self) -> None:
        pipe = self._context.socket(zmq.PULL)
        pipe.setsockopt(zmq.LINGER, 0)
        pipe.bind(self._pipe_endpoint)
        zap: zmq.Socket[Any] | None = None
        try:
            if self._curve is not None:
                zap = self._context.socket(zmq.REP)
                zap.setsockopt(zmq.LINGER, 0)
                zap.bind(ZAP_ENDPOINT)
            router = self._open_router()
        except zmq.ZMQError as exc:
            self._startup_error = exc
            pipe.close(linger=0)
            if zap is not None:
                zap.close(linger=0)
            self._ready.set()
            return
        self._ready.set()
        try:
            self._serve(router, pipe, zap)
        except Exception:
            log.exception("the front failed; peers will reconnect after a restart")
            raise
        finally:
            self._stop_sessions(pipe, router)
            router.close(linger=0)
            pipe.close(linger=0)
            if zap is not None:
                zap.close(linger=0)

    def _over_backlog(self) -> bool:
        return (
            self._in_flight >= self._settings.total_backlog_high
            or self._in_flight_bytes >= self._settings.total_backlog_bytes
        )

    def _serve(
        self, router: zmq.Socket[Any], pipe: zmq.Socket[Any], zap: zmq.Socket[Any] | None
    ) -> None:
        poller = zmq.Poller()
        poller.register(pipe, zmq.POLLIN)
        if zap is not None:
            poller.register(zap, zmq.POLLIN)
        reading_router = False
        next_tick = self._clock() + self._settings.tick_interval
        while not self._stopping.is_set():
            want_router = not self._over_backlog()
            if want_router != reading_router:
                if want_router:
                    poller.register(router, zmq.POLLIN)
                else:
                    poller.unregister(router)
                reading_router = want_router
            wait_ms = max(0, min(100, int((next_tick - self._clock()) * 1000)))
            events = dict(poller.poll(wait_ms))
            if zap is not None and zap in events:
                self._answer_zap(zap)
            if pipe in events:
                self._drain_pipe(pipe, router)
            if router in events:
                self._drain_router(router)
            now = self._clock()
            if now >= next_tick:
                next_tick = now + self._settings.tick_interval
                self._tick(now)

    def _tick(self, now: float) -> None:
        for peer in list(self._sessions.values()):
            if not peer.closing:
                if self._tick_due(peer, now):
                    self._tell(peer, "tick", now)
            elif (
                peer.closing_since is not None
                and now - peer.closing_since >= self._settings.closed_grace
                and not peer.ref.is_alive()
            ):
                log.warning("session %d stopped without closing; forgetting it", peer.serial)
                self._forget(peer)

    def _tick_due(self, peer: _Peer, now: float) -> bool:
        interval = self._settings.heartbeat_interval
        if interval is None or peer.keyid is None:
            return True
        return now - peer.last_out >= interval or now - peer.last_in >= 3 * interval

    def _answer_zap(self, zap: zmq.Socket[Any], budget: int = 256) -> None:
        """Admit every CURVE client, naming it by its (per-process) CURVE public key."""
        for _ in range(budget):
            try:
                request = zap.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            request_id = request[1] if len(request) > 1 else b""
            if len(request) < 6 or request[0] != _ZAP_VERSION:
                zap.send_multipart([_ZAP_VERSION, request_id, b"400", b"bad request", b"", b""])
                continue
            mechanism, credentials = request[5], request[6:]
            user_id = b""
            if mechanism == b"CURVE" and credentials and len(credentials[0]) == 32:
                user_id = z85.encode(credentials[0])
            zap.send_multipart([_ZAP_VERSION, request_id, b"200", b"OK", user_id, b""])

    def _drain_router(self, router: zmq.Socket[Any], budget: int = 256) -> None:
        for _ in range(budget):
            if self._over_backlog():
                return
            try:
                frames = router.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            self._on_inbound(router, frames[0].bytes, frames[1:])

    def _drain_pipe(
        self, pipe: zmq.Socket[Any], router: zmq.Socket[Any], budget: int = 1024
    ) -> None:
        for _ in range(budget):
            try:
                message = pipe.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self._on_pipe(router, message)

    def _connection_of(self, frame: zmq.Frame) -> bytes | None:
        """The CURVE public key the frame's connection authenticated with (None: CURVE off)."""
        if self._curve is None:
            return None
        try:
            user_id = frame.get("User-Id")
        except zmq.ZMQError:
            return None
        return user_id.encode() if isinstance(user_id, str) else bytes(user_id)

    # -- inbound frames --------------------------------------------------------

    def _on_inbound(self, router: zmq.Socket[Any], rid: bytes, body: list[zmq.Frame]) -> None:
        now = self._clock()
        connection = self._connection_of(body[0])
        peer = self._live_session(rid)
        if peer is not None and peer.connection != connection:
            # The connection that started this session is gone and another one
            # took its routing id: the old session ends without seeing this frame.
            log.warning("routing id %s was reused by another connection", rid.hex())
            self._detach(peer, now)
            peer = None
        if peer is None:
            peer = self._open_session(router, rid, connection, now)
            if peer is None:
                return
        if peer.closing:
            self._dropped += 1
            return
        if len(body) != 1:
            self._refuse(peer, now, f"a message must be exactly one frame, got {len(body)}")
            return
        if peer.keyid is None and peer.in_flight >= self._settings.pending_backlog_high:
            self._refuse(
                peer, now,
                f"more than {self._settings.pending_backlog_high} frames before the "
                "handshake completed",
            )
            return
        frame = body[0].bytes
        if not self._tell(peer, "handle_frame", frame, now, self._stopping):
            self._dropped += 1
            return
        size = len(frame)
        peer.last_in = now
        peer.in_flight += 1
        peer.sizes.append(size)
        self._in_flight += 1
        self._in_flight_bytes += size
        if (
            peer.in_flight > self._settings.session_backlog_high
            and now >= peer.throttled_until
        ):
            delay = self._settings.throttle_delay_ms
            peer.throttled_until = now + delay / 1000
            self._send(router, rid, [protocol.throttle_frame(delay)])

    def _live_session(self, rid: bytes) -> _Peer | None:
        serial = self._current.get(rid)
        return None if serial is None else self._sessions.get(serial)

    def _open_session(
        self, router: zmq.Socket[Any], rid: bytes, connection: bytes | None, now: float
    ) -> _Peer | None:
        if self._pending >= self._settings.max_pending_handshakes:
            self._refused += 1
            self._send(router, rid, [protocol.error_frame(
                pb.CONNECTION_STATE_RETRY_WAIT,
                "the hub has too many handshakes in progress; retry later",
            )])
            return None
        serial = self._next_serial
        self._next_serial += 1
        try:
            ref = self._session_factory(rid, now, self._outbox_factory(serial))
        except Exception:
            log.exception("could not start a session for %s", rid.hex())
            self._send(router, rid, [protocol.error_frame(
                pb.CONNECTION_STATE_RETRY_WAIT, "the hub cannot take a connection now; retry later",
            )])
            return None
        peer = _Peer(
            rid=rid, serial=serial, ref=ref, connection=connection, last_in=now, last_out=now
        )
        self._sessions[serial] = peer
        self._current[rid] = serial
        self._sessions_started += 1
        self._pending += 1
        self._pending_high_water = max(self._pending_high_water, self._pending)
        return peer

    def _refuse(self, peer: _Peer, now: float, message: str) -> None:
        """End a session for something only the front can see; drop what follows."""
        self._dropped += 1
        self._tell(peer, "protocol_violation", message)
        self._mark_closing(peer, now)

    def _tell(self, peer: _Peer, method: str, *args: Any) -> bool:
        """Queue a message for a session; False (and closing) if it has already stopped."""
        try:
            tell_call(peer.ref, method, *args)
        except pykka.ActorDeadError:
            self._mark_closing(peer, self._clock())
            return False
        return True

    def _mark_closing(self, peer: _Peer, now: float) -> None:
        if peer.closing_since is None:
            peer.closing_since = now

    def _detach(self, peer: _Peer, now: float) -> None:
        """Take a session off its routing id: nothing more goes to or comes from the protocol."""
        if self._current.get(peer.rid) == peer.serial:
            del self._current[peer.rid]
        if peer.keyid is not None and self._by_keyid.get(peer.keyid) == peer.serial:
            del self._by_keyid[peer.keyid]
        if not peer.closing:
            self._tell(peer, "peer_vanished")
            self._mark_closing(peer, now)

    # -- the sessions' pipe ----------------------------------------------------

    def _on_pipe(self, router: zmq.Socket[Any], message: list[bytes]) -> None:
        serial = int.from_bytes(message[0], "big")
        kind, payload = message[1], message[2:]
        peer = self._sessions.get(serial)
        if peer is None:
            return
        if kind == _SEND:
            if self._current.get(peer.rid) != serial:
                return  # detached: its connection is gone
            if not self._send(router, peer.rid, payload) and not peer.closing:
                self._tell(peer, "peer_vanished")
            peer.last_out = self._clock()
        elif kind == _DONE:
            self._settle(peer, 1)
        elif kind == _AUTH:
            self._on_authenticated(peer, payload[0].decode())
        elif kind == _CLOSED:
            self._forget(peer)

    def _on_authenticated(self, peer: _Peer, keyid: str) -> None:
        if peer.keyid is not None:
            return
        self._pending -= 1
        peer.keyid = keyid
        if peer.closing or self._current.get(peer.rid) != peer.serial:
            return  # about to end: it must not displace a session that is not
        older = self._by_keyid.get(keyid)
        self._by_keyid[keyid] = peer.serial
        if older is not None and older != peer.serial:
            old_peer = self._sessions.get(older)
            if old_peer is not None and not old_peer.closing:
                self._tell(old_peer, "displace")

    def _forget(self, peer: _Peer) -> None:
        del self._sessions[peer.serial]
        if self._current.get(peer.rid) == peer.serial:
            del self._current[peer.rid]
        self._settle(peer, peer.in_flight)
        if peer.keyid is None:
            self._pending -= 1
        elif self._by_keyid.get(peer.keyid) == peer.serial:
            del self._by_keyid[peer.keyid]

    def _settle(self, peer: _Peer, frames: int) -> None:
        for _ in range(min(frames, len(peer.sizes))):
            size = peer.sizes.popleft()
            peer.in_flight -= 1
            self._in_flight -= 1
            self._in_flight_bytes -= size

    def _send(self, router: zmq.Socket[Any], rid: bytes, frames: Sequence[bytes]) -> bool:
        try:
            for frame in frames:
                router.send_multipart([rid, frame], zmq.NOBLOCK)
        except zmq.ZMQError as exc:
            # EHOSTUNREACH: the peer is gone (ROUTER_MANDATORY); EAGAIN: it stopped
            # reading and its queue is full. Either way this session is over.
            log.debug("send to %s failed: %s", rid.hex(), exc)
            return False
        return True

    def _stop_sessions(self, pipe: zmq.Socket[Any], router: zmq.Socket[Any]) -> None:
        now = self._clock()
        for peer in self._sessions.values():
            self._mark_closing(peer, now)
            with contextlib.suppress(pykka.ActorDeadError):
                peer.ref.stop(block=False)
        # Keep relaying while sessions say goodbye, so their last frames go out;
        # a session forgets itself with its close notice, after its goodbye.
        deadline = now + 5.0
        stopped_at: dict[int, float] = {}
        while self._sessions and self._clock() < deadline:
            if pipe.poll(50):
                self._drain_pipe(pipe, router)
            moment = self._clock()
            for peer in [p for p in self._sessions.values() if not p.ref.is_alive()]:
                if moment - stopped_at.setdefault(peer.serial, moment) >= 0.5:
                    self._sessions.pop(peer.serial, None)
