"""The client agent: syncs this node's own operations to every hub in ``known_hosts``.

Who owns what: one thread per known host owns that host's ZeroMQ DEALER socket,
the socket's monitor and its own handle on the local oplog (``LocalOplog``);
nothing else touches them. A running agent's ``WakeListener`` (``_wake``) owns
the wake-up socket the oplog's writers send to; each thread reads it through its
own ``WakeSignal``.
The protocol itself is not here: each connection is a
``hub.protocol.ClientSession`` (handshake, rounds of diffs, acknowledgements and
send window, throttle, heartbeats, silence), and this module is the socket code
around it. A connection thread, in a loop:

1. sends what the session offers (``next_frame``), without blocking;
2. lets the session do what is due (``advance``): a silent hub, a finished
   round, a re-diff, a poll of the local oplog for changes;
3. waits on the socket, its monitor and its wake signal until a frame arrives,
   the link can take more, a writer of the local oplog woke the agent, or the
   session's next deadline (at most a tenth of a second, to notice a stop), and
   hands what arrived to the session (``receive``, ``link_event``,
   ``local_change``);
4. hands the monitor's events, and its own lookup of the hub's name
   (``HostLookup``), to a ``hub.protocol.ReachWatch``: when the hub is not reached
   after a few seconds, the watch's reason (connection refused, name not resolved,
   no answer, ...) is logged at WARNING and recorded in the status, while libzmq
   keeps retrying (docs/operations.md, "When the agent cannot reach a hub").

The socket: a DEALER with this process's fresh CURVE key pair, pinned to the
hub's CURVE public key from the known_hosts entry, linger 0 (docs/protocol.md
§2.3 (Socket options and the frame size limit)).

Failures: a hub that does not match its pin (keyid, instance id, CURVE key) or that
refuses this client (ERROR_AUTH) is a ``HubRefused``: ``run_once`` fails with the
reason, a running agent retries only slowly (the operator must act). Anything else
(unreachable, connection lost, other hub errors) is a ``HubUnavailable``: a
running agent reconnects with exponential backoff and jitter (§7.3 (Reconnecting)).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

import zmq
from zmq.utils.monitor import recv_monitor_message

from hub.agent._local import LocalOplog
from hub.agent._lookup import HostLookup
from hub.agent._status import write_status
from hub.agent._wake import WakeListener, WakeSignal
from hub.config import Config, KnownHost
from hub.errors import ClientError, HubRefused, HubUnavailable, SynchubError
from hub.identity import CurveKeyPair, NodeIdentity, load_or_create_identity
from hub.jsonview import message_to_dict
from hub.pb import synchub_pb2 as pb
from hub.protocol import (
    ClientHandshake,
    ClientSession,
    ClientSessionSettings,
    HubPin,
    LinkEvent,
    LogServer,
    ReachWatch,
    SharedConfig,
    SyncScope,
    backoff_delay,
)
from hub.scopes import PermissionType
from hub.store import LocalLogs, oplog_path

log = logging.getLogger(__name__)


_STOP_CHECK_SECONDS = 0.1
_FRAMES_PER_TURN = 64
_LINK_EVENTS: dict[int, LinkEvent] = {
    zmq.EVENT_CONNECT_DELAYED: LinkEvent.CONNECT_PENDING,
    zmq.EVENT_CLOSED: LinkEvent.CONNECT_FAILED,
    zmq.EVENT_CONNECT_RETRIED: LinkEvent.RETRY_SCHEDULED,
    zmq.EVENT_CONNECTED: LinkEvent.CONNECTED,
    zmq.EVENT_DISCONNECTED: LinkEvent.DISCONNECTED,
    zmq.EVENT_HANDSHAKE_SUCCEEDED: LinkEvent.SECURED,
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL: LinkEvent.SECURING_FAILED,
    zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL: LinkEvent.SECURING_FAILED,
    zmq.EVENT_HANDSHAKE_FAILED_AUTH: LinkEvent.SECURING_FAILED,
}
_MONITORED_EVENTS = functools.reduce(lambda a, b: a | b, _LINK_EVENTS)
_LOOKUP_JOIN_SECONDS = 0.05


def _link_event(message: Mapping[str, Any]) -> LinkEvent | None:
    """The monitor's event as the session and the ReachWatch know it."""
    if (message["event"] == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
            and message["value"] == zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH):
        return LinkEvent.PLAINTEXT
    return _LINK_EVENTS.get(message["event"])
