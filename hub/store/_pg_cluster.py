"""Several hubs on one PostgreSQL database: the authorized clients as rows, the session
leases, and the notifications that carry their changes to every hub (docs/cluster.md).

``PostgresClientStore`` implements ``AuthorizedClientStore`` (``authorized_clients``,
migration 5); every change is committed with a NOTIFY on ``synchub_clients`` in the
same statement or transaction, so a hub that hears it reads the change. ``PostgresSessionLeases``
implements ``SessionLeases`` (``sessions``): a claim is an upsert with a NOTIFY on
``synchub_sessions``; the hub that held the key before hears it and ends its session.
A lease its node stops renewing is ended by any hub (``expire``), which marks that
peer DISCONNECTED in the same transaction as the lease's removal, so a client that
reconnects meanwhile is never marked down by it (its claim waits for that commit).
``ClusterNotices`` is one connection that LISTENs on both channels.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import psycopg
from google.protobuf.message import DecodeError
from psycopg.types.json import Jsonb

from hub.config import AuthorizedClient
from hub.errors import PermissionsError, StoreError, StoreUnavailable
from hub.pb import synchub_pb2 as pb
from hub.scopes import parse_permissions
from hub.store._cluster_api import (
    AuthorizedClientStore,
    ClientsChanged,
    ClusterNotice,
    LiveSession,
    OplogCommitted,
    SessionClaimed,
    SessionLeases,
)
from hub.store._pg_db import CONNECT_TIMEOUT_SECONDS, Connection, PostgresDatabase, connect
from hub.store._pg_schema import (
    CLAIM_SESSION_SQL,
    CLIENTS_CHANNEL,
    DELETE_CLIENT_SQL,
    EXPIRE_OTHERS_SQL,
    HOLDERS_SQL,
    LOAD_CLIENTS_SQL,
    LOCK_PEER_STATES_SQL,
    NOTIFY_SQL,
    OPLOG_CHANNEL,
    PUT_CLIENT_SQL,
    RELEASE_SESSION_SQL,
    RENEW_SESSIONS_SQL,
    RESET_NODE_SQL,
    SAVE_PEER_STATES_SQL,
    SESSIONS_CHANNEL,
    SET_VERIFIED_SQL,
)
from hub.text import redacted_url

log = logging.getLogger(__name__)

_LIVE_STATES = frozenset({pb.CONNECTION_STATE_CONNECTED, pb.CONNECTION_STATE_PENDING})


class PostgresClientStore:
    """The authorized clients in the database at ``url``; usable from any thread."""

    def __init__(self, url: str, *, wait_seconds: float = CONNECT_TIMEOUT_SECONDS) -> None:
        self._db = PostgresDatabase(url, name="clients", wait_seconds=wait_seconds)

    def load_all(self) -> tuple[AuthorizedClient, ...]:
        with self._db.connection("reading the authorized clients") as conn:
            rows = conn.execute(LOAD_CLIENTS_SQL).fetchall()
        return tuple(self._client(*row) for row in rows)

    def put(self, client: AuthorizedClient) -> None:
        self.put_all([client])

    def put_all(self, clients: Sequence[AuthorizedClient]) -> int:
        if not clients:
            return 0
        with self._db.transaction("saving authorized clients") as conn:
            copy_clients(conn, clients)
        return len(clients)

    def remove(self, keyid: str) -> bool:
        with self._db.transaction("removing an authorized client") as conn:
            found = conn.execute(DELETE_CLIENT_SQL, (keyid,)).fetchone() is not None
            conn.execute(NOTIFY_SQL, (CLIENTS_CHANNEL, keyid))
        return found

    def set_verified(self, keyid: str, verified: bool) -> bool:
        with self._db.transaction("changing an authorized client") as conn:
            found = conn.execute(SET_VERIFIED_SQL, (verified, keyid)).fetchone()
            conn.execute(NOTIFY_SQL, (CLIENTS_CHANNEL, keyid))
        return found is not None

    def close(self) -> None:
        self._db.close()

    def _client(
        self, keyid: str, instance_id: str, verified: bool, permissions: Any
    ) -> AuthorizedClient:
        try:
            parsed = parse_permissions(permissions)
        except PermissionsError as exc:
            raise StoreError(
                f"PostgreSQL store {self._db.shown}: authorized client {keyid!r} has bad "
                f"permissions{exc.location}: {exc.problem}; fix it with `synchub authorize`"
            ) from exc
        return AuthorizedClient(
            instance_id=instance_id, keyid=keyid, keyid_verified=bool(verified),
            permissions=parsed,
        )


def copy_clients(conn: Connection, clients: Sequence[AuthorizedClient]) -> None:
    """Add or replace each client's row, announced to running hubs on commit."""
    for client in clients:
        conn.execute(PUT_CLIENT_SQL, (
            client.keyid, client.instance_id, client.keyid_verified,
            Jsonb(client.permissions.to_toml()),
        ))
        conn.execute(NOTIFY_SQL, (CLIENTS_CHANNEL, client.keyid))


