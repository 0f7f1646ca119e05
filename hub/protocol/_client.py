"""ClientSession: a client's side of one session with a hub, without I/O.

Bytes, transport events and times go in (``receive``, ``link_event``,
``advance``); frames to send (``next_frame`` then ``frame_sent``) and decisions
come out: an exception that ends the session, ``done`` with the ``totals`` of a
one-shot sync, and calls on a ``SessionListener``. The session owns no socket,
no clock and no database: the driver (the agent's connection thread) moves the
frames and passes the time, and the local oplog is reached through
``ClientOplog``. One thread drives one session; make a new one per connection.
The session owns its parts: the ``Sender`` (which frame goes next, with the
``Outflow`` and the ``SendWindow``), the ``DiffRounds`` and the
``OperationFrames``.

The order of work (docs/protocol.md §5 (Handshake), §6.2 (The client's order of work)):

1. HELLO; the hub's CHALLENGE checked against the pinned keyid and instance id;
   PROOF; the session is connected when the hub's send_config arrives;
2. the local change mark is read before any diff is built (subscribe before
   snapshot), so a change made meanwhile is still streamed;
3. this client's send_config and list_resources (``SharedConfig``);
4. a round of diffs, one per selection of the ``SyncScope``, each answered by
   exactly one reply, in order; requested operations go out as created batches
   (at most ``batch_operations`` operations and one frame each), requested ids
   that no longer exist as deleted_operations;
5. one-shot (``once``): a round that requested anything is followed at once by
   another, up to ``MAX_ONCE_ROUNDS``; the session is done when a round requests
   nothing. Running: live changes past the mark are polled every
   ``poll_interval``, and at once after ``local_change`` (a writer's wake-up),
   and sent as updated_operations; a new round every
   ``rediff_interval``, or at once (at most ``CONFIRM_ROUNDS`` times running)
   after a round that requested operations.

Logs on demand: a hub's ``request_log`` goes to the session's ``LogServer``, whose
answer is queued ahead of the other data (§6.7 (Logs on demand)).

Flow control: at most ``send_window`` data frames ahead of the hub's last
acknowledgement, asked for every ``ack_every`` frames by an ``ids = [0]`` diff
(§6.1 (Model)); nothing but heartbeats and acknowledgements while throttled
(§7.2 (Throttle)); a heartbeat after an interval of sending nothing, and a hub
silent for three intervals is a lost connection (§7.1 (Heartbeats)).

Failures are raised by the call that finds them (§9 (Errors)): ``HubRefused``
when the hub is not the pinned one, refuses this client (ERROR_AUTH), or the
encrypted link fails twice in a row (a wrong CURVE key, §2.2 (Encryption:
CurveZMQ)); ``HubUnavailable`` for what a later connection may fix; and
``ClientError`` for what no reconnect fixes: a diff too large for one frame, or
a one-shot sync still not confirmed after ``MAX_ONCE_ROUNDS`` rounds.
"""

from __future__ import annotations

import enum
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from hub.errors import AuthError, HubRefused, HubUnavailable, ProtocolError
from hub.pb import synchub_pb2 as pb
from hub.protocol._batching import MAX_BATCH_OPERATIONS
from hub.protocol._codec import action_of, config_frames, encode_item
from hub.protocol._digest import RESYNC_VERSION
from hub.protocol._flow import Sender, SendWindow
from hub.protocol._handshake import ClientHandshake
from hub.protocol._items import ack_diff_frame, closing_error_frame, decode_hub_item
from hub.protocol._logs import LogServer
from hub.protocol._outgoing import ClientOplog, OperationFrames, SyncCounts
from hub.protocol._reach import LinkEvent, ReachWatch
from hub.protocol._resync import DigestAsk, Outgoing, ResyncOplog, ResyncRounds
from hub.protocol._rounds import DiffRounds, RoundEnd
from hub.protocol._scope import DiffSelection, SyncScope

log = logging.getLogger(__name__)

