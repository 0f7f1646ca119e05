"""Invitations: who may join, and how often. ``InvitationStore`` is the contract;
``SqliteInvitationStore`` keeps them in ``<data_dir>/invitations.sqlite`` (a hub of
its own), ``PostgresInvitationStore`` (``_pg_invitations``) in the database several
hubs share, so a token made on one hub is redeemed on any.

A row keeps an invitation's id, the instance and permissions the joining client
gets, the public half of the invitation key (never the secret: docs/security.md),
its expiry and its remaining uses. ``synchub invite`` adds and revokes rows
(SQLite serializes writers, so it needs no running hub); the hub's ConfigActor
uses one up when a client joins, in one transaction that only succeeds while the
invitation is unexpired and has a use left, so two clients racing for the last
use cannot both win.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

from hub.errors import StoreError
from hub.store._files import ensure_private_database

INVITATION_STORE_FILENAME: Final = "invitations.sqlite"
KEEP_FINISHED_MS: Final = 7 * 24 * 3600 * 1000
"""Expired, used-up and revoked invitations stay listed this long, then go."""

_BUSY_TIMEOUT_MS = 5000
_SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS invitations (id TEXT PRIMARY KEY, instance_id TEXT NOT NULL, "
    "permissions TEXT NOT NULL, verifier BLOB NOT NULL, created_ms INTEGER NOT NULL, "
    "expires_ms INTEGER NOT NULL, uses INTEGER NOT NULL, uses_left INTEGER NOT NULL, "
    "revoked INTEGER NOT NULL DEFAULT 0, joined TEXT NOT NULL DEFAULT '[]', "
    "finished_ms INTEGER)"
)
_INSERT: Final = (
    "INSERT INTO invitations (id, instance_id, permissions, verifier, created_ms, expires_ms, "
    "uses, uses_left, revoked, joined) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_GET: Final = (
    "SELECT id, instance_id, permissions, verifier, created_ms, expires_ms, uses, uses_left, "
    "revoked, joined FROM invitations WHERE id = ?"
)
_ALL: Final = (
    "SELECT id, instance_id, permissions, verifier, created_ms, expires_ms, uses, uses_left, "
    "revoked, joined FROM invitations ORDER BY created_ms, id"
)
_OPEN: Final = (
    "SELECT id, instance_id, permissions, verifier, created_ms, expires_ms, uses, uses_left, "
    "revoked, joined FROM invitations "
    "WHERE id = ? AND revoked = 0 AND uses_left > 0 AND expires_ms > ?"
)


@dataclass(frozen=True)
class Invitation:
    id: str
    instance_id: str
    permissions: str
    """The permissions as the config file writes them, in JSON."""
    verifier: bytes
    """The invitation key's raw ed25519 public key."""
    created_ms: int
    expires_ms: int
    uses: int
    uses_left: int
    revoked: bool = False
    joined: tuple[str, ...] = ()
    """The key ids that joined with it, in order."""

    def state(self, now_ms: int) -> str:
        """``open``, ``expired``, ``used up`` or ``revoked``."""
        if self.revoked:
            return "revoked"
        if self.uses_left <= 0:
            return "used up"
        if now_ms >= self.expires_ms:
            return "expired"
        return "open"


def invitation_store_path(data_dir: str | os.PathLike[str]) -> Path:
    return Path(data_dir) / INVITATION_STORE_FILENAME


def _row(row: Any) -> Invitation:
    (ident, instance, perms, verifier, created, expires, uses, left, revoked, joined) = row
    return Invitation(
        id=str(ident), instance_id=str(instance), permissions=str(perms),
        verifier=bytes(verifier), created_ms=int(created), expires_ms=int(expires),
        uses=int(uses), uses_left=int(left), revoked=bool(revoked),
        joined=tuple(json.loads(str(joined))),
    )