_CURVE_OVERHEAD_BYTES = 64


class _Stopped(Exception):
    """The agent is stopping; unwinds a connection."""


_SESSION_DEFAULTS = ClientSessionSettings()


@dataclass(frozen=True)
class AgentSettings:
    """Timing and sizing of the client agent; durations in seconds.

    The agent's own settings (connecting, reconnecting), and those each
    connection's ClientSession runs with, whose defaults are the session's.
    """

    heartbeat_interval: float = _SESSION_DEFAULTS.heartbeat_interval
    handshake_timeout: float = _SESSION_DEFAULTS.handshake_timeout
    connect_timeout: float = 30.0
    poll_interval: float = _SESSION_DEFAULTS.poll_interval
    rediff_interval: float = _SESSION_DEFAULTS.rediff_interval
    failover_timeout: float = 10.0
    """With several endpoints: how long one may take to answer before the next is tried."""
    reconnect_min: float = 1.0
    reconnect_max: float = 300.0
    refused_retry: float = 60.0
    max_frame_bytes: int = _SESSION_DEFAULTS.max_frame_bytes
    batch_operations: int = _SESSION_DEFAULTS.batch_operations
    send_window: int = _SESSION_DEFAULTS.send_window
    ack_every: int = _SESSION_DEFAULTS.ack_every
    resync: bool = _SESSION_DEFAULTS.resync
    wake: bool = True
    """Bind ``data_dir/agent.wake`` so writers of the oplog wake the agent at once
    (``hub.agent._wake``); off: new jobs are found by polling alone."""

    def __post_init__(self) -> None:
        self.session_settings(once=False, timeout=self.connect_timeout)  # validates

    @property
    def silence_limit(self) -> float:
        """A hub silent this long is gone (three heartbeat intervals)."""
        return 3 * self.heartbeat_interval

    def session_settings(self, *, once: bool, timeout: float) -> ClientSessionSettings:
        """What one connection's ClientSession runs with; ``timeout`` bounds reaching the hub."""
        shared = {name: getattr(self, name) for name in _SHARED_WITH_SESSION}
        return ClientSessionSettings(**shared, answer_timeout=timeout, once=once)


_AGENT_FIELDS = frozenset(f.name for f in fields(AgentSettings))
_SHARED_WITH_SESSION = tuple(
    f.name for f in fields(ClientSessionSettings) if f.name in _AGENT_FIELDS
)