class SessionListener(Protocol):
    """Told as a session makes progress; called from the thread driving it."""

    def connected(self) -> None:
        """The hub accepted this client (its send_config arrived)."""

    def round_finished(self, in_sync: bool) -> None:
        """A round of diffs was answered; ``in_sync`` when the hub requested nothing."""

    def progress(self, sent: int, requested: int) -> None:
        """Operations sent and requested so far, after each batch answering a diff."""

    def config_received(self, config: pb.RemoteConfig) -> None:
        """The hub sent its config (on connecting, and whenever it changes)."""


class _Quiet:
    def connected(self) -> None:
        pass

    def round_finished(self, in_sync: bool) -> None:
        pass

    def progress(self, sent: int, requested: int) -> None:
        pass

    def config_received(self, config: pb.RemoteConfig) -> None:
        pass


@dataclass(frozen=True)
class ClientSessionSettings:
    """Timing and sizing of one client session; durations in seconds."""

    heartbeat_interval: float = 15.0
    handshake_timeout: float = 10.0
    answer_timeout: float = 30.0
    """How long to wait for the CHALLENGE, reaching the hub included."""
    poll_interval: float = 0.5
    rediff_interval: float = 300.0
    max_frame_bytes: int = 16 * 1024 * 1024
    batch_operations: int = MAX_BATCH_OPERATIONS
    send_window: int = 32
    ack_every: int = 8
    once: bool = False
    """Sync until the hub confirms it holds everything, then be done."""
    resync: bool = True
    """Offer resumed sync (§6.8 (Resumed sync)); without it every round is full diffs."""

    def __post_init__(self) -> None:
        if not 1 <= self.ack_every <= self.send_window:
            raise ValueError("need 1 <= ack_every <= send_window")

    @property
    def silence_limit(self) -> float:
        """A hub silent this long is gone (three heartbeat intervals)."""
        return 3 * self.heartbeat_interval


@dataclass(frozen=True)
class SharedConfig:
    """What a client tells a hub about itself, already filtered by what it grants that hub."""

    config: pb.RemoteConfig
    repo_ids: tuple[str, ...]
    plan_ids: tuple[str, ...]

    def frames(self) -> list[bytes]:
        """send_config then list_resources."""
        return config_frames(self.config, list(self.repo_ids), list(self.plan_ids))


@dataclass(frozen=True)
class SyncTotals:
    """What a session did: operations requested per round of diffs, sent and deleted."""

    rounds: tuple[int, ...]
    sent: int
    deleted: int


class ClientPhase(enum.Enum):
    """Where a ClientSession is: before the HELLO, in the handshake, syncing, or done."""

    NEW = "new"
    CHALLENGE = "waiting for the CHALLENGE"
    CONFIG = "waiting for the hub's config"
    SYNCING = "syncing"
    DONE = "done"


class LinkWatch:
    """What the transport under one session reported, and what it means for the session."""

    def __init__(self, who: str, reach: ReachWatch | None = None) -> None:
        self._who = who
        self._reach = reach
        self.tcp_connected = False
        self._secured = False
        self._securing_failures = 0

    def event(self, event: LinkEvent) -> None:
        handler = _LINK_HANDLERS.get(event)
        if handler is not None:
            handler(self)

    def no_answer(self, answering: str, seconds: float) -> HubUnavailable:
        """The error for a hub that did not answer within ``seconds``: the ReachWatch's
        verdict when it has one."""
        verdict = self._reach.current if self._reach is not None else None
        if verdict is not None:
            return HubUnavailable(f"{verdict.message} (not answered within {seconds:g}s)")
        if not self.tcp_connected:
            return HubUnavailable(
                f"{self._who} is unreachable: no connection within {seconds:g}s "
                "(is the hub running, and is the endpoint right?)"
            )
        return HubUnavailable(f"{self._who} did not answer {answering} within {seconds:g}s")

    def _on_tcp_connected(self) -> None:
        self.tcp_connected = True

    def _on_secured(self) -> None:
        self._secured = True

    def _on_securing_failed(self) -> None:
        # The transport retries by itself; a failure that repeats is a wrong key.
        self._securing_failures += 1
        if self._securing_failures < 2:
            return
        raise HubRefused(
            f"{self._who}: the encrypted (CURVE) connection failed: check that "
            "known_hosts curve_public_key is the hub's (`synchub id` on the hub "
            "prints it) and that the hub has curve = true"
        )

    def _on_disconnected(self) -> None:
        if self._secured:
            raise HubUnavailable(f"{self._who}: connection lost")


