"""The PeerStateActor's side of the session leases, on a store several hubs share.

One key, one live session in the whole cluster (docs/cluster.md): a session that
connects claims its key's lease for this node; the node that held it hears the
claim and ends its own session (``PeerStateActor.claimed``). This node renews its
leases on ticks; a lease another node holds by now means that session here was
displaced. Any hub ends the leases their node stopped renewing and marks those peers
DISCONNECTED. ``ClusterSessions`` is used only in the PeerStateActor's thread, and
logs (rather than raises) what fails: the sessions go on, and the next tick retries.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from hub.errors import StoreError
from hub.pb import synchub_pb2 as pb
from hub.store import LiveSession, SessionLeases

log = logging.getLogger(__name__)

RESTART_STATUS_MESSAGE = "hub stopped while the peer was connected"


def expired_message(node: str) -> str:
    return f"hub {node} stopped renewing this session's lease (stopped or lost)"


def _restart_message(_node: str) -> str:
    return RESTART_STATUS_MESSAGE


class ClusterSessions:
    def __init__(self, leases: SessionLeases, renew_interval: float) -> None:
        self._leases = leases
        self._renew_interval = renew_interval
        self._last_renew = float("-inf")

    @classmethod
    def of(cls, leases: SessionLeases | None, renew_interval: float) -> ClusterSessions | None:
        return None if leases is None else cls(leases, renew_interval)

    @property
    def node(self) -> str:
        return self._leases.node

    def start(self) -> set[str]:
        """End this node's leases from before a restart (and any expired ones); the keys
        other nodes hold live sessions of."""
        self._leases.expire(_restart_message, restarted=True)
        return {key for key, node in self._leases.holders().items() if node != self.node}

    def claim(self, session: LiveSession) -> None:
        try:
            self._leases.claim(session)
        except StoreError as exc:
            log.error("peer %s: cannot record its session for the cluster: %s; "
                      "retrying on the next renewal", session.keyid, exc)

    def release(self, keyid: str, session_id: str) -> bool:
        """The session ended; False when another node's session holds the key now
        (then that node owns the peer's state, and this end is not reported)."""
        try:
            if self._leases.release(keyid, session_id):
                return True
            return self.holders().get(keyid, self.node) == self.node
        except StoreError as exc:
            log.warning("peer %s: releasing its session lease failed: %s (it expires)",
                        keyid, exc)
            return True

    def holds_elsewhere(self, keyid: str) -> bool:
        """Whether another node holds ``keyid``'s session (True when that cannot be read:
        the notice that said so is the best knowledge)."""
        try:
            return self._leases.holders().get(keyid, self.node) != self.node
        except StoreError:
            return True

    def due(self, now: float) -> bool:
        return now - self._last_renew >= self._renew_interval

    def renew(self, now: float, live: Sequence[LiveSession]) -> set[str] | None:
        """Extend this node's leases; the keys no longer held here (None: not known)."""
        self._last_renew = now
        try:
            held = self._leases.renew(live)
        except StoreError as exc:
            log.warning("renewing %d session lease(s) failed: %s", len(live), exc)
            return None
        return {s.keyid for s in live} - held

    def expire(self) -> list[pb.PeerState]:
        try:
            ended = self._leases.expire(expired_message)
        except StoreError as exc:
            log.warning("expiring other hubs' session leases failed: %s", exc)
            return []
        for state in ended:
            log.info("peer %s (%s): %s", state.peer_instance_id, state.peer_keyid,
                     state.status_message)
        return ended

    def holders(self) -> dict[str, str]:
        return self._leases.holders()

    def holders_or(self, fallback: dict[str, str]) -> dict[str, str]:
        """``holders()``, or ``fallback`` (this hub's own) when the store cannot say."""
        try:
            return self._leases.holders()
        except StoreError:
            log.warning("reading which hub holds each peer failed; showing this hub's")
            return fallback

    def close(self) -> None:
        self._leases.close()
