"""The hub process: its actors, its front, its admin socket and its web side, started and
stopped in order.

Who owns what: ``Hub`` owns the components it starts (the Config, Oplog, PeerState,
Fleet and Alert actors, the alert dispatcher, the ZeroMQ context, the front, the admin
socket, the web server, the ticker) and nothing else; each component owns its own
state. ``start`` runs in a straight line in dependency order (the context the sockets
share, then config, oplog, peer state, fleet, the dispatcher and the alerts, the
front, the admin socket, the web server and the ticker), each checked before the
next starts; every component is put on one ExitStack as it starts, so ``stop`` (or a
failed start) closes them in reverse, all in one ``finally``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar, cast

import pykka
import zmq

from actors import (
    AlertActor,
    AlertProxy,
    ConfigActor,
    ConfigProxy,
    FleetActor,
    FleetProxy,
    HubIdentity,
    OplogActor,
    OplogProxy,
    Outbox,
    PeerStateActor,
    PeerStateProxy,
    SessionActor,
    SessionSettings,
    tell,
)
from hub.admin import (
    ACTOR_TIMEOUT,
    MAX_SOCKET_PATH_BYTES,
    AdminServer,
    AdminService,
    admin_socket_path,
    claim_data_dir,
    keyid_fingerprint,
)
from hub.alerting import Dispatcher
from hub.config import Config, HubSettings, WebSettings, cluster_clients_refusal
from hub.errors import ActorError, ConfigError, WebError
from hub.identity import NodeIdentity, load_or_create_identity, remove_identity
from hub.server._cluster import ClusterLink
from hub.server._front import Front
from hub.server._memory import ReturnFreedMemory
from hub.server._settings import FrontSettings
from hub.server._status import HubStatusSource
from hub.server._ticker import Ticker
from hub.status import HubInfo, HubStatus
from hub.store import HubStores, LocalLogs, hub_stores, now_ms
from hub.telemetry import NO_TELEMETRY, Telemetry
from hub.web import Actors, HubMetrics, ReaderPool, WebServer, WebSources, build_web

log = logging.getLogger(__name__)

A = TypeVar("A", bound=pykka.Actor)

READY_TIMEOUT = 10.0
STORE_REFUSAL = "the hub cannot reach its database now"
"""What a new peer is told while the database is unreachable (the details, which name
the database, go only to the log and /healthz)."""
STOP_TIMEOUT = 10.0


def session_settings(hub: HubSettings) -> SessionSettings:
    """What each session runs with, from ``[hub]``."""
    return SessionSettings(
        heartbeat_interval=hub.heartbeat_interval, handshake_timeout=hub.handshake_timeout,
        proof_timeout=hub.proof_timeout, resync=hub.resync,
    )


def front_settings(hub: HubSettings) -> FrontSettings:
    return FrontSettings(
        bind=hub.bind,
        max_frame_bytes=hub.max_frame_bytes,
        max_pending_handshakes=hub.max_pending_handshakes,
        max_pending_per_source=hub.max_pending_per_source,
        silent_connection_timeout=max(2 * hub.handshake_timeout, 5.0),
        # Ticks drive heartbeats and timeouts; a few per interval keeps them prompt.
        tick_interval=min(
            1.0, hub.heartbeat_interval / 4, hub.handshake_timeout / 4, hub.proof_timeout / 2
        ),
        heartbeat_interval=hub.heartbeat_interval,
        handshake_deadline=min(hub.handshake_timeout, hub.proof_timeout),
    )


def admitted_keys(config: Config) -> frozenset[str]:
    """The key ids the hub admits: listed in ``[[authorized_clients]]`` and verified."""
    return frozenset(c.keyid for c in config.authorized_clients if c.keyid_verified)


class Hub:
    """A running hub. ``start()``, then ``stop()`` in a ``finally``."""

    def __init__(
        self,
        config: Config,
        *,
        config_write_path: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if config.hub is None:
            raise ConfigError(
                config.path or "<embedded defaults>", "hub",
                "this node has no [hub] section: add one to accept clients",
            )
        self._config = config
        self._settings = config.hub
        self._config_write_path = config_write_path
        self._clock = clock
        self._running = contextlib.ExitStack()
        self._config_actor: ConfigProxy | None = None
        self._oplog: OplogProxy | None = None
        self._peers: PeerStateProxy | None = None
        self._fleet: FleetProxy | None = None
        self._alerts: AlertProxy | None = None
        self._metrics = HubMetrics() if config.web.enabled else None
        self._stores = hub_stores(config)
        self._front: Front | None = None
        self._store_problem: Callable[[], str | None] = lambda: None
        self._status: HubStatusSource | None = None
        self.admin_endpoint: str | None = None
        self.web_endpoint: str | None = None
        self.identity: NodeIdentity | None = None
        self._created_identity = False
        self.endpoint: str | None = None

    # -- the running components ----------------------------------------------------------

    @property
    def config_actor(self) -> ConfigProxy:
        return _started(self._config_actor, "config")

    @property
    def oplog(self) -> OplogProxy:
        return _started(self._oplog, "oplog")

    @property
    def peers(self) -> PeerStateProxy:
        return _started(self._peers, "peer state")

    @property
    def fleet(self) -> FleetProxy:
        return _started(self._fleet, "fleet")

    @property
    def alerts(self) -> AlertProxy:
        return _started(self._alerts, "alerts")

    @property
    def metrics(self) -> HubMetrics | None:
        """The Prometheus registry ``/metrics`` serves (None with the web side off)."""
        return self._metrics

    @property
    def front(self) -> Front | None:
        """The running front, or None when stopped."""
        return self._front

    def status(self) -> HubStatus:
        """A fresh status snapshot, as the admin socket's ``status`` op answers from."""
        return _started(self._status, "status").snapshot()

    # -- start and stop ------------------------------------------------------------------

    def start(self) -> str:
        """Start everything; return the bound endpoint. On failure, undo and raise."""
        self._created_identity = False
        try:
            with contextlib.ExitStack() as stack:
                endpoint = self._start(stack)
                self._running = stack.pop_all()
        except BaseException:
            if self._created_identity:
                # A start that failed (a port taken, say) leaves no new identity behind.
                remove_identity(self._config.data_dir)
                log.info("removed the identity this failed start created")
            raise
        return endpoint

    def stop(self) -> None:
        """Stop in reverse start order; safe to call more than once."""
        running, self._running = self._running, contextlib.ExitStack()
        running.close()

    def reload(self) -> Config:
        """Re-read the config file; live sessions re-check their clients."""
        return self.request_reload().get(timeout=READY_TIMEOUT)

    def request_reload(self) -> pykka.Future[Config]:
        """Start re-reading the config file; the future holds the new config or the
        ConfigError that refused it."""
        return self.config_actor.reload()

    def _start(self, stack: contextlib.ExitStack) -> str:
        data_dir = self._config.data_dir
        claim_data_dir(data_dir)
        stores = hub_stores(self._config)
        check_cluster_config(self._config, stores)
        # An unreachable database or a damaged file is one clear line, before anything
        # (a new identity included) is made.
        stores.check()
        identity, self._created_identity = _load_identity(data_dir)
        self.identity = identity
        stack.callback(self._forget_front)
        # Terminated last: it waits for every socket, sessions' pipes included.
        context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        stack.callback(context.term)
        context.set(zmq.MAX_SOCKETS, 65536)
        config_ref = ConfigActor.start(
            self._config, write_path=self._config_write_path,
            invitations=stores.open_invitations, clients_factory=stores.open_clients,
        )
        self._config_actor = cast(ConfigProxy, _start_actor(stack, config_ref, "config"))
        log.info("oplog and peer states: %s", stores.describe())
        oplog_open = _Opening(stores.open_oplog)
        oplog_ref = OplogActor.start(oplog_open, telemetry=self._telemetry)
        self._oplog = cast(OplogProxy, _start_actor(stack, oplog_ref, "oplog", oplog_open))
        # The write gate takes each config change first; [retention] follows reloads.
        self.config_actor.attach_gate(self._oplog.admit).get(timeout=READY_TIMEOUT)
        tell(self._oplog.configure, self._config)
        self.config_actor.subscribe(lambda config: tell(self.oplog.configure, config))
        node, lease = self.node, lease_seconds(self._settings)
        peers_open = _Opening(stores.open_peer_states)
        peers_ref = PeerStateActor.start(
            peers_open, node=node, leases_factory=lambda: stores.open_leases(node, lease),
        )
        self._peers = cast(PeerStateProxy, _start_actor(stack, peers_ref, "peer state", peers_open))
        self._start_fleet_and_alerts(stack, stores)
        problem = start_cluster_link(stack, stores, self.config_actor, self.peers, self.fleet)
        if problem is not None:
            self._store_problem = problem
            log.info("hub node %s: one of the hubs on %s", self.node, stores.describe())
        endpoint = self._start_front(stack, context, identity)
        self._status = self._status_source(identity, endpoint)
        self._start_admin(stack, context, self._status)
        self._start_web(stack, self._status)
        self._start_ticker(stack)
        return endpoint

    @property
    def node(self) -> str:
        """This process's name among the hubs of one cluster (``[hub] node``)."""
        return self._settings.node_name

    @property
    def _telemetry(self) -> Telemetry:
        return self._metrics if self._metrics is not None else NO_TELEMETRY

    def _start_fleet_and_alerts(self, stack: contextlib.ExitStack, stores: HubStores) -> None:
        self._stores = stores
        fleet_ref = FleetActor.start(
            oplog=self.oplog, peers=self.peers, reader_factory=stores.open_reader
        )
        self._fleet = cast(FleetProxy, _start_actor(stack, fleet_ref, "fleet"))
        dispatcher = Dispatcher(self._delivery_done)
        stack.callback(dispatcher.stop, STOP_TIMEOUT)
        dispatcher.start()
        alerts_ref = AlertActor.start(
            hub_instance=self._config.instance, config=self.config_actor, fleet=self.fleet,
            peers=self.peers, store_factory=stores.open_alert_state,
            deliver=dispatcher.submit, leadership_factory=stores.open_alert_leadership,
        )
        self._alerts = cast(AlertProxy, _start_actor(stack, alerts_ref, "alert"))

    def _delivery_done(self, delivery_id: int, delivered: bool) -> None:
        alerts = self._alerts
        if alerts is not None:
            with contextlib.suppress(pykka.ActorDeadError):
                tell(alerts.delivered, delivery_id, delivered)

    def _start_web(self, stack: contextlib.ExitStack, status: HubStatusSource) -> None:
        web = self._config.web
        if not web.enabled or self._metrics is None:
            log.info('no web side: [web] bind = ""')
            return
        data_dir = self._config.data_dir
        front = self._front
        sources = WebSources(
            Actors(self.config_actor, self.oplog, self.peers, self.fleet, self.alerts),
            status=status.snapshot,
            readers=ReaderPool(self._stores.open_reader),
            front_alive=lambda: front is not None and front.running,
            store_problem=self._store_problem,
        )
        server = build_web(
            web, sources, self._metrics, hub=self._config.instance, data_dir=data_dir
        )
        self.web_endpoint = _serve_web(server, web)
        if self.web_endpoint is None:
            return
        stack.callback(server.stop, STOP_TIMEOUT)
        log.info("web side on %s", self.web_endpoint)

    def _start_ticker(self, stack: contextlib.ExitStack) -> None:
        fleet, alerts, oplog = self.fleet, self.alerts, self.oplog
        peers = self.peers
        ticker = Ticker([
            lambda now: tell(fleet.tick, now),
            lambda now: tell(alerts.tick, now),
            lambda now: tell(oplog.retention_tick, now),
            lambda now: tell(peers.tick, now),
            ReturnFreedMemory(),
        ])
        stack.callback(ticker.stop, STOP_TIMEOUT)
        ticker.start()

    def _start_front(
        self, stack: contextlib.ExitStack, context: zmq.Context[zmq.Socket[bytes]],
        identity: NodeIdentity,
    ) -> str:
        if not self._settings.curve:
            log.warning("curve = false: use this only for debugging")
        self._front = front = Front(
            context=context,
            settings=front_settings(self._settings),
            session_factory=self._start_session,
            curve=identity.curve if self._settings.curve else None,
            clock=self._clock,
            refusal=lambda: STORE_REFUSAL if self._store_problem() is not None else None,
            admitted_keys=admitted_keys(self._config),
        )
        stack.callback(front.stop, STOP_TIMEOUT)
        token = self.config_actor.subscribe(
            lambda config: front.admitted_keys_changed(admitted_keys(config))
        ).get(timeout=READY_TIMEOUT)
        stack.callback(lambda: tell(self.config_actor.unsubscribe, token))
        front.admitted_keys_changed(admitted_keys(self.config_actor.get().get(timeout=READY_TIMEOUT)))
        self.endpoint = self._front.start()
        log.info(
            "hub %s (node %s) listening on %s (keyid %s, curve key %s)",
            self._config.instance, self.node, self.endpoint, identity.signing.keyid,
            identity.curve.public_text if self._settings.curve else "off",
        )
        return self.endpoint

    def _status_source(self, identity: NodeIdentity, endpoint: str) -> HubStatusSource:
        assert self._front is not None
        return HubStatusSource(
            info=_hub_info(self._config, identity, endpoint), config=self.config_actor,
            oplog=self.oplog, peers=self.peers,
            front=self._front.counters, timeout=ACTOR_TIMEOUT,
        )

    def _start_admin(
        self, stack: contextlib.ExitStack, context: zmq.Context[zmq.Socket[bytes]],
        status: HubStatusSource,
    ) -> None:
        data_dir = self._config.data_dir
        if len(os.fsencode(admin_socket_path(data_dir))) > MAX_SOCKET_PATH_BYTES:
            log.warning(
                "no admin socket: %s is too long for a Unix socket path; admin commands "
                "will read the files directly and config changes need a reload (SIGHUP)",
                admin_socket_path(data_dir),
            )
            return
        service = AdminService(
            status=status.snapshot, config=self.config_actor, oplog=self.oplog, peers=self.peers,
            local_logs=LocalLogs(data_dir), reader_factory=self._stores.open_reader,
        )
        admin = AdminServer(context, data_dir, service.handle)
        stack.callback(admin.stop, STOP_TIMEOUT)
        self.admin_endpoint = admin.start()

    def _forget_front(self) -> None:
        self._front = None
        self._status = None
        self.web_endpoint = None

    def _start_session(
        self, routing_id: bytes, now: float, outbox_factory: Callable[[], Outbox], source: str
    ) -> pykka.ActorRef[SessionActor]:
        assert self.identity is not None
        return SessionActor.start(
            session_id=routing_id.hex(),
            hub=HubIdentity(self._config.instance, self.identity.signing),
            settings=session_settings(self._settings),
            config=self.config_actor,
            oplog=self.oplog,
            peers=self.peers,
            outbox_factory=outbox_factory,
            now=now, source=source,
            telemetry=self._telemetry,
        )