_LINK_HANDLERS: Mapping[LinkEvent, Callable[[LinkWatch], None]] = {
    LinkEvent.CONNECTED: LinkWatch._on_tcp_connected,
    LinkEvent.SECURED: LinkWatch._on_secured,
    LinkEvent.SECURING_FAILED: LinkWatch._on_securing_failed,
    LinkEvent.DISCONNECTED: LinkWatch._on_disconnected,
}


class ClientSession:
    """One session of a client with one hub (see the module docstring)."""

    def __init__(
        self,
        handshake: ClientHandshake,
        oplog: ClientOplog,
        scope: SyncScope,
        shared: SharedConfig,
        *,
        settings: ClientSessionSettings | None = None,
        who: str = "",
        listener: SessionListener | None = None,
        logger: logging.Logger | None = None,
        logs: LogServer | None = None,
        reach: ReachWatch | None = None,
    ) -> None:
        self.settings = settings = settings or ClientSessionSettings()
        self.who = who = who or f"hub {handshake.pin.instance_id}"
        keyid = handshake.identity.keyid
        self._handshake = handshake
        self._oplog = oplog
        self._scope = scope
        self._shared = shared
        self._listener: SessionListener = listener or _Quiet()
        self._log = logger or log
        self._logs = logs or LogServer.refusing(who=who, log=self._log)
        self.phase = ClientPhase.NEW
        self.connected = False
        self.in_sync = False
        self._counts = counts = SyncCounts()
        self._frames = OperationFrames(
            oplog, scope, batch_operations=settings.batch_operations,
            max_frame_bytes=settings.max_frame_bytes, counts=counts,
            progress=self._listener.progress, who=who, log=self._log,
        )
        self._rounds = DiffRounds(
            oplog, scope, keyid, once=settings.once, rediff_interval=settings.rediff_interval,
            max_frame_bytes=settings.max_frame_bytes, counts=counts, who=who,
        )
        self._resync_oplog = (
            oplog if settings.resync and isinstance(oplog, ResyncOplog) else None
        )
        self._resync: ResyncRounds | None = None
        self._resends = True
        self._window = SendWindow(settings.send_window, settings.ack_every)
        self._sender = Sender(ack_diff_frame(keyid), settings.heartbeat_interval, self._window)
        self._outflow = self._sender.outflow
        self._link = LinkWatch(who, reach)
        self._deadline = math.inf
        self._awaiting = ("", 0.0)
        self._mark = 0
        self._next_poll = math.inf
        self._changed = False
        self._last_received = 0.0

    @property
    def done(self) -> bool:
        """A one-shot sync is complete: the latest round of diffs requested nothing."""
        return self.phase is ClientPhase.DONE

    @property
    def totals(self) -> SyncTotals:
        counts = self._counts
        return SyncTotals(tuple(counts.rounds), counts.sent, counts.deleted)

    # -- input ---------------------------------------------------------------------------

    def start(self, now: float) -> None:
        """Begin the handshake: the HELLO is the first frame to send."""
        if self.phase is not ClientPhase.NEW:
            raise RuntimeError("a ClientSession is started once")
        hello = self._handshake.hello_frame()
        if self._resync_oplog is not None:
            item = pb.SyncStreamItem.FromString(hello)
            item.handshake.resync = RESYNC_VERSION
            hello = encode_item(item)
        self._sender.handshake(hello)
        self._await(ClientPhase.CHALLENGE, now, self.settings.answer_timeout, "the HELLO")

    def link_event(self, event: LinkEvent) -> None:
        """Take what the transport reported; HubRefused or HubUnavailable if it ends the session."""
        self._link.event(event)

    def local_change(self) -> None:
        """The local oplog was written (a writer's wake-up): look at the next ``advance``,
        once for any number of calls, after what waits to be sent (not when ``once``)."""
        self._changed = self._changed or not self.settings.once

    def receive(self, parts: Sequence[bytes], now: float) -> None:
        """Handle one message from the hub (its frames); raises if it ends the session."""
        self._last_received = now
        if len(parts) != 1:
            raise HubUnavailable(f"{self.who} sent a {len(parts)}-frame message")
        try:
            item = decode_hub_item(parts[0])
        except ProtocolError as exc:
            raise HubUnavailable(f"{self.who} sent a frame that is not a SyncStreamItem") from exc
        if item is None:
            self._log.warning(
                "%s sent an item of a kind this client does not know; ignored", self.who
            )
            return
        handler = _HANDLERS[self.phase].get(action_of(item), _UNEXPECTED[self.phase])
        handler(self, item, now)

    def advance(self, now: float) -> None:
        """Do what is due at ``now``: give up on a silent hub, finish and start rounds, poll."""
        if self.phase in (ClientPhase.CHALLENGE, ClientPhase.CONFIG):
            if now >= self._deadline:
                raise self._link.no_answer(*self._awaiting)
            return
        if self.phase is not ClientPhase.SYNCING:
            return
        silent = now - self._last_received
        if silent >= self.settings.silence_limit:
            raise HubUnavailable(
                f"{self.who} was silent for {silent:.0f}s (3 heartbeat intervals): "
                "connection lost"
            )
        rounds: DiffRounds | ResyncRounds = self._resync or self._rounds
        if rounds.complete() and self._outflow.empty():
            self._finish_round(now)
            if self.done:
                return
        if not self.settings.once:
            if now >= rounds.next_rediff and not rounds.active:
                self._start_round()
            if now >= self._next_poll or (self._changed and self._outflow.empty()):
                self._next_poll = now + self.settings.poll_interval
                if self._outflow.empty():
                    self._changed = False
                    self._stream_changes()

    # -- output --------------------------------------------------------------------------

    def next_frame(self, now: float) -> bytes | None:
        """The frame to send now, if any; call ``frame_sent`` once it is sent.

        Until then the same frame is offered again, so a send that would block is
        simply retried later.
        """
        # A hub silent this long is lost (advance says so): no heartbeat goes to it.
        silent = now - self._last_received >= self.settings.silence_limit
        return self._sender.next_frame(now, heartbeat=not silent)

    def frame_sent(self, now: float) -> None:
        """The frame ``next_frame`` offered went out at ``now``."""
        self._sender.frame_sent(now)

    def wants_to_send(self, now: float) -> bool:
        """A handshake frame, an acknowledgement or data waits for the link to take it."""
        return self._sender.wants_to_send(now)

    def next_deadline(self, now: float) -> float:
        """When ``advance`` next has something to do, or a heartbeat falls due."""
        if self.phase is not ClientPhase.SYNCING:
            return self._deadline if self._deadline < math.inf else now
        due = min(
            self._sender.heartbeat_due(), self._last_received + self.settings.silence_limit
        )
        if not self.settings.once:
            due = min(due, now if self._changed and self._outflow.empty() else self._next_poll)
        throttle_end = self._outflow.throttled_until()
        if throttle_end > now:
            due = min(due, throttle_end)
        return due

    def closing_frame(self) -> bytes | None:
        """What to send before closing on purpose: an error once connected, else nothing."""
        return closing_error_frame() if self.connected else None

    # -- the handshake -------------------------------------------------------------------

    def _await(self, phase: ClientPhase, now: float, seconds: float, answering: str) -> None:
        self.phase = phase
        self._deadline = now + seconds
        self._awaiting = (answering, seconds)

    def _on_challenge(self, item: pb.SyncStreamItem, now: float) -> None:
        try:
            proof = self._handshake.proof_frame(item.handshake)
        except AuthError as exc:
            raise HubRefused(f"{self.who} does not match known_hosts: {exc}") from exc
        except ProtocolError as exc:
            raise HubUnavailable(f"{self.who} sent a malformed CHALLENGE: {exc}") from exc
        self._sender.handshake(proof)
        if self._resync_oplog is not None and item.handshake.resync >= RESYNC_VERSION:
            self._resync = ResyncRounds(
                self._resync_oplog, self._scope, self._handshake.identity.keyid, self._frames,
                once=self.settings.once, rediff_interval=self.settings.rediff_interval,
                max_frame_bytes=self.settings.max_frame_bytes, counts=self._counts, who=self.who,
            )
        seconds = min(self.settings.answer_timeout, self.settings.handshake_timeout)
        self._await(ClientPhase.CONFIG, now, seconds, "this client's PROOF")

    def _on_connected(self, item: pb.SyncStreamItem, now: float) -> None:
        self.connected = True
        self.phase = ClientPhase.SYNCING
        self._sender.syncing = True
        self._deadline = math.inf
        self._listener.connected()
        self._log.info(
            "connected to %s (keyid %s) as %s",
            self.who, self._handshake.pin.keyid, self._handshake.identity.keyid,
        )
        _on_hub_config(self, item, now)
        # Subscribe before snapshot: the change mark is read before any diff is built.
        self._mark = self._oplog.high_water()
        for frame in self._shared.frames():
            self._outflow.push(frame)
        if self._resync is None:
            self._start_round()
        # With resync, the round starts when the hub's sync_cursors arrive.
        self._next_poll = now + self.settings.poll_interval

    # -- items from the hub --------------------------------------------------------------

    def _on_throttle(self, item: pb.SyncStreamItem, now: float) -> None:
        delay = item.throttle.delay_ms
        self._log.debug("%s: throttled for %d ms", self.who, delay)
        self._outflow.throttle(delay, now)

    def _on_log_request(self, item: pb.SyncStreamItem, now: float) -> None:
        queued = self._outflow.replies_waiting()
        reply = self._logs.respond(item.request_log, now, queued=queued)
        if reply is not None:
            self._outflow.push_reply(reply)

    def _on_sync_cursors(self, item: pb.SyncStreamItem, now: float) -> None:
        if self._resync is None or self._resync.active:
            _unused(self, item, now)
            return
        self._resync.hub_cursors(item.sync_cursors.cursors)
        self._start_round()

    def _on_check_digest_reply(self, item: pb.SyncStreamItem, now: float) -> None:
        ask = self._window.answered()
        if self._resync is None or not isinstance(ask, DigestAsk):
            raise HubUnavailable(f"{self.who} answered a check_digest this client did not send")
        self._queue(self._resync.check_answered(ask, item.check_digest))

    def _on_diff_reply(self, item: pb.SyncStreamItem, now: float) -> None:
        requested = list(item.diff_operations.request_operations)
        if self._window.acknowledged():
            if requested:
                self._log.warning("%s requested %d ids in reply to an empty diff; ignored",
                                  self.who, len(requested))
            return
        selection = self._window.answered()
        if self._resync is not None and isinstance(selection, DiffSelection):
            self._queue(self._resync.diff_answered(selection, requested))
            return
        if not isinstance(selection, DiffSelection) or not self._rounds.answered(len(requested)):
            raise HubUnavailable(f"{self.who} answered a diff this client did not send")
        if requested:
            self._log.debug("%s requests %d operations of %s", self.who, len(requested),
                            selection.describe())
            self._outflow.push(self._frames.answer(requested))

    # -- rounds of diffs and live changes ------------------------------------------------

    def _queue(self, outgoing: list[Outgoing]) -> None:
        for entry, awaits in outgoing:
            if awaits is not None:
                assert isinstance(entry, bytes)
                self._window.expect_reply(entry, awaits)
            self._outflow.push(entry)

    def _start_round(self) -> None:
        if self._resync is not None:
            if not self._resends:
                self._stream_changes()  # a check covers what was queued before it
            outgoing, self._mark = self._resync.begin(self._mark, resend=self._resends)
            self._resends = False
            self._queue(outgoing)
            return
        diffs = self._rounds.begin()
        for frame, selection in diffs:
            self._window.expect_reply(frame, selection)
            self._outflow.push(frame)
        self._log.debug("%s: sent %d diffs", self.who, len(diffs))

    def _finish_round(self, now: float) -> None:
        rounds: DiffRounds | ResyncRounds = self._resync or self._rounds
        self.in_sync, requested = rounds.finish(now)
        self._listener.round_finished(self.in_sync)
        if self.in_sync:
            self._log.info("%s is in sync: it holds every operation of %s it may read",
                           self.who, self._handshake.instance_id)
        then = rounds.after(self.in_sync, requested)
        if then is RoundEnd.DONE:
            self.phase = ClientPhase.DONE
        elif then is RoundEnd.AGAIN:
            self._start_round()

    def _stream_changes(self) -> None:
        frames, self._mark = self._frames.changes(self._mark)
        for frame in frames:
            self._outflow.push(frame)