class PostgresSessionLeases:
    """The ``sessions`` table, as node ``node`` sees it; usable from any thread."""

    def __init__(
        self, url: str, node: str, *, lease_seconds: float,
        wait_seconds: float = CONNECT_TIMEOUT_SECONDS,
    ) -> None:
        self._node = node
        self._lease = lease_seconds
        self._db = PostgresDatabase(url, name="sessions", wait_seconds=wait_seconds)

    @property
    def node(self) -> str:
        return self._node

    def claim(self, session: LiveSession) -> None:
        notice = json.dumps(
            {"keyid": session.keyid, "node": self._node, "session": session.session_id}
        )
        with self._db.transaction("claiming a session") as conn:
            conn.execute(CLAIM_SESSION_SQL, (
                session.keyid, self._node, session.session_id, session.instance_id,
                self._lease,
            ))
            conn.execute(NOTIFY_SQL, (SESSIONS_CHANNEL, notice))

    def release(self, keyid: str, session_id: str) -> bool:
        with self._db.connection("releasing a session") as conn:
            row = conn.execute(RELEASE_SESSION_SQL, (keyid, self._node, session_id)).fetchone()
        return row is not None

    def renew(self, sessions: Sequence[LiveSession]) -> set[str]:
        if not sessions:
            return set()
        with self._db.connection("renewing session leases") as conn:
            rows = conn.execute(RENEW_SESSIONS_SQL, (
                self._node, self._lease, [s.keyid for s in sessions],
                [s.session_id for s in sessions], [s.instance_id for s in sessions],
            )).fetchall()
        return {keyid for (keyid,) in rows}

    def expire(
        self, message: Callable[[str], str], *, restarted: bool = False
    ) -> list[pb.PeerState]:
        with self._db.transaction("expiring session leases") as conn:
            sql = RESET_NODE_SQL if restarted else EXPIRE_OTHERS_SQL
            ended = dict(conn.execute(sql, (self._node,)).fetchall())
            if not ended:
                return []
            return self._mark_disconnected(conn, ended, message)

    def holders(self) -> dict[str, str]:
        with self._db.connection("reading session leases") as conn:
            return dict(conn.execute(HOLDERS_SQL).fetchall())

    def close(self) -> None:
        self._db.close()

    def _mark_disconnected(
        self, conn: Connection, ended: dict[str, str], message: Callable[[str], str]
    ) -> list[pb.PeerState]:
        changed: list[pb.PeerState] = []
        for keyid, data in conn.execute(LOCK_PEER_STATES_SQL, (list(ended),)).fetchall():
            state = pb.PeerState()
            try:
                state.ParseFromString(data)
            except DecodeError:
                log.warning("peer record %s is corrupt; left as it is", keyid)
                continue
            if state.state not in _LIVE_STATES:
                continue
            state.state = pb.CONNECTION_STATE_DISCONNECTED
            state.status_message = message(ended[keyid])
            changed.append(state)
        if changed:
            conn.execute(SAVE_PEER_STATES_SQL, (
                [s.peer_keyid for s in changed],
                [s.SerializeToString(deterministic=True) for s in changed],
            ))
        return changed


class ClusterNotices:
    """One connection LISTENing for the cluster's changes; used from one thread.

    ``wait`` raises StoreUnavailable when the connection is lost; ``open`` again
    (and read the stores afresh: notices sent meanwhile are gone).
    """

    def __init__(self, url: str) -> None:
        self._url = url
        self.shown = redacted_url(url)
        self._conn: Connection | None = None

    def open(self) -> None:
        self.close()
        conn = connect(self._url)
        try:
            conn.execute(f"LISTEN {CLIENTS_CHANNEL}")
            conn.execute(f"LISTEN {SESSIONS_CHANNEL}")
            conn.execute(f"LISTEN {OPLOG_CHANNEL}")
        except psycopg.Error as exc:
            conn.close()
            raise StoreUnavailable(
                f"PostgreSQL store {self.shown}: cannot listen for other hubs' changes: {exc}"
            ) from exc
        self._conn = conn

    def wait(self, timeout: float) -> list[ClusterNotice]:
        conn = self._conn
        if conn is None:
            raise StoreUnavailable(f"PostgreSQL store {self.shown}: not listening")
        try:
            arrived = list(conn.notifies(timeout=timeout, stop_after=1))
            return [n for n in map(_notice, arrived) if n is not None]
        except (psycopg.Error, OSError, ValueError) as exc:
            self.close()
            raise StoreUnavailable(
                f"PostgreSQL store {self.shown}: lost the connection that hears other "
                f"hubs' changes: {' '.join(str(exc).split())}"
            ) from exc

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


def _notice(notify: psycopg.Notify) -> ClusterNotice | None:
    if notify.channel == CLIENTS_CHANNEL:
        return ClientsChanged(notify.payload)
    if notify.channel == OPLOG_CHANNEL:
        ranges, _, writer = notify.payload.partition(" ")
        try:
            runs = tuple(
                (int(first), int(last))
                for first, _, last in (run.partition("-") for run in ranges.split(","))
            )
        except ValueError:
            log.warning("ignored a malformed oplog notice: %r", notify.payload[:200])
            return None
        return OplogCommitted(writer, runs)
    try:
        raw = json.loads(notify.payload)
        return SessionClaimed(str(raw["keyid"]), str(raw["node"]), str(raw["session"]))
    except (ValueError, KeyError, TypeError):
        log.warning("ignored a malformed session notice: %r", notify.payload[:200])
        return None



if TYPE_CHECKING:
    def _implements(
        clients: PostgresClientStore, leases: PostgresSessionLeases
    ) -> tuple[AuthorizedClientStore, SessionLeases]:
        return clients, leases
