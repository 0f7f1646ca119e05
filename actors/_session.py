"""SessionActor: one per connected peer, from HELLO to the session's end.

Who owns what: a session owns its peer's protocol state (phase, the handshake, the
config view it last sent) and its Outbox. It changes the oplog and the peer states
only through their actors: it asks the OplogActor (and waits: that is the
backpressure), asks the PeerStateActor to record a client's config and resources
(waiting too, so a flood of them stays in the session's counted backlog, not in the
PeerStateActor's mailbox), and tells it the rest.

The front (the thread that owns the ROUTER socket) tells this actor the messages of
``actors._front_messages``: every frame from its peer, ticks, and what only the front
sees. ``on_receive`` maps each message type to its handler. The actor decodes frames
in its own thread and runs the handshake of docs/protocol.md §5 (Handshake), then the
sync of §6 (Synchronisation), each item by a handler table; the decisions themselves
are ``hub.protocol``'s (``HubHandshake``, ``authorize_client``, ``ConfigView``,
``check_diff``, ``sent_operations``). Outbound frames leave through the session's own
Outbox (an inproc pipe to the front created in this actor's thread): no actor thread
touches the ROUTER.

A reader that wants a job's log tells the session a ``FetchLog``; the session asks its
client and hands the answer back without waiting for it (``actors._logs``, §6.7 (Logs
on demand)).

A revocation or a newer session of the same key ends the session at its next message,
whatever it still has queued: the OplogActor's write gate raises the session's
``EndNotice`` (``actors._gate``), which the session reads before each message, and
refuses its requests meanwhile.

A session's thread is a daemon thread: Python walks the lock of every non-daemon thread
at each thread start, which with thousands of peers cost more than the session itself.
The front stops every session before the hub exits (``Front._stop_sessions``), so none
is cut off by the interpreter.

Every protocol or authentication failure becomes exactly one ``error`` item and the
end of the session (§9 (Errors)). Time arrives in messages (``InboundFrame.now``,
``Tick``), so tests drive timeouts without sleeping.
"""

from __future__ import annotations

import enum
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import pykka
from google.protobuf.message import Message

from actors._calls import answer, tell
from actors._config import ConfigProxy
from actors._front_messages import (
    Cancellation,
    ConfigChanged,
    Displace,
    ExpireHandshake,
    InboundFrame,
    Outbox,
    PeerVanished,
    ProtocolViolation,
    Tick,
)
from actors._gate import DISPLACED_MESSAGE, REVOKED_MESSAGE, EndNotice
from actors._logs import FetchLog, SessionLogs
from actors._oplog import OplogProxy
from actors._peer_state import PeerStateProxy
from actors._sync import PeerSync
from hub import protocol
from hub.config import AuthorizedClient, Config
from hub.errors import (
    AuthError,
    ProtocolError,
    SessionDisplaced,
    StoreUnavailable,
    SynchubError,
)
from hub.identity import SigningIdentity
from hub.pb import synchub_pb2 as pb
from hub.protocol import (
    RESYNC_VERSION,
    ConfigView,
    DigestCheck,
    Hello,
    HubHandshake,
    JoinClaim,
    authorize_client,
    check_diff_answer,
    join_claim,
)
from hub.telemetry import HANDSHAKE_ACCEPTED, HANDSHAKE_REFUSED, NO_TELEMETRY, Telemetry
from hub.text import printable

log = logging.getLogger(__name__)

T = TypeVar("T")
M = TypeVar("M", bound=Message)

ERROR_AUTH = pb.CONNECTION_STATE_ERROR_AUTH
ERROR_PROTOCOL = pb.CONNECTION_STATE_ERROR_PROTOCOL
ERROR_INTERNAL = pb.CONNECTION_STATE_ERROR_INTERNAL
DISCONNECTED = pb.CONNECTION_STATE_DISCONNECTED
RETRY_WAIT = pb.CONNECTION_STATE_RETRY_WAIT

INTERNAL_ERROR_MESSAGE = "internal error in the hub; reconnect later"
HANDSHAKE_TIMED_OUT = "handshake timed out"
PEER_ERROR_LIMIT = 200
"""Characters of a peer's error message quoted in its peer state's status, which
shows it inert (control characters and line breaks as escapes such as ``\\n``)."""
# Any item is a sign of life: reported to the PeerStateActor at once for a heartbeat,
# at most this often for the rest (a streaming peer sends many items a second).
LIVENESS_REPORT_SECONDS = 1.0


