"""The contracts of a store several hubs share (docs/cluster.md): who may connect, and
which hub holds each key's one live session, which hub delivers the alerts.

``AuthorizedClientStore`` keeps the authorized clients as rows (the ConfigActor's,
in place of ``[[authorized_clients]]`` in the file); ``SessionLeases`` records which
hub process (its node name) holds each key's session, under a lease that hub renews
and any hub expires (the PeerStateActor's). Changes are announced to every hub
(``ClientsChanged``, ``SessionClaimed``), read by ``ClusterNotices``. PostgreSQL
implements them (``_pg_cluster``); a SQLite store serves one hub and needs none.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from hub.config import AuthorizedClient
from hub.pb import synchub_pb2 as pb


@dataclass(frozen=True, slots=True)
class ClientsChanged:
    """An authorized client was added, changed or removed (by any hub)."""

    keyid: str


@dataclass(frozen=True, slots=True)
class SessionClaimed:
    """Hub ``node`` took the session of ``keyid`` (its session id on that node)."""

    keyid: str
    node: str
    session_id: str


@dataclass(frozen=True, slots=True)
class LiveSession:
    """One session this node holds, as its lease records it."""

    keyid: str
    session_id: str
    instance_id: str


@dataclass(frozen=True, slots=True)
class OplogCommitted:
    """A hub (``writer``: its store's ``origin``) stored the operations with the ids in
    ``runs`` (first, last; inclusive, ascending) and committed them."""

    writer: str
    runs: tuple[tuple[int, int], ...]


ClusterNotice = ClientsChanged | SessionClaimed | OplogCommitted


class AuthorizedClientStore(Protocol):
    """The authorized clients of every hub on the store; each change is announced."""

    def load_all(self) -> tuple[AuthorizedClient, ...]:
        """Every client, oldest change first."""
        ...

    def put(self, client: AuthorizedClient) -> None:
        """Add or replace the client with this keyid."""
        ...

    def put_all(self, clients: Sequence[AuthorizedClient]) -> int:
        """Add or replace each, all or nothing; how many."""
        ...

    def remove(self, keyid: str) -> bool:
        """Remove it; False when there was none."""
        ...

    def set_verified(self, keyid: str, verified: bool) -> bool:
        """Change ``keyid_verified``; False when there is no such client."""
        ...

    def close(self) -> None: ...


class SessionLeases(Protocol):
    """Which node holds each key's session; leases of ``lease_seconds`` renewed by it."""

    @property
    def node(self) -> str: ...

    def claim(self, session: LiveSession) -> None:
        """This node holds the key's session now (a holder elsewhere is told to end it)."""
        ...

    def release(self, keyid: str, session_id: str) -> bool:
        """The session ended; False when another session holds the key by now."""
        ...

    def renew(self, sessions: Sequence[LiveSession]) -> set[str]:
        """Extend this node's leases (putting back missing ones); the keyids still held.

        A key another node holds now is not returned: its session here was displaced.
        """
        ...

    def expire(
        self, message: Callable[[str], str], *, restarted: bool = False
    ) -> list[pb.PeerState]:
        """End every lease past its time (and, ``restarted``, every one of this node's),
        marking those peers DISCONNECTED with ``message(node)``; their states now."""
        ...

    def holders(self) -> dict[str, str]:
        """keyid -> the node holding its session, for every live lease."""
        ...

    def close(self) -> None: ...


class AlertLeadership(Protocol):
    """Which hub of a cluster judges and delivers the alerts: at most one at a time.

    ``try_lead`` takes the lead when no other hub holds it (True when this hub holds
    it now); ``still_leading`` says whether it still does (False once the hold is lost:
    the database restarted, say). What a hub holds is given up when it closes, dies or
    loses the database, and another hub's next ``try_lead`` takes it.
    """

    def try_lead(self) -> bool: ...

    def still_leading(self) -> bool: ...

    def close(self) -> None: ...
