"""The client agent: syncs this node's own operations to every hub in ``known_hosts``.

One thread per known host owns that host's ZeroMQ DEALER socket (and the socket's
monitor, and its own handle on the local oplog): nothing else touches them. A
connection runs, in order (docs/protocol.md sections 4 to 6):

1. a DEALER with this process's fresh CURVE key pair, pinned to the hub's CURVE
   public key from the known_hosts entry, linger 0;
2. the handshake: HELLO, the hub's CHALLENGE checked against the pinned keyid and
   instance id, PROOF; the hub answers with its config (CONNECTED) or an error;
3. the local change mark is read *before* any diff is built (subscribe before
   snapshot), so a change made meanwhile is still streamed;
4. this node's send_config and list_resources, filtered by what the entry grants;
5. one diff_operations per selection the entry grants (see hub._agent_sync), each
   answered by exactly one reply, in order: requested operations go out as
   created batches (at most 256 operations and one frame each), requested ids
   that no longer exist as one deleted_operations;
6. live changes past the mark, polled from the store (another process may write
   it), as updated_operations; local deletes reach the hub through a periodic
   re-diff (and the one at every reconnect): the hub asks about the ids it holds
   that the client did not list;
7. heartbeats when nothing else was sent for an interval; a hub silent for three
   intervals is a lost connection; ``throttle`` holds outgoing data for its delay.

Failures: a hub that does not match its pin (keyid, instance id, CURVE key) or that
refuses this client (ERROR_AUTH) is a ``HubRefused``: ``run_once`` fails with the
reason, a running agent retries only slowly (the operator must act). Anything else
(unreachable, connection lost, other hub errors) is a ``HubUnavailable``: a
running agent reconnects with exponential backoff and jitter.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import zmq
from google.protobuf.message import DecodeError
from zmq.utils.monitor import recv_monitor_message

from hub.agent._local import LocalOplog
from hub.agent._sync import (
    MAX_BATCH_OPERATIONS,
    DiffSelection,
    Outflow,
    SyncScope,
    backoff_delay,
    batch_operations,
    batch_serialized,
    deleted_item,
    diff_item,
    operations_item,
    serialized_operations_frame,
)
from hub.config import Config, KnownHost
from hub.errors import (
    AuthError,
    ClientError,
    HubRefused,
    HubUnavailable,
    ProtocolError,
    SynchubError,
)
from hub.identity import CurveKeyPair, NodeIdentity, load_or_create_identity
from hub.pb import synchub_pb2 as pb
from hub.protocol import hello_item, new_nonce, proof_item, sign_proof, validate_challenge
from hub.store import SerializedOperation, oplog_path

log = logging.getLogger(__name__)


_STOP_CHECK_SECONDS = 0.1
_FRAMES_PER_TURN = 64
_DELETED_IDS_PER_FRAME = 1_000_000
_MONITORED_EVENTS = (
    zmq.EVENT_CONNECTED
    | zmq.EVENT_DISCONNECTED
    | zmq.EVENT_HANDSHAKE_SUCCEEDED
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
)
_HANDSHAKE_FAILED = (
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
)
_MAX_ONCE_ROUNDS = 10
_CONFIRM_ROUNDS = 3
_CURVE_OVERHEAD_BYTES = 64


class _Stopped(Exception):
    """The agent is stopping; unwinds a connection."""


@dataclass(frozen=True)
class AgentSettings:
    """Timing and sizing of the client agent; durations in seconds."""

    heartbeat_interval: float = 15.0
    handshake_timeout: float = 10.0
    connect_timeout: float = 30.0
    poll_interval: float = 0.5
    rediff_interval: float = 300.0
    reconnect_min: float = 1.0
    reconnect_max: float = 300.0
    refused_retry: float = 60.0
    max_frame_bytes: int = 16 * 1024 * 1024
    batch_operations: int = MAX_BATCH_OPERATIONS
    # Data frames sent ahead of the hub's last acknowledgement, and how often to ask
    # for one (an empty diff: its reply reflects every frame sent before it). Kept
    # well under the hub's throttle mark (64 frames waiting), so a fast client keeps
    # the hub busy without being paused.
    send_window: int = 32
    ack_every: int = 8

    def __post_init__(self) -> None:
        if not 1 <= self.ack_every <= self.send_window:
            raise ValueError("need 1 <= ack_every <= send_window")

    @property
    def silence_limit(self) -> float:
        """A hub silent this long is gone (three heartbeat intervals)."""
        return 3 * self.heartbeat_interval


@dataclass(frozen=True)
class SyncReport:
    """What ``run_once`` did for one hub.

    ``rounds`` holds the number of operations the hub requested in each round of
    diffs; the last one is 0 (the hub confirmed it holds everything).
    """

    host: str
    rounds: tuple[int, ...]
    sent: int
    deleted: int


@dataclass(frozen=True)
class HostStatus:
    """The connection to one hub, as last reported by its thread.

    ``state`` is starting, connecting, connected, retry-wait, refused, stopped (or
    done / failed after ``run_once``); ``sessions`` counts sessions that reached
    CONNECTED; ``in_sync`` says the latest round of diffs came back empty.
    """

    state: str = "starting"
    sessions: int = 0
    in_sync: bool = False
    message: str = ""


Progress = Callable[[str, int, int], None]
"""(hub instance id, operations sent, operations requested so far)."""


class Agent:
    """Syncs the local oplog of one node to its known hubs.

    ``run_once()`` syncs every hub and returns when each confirmed it is in sync
    (ClientError otherwise); or ``start()`` to keep syncing in background threads
    until ``stop()``.
    """

    def __init__(
        self,
        config: Config,
        *,
        identity: NodeIdentity | None = None,
        settings: AgentSettings | None = None,
        progress: Progress | None = None,
        rand: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not config.known_hosts:
            where = config.path if config.path is not None else "the built-in defaults"
            raise ClientError(
                f"no [[known_hosts]] in {where}: add the hub's `synchub id` output"
            )
        self.config = config
        self.identity_created = False
        if identity is None:
            identity, self.identity_created = load_or_create_identity(config.data_dir)
        self.identity = identity
        self.settings = settings or AgentSettings()
        self._progress = progress
        self._rand = rand
        self._clock = clock
        self._curve = CurveKeyPair.generate()
        self._stop = threading.Event()
        self._context: zmq.Context[Any] | None = None
        self._threads: list[threading.Thread] = []
        self._links = [_HostLink(self, host) for host in config.known_hosts]

    @property
    def keyid(self) -> str:
        return self.identity.signing.keyid

    def status(self) -> dict[str, HostStatus]:
        return {link.host.instance_id: link.status for link in self._links}

    def request_stop(self) -> None:
        """Ask every connection to end (safe from a signal handler); see ``stop``."""
        self._stop.set()

    # -- one-shot --------------------------------------------------------------------------

    def run_once(self, timeout: float = 30.0) -> list[SyncReport]:
        """Sync every known hub until it confirms it holds everything; ClientError if not.

        ``timeout`` bounds reaching each hub and completing the handshake; after
        that a hub silent for three heartbeat intervals counts as lost.
        """
        if self._threads:
            raise ClientError("this agent is already running")
        self._context = zmq.Context()
        try:
            for link in self._links:
                self._spawn(link, functools.partial(link.once, timeout))
            self._join_all()
        finally:
            self._shutdown()
        reports: list[SyncReport] = []
        problems: list[SynchubError] = []
        for link in self._links:
            outcome = link.outcome
            if isinstance(outcome, SyncReport):
                reports.append(outcome)
            elif isinstance(outcome, SynchubError):
                problems.append(outcome)
            elif isinstance(outcome, _Stopped):
                problems.append(ClientError("interrupted before the sync finished"))
            else:
                problems.append(
                    ClientError(f"hub {link.host.instance_id}: the sync ended unexpectedly")
                )
        if len(problems) == 1:
            raise problems[0]
        if problems:
            raise ClientError("; ".join(dict.fromkeys(str(p) for p in problems)))
        return reports

    # -- running -----------------------------------------------------------------------------

    def start(self) -> None:
        """Start one connection thread per known hub; ``stop()`` in a finally."""
        if self._threads:
            raise ClientError("this agent is already running")
        self._stop.clear()
        self._context = zmq.Context()
        for link in self._links:
            self._spawn(link, link.forever)

    def stop(self, timeout: float = 10.0) -> None:
        """End every connection, close the sockets and wait for the threads."""
        self._stop.set()
        self._shutdown(timeout)

    def _spawn(self, link: _HostLink, target: Callable[[], None]) -> None:
        thread = threading.Thread(
            target=target, name=f"synchub-agent-{link.host.instance_id}", daemon=False
        )
        self._threads.append(thread)
        thread.start()

    def _join_all(self) -> None:
        for thread in self._threads:
            while thread.is_alive():
                thread.join(_STOP_CHECK_SECONDS)

    def _shutdown(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                log.error("%s did not stop within %.0fs", thread.name, timeout)
        self._threads = [t for t in self._threads if t.is_alive()]
        if self._context is not None and not self._threads:
            self._context.term()
            self._context = None

    # -- for the connections ----------------------------------------------------------------

    def _socket_context(self) -> zmq.Context[Any]:
        assert self._context is not None
        return self._context


class _HostLink:
    """Everything about one known hub; its methods run in that hub's thread."""

    def __init__(self, agent: Agent, host: KnownHost) -> None:
        self.agent = agent
        self.host = host
        self.status = HostStatus()
        self.outcome: SyncReport | BaseException | None = None
        self.scope = SyncScope.for_host(agent.config, host.permissions)
        if not self.scope.selections:
            log.warning(
                "known_hosts entry %s grants no read_operations: none of this node's "
                "operations go to it", host.instance_id,
            )

    def _report(self, **changes: Any) -> None:
        # One attribute assignment of a fresh frozen object: readers see old or new.
        self.status = replace(self.status, **changes)

    def once(self, timeout: float) -> None:
        """Sync this hub once; the result (a SyncReport or the error) goes to ``outcome``."""
        try:
            report = _Connection(self, once=True, timeout=timeout).run()
            assert report is not None
            self._report(state="done", in_sync=True, message="in sync")
            self.outcome = report
        except (SynchubError, _Stopped) as exc:
            self._report(state="failed", message=str(exc))
            self.outcome = exc
        except Exception as exc:
            log.exception("hub %s: the sync failed", self.host.instance_id)
            self._report(state="failed", message=str(exc))
            self.outcome = ClientError(f"hub {self.host.instance_id}: internal error: {exc}")

    def forever(self) -> None:
        agent = self.agent
        settings = agent.settings
        attempt = 0
        while not agent._stop.is_set():
            connection = _Connection(self, once=False, timeout=settings.connect_timeout)
            try:
                connection.run()
            except _Stopped:
                break
            except HubRefused as exc:
                log.error("%s; retrying in %.0fs", exc, settings.refused_retry)
                self._report(state="refused", in_sync=False, message=str(exc))
                agent._stop.wait(settings.refused_retry)
                continue
            except SynchubError as exc:
                self._report(state="retry-wait", in_sync=False, message=str(exc))
                level = logging.INFO if connection.connected else logging.WARNING
                log.log(level, "%s", exc)
            except Exception as exc:
                log.exception("hub %s: connection failed", self.host.instance_id)
                self._report(state="retry-wait", in_sync=False, message=str(exc))
            attempt = 0 if connection.connected else attempt + 1
            delay = backoff_delay(
                attempt,
                minimum=settings.reconnect_min,
                maximum=settings.reconnect_max,
                rand=agent._rand,
            )
            log.info("hub %s: reconnecting in %.1fs", self.host.instance_id, delay)
            agent._stop.wait(delay)
        self._report(state="stopped", in_sync=False)