def within_hub_limits(settings: ClientSessionSettings, host: KnownHost) -> ClientSessionSettings:
    """``settings`` for one hub, given the hub's own settings from its known_hosts entry:
    heartbeat at least as often as the hub, wait for the PROOF's answer no longer than
    the hub's handshake timeout, and send no frame above the hub's limit; resumed sync
    only when both the agent's settings and the entry (``resync``) allow it."""
    heartbeat, handshake, frame = (
        settings.heartbeat_interval, settings.handshake_timeout, settings.max_frame_bytes
    )
    if host.heartbeat_interval is not None:
        heartbeat = min(heartbeat, host.heartbeat_interval)
    if host.handshake_timeout is not None:
        handshake = min(handshake, host.handshake_timeout)
    if host.max_frame_bytes is not None:
        frame = min(frame, host.max_frame_bytes)
    return replace(settings, heartbeat_interval=heartbeat, handshake_timeout=handshake,
                   max_frame_bytes=frame, resync=settings.resync and host.resync)


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
    CONNECTED; ``in_sync`` says the latest round of diffs came back empty; ``message``
    says why it is not connected, and ``reason`` names why the hub is not reached
    when the transport told (a ``hub.protocol.Reach`` value: connection-refused,
    name-not-resolved, no-answer...; empty otherwise).
    """

    state: str = "starting"
    sessions: int = 0
    in_sync: bool = False
    message: str = ""
    reason: str = ""
    last_sync_ms: int = 0
    """When the hub last confirmed it holds everything (wall clock, ms); 0: not yet."""
    acknowledged_mark: int = -1
    """The local change mark every change up to which the hub holds; -1: unknown."""
    hub_config: str = ""
    """The config the hub last sent, as JSON (``hub.jsonview``); empty before any."""


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
        self._wake: WakeListener | None = None
        self._links = [_HostLink(self, host) for host in config.known_hosts]
        self._status_lock = threading.Lock()
        self._started_ms = _wall_ms()
        self._status_failed = False

    @property
    def keyid(self) -> str:
        return self.identity.signing.keyid

    def status(self) -> dict[str, HostStatus]:
        return {link.host.instance_id: link.status for link in self._links}

    def write_status(self, *, stopped: bool = False) -> None:
        """Record every hub's status in ``data_dir/agent-status.json`` (see _status)."""
        with self._status_lock:
            hosts = {link.host.instance_id: link.status_record() for link in self._links}
            record = {
                "pid": os.getpid(), "started_ms": self._started_ms, "updated_ms": _wall_ms(),
                "stopped": stopped, "hosts": hosts,
            }
            try:
                write_status(self.config.data_dir, record)
            except OSError as exc:
                if not self._status_failed:
                    log.warning("cannot record the agent's status for `synchub agent "
                                "--status`: %s", exc)
                self._status_failed = True

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
            self.write_status(stopped=True)
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
        """Start one connection thread per known hub; ``stop()`` in a finally.

        With ``settings.wake``, first bind the wake-up socket its oplog's writers
        send to (``hub.agent._wake``); without it, or when it cannot be bound, new
        jobs are found by polling alone.
        """
        if self._threads:
            raise ClientError("this agent is already running")
        self._stop.clear()
        if self.settings.wake:
            self._listen_for_writers()
        self._context = zmq.Context()
        for link in self._links:
            self._spawn(link, link.forever)

    def _listen_for_writers(self) -> None:
        listener = WakeListener(self.config.data_dir)
        signals = [listener.signal() for _ in self._links]
        if not listener.start():
            listener.stop()
            return
        self._wake = listener
        for link, signal in zip(self._links, signals, strict=True):
            link.wake = signal

    @property
    def wake_listener(self) -> WakeListener | None:
        """The wake-up socket's listener while it runs (None: polling only)."""
        return self._wake

    def stop(self, timeout: float = 10.0) -> None:
        """End every connection, close the sockets and wait for the threads."""
        self._stop.set()
        try:
            self._shutdown(timeout)
        finally:
            listener, self._wake = self._wake, None
            if listener is not None:
                for link in self._links:
                    link.wake = None
                listener.stop()
        self.write_status(stopped=True)

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
        # A cluster's hubs: start at a random one (a fleet spreads over them), then
        # take the next whenever a connection fails or ends.
        self.addresses = host.addresses
        self._address = int(agent._rand() * len(self.addresses)) % len(self.addresses)
        self.outcome: SyncReport | BaseException | None = None
        self.last_reason = ""  # why the last connection did not reach the hub, if known
        self.local: LocalOplog | None = None  # the connection's, while one runs
        self.wake: WakeSignal | None = None  # set while the agent's wake-up socket runs
        self._round_mark = -1
        self.scope = SyncScope.for_host(agent.config, host.permissions)
        self.log_scope = SyncScope.for_host(
            agent.config, host.permissions, PermissionType.READ_LOGS
        )
        if not self.scope.selections:
            log.warning(
                "known_hosts entry %s grants no read_operations: none of this node's "
                "operations go to it", host.instance_id,
            )

    @property
    def endpoint(self) -> str:
        """The address the next connection dials."""
        return self.addresses[self._address]

    def fail_over(self) -> None:
        """Dial the next address next time (the same one when there is only one)."""
        self._address = (self._address + 1) % len(self.addresses)

    def _report(self, **changes: Any) -> None:
        # One attribute assignment of a fresh frozen object: readers see old or new.
        self.status = replace(self.status, **changes)
        self.agent.write_status()

    def status_record(self) -> dict[str, Any]:
        """This hub's entry in the agent's status file."""
        status = self.status
        return {
            "endpoint": self.endpoint, "keyid": self.host.keyid,
            "state": status.state, "message": status.message, "reason": status.reason,
            "sessions": status.sessions,
            "in_sync": status.in_sync, "last_sync_ms": status.last_sync_ms,
            "acknowledged_mark": status.acknowledged_mark,
            "hub_config": json.loads(status.hub_config) if status.hub_config else None,
        }

    def _local_mark(self) -> int:
        return self.local.high_water() if self.local is not None else -1

    # -- what the session reports (a SessionListener) -------------------------------------

    def connected(self) -> None:
        # A round of diffs starts right after: the hub will hold what is here now.
        self._round_mark = self._local_mark()
        sessions = self.status.sessions + 1
        self._report(state="connected", sessions=sessions, in_sync=False, message="",
                     reason="")

    def round_finished(self, in_sync: bool) -> None:
        changes: dict[str, Any] = {"in_sync": in_sync}
        if in_sync:
            changes.update(last_sync_ms=_wall_ms(), acknowledged_mark=self._round_mark)
        self._round_mark = self._local_mark()  # the next round's diffs are built after
        self._report(**changes)

    def config_received(self, config: pb.RemoteConfig) -> None:
        self._report(hub_config=json.dumps(message_to_dict(config), sort_keys=True))

    def progress(self, sent: int, requested: int) -> None:
        progress = self.agent._progress
        if progress is not None:
            progress(self.host.instance_id, sent, requested)

    # -- the thread --------------------------------------------------------------------

    def once(self, timeout: float) -> None:
        """Sync this hub once; the result (a SyncReport or the error) goes to ``outcome``."""
        try:
            report = self._once_at_any_address(timeout)
            self._report(state="done", in_sync=True, message="in sync")
            self.outcome = report
        except (SynchubError, _Stopped) as exc:
            self._report(state="failed", message=str(exc), reason=self.last_reason)
            self.outcome = exc
        except Exception as exc:
            log.exception("hub %s: the sync failed", self.host.instance_id)
            self._report(state="failed", message=str(exc))
            self.outcome = ClientError(f"hub {self.host.instance_id}: internal error: {exc}")

    def _once_at_any_address(self, timeout: float) -> SyncReport:
        """Each address in turn until one syncs; a refusal is final (the same hub)."""
        for tried in range(1, len(self.addresses) + 1):
            try:
                report = _Connection(self, once=True, timeout=timeout).run()
            except HubUnavailable as exc:
                if tried == len(self.addresses):
                    raise
                log.warning("%s; trying %s", exc, self.addresses[(self._address + 1)
                                                                % len(self.addresses)])
                self.fail_over()
                continue
            assert report is not None
            return report
        raise AssertionError("unreachable")

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
                self._report(state="refused", in_sync=False, message=str(exc),
                             reason=self.last_reason)
                agent._stop.wait(settings.refused_retry)
                continue
            except SynchubError as exc:
                self._report(state="retry-wait", in_sync=False, message=str(exc),
                             reason=self.last_reason)
                # Said at WARNING already when the reason was noticed.
                warned = connection.connected or connection.noticed
                level = logging.INFO if warned else logging.WARNING
                log.log(level, "%s", exc)
            except Exception as exc:
                log.exception("hub %s: connection failed", self.host.instance_id)
                self._report(state="retry-wait", in_sync=False, message=str(exc))
            attempt = 0 if connection.connected else attempt + 1
            self.fail_over()
            delay = backoff_delay(
                # Every address gets a try at each step of the backoff.
                attempt // len(self.addresses),
                minimum=settings.reconnect_min,
                maximum=settings.reconnect_max,
                rand=agent._rand,
            )
            log.info("hub %s: reconnecting to %s in %.1fs", self.host.instance_id,
                     self.endpoint, delay)
            agent._stop.wait(delay)
        self._report(state="stopped", in_sync=False)