@dataclass(frozen=True)
class HubIdentity:
    instance_id: str
    signing: SigningIdentity


@dataclass(frozen=True)
class SessionSettings:
    heartbeat_interval: float = 15.0
    handshake_timeout: float = 10.0
    ask_timeout: float = 30.0
    proof_timeout: float | None = None
    """From the CHALLENGE to the PROOF (None: only ``handshake_timeout`` applies)."""
    resync: bool = True
    """Answer a HELLO's offer of resumed sync (``[hub] resync``)."""

    @property
    def silence_limit(self) -> float:
        return 3 * self.heartbeat_interval


class Phase(enum.Enum):
    AWAIT_HELLO = "await-hello"
    AWAIT_PROOF = "await-proof"
    CONNECTED = "connected"
    ENDED = "ended"


class SessionActor(pykka.ThreadingActor):
    """Serve one peer. The front tells it messages; its public methods are their handlers."""
    use_daemon_thread = True  # cheap to start among thousands (the module docstring)

    def __init__(
        self,
        *,
        session_id: str,
        hub: HubIdentity,
        settings: SessionSettings,
        config: ConfigProxy,
        oplog: OplogProxy,
        peers: PeerStateProxy,
        outbox_factory: Callable[[], Outbox],
        now: float,
        telemetry: Telemetry = NO_TELEMETRY,
        source: str = "",
    ) -> None:
        super().__init__()
        self._telemetry, self._refusal = telemetry, "disconnected"
        self._session_id, self._source = session_id, source
        self._hub = hub
        self._settings = settings
        self._config = config
        self._oplog = oplog
        self._peers = peers
        self._outbox_factory = outbox_factory
        self._outbox: Outbox | None = None
        self._phase = Phase.AWAIT_HELLO
        self._now = now
        self._started_at = self._challenged_at = now
        self._last_received_at = now
        self._last_sent_at = now
        self._last_liveness_report = now
        self._handshake: HubHandshake | None = None
        self._hello: Hello | None = None
        self._resync = False
        self._config_token: int | None = None
        self._sent_view: ConfigView | None = None
        self._logs = SessionLogs(session_id, send=self._send, clock=lambda: self._now)
        self._notice = EndNotice()
        self._proof_verified = False
        self._sync: PeerSync | None = None

    # -- lifecycle ---------------------------------------------------------

    def on_start(self) -> None:
        self._outbox = self._outbox_factory()

    def on_stop(self) -> None:
        # Reached on hub shutdown as well as after _end(); only the former
        # still has work to do.
        if self._phase is not Phase.ENDED:
            self._say_goodbye(DISCONNECTED, "the hub is shutting down; reconnect later")

    def on_failure(self, *_exc_info: object) -> None:
        if self._phase is not Phase.ENDED:
            self._say_goodbye(ERROR_INTERNAL, INTERNAL_ERROR_MESSAGE)

    def on_receive(self, message: object) -> None:
        """A message told by the front or the config actor (``actors._front_messages``)."""
        handler = _FRONT_MESSAGES.get(type(message))
        if handler is None:
            super().on_receive(message)
            return
        try:
            if _ended_by_notice(self):
                return
            handler(self, message)
        except Exception:
            # Nobody waits for a told message: log, and end the session rather than the actor.
            log.exception("session %s: %s failed", self._session_id, type(message).__name__)
            if self._phase is not Phase.ENDED:
                self._end(ERROR_INTERNAL, INTERNAL_ERROR_MESSAGE)
            else:
                self.stop()

    # -- messages from the front ----------------------------------------------

    @property
    def phase(self) -> Phase:
        return self._phase

    def handle_frame(
        self, frame: bytes, now: float, cancelled: Cancellation | None = None
    ) -> None:
        """Handle one inbound frame; skip it once ``cancelled`` is set (the hub is stopping,
        or the front ended the session for going past a bound).

        Skipping is safe: nothing a client sends is acknowledged except through a
        diff reply, so a client resends on its next connection what was skipped.
        """
        if self._phase is Phase.ENDED or (cancelled is not None and cancelled.is_set()):
            return
        if _ended_by_notice(self):
            return
        self._now = max(self._now, now)
        self._last_received_at = now
        try:
            item = protocol.decode_item(frame)
            _BY_PHASE[self._phase](self, item, protocol.action_of(item))
        except Exception as exc:
            # Whatever a peer sends, the session answers with one error item,
            # never by dying with the exception.
            if self.phase is not Phase.ENDED:
                self._refusal = _refusal_reason(exc)
                state, message = _ending_for(exc, self._session_id)
                self._end(state, message, mark_peer=not isinstance(exc, SessionDisplaced))
        finally:
            if self._outbox is not None and self.phase is not Phase.ENDED:
                self._outbox.frame_done()

    def tick(self, now: float) -> None:
        if self._phase is Phase.ENDED:
            return
        self._now = max(self._now, now)
        if self._phase is not Phase.CONNECTED:
            if _overdue(self, now):
                self._end(ERROR_AUTH, HANDSHAKE_TIMED_OUT)
            return
        silent_for = now - self._last_received_at
        if silent_for >= self._settings.silence_limit:
            self._end(
                DISCONNECTED,
                f"no frame for {silent_for:.0f}s (3 heartbeat intervals)",
                send_error=False,
            )
            return
        self._logs.expire(now)
        if now - self._last_sent_at >= self._settings.heartbeat_interval:
            self._send([protocol.heartbeat_frame()])

    def protocol_violation(self, message: str) -> None:
        """The front saw something only it can see (e.g. a multi-frame message)."""
        if self._phase is not Phase.ENDED:
            self._end(ERROR_PROTOCOL, message)

    def peer_vanished(self) -> None:
        """A send to this peer failed: it is gone, so nothing more is sent."""
        if self._phase is not Phase.ENDED:
            self._end(DISCONNECTED, "peer connection lost", send_error=False)

    def displace(self) -> None:
        """A newer session for the same keyid completed its PROOF."""
        if self._phase is not Phase.ENDED:
            # The newer session owns the peer's state now: leave it alone.
            self._end(DISCONNECTED, DISPLACED_MESSAGE, mark_peer=False)

    def on_config_changed(self, config: Config) -> None:
        if self._phase is not Phase.CONNECTED or self._hello is None:
            return
        try:
            client = authorize_client(config, self._hello)
        except AuthError as exc:
            self._end(ERROR_AUTH, _refusal_of_a_live_peer(config, self._hello, exc))
            return
        self._send_config_view(ConfigView.of(config, client), force=False)

    # -- the handshake (docs/protocol.md §5.2 (The three steps)) -----------------

    def _on_hello(self, item: pb.SyncStreamItem, action: str) -> None:
        if action != "handshake":
            raise ProtocolError(f"expected a handshake HELLO first, got {action}")
        handshake = HubHandshake.answer(item.handshake, self._hub.signing, self._hub.instance_id)
        self._handshake, self._hello = handshake, handshake.hello
        self._phase, self._challenged_at = Phase.AWAIT_PROOF, self._now
        challenge = handshake.challenge
        # Resumed sync (docs/protocol.md §6.8 (Resumed sync)), outside the transcript.
        self._resync = self._settings.resync and item.handshake.resync >= RESYNC_VERSION
        if self._resync:
            challenge = pb.SyncStreamItem.FromString(challenge.SerializeToString())
            challenge.handshake.resync = RESYNC_VERSION
        self._send([protocol.encode_item(challenge)])

    def _on_proof(self, item: pb.SyncStreamItem, action: str) -> None:
        if action != "handshake":
            raise ProtocolError(f"expected the handshake PROOF, got {action}")
        assert self._handshake is not None
        hello = self._handshake.verify(item.handshake)
        self._proof_verified = True
        # Only now, with the PROOF verified, is an authorization decision made. Subscribe
        # before the snapshot (asks answered in order) so no revocation slips between.
        subscribed = self._config.subscribe(_config_listener(self.actor_ref))
        snapshot = self._config.get()
        self._config_token = self._ask(subscribed, "config")
        redeem = lambda c: self._ask(self._config.redeem(c), "config")  # noqa: E731
        claim = join_claim(self._handshake, item.handshake)
        config, client, joined = _admit(self._ask(snapshot, "config"), hello, claim, redeem)
        # From the claim on, the older session of this key (if any) is refused where
        # its requests are applied: nothing of it lands once this one is in.
        self._ask(self._oplog.claim(
            hello.keyid, hello.instance_id, self._session_id, self._notice), "oplog")
        self._sync = PeerSync(
            hello=hello, session_id=self._session_id, oplog=self._oplog, peers=self._peers,
            notice=self._notice, ask_timeout=self._settings.ask_timeout,
        )
        self._phase = Phase.CONNECTED
        self._last_liveness_report = self._now
        self._require_outbox().authenticated(hello.keyid)
        self._telemetry.handshake(HANDSHAKE_ACCEPTED, "")
        tell(self._peers.connected, hello.keyid, hello.instance_id,
             session_id=self._session_id, session=self.actor_ref, message=joined)
        self._logs.connected(hello.instance_id)
        log.info("peer %s (%s) connected", hello.instance_id, hello.keyid)
        self._send_config_view(ConfigView.of(config, client), force=True)
        if self._resync:
            cursors = self._ask(self._oplog.sync_cursors(hello.keyid), "oplog")
            self._send([protocol.sync_cursors_frame(cursors)])

    # -- connected (docs/protocol.md §6 (Synchronisation)) ---------------------------

    def _on_connected_item(self, item: pb.SyncStreamItem, action: str) -> None:
        hello = self._connected_hello()
        if action == "heartbeat" or (
            self._now - self._last_liveness_report >= LIVENESS_REPORT_SECONDS
        ):
            self._last_liveness_report = self._now
            tell(self._peers.heartbeat, hello.keyid)
        handler = _CONNECTED_ITEMS.get(action)
        if handler is None:
            raise ProtocolError(f"unexpected {action} after the handshake completed")
        handler(self, item)

    def _on_diff(self, item: pb.SyncStreamItem) -> None:
        requested = self._require_sync().diff(item.diff_operations)
        if requested is not None:
            self._send([protocol.diff_reply_frame(check_diff_answer(requested))])

    def _on_peer_error(self, item: pb.SyncStreamItem) -> None:
        message = f"peer reported: {printable(item.error.message, PEER_ERROR_LIMIT) or 'error'}"
        self._end(DISCONNECTED, message, send_error=False)

    # -- helpers ---------------------------------------------------------------

    def _connected_hello(self) -> Hello:
        assert self._hello is not None
        return self._hello

    def _require_sync(self) -> PeerSync:
        assert self._sync is not None
        return self._sync

    def _require_outbox(self) -> Outbox:
        assert self._outbox is not None
        return self._outbox

    def _send_config_view(self, view: ConfigView, *, force: bool) -> None:
        if not force and view == self._sent_view:
            return
        self._sent_view = view
        self._send(view.frames())

    def _ask(self, future: pykka.Future[T], what: str) -> T:
        return answer(future, self._settings.ask_timeout, what)

    def _send(self, frames: Sequence[bytes]) -> None:
        self._require_outbox().send(frames)
        self._last_sent_at = self._now

    def _end(
        self,
        state: pb.ConnectionState,
        message: str,
        *,
        send_error: bool = True,
        mark_peer: bool = True,
    ) -> None:
        if send_error and self._outbox is not None:
            self._outbox.send([protocol.error_frame(state, message)])
        self._finish(state, message, mark_peer=mark_peer)
        self.stop()

    def _say_goodbye(self, state: pb.ConnectionState, message: str) -> None:
        """End from on_stop / on_failure, where the actor is stopping anyway."""
        try:
            if self._outbox is not None:
                self._outbox.send([protocol.error_frame(state, message)])
        finally:
            self._finish(state, message, mark_peer=True)

    def _finish(self, state: pb.ConnectionState, message: str, *, mark_peer: bool) -> None:
        connected = self._phase is Phase.CONNECTED
        self._phase = Phase.ENDED
        hello = self._hello
        _ended(hello, connected, message, (self._telemetry, self._refusal))
        if not connected and hello is not None and self._proof_verified:
            # A real key the hub does not admit: a warning, at most once a minute per key
            # (the PeerStateActor counts and logs them), instead of a line per attempt.
            tell(self._peers.refused, hello.keyid, printable(hello.instance_id), message,
                 source=self._source if state == ERROR_AUTH else None)
        elif not connected:
            _log_refusal(self._session_id, hello, message)
        if connected and self._sync is not None:
            self._sync.ended(state, message, mark_peer=mark_peer)
        self._logs.close(message)
        if self._config_token is not None:
            tell(self._config.unsubscribe, self._config_token)
            self._config_token = None
        if self._outbox is not None:
            self._outbox.close()