@dataclass
class _Round:
    """One round of diffs: how many replies are still due and what they requested."""

    pending: int
    requested: int = 0


@dataclass(frozen=True)
class _Ack:
    """An acknowledgement diff in flight: its reply confirms the first ``frames`` data frames."""

    frames: int


@dataclass
class _Counters:
    sent: int = 0
    deleted: int = 0
    requested: int = 0
    rounds: list[int] = field(default_factory=list)


class _Connection:
    """One session with one hub, from socket creation to close, in the link's thread."""

    def __init__(self, link: _HostLink, *, once: bool, timeout: float) -> None:
        self.link = link
        self.host = link.host
        self.agent = link.agent
        self.settings = link.agent.settings
        self.once = once
        self.timeout = timeout
        self.clock = link.agent._clock
        self.connected = False
        self.who = f"hub {self.host.instance_id} at {self.host.endpoint}"
        self._local: LocalOplog | None = None
        self._socket: zmq.Socket[Any] | None = None
        self._monitor: zmq.Socket[Any] | None = None
        self._tcp_connected = False
        self._handshake_done = False
        self._handshake_failures = 0
        self._outflow = Outflow()
        # Diffs in the order they went out (replies come in that order); queued
        # ones join when sent, since acknowledgements may go out ahead of them.
        self._outstanding: deque[DiffSelection | _Ack] = deque()
        self._queued_diffs: deque[tuple[bytes, DiffSelection]] = deque()
        self._frames_sent = 0
        self._frames_acked = 0
        self._ack_due = False
        self._round: _Round | None = None
        self._counters = _Counters()
        self._last_sent = 0.0
        self._last_received = 0.0

    # -- lifecycle -------------------------------------------------------------------------

    def run(self) -> SyncReport | None:
        self._local = local = LocalOplog(oplog_path(self.agent.config.data_dir))
        try:
            self._open()
            self.link._report(state="connecting")
            self._handshake()
            return self._sync(local)
        finally:
            self._local = None
            try:
                self._close()
            finally:
                local.close()

    def _open(self) -> None:
        context = self.agent._socket_context()
        sock: zmq.Socket[Any] = context.socket(zmq.DEALER)
        self._socket = sock
        sock.setsockopt(zmq.LINGER, 0)
        # Room for the CURVE MESSAGE command around the item (libzmq counts it).
        sock.setsockopt(zmq.MAXMSGSIZE, self.settings.max_frame_bytes + _CURVE_OVERHEAD_BYTES)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, 5000)
        curve = self.agent._curve
        sock.setsockopt(zmq.CURVE_PUBLICKEY, curve.public)
        sock.setsockopt(zmq.CURVE_SECRETKEY, curve.secret)
        sock.setsockopt(zmq.CURVE_SERVERKEY, self.host.curve_public_key.encode("ascii"))
        self._monitor = sock.get_monitor_socket(_MONITORED_EVENTS)
        sock.connect(self.host.endpoint)

    def _close(self) -> None:
        sock, monitor = self._socket, self._monitor
        self._socket = self._monitor = None
        if sock is not None:
            if self.connected:
                # Best effort: lets the hub end the session now instead of on silence.
                with contextlib.suppress(zmq.ZMQError):
                    sock.send(
                        _encode(pb.SyncStreamItem(error=pb.SyncStreamItem.Error(
                            state=pb.CONNECTION_STATE_DISCONNECTED,
                            message="client agent closing the connection",
                        ))),
                        zmq.NOBLOCK,
                    )
            if monitor is not None:
                sock.disable_monitor()
        if monitor is not None:
            monitor.close(linger=0)
        if sock is not None:
            sock.close(linger=0)

    # -- handshake -------------------------------------------------------------------------

    def _handshake(self) -> None:
        agent = self.agent
        signing = agent.identity.signing
        nonce = new_nonce()
        self._send_now(hello_item(signing, agent.config.instance, nonce))
        item = self._await_item(self.timeout, "the HELLO")
        if item.WhichOneof("action") != "handshake":
            raise HubUnavailable(
                f"{self.who} answered the HELLO with {item.WhichOneof('action')}, "
                "not a CHALLENGE"
            )
        try:
            challenge = validate_challenge(
                item.handshake,
                pinned_keyid=self.host.keyid,
                pinned_instance_id=self.host.instance_id,
                client_instance_id=agent.config.instance,
                client_keyid=signing.keyid,
                client_nonce=nonce,
            )
        except AuthError as exc:
            raise HubRefused(f"{self.who} does not match known_hosts: {exc}") from exc
        except ProtocolError as exc:
            raise HubUnavailable(f"{self.who} sent a malformed CHALLENGE: {exc}") from exc
        self._send_now(proof_item(sign_proof(signing, challenge.transcript)))
        answer = self._await_item(
            min(self.timeout, self.settings.handshake_timeout), "this client's PROOF"
        )
        if answer.WhichOneof("action") != "send_config":
            raise HubUnavailable(
                f"{self.who} answered the PROOF with {answer.WhichOneof('action')}, "
                "not its config"
            )
        self.connected = True
        status = self.link.status
        self.link._report(
            state="connected", sessions=status.sessions + 1, in_sync=False, message=""
        )
        log.info(
            "connected to %s (keyid %s) as %s", self.who, self.host.keyid,
            agent.identity.signing.keyid,
        )
        self._on_item(answer, self.clock())

    def _await_item(self, seconds: float, answering: str) -> pb.SyncStreamItem:
        """The hub's next item (an ``error`` raises), waited for at most ``seconds``."""
        deadline = self.clock() + seconds
        sock = self._socket
        assert sock is not None and self._monitor is not None
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        poller.register(self._monitor, zmq.POLLIN)
        while True:
            self._check_stop()
            now = self.clock()
            if now >= deadline:
                raise self._no_answer(answering, seconds)
            events = dict(poller.poll(_poll_ms(min(deadline - now, _STOP_CHECK_SECONDS))))
            if self._monitor in events:
                self._drain_monitor()
            if sock in events:
                item = self._receive()
                if item is not None:
                    self._raise_if_error(item)
                    return item

    def _no_answer(self, answering: str, seconds: float) -> HubUnavailable:
        if not self._tcp_connected:
            return HubUnavailable(
                f"{self.who} is unreachable: no connection within {seconds:g}s "
                "(is the hub running, and is the endpoint right?)"
            )
        return HubUnavailable(f"{self.who} did not answer {answering} within {seconds:g}s")

    # -- sync ---------------------------------------------------------------------------------

    def _sync(self, local: LocalOplog) -> SyncReport | None:
        settings = self.settings
        agent = self.agent
        # Subscribe before snapshot: the change mark is read before any diff is built.
        mark = local.high_water()
        config = agent.config
        remote = config.remote_config_for(self.host.permissions)
        repo_ids, plan_ids = config.resource_ids_for(self.host.permissions)
        self._outflow.push(_encode(pb.SyncStreamItem(
            send_config=pb.SyncStreamItem.SendConfig(config=remote)
        )))
        self._outflow.push(_encode(pb.SyncStreamItem(
            list_resources=pb.SyncStreamItem.ListResources(
                repo_ids=list(repo_ids), plan_ids=list(plan_ids)
            )
        )))
        self._start_round(local)
        now = self.clock()
        next_poll = now + settings.poll_interval
        next_rediff = float("inf")
        sock = self._socket
        assert sock is not None and self._monitor is not None
        while True:
            self._check_stop()
            now = self.clock()
            self._pump(sock, now)
            if now - self._last_received >= settings.silence_limit:
                raise HubUnavailable(
                    f"{self.who} was silent for {now - self._last_received:.0f}s "
                    "(3 heartbeat intervals): connection lost"
                )
            if now - self._last_sent >= settings.heartbeat_interval:
                self._send_heartbeat(sock, now)
            if self._round is not None and self._round.pending == 0 and self._outflow.empty():
                done = self._finish_round(local)
                if done is not None:
                    return done
                if not self.once:
                    next_rediff = now + self._rediff_delay()
            if not self.once:
                if now >= next_rediff and self._round is None:
                    self._start_round(local)
                    next_rediff = float("inf")
                if now >= next_poll:
                    next_poll = now + settings.poll_interval
                    if self._outflow.empty():
                        mark = self._stream_changes(local, mark)
            self._wait(sock, now, next_poll)

    def _wait(self, sock: zmq.Socket[Any], now: float, next_poll: float) -> None:
        poller = zmq.Poller()
        want_out = (self._window_open() and self._outflow.peek(now) is not None) or self._ack_due
        poller.register(sock, zmq.POLLIN | (zmq.POLLOUT if want_out else 0))
        poller.register(self._monitor, zmq.POLLIN)
        due = min(
            next_poll if not self.once else float("inf"),
            self._last_sent + self.settings.heartbeat_interval,
            self._last_received + self.settings.silence_limit,
        )
        throttle_end = self._outflow.throttled_until()
        if throttle_end > now:
            due = min(due, throttle_end)
        events = dict(poller.poll(_poll_ms(min(max(due - now, 0.0), _STOP_CHECK_SECONDS))))
        if self._monitor in events:
            self._drain_monitor()
        if events.get(sock, 0) & zmq.POLLIN:
            for _ in range(_FRAMES_PER_TURN):
                item = self._receive()
                if item is None:
                    break
                self._raise_if_error(item)
                self._on_item(item, self.clock())

    def _start_round(self, local: LocalOplog) -> None:
        selections = self.link.scope.selections
        keyid = self.agent.keyid
        self._round = _Round(pending=len(selections))
        for selection in selections:
            ids, modnos = local.have(selection)
            frame = _encode(diff_item(selection, keyid, ids, modnos))
            if len(frame) > self.settings.max_frame_bytes:
                raise ClientError(
                    f"the diff of {selection.describe()} lists {len(ids)} operations, "
                    f"{len(frame)} bytes: more than one frame may carry "
                    f"({self.settings.max_frame_bytes} bytes)"
                )
            self._queued_diffs.append((frame, selection))
            self._outflow.push(frame)
        log.debug("%s: sent %d diffs", self.who, len(selections))

    def _finish_round(self, local: LocalOplog) -> SyncReport | None:
        done_round = self._round
        assert done_round is not None
        self._round = None
        counters = self._counters
        counters.rounds.append(done_round.requested)
        in_sync = done_round.requested == 0
        self.link._report(in_sync=in_sync)
        if in_sync:
            log.info("%s is in sync: it holds every operation of %s it may read",
                     self.who, self.agent.config.instance)
        if not self.once:
            del counters.rounds[:-_CONFIRM_ROUNDS]
            return None
        if in_sync:
            return SyncReport(
                host=self.host.instance_id,
                rounds=tuple(counters.rounds),
                sent=counters.sent,
                deleted=counters.deleted,
            )
        if len(counters.rounds) >= _MAX_ONCE_ROUNDS:
            raise ClientError(
                f"{self.who} still requested {done_round.requested} operations after "
                f"{len(counters.rounds)} rounds of diffs (see the log for operations "
                "too large to send)"
            )
        self._start_round(local)
        return None

    def _rediff_delay(self) -> float:
        """After a round that requested operations, confirm at once (a few times at most)."""
        recent = self._counters.rounds[-_CONFIRM_ROUNDS:]
        if recent[-1] and not (len(recent) == _CONFIRM_ROUNDS and all(recent)):
            return 0.0
        return self.settings.rediff_interval

    def _stream_changes(self, local: LocalOplog, mark: int) -> int:
        changes = local.changes_since(mark)
        allowed = [op for op in changes.operations if self.link.scope.allows(op)]
        for batch in self._batches(allowed):
            self._outflow.push(_encode(operations_item(batch, "updated_operations")))
            self._counters.sent += len(batch)
        if changes.deleted_ids:
            # Out-of-scope or never-sent ids are harmless: the hub ignores unknown ids.
            self._outflow.push(_encode(deleted_item(changes.deleted_ids)))
            self._counters.deleted += len(changes.deleted_ids)
        if allowed or changes.deleted_ids:
            log.debug(
                "%s: streaming %d changed and %d deleted operations",
                self.who, len(allowed), len(changes.deleted_ids),
            )
        return changes.mark

    def _batches(self, ops: list[pb.Operation]) -> Iterator[list[pb.Operation]]:
        def oversized(op: pb.Operation) -> None:
            log.error(
                "operation %d is %d bytes, more than one frame (%d) may carry: not sent",
                op.id, op.ByteSize(), self.settings.max_frame_bytes,
            )

        return batch_operations(
            ops,
            max_operations=self.settings.batch_operations,
            max_frame_bytes=self.settings.max_frame_bytes,
            on_oversized=oversized,
        )

    def _serialized_batches(
        self, ops: list[SerializedOperation]
    ) -> Iterator[list[SerializedOperation]]:
        def oversized(op: SerializedOperation) -> None:
            log.error(
                "operation %d is %d bytes, more than one frame (%d) may carry: not sent",
                op.id, len(op.data), self.settings.max_frame_bytes,
            )

        return batch_serialized(
            ops,
            max_operations=self.settings.batch_operations,
            max_frame_bytes=self.settings.max_frame_bytes,
            on_oversized=oversized,
        )

    def _answer(self, local: LocalOplog, requested: list[int]) -> Iterator[bytes]:
        """The frames answering one diff reply, read from the store as they are sent."""
        present: set[int] = set()
        for part in local.load_serialized_parts(requested):
            allowed = self.link.scope.filter(part)
            present.update(op.id for op in allowed)
            for batch in self._serialized_batches(allowed):
                self._counters.sent += len(batch)
                self._show_progress()
                yield serialized_operations_frame(batch, "created_operations")
        missing = sorted(set(requested) - present)
        for start in range(0, len(missing), _DELETED_IDS_PER_FRAME):
            chunk = missing[start : start + _DELETED_IDS_PER_FRAME]
            self._counters.deleted += len(chunk)
            yield _encode(deleted_item(chunk))

    def _show_progress(self) -> None:
        progress = self.agent._progress
        if progress is not None:
            progress(self.host.instance_id, self._counters.sent, self._counters.requested)

    # -- items from the hub ------------------------------------------------------------------

    def _on_item(self, item: pb.SyncStreamItem, now: float) -> None:
        action = item.WhichOneof("action")
        if action == "heartbeat":
            return
        if action == "throttle":
            delay = item.throttle.delay_ms
            log.debug("%s: throttled for %d ms", self.who, delay)
            self._outflow.throttle(delay, now)
        elif action == "diff_operations":
            self._on_diff_reply(list(item.diff_operations.request_operations))
        elif action == "send_config":
            config = item.send_config.config
            log.info(
                "%s shares %d repos and %d plans (config modno %d)",
                self.who, len(config.repos), len(config.plans), config.modno,
            )
        elif action == "list_resources":
            log.debug(
                "%s lists repos %s, plans %s", self.who,
                list(item.list_resources.repo_ids), list(item.list_resources.plan_ids),
            )
        else:
            log.debug("%s sent %s; this client does not use it", self.who, action)

    def _on_diff_reply(self, requested: list[int]) -> None:
        if self._outstanding and isinstance(self._outstanding[0], _Ack):
            ack = self._outstanding.popleft()
            assert isinstance(ack, _Ack)
            self._frames_acked = max(self._frames_acked, ack.frames)
            if requested:
                log.warning("%s requested %d ids in reply to an empty diff; ignored",
                            self.who, len(requested))
            return
        if not self._outstanding or self._round is None:
            raise HubUnavailable(f"{self.who} answered a diff this client did not send")
        selection = self._outstanding.popleft()
        assert isinstance(selection, DiffSelection)
        self._round.pending -= 1
        self._round.requested += len(requested)
        self._counters.requested += len(requested)
        if requested:
            log.debug("%s requests %d operations of %s", self.who, len(requested),
                      selection.describe())
            assert self._local is not None
            self._outflow.push(self._answer(self._local, requested))

    # -- socket plumbing ----------------------------------------------------------------------

    def _receive(self) -> pb.SyncStreamItem | None:
        sock = self._socket
        assert sock is not None
        while True:
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return None
            self._last_received = self.clock()
            if len(frames) != 1:
                raise HubUnavailable(f"{self.who} sent a {len(frames)}-frame message")
            try:
                item = pb.SyncStreamItem.FromString(frames[0])
            except (DecodeError, RuntimeError, ValueError) as exc:
                raise HubUnavailable(f"{self.who} sent a frame that is not a SyncStreamItem") \
                    from exc
            if item.WhichOneof("action") is None:
                log.warning("%s sent an item of a kind this client does not know; ignored",
                            self.who)
                continue
            return item

    def _raise_if_error(self, item: pb.SyncStreamItem) -> None:
        if item.WhichOneof("action") != "error":
            return
        state, message = item.error.state, item.error.message or "(no message)"
        if state == pb.CONNECTION_STATE_ERROR_AUTH:
            raise HubRefused(f"{self.who} refused this client: {message}")
        name = pb.ConnectionState.Name(state) if state in pb.ConnectionState.values() else state
        raise HubUnavailable(f"{self.who} ended the session ({name}): {message}")

    def _drain_monitor(self) -> None:
        monitor = self._monitor
        assert monitor is not None
        while monitor.poll(0):
            event = recv_monitor_message(monitor)["event"]
            if event == zmq.EVENT_CONNECTED:
                self._tcp_connected = True
            elif event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self._handshake_done = True
            elif event & _HANDSHAKE_FAILED:
                # libzmq retries on its own; a failure that repeats is a wrong key.
                self._handshake_failures += 1
                if self._handshake_failures < 2:
                    continue
                raise HubRefused(
                    f"{self.who}: the encrypted (CURVE) connection failed: check that "
                    "known_hosts curve_public_key is the hub's (`synchub id` on the hub "
                    "prints it) and that the hub has curve = true"
                )
            elif event == zmq.EVENT_DISCONNECTED and self._handshake_done:
                raise HubUnavailable(f"{self.who}: connection lost")

    def _send_now(self, item: pb.SyncStreamItem) -> None:
        sock = self._socket
        assert sock is not None
        sock.send(_encode(item))
        self._last_sent = self.clock()

    def _send_heartbeat(self, sock: zmq.Socket[Any], now: float) -> None:
        try:
            sock.send(_encode(pb.SyncStreamItem(heartbeat=pb.SyncStreamItem.Heartbeat())),
                      zmq.NOBLOCK)
        except zmq.Again:
            return  # the queue is full of frames that will count as liveness
        self._last_sent = now

    def _pump(self, sock: zmq.Socket[Any], now: float) -> None:
        for _ in range(_FRAMES_PER_TURN):
            if self._ack_due and not self._send_ack(sock, now):
                return
            if not self._window_open():
                return
            frame = self._outflow.peek(now)
            if frame is None:
                return
            try:
                sock.send(frame, zmq.NOBLOCK)
            except zmq.Again:
                return
            self._outflow.taken()
            self._last_sent = now
            self._frames_sent += 1
            if self._queued_diffs and self._queued_diffs[0][0] is frame:
                self._outstanding.append(self._queued_diffs.popleft()[1])
            if self._frames_sent % self.settings.ack_every == 0:
                self._ack_due = True

    def _window_open(self) -> bool:
        return self._frames_sent - self._frames_acked < self.settings.send_window

    def _send_ack(self, sock: zmq.Socket[Any], now: float) -> bool:
        """Ask for an acknowledgement of every frame sent so far; False if the queue is full.

        The diff selects operation id 0, which no operation has: the hub requests
        nothing, and its reply comes after it handled every earlier frame.
        """
        item = pb.SyncStreamItem(diff_operations=pb.SyncStreamItem.DiffOperations(
            have_operations_selector=pb.OpSelector(
                original_instance_keyid=self.agent.keyid, ids=[0]
            ),
        ))
        try:
            sock.send(_encode(item), zmq.NOBLOCK)
        except zmq.Again:
            return False
        self._outstanding.append(_Ack(self._frames_sent))
        self._ack_due = False
        self._last_sent = now
        return True

    def _check_stop(self) -> None:
        if self.agent._stop.is_set():
            raise _Stopped()


def _encode(item: pb.SyncStreamItem) -> bytes:
    return item.SerializeToString()


def _poll_ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))