class _Connection:
    """One session with one hub, from socket creation to close, in the link's thread.

    Socket plumbing only: what the DEALER and its monitor carry goes to the
    ClientSession, and what the session offers goes out.
    """

    def __init__(self, link: _HostLink, *, once: bool, timeout: float) -> None:
        self.link = link
        self.host = link.host
        self.agent = link.agent
        if len(link.addresses) > 1:
            # Several hubs: do not spend long on one that is down.
            timeout = min(timeout, link.agent.settings.failover_timeout)
        self.settings = within_hub_limits(
            link.agent.settings.session_settings(once=once, timeout=timeout), link.host
        )
        self.clock = link.agent._clock
        self.endpoint = link.endpoint
        self.who = f"hub {self.host.instance_id} at {self.endpoint}"
        self._session: ClientSession | None = None
        self._socket: zmq.Socket[Any] | None = None
        self._monitor: zmq.Socket[Any] | None = None
        self._reach = ReachWatch(self.who, self.endpoint, self.clock())
        self._lookup: HostLookup | None = None
        self.noticed = False
        """The reason the hub is not reached was logged and recorded."""

    @property
    def connected(self) -> bool:
        """The hub accepted this client on this connection."""
        return self._session is not None and self._session.connected

    def run(self) -> SyncReport | None:
        """Connect and sync: once, until the hub is in sync (the report); else until it fails."""
        data_dir = self.agent.config.data_dir
        local = LocalOplog(oplog_path(data_dir), LocalLogs(data_dir))
        self.link.local = local
        try:
            sock, monitor = self._open()
            self.link._report(state="connecting")
            session = self._session = self._new_session(local)
            session.start(self.clock())
            while not session.done:
                self._check_stop()
                now = self.clock()
                self._pump(sock, session, now)
                session.advance(now)
                self._notice(now)
                if not session.done:
                    self._wait(sock, monitor, session, now)
            totals = session.totals
            return SyncReport(self.host.instance_id, totals.rounds, totals.sent, totals.deleted)
        finally:
            verdict = self._reach.check(self.clock())
            self.link.last_reason = verdict.reason.value if verdict is not None else ""
            try:
                self._close()
            finally:
                self.link.local = None
                local.close()

    def _notice(self, now: float) -> None:
        """Tell, once, why the hub is not reached yet; a one-shot sync gives up on a
        reason waiting will not fix. libzmq keeps retrying meanwhile."""
        if self._lookup is not None:
            finished, error = self._lookup.result()
            if finished:
                self._reach.looked_up(error)
        verdict = self._reach.check(now)
        if verdict is None or self.noticed or not self._reach.noticeable(now):
            return
        self.noticed = True
        if self.settings.once and verdict.reason.definitive:
            raise HubUnavailable(verdict.message)
        log.warning("%s; still trying", verdict.message)
        self.link._report(state="connecting", message=verdict.message,
                          reason=verdict.reason.value)

    def _new_session(self, local: LocalOplog) -> ClientSession:
        agent, host = self.agent, self.host
        config = agent.config
        repo_ids, plan_ids = config.resource_ids_for(host.permissions)
        shared = SharedConfig(
            config.remote_config_for(host.permissions), tuple(repo_ids), tuple(plan_ids)
        )
        handshake = ClientHandshake(
            agent.identity.signing, config.instance, HubPin(host.instance_id, host.keyid)
        )
        logs = LogServer(local, self.link.log_scope, who=self.who, log=log)
        return ClientSession(
            handshake, local, self.link.scope, shared, settings=self.settings, who=self.who,
            listener=self.link, logger=log, logs=logs, reach=self._reach,
        )

    def _open(self) -> tuple[zmq.Socket[Any], zmq.Socket[Any]]:
        context = self.agent._socket_context()
        sock: zmq.Socket[Any] = context.socket(zmq.DEALER)
        self._socket = sock
        sock.setsockopt(zmq.LINGER, 0)
        # Room for the CURVE MESSAGE command around the item (libzmq counts it). What
        # comes in may be as large as this agent allows, whatever the hub takes in.
        inbound = self.agent.settings.max_frame_bytes
        sock.setsockopt(zmq.MAXMSGSIZE, inbound + _CURVE_OVERHEAD_BYTES)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, 5000)
        curve = self.agent._curve
        sock.setsockopt(zmq.CURVE_PUBLICKEY, curve.public)
        sock.setsockopt(zmq.CURVE_SECRETKEY, curve.secret)
        sock.setsockopt(zmq.CURVE_SERVERKEY, self.host.curve_public_key.encode("ascii"))
        self._monitor = monitor = sock.get_monitor_socket(_MONITORED_EVENTS)
        where = self._reach.endpoint
        if where is not None and where.name:
            self._lookup = HostLookup(where.host, where.port)
        sock.connect(self.endpoint)
        return sock, monitor

    def _close(self) -> None:
        sock, monitor = self._socket, self._monitor
        self._socket = self._monitor = None
        if sock is not None:
            closing = self._session.closing_frame() if self._session is not None else None
            if closing is not None:
                # Best effort: lets the hub end the session now instead of on silence.
                with contextlib.suppress(zmq.ZMQError):
                    sock.send(closing, zmq.NOBLOCK)
            if monitor is not None:
                sock.disable_monitor()
        if monitor is not None:
            monitor.close(linger=0)
        if sock is not None:
            sock.close(linger=0)
        if self._lookup is not None:
            self._lookup.join(_LOOKUP_JOIN_SECONDS)

    def _pump(self, sock: zmq.Socket[Any], session: ClientSession, now: float) -> None:
        for _ in range(_FRAMES_PER_TURN):
            frame = session.next_frame(now)
            if frame is None:
                return
            try:
                sock.send(frame, zmq.NOBLOCK)
            except zmq.Again:
                return
            session.frame_sent(now)

    def _wait(
        self,
        sock: zmq.Socket[Any],
        monitor: zmq.Socket[Any],
        session: ClientSession,
        now: float,
    ) -> None:
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN | (zmq.POLLOUT if session.wants_to_send(now) else 0))
        poller.register(monitor, zmq.POLLIN)
        wake = self.link.wake
        wake_fds = wake.fds() if wake is not None else ()
        for fd in wake_fds:
            poller.register(fd, zmq.POLLIN)
        due = session.next_deadline(now)
        events = dict(poller.poll(_poll_ms(min(max(due - now, 0.0), _STOP_CHECK_SECONDS))))
        if wake is not None and any(fd in events for fd in wake_fds) and wake.take():
            session.local_change()
        if monitor in events:
            while monitor.poll(0):
                event = _link_event(recv_monitor_message(monitor))
                if event is not None:
                    self._reach.event(event, self.clock())
                    session.link_event(event)
        if events.get(sock, 0) & zmq.POLLIN:
            for _ in range(_FRAMES_PER_TURN):
                try:
                    parts = sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                session.receive(parts, self.clock())

    def _check_stop(self) -> None:
        if self.agent._stop.is_set():
            raise _Stopped()


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def _poll_ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))
