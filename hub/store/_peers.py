"""Persistent PeerState records, one per peer keyid, in ``<data_dir>/peers.sqlite``.

A :class:`PeerStore` implements ``PeerStateStore`` (``hub.store._api``) and owns
one SQLite connection, which must be created and used in a single thread (the
PeerStateActor's). :func:`read_peer_states` is a read-only snapshot for the CLI,
usable whether or not the hub is running.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from google.protobuf.message import DecodeError

from hub.errors import StoreError
from hub.pb import synchub_pb2 as pb
from hub.store._api import PeerStateStore
from hub.store._files import ensure_private_database
from hub.store._sqlite_check import check_file, check_pages, failed, opening_failure

PEER_STORE_FILENAME = "peers.sqlite"

_BUSY_TIMEOUT_MS = 5000

_SCHEMA = "CREATE TABLE IF NOT EXISTS peers (keyid TEXT PRIMARY KEY, data BLOB NOT NULL)"

_UPSERT = (
    "INSERT INTO peers (keyid, data) VALUES (?, ?) "
    "ON CONFLICT (keyid) DO UPDATE SET data = excluded.data"
)


def peer_store_path(data_dir: str | os.PathLike[str]) -> Path:
    return Path(data_dir) / PEER_STORE_FILENAME


def _decode(keyid: str, data: bytes, path: Path) -> pb.PeerState:
    state = pb.PeerState()
    try:
        state.ParseFromString(data)
    except DecodeError as e:
        raise StoreError(f"{path}: peer record {keyid!r} is corrupt: {e}") from e
    return state


def _sorted(states: Iterable[pb.PeerState]) -> list[pb.PeerState]:
    return sorted(states, key=lambda s: (s.peer_instance_id, s.peer_keyid))


class PeerStore:
    """PeerState records keyed by peer keyid, in SQLite (WAL); every write is one transaction."""

    def __init__(self, data_dir: str | os.PathLike[str], *, check: bool = False) -> None:
        """``check``: refuse the file when ``PRAGMA quick_check`` finds damage."""
        self.path = peer_store_path(data_dir)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            check_file(self.path, "peer store")
            ensure_private_database(self.path)
            conn = sqlite3.connect(self.path, isolation_level=None)
        except (OSError, sqlite3.Error) as e:
            raise opening_failure("peer store", self.path, e) from e
        try:
            if check:
                check_pages(conn, self.path, "peer store")
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute(_SCHEMA)
        except StoreError:
            conn.close()
            raise
        except sqlite3.Error as e:
            conn.close()
            raise failed("peer store", self.path, "preparing it", e) from e
        self._conn: sqlite3.Connection | None = conn

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"{self.path}: the peer store is closed")
        return self._conn

    def load_all(self) -> dict[str, pb.PeerState]:
        conn = self._connection()
        try:
            rows = conn.execute("SELECT keyid, data FROM peers").fetchall()
        except sqlite3.Error as e:
            raise StoreError(f"{self.path}: cannot read peer states: {e}") from e
        return {keyid: _decode(keyid, data, self.path) for keyid, data in rows}

    def save(self, states: Iterable[pb.PeerState]) -> None:
        """Insert or replace every given state, all in one transaction."""
        rows: list[tuple[str, bytes]] = []
        for state in states:
            if not state.peer_keyid:
                raise StoreError(f"{self.path}: a peer state without a keyid cannot be saved")
            rows.append((state.peer_keyid, state.SerializeToString(deterministic=True)))
        if not rows:
            return
        conn = self._connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(_UPSERT, rows)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            raise StoreError(f"{self.path}: cannot save peer states: {e}") from e

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.close()
        except sqlite3.Error as e:
            raise StoreError(f"{self.path}: cannot close the peer store: {e}") from e


if TYPE_CHECKING:
    # mypy checks the class against the contract, signatures included.
    def _implements(store: PeerStore) -> PeerStateStore:
        return store


def read_peer_states(data_dir: str | os.PathLike[str]) -> list[pb.PeerState]:
    """Every stored PeerState, sorted by instance id then keyid; [] when there is no store.

    Opens the file read-only, so it never creates or changes anything in data_dir.
    """
    path = peer_store_path(data_dir)
    if not path.is_file():
        return []
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as e:
        raise StoreError(f"{path}: cannot open the peer store: {e}") from e
    try:
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        has_table = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'peers'"
        ).fetchone()
        rows = conn.execute("SELECT keyid, data FROM peers").fetchall() if has_table else []
    except sqlite3.Error as e:
        raise StoreError(f"{path}: cannot read peer states: {e}") from e
    finally:
        conn.close()
    return _sorted(_decode(keyid, data, path) for keyid, data in rows)
