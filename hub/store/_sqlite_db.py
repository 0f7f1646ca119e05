"""The SQLite oplog file: one connection, its pragmas, the schema, transactions, counters.

An ``OplogDatabase`` owns one sqlite3 connection, used only by the thread that
opened it. It creates the schema in a new file, refuses a damaged file (empty,
a header that is not SQLite's; with ``check``, any page ``PRAGMA quick_check``
finds damaged), a file of another schema version or another application, and
turns every sqlite3 error into a StoreError naming the file and what was being done.
Writes are BEGIN IMMEDIATE transactions that read the id and modno counters inside
the transaction, so other processes may write to the same file meanwhile.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from hub.errors import StoreError
from hub.store._files import ensure_private_database
from hub.store._sqlite_check import check_file, check_pages, failed, opening_failure
from hub.store._sqlite_schema import (
    MIGRATIONS,
    READ_COUNTERS_SQL,
    READER_INDEXES_SQL,
    RETIRED_TABLE_SQL,
    SAVE_COUNTERS_SQL,
    SCHEMA_SQL,
    SCHEMA_VERSION,
    SYNC_TABLES_SQL,
)

BUSY_TIMEOUT_SECONDS: Final = 10.0
WHAT: Final = "oplog store"


def read_counters(db: sqlite3.Connection) -> tuple[int, int]:
    """The last id and the last modno handed out (read them inside a write transaction)."""
    last_id, last_modno = db.execute(READ_COUNTERS_SQL).fetchone()
    return int(last_id), int(last_modno)


def save_counters(db: sqlite3.Connection, last_id: int, last_modno: int) -> None:
    db.execute(SAVE_COUNTERS_SQL, (last_id, last_modno))


class OplogDatabase:
    """One open oplog file (or ``":memory:"``), with the schema checked or created."""

    def __init__(self, path: Path | str, *, mmap_bytes: int = 0, check: bool = False) -> None:
        """``check``: also read every page's structure (``PRAGMA quick_check``) before
        anything else, as the hub does when it starts."""
        self.path = str(path)
        check_file(self.path, WHAT)
        try:
            ensure_private_database(self.path)
            self._db: sqlite3.Connection | None = sqlite3.connect(
                self.path,
                timeout=BUSY_TIMEOUT_SECONDS,
                isolation_level=None,
                cached_statements=256,
            )
        except (OSError, sqlite3.Error) as exc:
            raise opening_failure(WHAT, self.path, exc) from exc
        try:
            if check:
                check_pages(self.connection(), self.path, WHAT)
            with self.errors("open"):
                self._configure(mmap_bytes)
        except BaseException:
            self.close()
            raise

    def _configure(self, mmap_bytes: int) -> None:
        db = self.connection()
        mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode not in ("wal", "memory"):
            raise StoreError(f"oplog store {self.path}: cannot use WAL journal mode ({mode})")
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute("PRAGMA temp_store = MEMORY")
        if mmap_bytes:
            db.execute(f"PRAGMA mmap_size = {int(mmap_bytes)}")
        with self.transaction("open") as tx:
            self._prepare_schema(tx)

    def _prepare_schema(self, db: sqlite3.Connection) -> None:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:
            tables = db.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
            ).fetchone()[0]
            if tables:
                raise StoreError(
                    f"{self.path} is an SQLite database but not a synchub oplog store"
                )
            for statement in SCHEMA_SQL.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        elif 0 < version < SCHEMA_VERSION and all(
            step in MIGRATIONS for step in range(version, SCHEMA_VERSION)
        ):
            # Inside the open's write transaction: another process opening the file
            # meanwhile waits, then finds it upgraded.
            for step in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[step]:
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        elif version != SCHEMA_VERSION:
            raise StoreError(
                f"oplog store {self.path} has schema version {version}; this synchub "
                f"reads version {SCHEMA_VERSION}: upgrade synchub or use another data_dir"
            )
        for statement in READER_INDEXES_SQL:
            db.execute(statement)
        db.execute(RETIRED_TABLE_SQL)
        for statement in SYNC_TABLES_SQL:
            db.execute(statement)

    def connection(self) -> sqlite3.Connection:
        """The open connection; StoreError once the store is closed."""
        if self._db is None:
            raise StoreError(f"oplog store {self.path} is closed")
        return self._db

    @contextmanager
    def errors(self, action: str) -> Iterator[None]:
        """Turn a sqlite3 error into a StoreError saying what ``action`` failed."""
        try:
            yield
        except sqlite3.Error as exc:
            raise failed(WHAT, self.path, action, exc) from exc

    @contextmanager
    def transaction(self, action: str) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed on success, rolled back on any exception."""
        with self.errors(action):
            db = self.connection()
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    @contextmanager
    def snapshot(self, action: str) -> Iterator[sqlite3.Connection]:
        """One read transaction, so several reads see the same committed state."""
        with self.errors(action):
            db = self.connection()
            db.execute("BEGIN")
            try:
                yield db
            finally:
                db.execute("COMMIT")

    def check_writable(self) -> None:
        """Commit a write that changes nothing; StoreError when the file takes no writes."""
        with self.transaction("checking the store takes writes") as db:
            db.execute("UPDATE counters SET last_id = last_id WHERE singleton = 1")

    def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            with self.errors("close"):
                db.close()
