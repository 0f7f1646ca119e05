"""Invitations in the PostgreSQL database several hubs share (migration 6).

``PostgresInvitationStore`` implements ``InvitationStore``: ``synchub invite`` on any
hub adds, lists and revokes rows, and whichever hub a client joins through takes the
use in one UPDATE, so of clients racing for an invitation's last use on several hubs
exactly one is let in (docs/cluster.md). No hub caches them: each join reads the row.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from psycopg.types.json import Jsonb

from hub.store._invitations import KEEP_FINISHED_MS, Invitation, InvitationStore
from hub.store._pg_db import CONNECT_TIMEOUT_SECONDS, PostgresDatabase
from hub.store._pg_schema import (
    ALL_INVITATIONS_SQL,
    DROP_FINISHED_INVITATIONS_SQL,
    GET_INVITATION_SQL,
    INSERT_INVITATION_SQL,
    REVOKE_INVITATION_SQL,
    USE_INVITATION_SQL,
)


def _invitation(row: Any) -> Invitation:
    (ident, instance, perms, verifier, created, expires, uses, left, revoked, joined) = row
    if isinstance(joined, str):
        joined = json.loads(joined)
    return Invitation(
        id=str(ident), instance_id=str(instance), permissions=str(perms),
        verifier=bytes(verifier), created_ms=int(created), expires_ms=int(expires),
        uses=int(uses), uses_left=int(left), revoked=bool(revoked),
        joined=tuple(str(keyid) for keyid in joined),
    )


class PostgresInvitationStore:
    """The invitations in the database at ``url``; usable from any thread."""

    def __init__(self, url: str, *, wait_seconds: float = CONNECT_TIMEOUT_SECONDS) -> None:
        self._db = PostgresDatabase(url, name="invitations", wait_seconds=wait_seconds)

    def add(self, invitation: Invitation, now_ms: int) -> None:
        with self._db.transaction("storing the invitation") as conn:
            old = now_ms - KEEP_FINISHED_MS
            conn.execute(DROP_FINISHED_INVITATIONS_SQL, (old, old))
            conn.execute(INSERT_INVITATION_SQL, (
                invitation.id, invitation.instance_id, invitation.permissions,
                invitation.verifier, invitation.created_ms, invitation.expires_ms,
                invitation.uses, invitation.uses_left, invitation.revoked,
                Jsonb(list(invitation.joined)),
            ))

    def get(self, invitation_id: str) -> Invitation | None:
        with self._db.connection("reading the invitations") as conn:
            row = conn.execute(GET_INVITATION_SQL, (invitation_id,)).fetchone()
        return None if row is None else _invitation(row)

    def all(self) -> list[Invitation]:
        with self._db.connection("reading the invitations") as conn:
            rows = conn.execute(ALL_INVITATIONS_SQL).fetchall()
        return [_invitation(row) for row in rows]

    def revoke(self, invitation_id: str, now_ms: int) -> bool:
        with self._db.transaction("revoking the invitation") as conn:
            done = conn.execute(REVOKE_INVITATION_SQL, (now_ms, invitation_id)).fetchone()
        return done is not None

    def use(self, invitation_id: str, keyid: str, now_ms: int) -> Invitation | None:
        with self._db.transaction("using the invitation") as conn:
            row = conn.execute(
                USE_INVITATION_SQL, (keyid, now_ms, invitation_id, now_ms)
            ).fetchone()
        return None if row is None else _invitation(row)

    def close(self) -> None:
        self._db.close()


if TYPE_CHECKING:
    # mypy checks the class against the contract, signatures included.
    def _implements(store: PostgresInvitationStore) -> InvitationStore:
        return store