def _ended_by_notice(session: SessionActor) -> bool:
    """End now if the write gate raised the session's notice (revoked, displaced)."""
    reason = session._notice.reason()
    if reason is None or session.phase is not Phase.CONNECTED:
        return False
    state, message = reason
    session._end(state, message, mark_peer=state != DISCONNECTED)
    return True


def _refusal_of_a_live_peer(config: Config, hello: Hello, exc: AuthError) -> str:
    """Why a connected peer is let go after a config change: a revoke says so."""
    if config.authorized_client(hello.keyid) is None:
        return REVOKED_MESSAGE
    return str(exc)


# Handlers that need nothing but what the session shows its tables.








def _on_liveness(session: SessionActor, _item: pb.SyncStreamItem) -> None:
    """heartbeat, or a throttle (which the hub ignores): liveness only, reported above."""


# Handlers that need nothing but what the session shows its tables.


def _on_check_digest(session: SessionActor, item: pb.SyncStreamItem) -> None:
    hello = session._connected_hello()
    if not session._resync:
        raise ProtocolError("unexpected check_digest: this session did not agree resync")
    check = DigestCheck.of(item.check_digest, hello.keyid)
    assert session._sync is not None
    answer = session._sync.check_digest(check)
    if answer is not None:
        session._send([protocol.encode_item(pb.SyncStreamItem(check_digest=answer))])