# Handlers that need nothing but what the session shows its tables.


def _on_error(session: ClientSession, item: pb.SyncStreamItem, now: float) -> None:
    state, message = item.error.state, item.error.message or "(no message)"
    if state == pb.CONNECTION_STATE_ERROR_AUTH:
        raise HubRefused(f"{session.who} refused this client: {message}")
    name = pb.ConnectionState.Name(state) if state in pb.ConnectionState.values() else state
    raise HubUnavailable(f"{session.who} ended the session ({name}): {message}")


def _not_a_challenge(session: ClientSession, item: pb.SyncStreamItem, now: float) -> None:
    raise HubUnavailable(
        f"{session.who} answered the HELLO with {action_of(item)}, not a CHALLENGE"
    )


def _not_the_config(session: ClientSession, item: pb.SyncStreamItem, now: float) -> None:
    raise HubUnavailable(
        f"{session.who} answered the PROOF with {action_of(item)}, not its config"
    )


def _on_hub_config(session: ClientSession, item: pb.SyncStreamItem, now: float) -> None:
    config = item.send_config.config
    session._listener.config_received(config)
    session._log.info(
        "%s shares %d repos and %d plans (config modno %d)",
        session.who, len(config.repos), len(config.plans), config.modno,
    )


def _on_hub_resources(session: ClientSession, item: pb.SyncStreamItem, now: float) -> None:
    session._log.debug(
        "%s lists repos %s, plans %s", session.who,
        list(item.list_resources.repo_ids), list(item.list_resources.plan_ids),
    )


