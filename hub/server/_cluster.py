"""ClusterLink: one thread that hears what the other hubs on the shared store change.

It LISTENs on the database (``hub.store.ClusterNotices``) and passes each notice to
its owner: a changed authorized client to the ConfigActor (which reads the clients
again, and the sessions re-check theirs), a session another hub took to the
PeerStateActor (which ends this hub's session of that key), operations another hub
stored to the FleetActor (which reads them by id at its next tick: the dashboard and
the alerts follow the whole cluster's writes). When the connection is
lost it reconnects with backoff, then has the clients read again and the fleet catch up
(notices sent meanwhile are lost; the leases' renewal catches displaced sessions by itself).
Meanwhile ``problem()`` says why: the front refuses new sessions with RETRY_WAIT
and ``/healthz`` reports it (a lost connection is how a restarting or unreachable
database shows first).
Time to deliver a notice: one round trip after the change commits.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import TYPE_CHECKING

import pykka

from actors import ConfigProxy, FleetProxy, PeerStateProxy, tell
from hub.errors import StoreUnavailable
from hub.protocol import backoff_delay
from hub.store import ClientsChanged, ClusterNotice, OplogCommitted, SessionClaimed
from hub.threads import ThreadService

if TYPE_CHECKING:
    from hub.store import ClusterNotices

log = logging.getLogger(__name__)

_WAIT_SECONDS = 0.2


class ClusterLink(ThreadService):
    def __init__(
        self, notices: ClusterNotices, *, config: ConfigProxy, peers: PeerStateProxy,
        fleet: FleetProxy | None = None, origin: str = "",
    ) -> None:
        """``fleet`` hears what other hubs stored (``origin``: this hub's own writes,
        which it already has)."""
        super().__init__(
            thread_name="synchub-cluster", what="the cluster link",
            failure_note="other hubs' revocations and displacements reach this hub only "
            "through lease renewals and reloads until it restarts",
        )
        self._notices = notices
        self._config = config
        self._peers = peers
        self._fleet = fleet
        self._origin = origin
        self.heard = 0
        """Notices passed on so far (read by tests and the status)."""
        self._problem: str | None = None

    def problem(self) -> str | None:
        """Why this hub cannot reach its database now, or None: read from any thread (one
        attribute, replaced whole by the link's thread)."""
        return self._problem

    def _open(self) -> str:
        self._notices.open()
        self._catch_up()  # what was stored while the fleet read its start
        return self._notices.shown

    def _catch_up(self) -> None:
        fleet = self._fleet
        if fleet is not None:
            self._tell_safely(lambda: tell(fleet.catch_up))

    def _serve(self) -> None:
        attempt = 0
        while not self.stopping.is_set():
            try:
                for notice in self._notices.wait(_WAIT_SECONDS):
                    self._deliver(notice)
                attempt = 0
            except StoreUnavailable as exc:
                self._problem = f"the hub cannot reach its database: {exc}"
                log.error("%s; refusing new sessions (RETRY_WAIT) until it is back", exc)
                attempt = self._reconnect(attempt)

    def _reconnect(self, attempt: int) -> int:
        while not self.stopping.wait(backoff_delay(attempt, minimum=0.2, maximum=5.0,
                                                   rand=random.random)):
            try:
                self._notices.open()
            except StoreUnavailable as exc:
                log.debug("cluster link: %s", exc)
                attempt += 1
                continue
            self._problem = None
            log.info("the database answers again: hearing other hubs' changes on %s, "
                     "taking new sessions", self._notices.shown)
            self._tell_safely(lambda: tell(self._config.clients_changed))
            self._catch_up()
            return 0
        return attempt

    def _deliver(self, notice: ClusterNotice) -> None:
        self.heard += 1
        if isinstance(notice, ClientsChanged):
            self._tell_safely(lambda: tell(self._config.clients_changed))
        elif isinstance(notice, SessionClaimed):
            self._tell_safely(lambda: tell(
                self._peers.claimed, notice.keyid, notice.node, notice.session_id
            ))
        elif isinstance(notice, OplogCommitted):
            fleet = self._fleet
            if fleet is not None and notice.writer != self._origin:
                self._tell_safely(lambda: tell(fleet.stored_elsewhere, notice.runs))

    @staticmethod
    def _tell_safely(send: Callable[[], None]) -> None:
        try:
            send()
        except pykka.ActorDeadError:
            log.debug("cluster link: the hub is stopping")

    def _close(self) -> None:
        self._notices.close()
