"""The front: the one thread that owns the hub's ROUTER socket.

Frames arrive on the ROUTER and are handed, by routing id, to that peer's
SessionActor. Sessions answer through their own PUSH socket (created in the
session's thread) into one inproc PULL socket that this thread polls; only this
thread ever touches the ROUTER (ZeroMQ sockets are not thread-safe).

Pipe messages from a session are multipart: ``[routing_id, kind, *payload]``
with kind ``S`` (send the payload frames), ``D`` (one inbound frame handled),
``A`` (authenticated as keyid ``payload[0]``) or ``C`` (session closed).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import zmq

from actors.session import Outbox
from hub import wire
from hub.errors import SynchubError
from hub.identity import CurveKeyPair
from hub.pb import synchub_pb2 as pb

log = logging.getLogger(__name__)

_SEND, _DONE, _AUTH, _CLOSED = b"S", b"D", b"A", b"C"


class FrontError(SynchubError):
    """The ROUTER socket could not be set up (bad bind address, port in use...)."""


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
    throttle_delay_ms: int = 500
    hwm: int = 1000


SessionFactory = Callable[[bytes, float, Callable[[], Outbox]], Any]
"""(routing_id, now, outbox_factory) -> a started SessionActor's ActorRef."""


@dataclass
class _Peer:
    ref: Any
    keyid: str | None = None
    in_flight: int = 0
    throttled_until: float = 0.0
    closing: bool = False
    proxy: Any = field(default=None)


class PipeOutbox:
    """A session's way out: a PUSH socket into the front, used by one thread only."""

    def __init__(self, context: zmq.Context[Any], endpoint: str, routing_id: bytes) -> None:
        self._rid = routing_id
        self._socket = context.socket(zmq.PUSH)
        # Long enough to hand the last frames (the error item) to the front.
        self._socket.setsockopt(zmq.LINGER, 2000)
        self._socket.connect(endpoint)

    def send(self, frames: Sequence[bytes]) -> None:
        self._socket.send_multipart([self._rid, _SEND, *frames])

    def frame_done(self) -> None:
        self._socket.send_multipart([self._rid, _DONE])

    def authenticated(self, keyid: str) -> None:
        self._socket.send_multipart([self._rid, _AUTH, keyid.encode()])

    def close(self) -> None:
        if not self._socket.closed:
            self._socket.send_multipart([self._rid, _CLOSED])
            self._socket.close()