def _on_heartbeat(session: ClientSession, item: pb.SyncStreamItem, now: float) -> None:
    pass  # any frame counts as liveness, and receive() noted it


def _unused(session: ClientSession, item: pb.SyncStreamItem, now: float) -> None:
    session._log.debug("%s sent %s; this client does not use it", session.who, action_of(item))


_Handler = Callable[[ClientSession, pb.SyncStreamItem, float], None]

_HANDLERS: Mapping[ClientPhase, Mapping[str, _Handler]] = {
    ClientPhase.NEW: {"error": _on_error},
    ClientPhase.CHALLENGE: {
        "handshake": ClientSession._on_challenge,
        "error": _on_error,
    },
    ClientPhase.CONFIG: {
        "send_config": ClientSession._on_connected,
        "error": _on_error,
    },
    ClientPhase.SYNCING: {
        "heartbeat": _on_heartbeat,
        "throttle": ClientSession._on_throttle,
        "diff_operations": ClientSession._on_diff_reply,
        "check_digest": ClientSession._on_check_digest_reply,
        "sync_cursors": ClientSession._on_sync_cursors,
        "send_config": _on_hub_config,
        "list_resources": _on_hub_resources,
        "request_log": ClientSession._on_log_request,
        "error": _on_error,
    },
    ClientPhase.DONE: {"error": _on_error},
}
"""What each action does in each phase; an action not listed goes to _UNEXPECTED."""

_UNEXPECTED: Mapping[ClientPhase, _Handler] = {
    ClientPhase.NEW: _unused,
    ClientPhase.CHALLENGE: _not_a_challenge,
    ClientPhase.CONFIG: _not_the_config,
    ClientPhase.SYNCING: _unused,
    ClientPhase.DONE: _unused,
}