class InvitationStore(Protocol):
    """Where a hub's invitations are: every method raises StoreError when the store
    cannot be read or written (StoreUnavailable when its database cannot be reached)."""

    def add(self, invitation: Invitation, now_ms: int) -> None:
        """Store a new invitation (its id new), dropping ones finished over a week ago."""
        ...

    def get(self, invitation_id: str) -> Invitation | None: ...

    def all(self) -> list[Invitation]:
        """Every invitation kept, oldest first."""
        ...

    def revoke(self, invitation_id: str, now_ms: int) -> bool:
        """Close an invitation; False when there is no such open one."""
        ...

    def use(self, invitation_id: str, keyid: str, now_ms: int) -> Invitation | None:
        """Take one use for ``keyid`` in one transaction: the invitation after it, or None
        when it was not open (revoked, expired or used up) at ``now_ms``. Of writers
        racing for the last use (any process, any hub), exactly one gets it."""
        ...

    def close(self) -> None: ...


class SqliteInvitationStore:
    """The invitations of one hub, in SQLite (WAL); one connection, one thread."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.path = invitation_store_path(data_dir)
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            ensure_private_database(self.path)
            conn = sqlite3.connect(self.path, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"{self.path}: cannot open the invitations: {exc}") from exc
        self._conn: sqlite3.Connection | None = conn

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"{self.path}: the invitation store is closed")
        return self._conn

    @contextmanager
    def _transaction(self, action: str) -> Iterator[sqlite3.Connection]:
        conn = self._connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot {action}: {exc}") from exc

    def add(self, invitation: Invitation, now_ms: int) -> None:
        """Store a new invitation, dropping ones finished over a week ago."""
        with self._transaction("store the invitation") as conn:
            conn.execute(
                "DELETE FROM invitations WHERE finished_ms IS NOT NULL AND finished_ms < ? "
                "OR expires_ms < ?",
                (now_ms - KEEP_FINISHED_MS, now_ms - KEEP_FINISHED_MS),
            )
            conn.execute(
                _INSERT,
                (invitation.id, invitation.instance_id, invitation.permissions,
                 invitation.verifier, invitation.created_ms, invitation.expires_ms,
                 invitation.uses, invitation.uses_left, int(invitation.revoked),
                 json.dumps(list(invitation.joined))),
            )

    def get(self, invitation_id: str) -> Invitation | None:
        try:
            row = self._connection().execute(
                _GET, (invitation_id,)
            ).fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot read the invitations: {exc}") from exc
        return None if row is None else _row(row)

    def all(self) -> list[Invitation]:
        try:
            rows = self._connection().execute(
                _ALL
            ).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot read the invitations: {exc}") from exc
        return [_row(row) for row in rows]

    def revoke(self, invitation_id: str, now_ms: int) -> bool:
        """Close an invitation; False when there is no such open one."""
        with self._transaction("revoke the invitation") as conn:
            done = conn.execute(
                "UPDATE invitations SET revoked = 1, finished_ms = ? WHERE id = ? AND revoked = 0",
                (now_ms, invitation_id),
            )
        return done.rowcount == 1

    def use(self, invitation_id: str, keyid: str, now_ms: int) -> Invitation | None:
        """Take one use for ``keyid``: the invitation after it, or None when it was not
        open (revoked, expired or used up) at ``now_ms``."""
        with self._transaction("use the invitation") as conn:
            row = conn.execute(
                _OPEN,
                (invitation_id, now_ms),
            ).fetchone()
            if row is None:
                return None
            before = _row(row)
            left = before.uses_left - 1
            conn.execute(
                "UPDATE invitations SET uses_left = ?, joined = ?, finished_ms = ? WHERE id = ?",
                (left, json.dumps([*before.joined, keyid]), now_ms if left == 0 else None,
                 invitation_id),
            )
        return dataclasses.replace(before, uses_left=left, joined=(*before.joined, keyid))

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


if TYPE_CHECKING:

    def _implements(store: SqliteInvitationStore) -> InvitationStore:
        return store
