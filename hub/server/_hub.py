"""The hub process: its actors and its front, started and stopped in order.

Start order is dependency order (config, oplog, peer state, the front, then the
admin socket), each checked before the next starts; stop is the reverse, always
run from a ``finally``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pykka
import zmq

from actors import (
    ConfigActor,
    HubIdentity,
    OplogActor,
    PeerStateActor,
    SessionActor,
    SessionSettings,
)
from hub.admin import (
    MAX_SOCKET_PATH_BYTES,
    AdminServer,
    AdminService,
    HubInfo,
    admin_socket_path,
    claim_data_dir,
)
from hub.config import Config, HubSettings
from hub.errors import ActorError, ConfigError
from hub.identity import NodeIdentity, load_or_create_identity
from hub.server._front import Front, FrontSettings
from hub.store import PeerStore, SqliteOplogStore, now_ms, oplog_path

log = logging.getLogger(__name__)

READY_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


def front_settings(hub: HubSettings) -> FrontSettings:
    return FrontSettings(
        bind=hub.bind,
        max_frame_bytes=hub.max_frame_bytes,
        max_pending_handshakes=hub.max_pending_handshakes,
        # Ticks drive heartbeats and timeouts; a few per interval keeps them prompt.
        tick_interval=min(1.0, hub.heartbeat_interval / 4, hub.handshake_timeout / 4),
        heartbeat_interval=hub.heartbeat_interval,
    )


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
        self._context: zmq.Context[Any] | None = None
        self._actors: list[pykka.ActorRef[Any]] = []
        self._front: Front | None = None
        self._admin: AdminServer | None = None
        self.admin_endpoint: str | None = None
        self.identity: NodeIdentity | None = None
        self.endpoint: str | None = None
        self.config_actor: Any = None
        self.oplog: Any = None
        self.peers: Any = None

    def start(self) -> str:
        """Start everything; return the bound endpoint. On failure, undo and raise."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> str:
        data_dir = self._config.data_dir
        claim_data_dir(data_dir)
        identity, created = load_or_create_identity(data_dir)
        if created:
            log.warning("created a new identity %s in %s", identity.signing.keyid, data_dir)
        self.identity = identity
        self.config_actor = self._start_actor(
            ConfigActor.start(self._config, write_path=self._config_write_path), "config"
        )
        self.oplog = self._start_actor(
            OplogActor.start(lambda: SqliteOplogStore(oplog_path(data_dir))), "oplog"
        )
        self.peers = self._start_actor(
            PeerStateActor.start(lambda: PeerStore(data_dir)), "peer state"
        )
        self._context = zmq.Context()
        self._context.set(zmq.MAX_SOCKETS, 65536)
        if not self._settings.curve:
            log.warning("curve = false: use this only for debugging")
        self._front = Front(
            context=self._context,
            settings=front_settings(self._settings),
            session_factory=self._start_session,
            curve=identity.curve if self._settings.curve else None,
            clock=self._clock,
        )
        self.endpoint = self._front.start()
        log.info(
            "hub %s listening on %s (keyid %s, curve key %s)",
            self._config.instance, self.endpoint, identity.signing.keyid,
            identity.curve.public_text if self._settings.curve else "off",
        )
        self._start_admin(identity)
        return self.endpoint

    def _start_admin(self, identity: NodeIdentity) -> None:
        assert self._context is not None and self.endpoint is not None
        data_dir = self._config.data_dir
        if len(os.fsencode(admin_socket_path(data_dir))) > MAX_SOCKET_PATH_BYTES:
            log.warning(
                "no admin socket: %s is too long for a Unix socket path; admin commands "
                "will read the files directly and config changes need a reload (SIGHUP)",
                admin_socket_path(data_dir),
            )
            return
        service = AdminService(
            info=HubInfo(
                instance=self._config.instance,
                endpoint=self.endpoint,
                keyid=identity.signing.keyid,
                curve_public_key=identity.curve.public_text if self._settings.curve else None,
                config_path=str(self._config.path) if self._config.path else None,
                data_dir=str(data_dir),
                pid=os.getpid(),
                started_ms=now_ms(),
            ),
            config=self.config_actor,
            oplog=self.oplog,
            peers=self.peers,
        )
        self._admin = AdminServer(self._context, data_dir, service.handle)
        self.admin_endpoint = self._admin.start()

    def _start_actor(self, ref: pykka.ActorRef[Any], what: str) -> Any:
        self._actors.append(ref)
        proxy = ref.proxy()
        try:
            proxy.ping().get(timeout=READY_TIMEOUT)
        except (pykka.Timeout, pykka.ActorDeadError) as exc:
            raise ActorError(f"the {what} actor did not start; see the log above") from exc
        return proxy

    def _start_session(self, routing_id: bytes, now: float, outbox_factory: Any) -> Any:
        assert self.identity is not None
        return SessionActor.start(
            session_id=routing_id.hex(),
            hub=HubIdentity(self._config.instance, self.identity.signing),
            settings=SessionSettings(
                heartbeat_interval=self._settings.heartbeat_interval,
                handshake_timeout=self._settings.handshake_timeout,
            ),
            config=self.config_actor,
            oplog=self.oplog,
            peers=self.peers,
            outbox_factory=outbox_factory,
            now=now,
        )

    @property
    def front(self) -> Front | None:
        """The running front (for its read-only counters), or None when stopped."""
        return self._front

    def reload(self) -> Config:
        """Re-read the config file; live sessions re-check their clients."""
        config: Config = self.config_actor.reload().get(timeout=READY_TIMEOUT)
        return config

    def stop(self) -> None:
        """Stop in reverse start order; safe to call more than once."""
        try:
            try:
                if self._admin is not None:
                    self._admin.stop(STOP_TIMEOUT)
                    self._admin = None
            finally:
                if self._front is not None:
                    self._front.stop(STOP_TIMEOUT)
                    self._front = None
        finally:
            for ref in reversed(self._actors):
                try:
                    ref.stop(block=True, timeout=STOP_TIMEOUT)
                except pykka.Timeout:
                    log.error("%s did not stop within %.0fs", ref, STOP_TIMEOUT)
            self._actors.clear()
            if self._context is not None:
                self._context.term()
                self._context = None