PhaseHandler = Callable[[SessionActor, pb.SyncStreamItem, str], None]
ItemHandler = Callable[[SessionActor, pb.SyncStreamItem], None]

_BY_PHASE: Final[Mapping[Phase, PhaseHandler]] = {
    Phase.AWAIT_HELLO: SessionActor._on_hello,
    Phase.AWAIT_PROOF: SessionActor._on_proof,
    Phase.CONNECTED: SessionActor._on_connected_item,
}

# A handshake after CONNECTED is not here: it is a protocol error, as any other action is.
_CONNECTED_ITEMS: Final[Mapping[str, ItemHandler]] = {
    "heartbeat": _on_liveness,
    "throttle": _on_liveness,
    "diff_operations": SessionActor._on_diff,
    "check_digest": _on_check_digest,
    "send_operations": lambda session, item: session._require_sync().send_operations(
        item.send_operations),
    "send_config": lambda session, item: session._require_sync().send_config(
        item.send_config.config),
    "list_resources": lambda session, item: session._require_sync().list_resources(
        item.list_resources),
    "set_config": lambda session, _item: log.info(
        "ignored set_config from %s: this hub does not take config from clients",
        session._connected_hello().instance_id),
    "log_data": lambda session, item: session._logs.received(item.log_data),
    "error": SessionActor._on_peer_error,
}

