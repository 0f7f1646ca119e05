"""PostgresPeerStateStore: PeerState records by peer keyid in PostgreSQL, implementing
``PeerStateStore`` (``hub.store._api``) beside ``PeerStore`` (SQLite).

One table, ``peer_states (keyid, data)``, in the same database and schema as the
oplog (``_pg_schema``); every save is one statement, so all of it or none.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from google.protobuf.message import DecodeError

from hub.errors import StoreError
from hub.pb import synchub_pb2 as pb
from hub.store._api import PeerStateStore
from hub.store._pg_db import CONNECT_TIMEOUT_SECONDS, PostgresDatabase
from hub.store._pg_schema import LOAD_PEER_STATES_SQL, SAVE_PEER_STATES_SQL


class PostgresPeerStateStore:
    """Peer states in the PostgreSQL database at ``url``; usable from any thread."""

    def __init__(self, url: str, *, wait_seconds: float = CONNECT_TIMEOUT_SECONDS) -> None:
        """``wait_seconds``: how long a call waits for the database before it fails
        with StoreUnavailable."""
        self._db = PostgresDatabase(url, name="peer-states", wait_seconds=wait_seconds)

    def load_all(self) -> dict[str, pb.PeerState]:
        with self._db.connection("reading peer states") as conn:
            rows = conn.execute(LOAD_PEER_STATES_SQL).fetchall()
        return {keyid: self._decode(keyid, data) for keyid, data in rows}

    def save(self, states: Iterable[pb.PeerState]) -> None:
        """Insert or replace every given state (the last of a repeated keyid wins)."""
        latest: dict[str, bytes] = {}
        for state in states:
            if not state.peer_keyid:
                raise StoreError(
                    f"PostgreSQL store {self._db.shown}: a peer state without a keyid "
                    "cannot be saved"
                )
            latest[state.peer_keyid] = state.SerializeToString(deterministic=True)
        if not latest:
            return
        with self._db.connection("saving peer states") as conn:
            conn.execute(SAVE_PEER_STATES_SQL, (list(latest), list(latest.values())),
                         prepare=True)

    def close(self) -> None:
        self._db.close()

    def _decode(self, keyid: str, data: bytes) -> pb.PeerState:
        state = pb.PeerState()
        try:
            state.ParseFromString(data)
        except DecodeError as exc:
            raise StoreError(
                f"PostgreSQL store {self._db.shown}: peer record {keyid!r} is corrupt: {exc}"
            ) from exc
        return state


if TYPE_CHECKING:
    # mypy checks the class against the contract, signatures included.
    def _implements(store: PostgresPeerStateStore) -> PeerStateStore:
        return store