class Front:
    """Owns the ROUTER; create it, ``start()`` it, and ``stop()`` it in a finally."""

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
        self._peers: dict[bytes, _Peer] = {}
        self._by_keyid: dict[str, bytes] = {}
        self._pending = 0
        self._in_flight = 0
        self.endpoint: str | None = None

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

    def outbox_factory(self, routing_id: bytes) -> Callable[[], Outbox]:
        endpoint = self._pipe_endpoint
        context = self._context
        return lambda: PipeOutbox(context, endpoint, routing_id)

    # -- the loop --------------------------------------------------------------

    def _open_router(self) -> zmq.Socket[Any]:
        router: zmq.Socket[Any] = self._context.socket(zmq.ROUTER)
        router.setsockopt(zmq.LINGER, 0)
        router.setsockopt(zmq.ROUTER_MANDATORY, 1)
        router.setsockopt(zmq.MAXMSGSIZE, self._settings.max_frame_bytes)
        router.setsockopt(zmq.SNDHWM, self._settings.hwm)
        router.setsockopt(zmq.RCVHWM, self._settings.hwm)
        if self._curve is not None:
            router.setsockopt(zmq.CURVE_SERVER, 1)
            router.setsockopt(zmq.CURVE_SECRETKEY, self._curve.secret)
        else:
            log.warning("CURVE is off: traffic to %s is NOT encrypted", self._settings.bind)
        router.bind(self._settings.bind)
        endpoint = router.getsockopt(zmq.LAST_ENDPOINT)
        self.endpoint = endpoint.decode() if isinstance(endpoint, bytes) else str(endpoint)
        return router

    def _run(self) -> None:
        pipe = self._context.socket(zmq.PULL)
        pipe.setsockopt(zmq.LINGER, 0)
        pipe.bind(self._pipe_endpoint)
        try:
            router = self._open_router()
        except zmq.ZMQError as exc:
            self._startup_error = exc
            pipe.close()
            self._ready.set()
            return
        self._ready.set()
        try:
            self._serve(router, pipe)
        except Exception:
            log.exception("the front failed; peers will reconnect after a restart")
            raise
        finally:
            self._stop_sessions(pipe, router)
            router.close(linger=0)
            pipe.close(linger=0)

    def _serve(self, router: zmq.Socket[Any], pipe: zmq.Socket[Any]) -> None:
        poller = zmq.Poller()
        poller.register(pipe, zmq.POLLIN)
        reading_router = False
        next_tick = self._clock() + self._settings.tick_interval
        while not self._stopping.is_set():
            want_router = self._in_flight < self._settings.total_backlog_high
            if want_router != reading_router:
                if want_router:
                    poller.register(router, zmq.POLLIN)
                else:
                    poller.unregister(router)
                reading_router = want_router
            wait_ms = max(0, min(100, int((next_tick - self._clock()) * 1000)))
            events = dict(poller.poll(wait_ms))
            if pipe in events:
                self._drain_pipe(pipe, router)
            if router in events:
                self._drain_router(router)
            now = self._clock()
            if now >= next_tick:
                next_tick = now + self._settings.tick_interval
                for peer in self._peers.values():
                    if not peer.closing:
                        peer.proxy.tick.defer(now)

    def _drain_router(self, router: zmq.Socket[Any], budget: int = 256) -> None:
        for _ in range(budget):
            try:
                frames = router.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self._on_inbound(router, frames[0], frames[1:])

    def _drain_pipe(
        self, pipe: zmq.Socket[Any], router: zmq.Socket[Any], budget: int = 1024
    ) -> None:
        for _ in range(budget):
            try:
                message = pipe.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self._on_pipe(router, message)

    def _on_inbound(self, router: zmq.Socket[Any], rid: bytes, body: list[bytes]) -> None:
        now = self._clock()
        peer = self._peers.get(rid)
        if peer is None:
            if self._pending >= self._settings.max_pending_handshakes:
                self._send(router, rid, [wire.error_frame(
                    pb.CONNECTION_STATE_RETRY_WAIT,
                    "the hub has too many handshakes in progress; retry later",
                )])
                return
            ref = self._session_factory(rid, now, self.outbox_factory(rid))
            peer = _Peer(ref=ref, proxy=ref.proxy())
            self._peers[rid] = peer
            self._pending += 1
        if peer.closing:
            return
        if len(body) != 1:
            peer.proxy.protocol_violation.defer(
                f"a message must be exactly one frame, got {len(body)}"
            )
            return
        peer.in_flight += 1
        self._in_flight += 1
        peer.proxy.handle_frame.defer(body[0], now)
        if (
            peer.in_flight > self._settings.session_backlog_high
            and now >= peer.throttled_until
        ):
            delay = self._settings.throttle_delay_ms
            peer.throttled_until = now + delay / 1000
            self._send(router, rid, [wire.throttle_frame(delay)])

    def _on_pipe(self, router: zmq.Socket[Any], message: list[bytes]) -> None:
        rid, kind, payload = message[0], message[1], message[2:]
        peer = self._peers.get(rid)
        if kind == _SEND:
            if not self._send(router, rid, payload) and peer is not None and not peer.closing:
                peer.proxy.peer_vanished.defer()
        elif peer is None:
            return
        elif kind == _DONE:
            self._settle(peer, 1)
        elif kind == _AUTH:
            self._on_authenticated(rid, peer, payload[0].decode())
        elif kind == _CLOSED:
            self._forget(rid, peer)

    def _on_authenticated(self, rid: bytes, peer: _Peer, keyid: str) -> None:
        self._pending -= 1
        peer.keyid = keyid
        older = self._by_keyid.get(keyid)
        self._by_keyid[keyid] = rid
        if older is not None and older != rid:
            old_peer = self._peers.get(older)
            if old_peer is not None and not old_peer.closing:
                old_peer.proxy.displace.defer()

    def _forget(self, rid: bytes, peer: _Peer) -> None:
        del self._peers[rid]
        self._settle(peer, peer.in_flight)
        if peer.keyid is None:
            self._pending -= 1
        elif self._by_keyid.get(peer.keyid) == rid:
            del self._by_keyid[peer.keyid]

    def _settle(self, peer: _Peer, frames: int) -> None:
        peer.in_flight -= frames
        self._in_flight -= frames

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
        for peer in self._peers.values():
            peer.closing = True
            peer.ref.stop(block=False)
        # Keep relaying while sessions say goodbye, so their last frames go out.
        deadline = self._clock() + 5.0
        while self._peers and self._clock() < deadline:
            if pipe.poll(50):
                self._drain_pipe(pipe, router)
            for rid in [rid for rid, peer in self._peers.items() if not peer.ref.is_alive()]:
                self._drain_pipe(pipe, router)
                self._peers.pop(rid, None)