# The front's messages go to the public handlers, which tier-1 tests call directly.


def _frame(session: SessionActor, message: InboundFrame) -> None:
    session.handle_frame(message.frame, message.now, message.cancelled)


def _tick(session: SessionActor, message: Tick) -> None:
    session.tick(message.now)


def _violation(session: SessionActor, message: ProtocolViolation) -> None:
    session.protocol_violation(message.message)


def _vanished(session: SessionActor, _message: PeerVanished) -> None:
    session.peer_vanished()


def _displaced(session: SessionActor, _message: Displace) -> None:
    session.displace()


def _overdue(session: SessionActor, now: float) -> bool:
    """Whether a handshake ran out of time: all of it, or from CHALLENGE to PROOF."""
    settings = session._settings
    proof_limit = settings.proof_timeout
    return now - session._started_at >= settings.handshake_timeout or (
        proof_limit is not None and session.phase is Phase.AWAIT_PROOF
        and now - session._challenged_at >= proof_limit
    )


def _expire(session: SessionActor, _message: ExpireHandshake) -> None:
    # The front needs this pending session's room for a newer handshake.
    if session.phase in (Phase.AWAIT_HELLO, Phase.AWAIT_PROOF):
        session._end(ERROR_AUTH, HANDSHAKE_TIMED_OUT)


def _config_changed(session: SessionActor, message: ConfigChanged) -> None:
    session.on_config_changed(message.config)