def _serve_web(server: WebServer, web: WebSettings) -> str | None:
    """Start the web side; None (said at WARNING) when only its default port is taken."""
    try:
        return server.start()
    except WebError as exc:
        if not exc.in_use or web.bind_from_file:
            raise
        log.warning(
            "no web side: %s (another hub on this machine?); set [web] bind = "
            '"127.0.0.1:PORT" for another port, or bind = "" to turn it off', exc,
        )
        return None


def _hub_info(config: Config, identity: NodeIdentity, endpoint: str) -> HubInfo:
    curve = config.hub is not None and config.hub.curve
    return HubInfo(
        instance=config.instance,
        endpoint=endpoint,
        keyid=identity.signing.keyid,
        curve_public_key=identity.curve.public_text if curve else None,
        config_path=str(config.path) if config.path else None,
        data_dir=str(config.data_dir),
        pid=os.getpid(),
        started_ms=now_ms(),
    )


def start_cluster_link(
    stack: contextlib.ExitStack, stores: HubStores, config: ConfigProxy, peers: PeerStateProxy,
    fleet: FleetProxy,
) -> Callable[[], str | None] | None:
    """On PostgreSQL, the thread that hears other hubs' changes; its ``problem``."""
    if stores.url is None:
        return None
    from hub.store import ClusterNotices  # noqa: PLC0415 - loads the PostgreSQL driver

    link = ClusterLink(
        ClusterNotices(stores.url), config=config, peers=peers, fleet=fleet,
        origin=stores.origin,
    )
    stack.callback(link.stop, STOP_TIMEOUT)
    link.start()
    return link.problem