def _fetch_log(session: SessionActor, message: FetchLog) -> None:
    # A reader wants part of a log of this session's client (actors._logs).
    session._logs.fetch(message)


_FRONT_MESSAGES: Final[Mapping[type, Callable[[SessionActor, Any], None]]] = {
    InboundFrame: _frame,
    Tick: _tick,
    ProtocolViolation: _violation,
    PeerVanished: _vanished,
    Displace: _displaced,
    ExpireHandshake: _expire,
    ConfigChanged: _config_changed,
    FetchLog: _fetch_log,
}


def _admit(
    config: Config, hello: Hello, claim: JoinClaim | None, redeem: Callable[[JoinClaim], Config]
) -> tuple[Config, AuthorizedClient, str]:
    """The config, the client entry and how it joined ("" when it was authorized before).

    A key not let in yet that holds an invitation is redeemed by the config actor
    (which checks it, uses it up and authorizes the key, or refuses with the reason).
    """
    try:
        return config, authorize_client(config, hello), ""
    except AuthError:
        if claim is None:
            raise
    config = redeem(claim)
    return config, authorize_client(config, hello), f"joined with invitation {claim.invitation_id}"


def _config_listener(ref: pykka.ActorRef[SessionActor]) -> Callable[[Config], None]:
    """What the ConfigActor calls with each new config: a message to this session.

    ActorDeadError once the session has stopped, which unsubscribes it.
    """
    return lambda config: ref.tell(ConfigChanged(config))


def _ending_for(exc: Exception, session_id: str) -> tuple[pb.ConnectionState, str]:
    """The error a failure while handling a frame ends the session with.

    A refusal before CONNECTED is logged by ``_finish``, with its reason.
    """
    if isinstance(exc, ProtocolError):
        return ERROR_PROTOCOL, str(exc)
    if isinstance(exc, AuthError):
        return ERROR_AUTH, str(exc)
    if isinstance(exc, StoreUnavailable):
        # Nothing of the frame was stored; the client comes back once the database is.
        log.warning("session %s: %s", session_id, exc)
        return RETRY_WAIT, "the hub cannot reach its database now; retry later"
    if isinstance(exc, SessionDisplaced):
        return DISCONNECTED, str(exc)
    if isinstance(exc, SynchubError):
        log.error("session %s: %s", session_id, exc)
        # Say what failed, not where: the hub's file paths stay in its own log.
        return ERROR_INTERNAL, f"hub error: {without_paths(str(exc))}"
    log.error("session %s: unexpected failure handling a frame", session_id, exc_info=exc)
    return ERROR_INTERNAL, INTERNAL_ERROR_MESSAGE


_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~-])/(?:[^\s/'\"]+/)+(?P<name>[^\s/'\"]*)")


def without_paths(text: str) -> str:
    """``text`` with every absolute path cut to its last part (``/srv/hub/oplog.sqlite``
    becomes ``oplog.sqlite``), for messages that leave the hub."""
    return _ABSOLUTE_PATH.sub(lambda match: match["name"] or "a folder", text)


def _refusal_reason(exc: Exception) -> str:
    """The one-word kind of a refusal before CONNECTED, for counting refusals."""
    if isinstance(exc, AuthError):
        return exc.reason
    if isinstance(exc, ProtocolError):
        return "protocol"
    return "internal"


def _ended(
    hello: Hello | None, connected: bool, message: str, report: tuple[Telemetry, str]
) -> None:
    """Log a session's end; count it as a refused handshake (``report``: where, and the
    reason so far) when it never connected."""
    if connected and hello is not None:
        log.info("peer %s (%s) session ended: %s", hello.instance_id, hello.keyid, message)
    telemetry, refusal = report
    if not connected:
        reason = "timeout" if message == HANDSHAKE_TIMED_OUT else refusal
        telemetry.handshake(HANDSHAKE_REFUSED, reason)


def _log_refusal(session_id: str, hello: Hello | None, message: str) -> None:
    """A refusal before a valid PROOF: what the peer claimed is unproven, so only info."""
    # The names are only what the peer claimed: it never completed the handshake.
    who = (
        f"{printable(hello.instance_id)} ({hello.keyid})"
        if hello is not None
        else f"session {session_id}"
    )
    log.info("refused %s before connecting: %s", who, printable(message, 500))