def lease_seconds(settings: HubSettings) -> float:
    """How long a session's lease lasts unrenewed: one and a half heartbeat intervals (at
    least 2 s; renewed every second), so a hub that dies has its sessions ended by the
    others within three (docs/cluster.md)."""
    return max(2.0, 1.5 * settings.heartbeat_interval)


def check_cluster_config(config: Config, stores: HubStores) -> None:
    """Refuse ``[[authorized_clients]]`` in the file of a hub on a shared store: one
    line saying how to move them, so no hub's stale file can admit a revoked key."""
    refusal = cluster_clients_refusal(config) if stores.shared else None
    if refusal is not None:
        raise refusal


S_co = TypeVar("S_co", covariant=True)


class _Opening(Generic[S_co]):
    """A store factory that remembers why it failed, so that an actor that could not
    open its store makes start() fail with that reason, in one line."""

    def __init__(self, factory: Callable[[], S_co]) -> None:
        self._factory = factory
        self.failure: Exception | None = None

    def __call__(self) -> S_co:
        try:
            return self._factory()
        except Exception as exc:
            self.failure = exc
            raise


def _load_identity(data_dir: Path) -> tuple[NodeIdentity, bool]:
    """The hub's identity, made on its first start (said at INFO with the next step)."""
    identity, created = load_or_create_identity(data_dir)
    if created:
        log.info(
            "created this hub's identity %s (fingerprint %s) in %s; add clients with "
            "`synchub invite --instance NAME`", identity.signing.keyid,
            keyid_fingerprint(identity.signing.keyid), data_dir,
        )
    return identity, created


def _start_actor(
    stack: contextlib.ExitStack, ref: pykka.ActorRef[A], what: str,
    opening: _Opening[object] | None = None,
) -> pykka.ActorProxy[A]:
    """Put a started actor on the stack, then check it answers."""
    stack.callback(_stop_actor, ref)
    proxy = ref.proxy()
    try:
        proxy.ping().get(timeout=READY_TIMEOUT)
    except (pykka.Timeout, pykka.ActorDeadError) as exc:
        failure = opening.failure if opening is not None else None
        if failure is not None:
            raise ActorError(f"the {what} actor did not start: {failure}") from failure
        if isinstance(exc, pykka.Timeout):
            raise ActorError(
                f"the {what} actor did not start within {READY_TIMEOUT:g}s: the machine may "
                "be overloaded; try again"
            ) from exc
        raise ActorError(
            f"the {what} actor failed as it started (-vv shows why); please report it"
        ) from exc
    return proxy


def _stop_actor(ref: pykka.ActorRef[A]) -> None:
    try:
        ref.stop(block=True, timeout=STOP_TIMEOUT)
    except pykka.Timeout:
        log.error("%s did not stop within %.0fs", ref, STOP_TIMEOUT)


T = TypeVar("T")


def _started(component: T | None, what: str) -> T:
    if component is None:
        raise ActorError(f"the hub's {what} is not running: start() the hub first")
    return component
