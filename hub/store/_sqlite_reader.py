"""SqliteOplogReader: a read-only connection to the SQLite oplog, for the web side.

The OplogActor is the oplog's only writer; a reader opens the same file read-only
(``mode=ro``) beside it and sees every committed change (WAL lets readers and the
writer work at once). It implements ``OplogReader`` (``hub.store._api``). The
connection may move between threads (``check_same_thread`` off) but serves one at a
time: the web side keeps readers in a pool and lends each to one request.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Final

from hub.errors import StoreError
from hub.pb import synchub_pb2 as pb
from hub.store._api import LocalChanges, OperationQuery, OplogReader
from hub.store._sqlite_db import BUSY_TIMEOUT_SECONDS, read_counters
from hub.store._sqlite_feed import changes_page, read_changes
from hub.store._sqlite_schema import SCHEMA_VERSION

_FILTERS: Final = (
    ("instance", "peer_instance_id = ?"),
    ("producer", "instance_id = ?"),
    ("repo_guid", "repo_guid = ?"),
    ("plan_id", "plan_id = ?"),
    ("status", "status = ?"),
    ("since_ms", "unix_time_start_ms >= ?"),
    ("until_ms", "unix_time_start_ms < ?"),
    ("before_id", "id < ?"),
)


def find_sql(query: OperationQuery) -> tuple[str, tuple[object, ...]]:
    """The statement ``find`` runs for ``query``, and its parameters (the bench's baseline)."""
    clauses: list[str] = []
    params: list[object] = []
    for field, clause in _FILTERS:
        value = getattr(query, field)
        if value is not None:
            clauses.append(clause)
            params.append(value)
    where = " AND ".join(clauses) if clauses else "1"
    sql = f"SELECT {_COLUMNS} FROM operations WHERE {where} ORDER BY {query.order_sql()} LIMIT ?"  # noqa: S608
    return sql, (*params, max(0, query.limit))


# As SqliteOplogStore hands them out: a peer's operations with the instance they came
# from; a node's own with their stored bytes exactly.
_COLUMNS: Final = (
    "data, CASE WHEN original_instance_keyid = '' THEN '' ELSE peer_instance_id END"
)


def _with_peer(data: bytes, peer_instance_id: str) -> pb.Operation:
    op = pb.Operation.FromString(data)
    if peer_instance_id:
        op.peer_instance_id = peer_instance_id
    return op


class SqliteOplogReader:
    """A read-only view of an existing SQLite oplog file."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise StoreError(f"no oplog store at {self.path}: start the hub first")
        try:
            self._db: sqlite3.Connection | None = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode=ro",
                uri=True,
                timeout=BUSY_TIMEOUT_SECONDS,
                isolation_level=None,
                check_same_thread=False,
                cached_statements=64,
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the oplog store {self.path} to read: {exc}") from exc
        try:
            with self._errors("open"):
                version = self._conn().execute("PRAGMA user_version").fetchone()[0]
            if version != SCHEMA_VERSION:
                raise StoreError(
                    f"oplog store {self.path} has schema version {version}; this synchub "
                    f"reads version {SCHEMA_VERSION}"
                )
        except BaseException:
            self.close()
            raise

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreError(f"the oplog reader of {self.path} is closed")
        return self._db

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise StoreError(f"oplog store {self.path}: {action} failed: {exc}") from exc

    def _operations(self, sql: str, params: tuple[object, ...]) -> list[pb.Operation]:
        with self._errors("reading operations"):
            rows = self._conn().execute(sql, params).fetchall()
        return [_with_peer(data, peer) for data, peer in rows]

    def find(self, query: OperationQuery) -> list[pb.Operation]:
        return self._operations(*find_sql(query))

    def get(self, op_id: int) -> pb.Operation | None:
        found = self._operations(
            f"SELECT {_COLUMNS} FROM operations WHERE id = ?", (op_id,)  # noqa: S608
        )
        return found[0] if found else None

    def stored_between(
        self, first_id: int, last_id: int, *, limit: int
    ) -> list[pb.Operation]:
        return self._operations(
            f"SELECT {_COLUMNS} FROM operations WHERE id >= ? AND id <= ? "  # noqa: S608
            "ORDER BY id LIMIT ?",
            (first_id, last_id, max(0, limit)),
        )

    def plan_keys(self) -> list[tuple[str, str]]:
        with self._errors("listing plans"):
            rows = self._conn().execute(
                "SELECT DISTINCT peer_instance_id, plan_id FROM operations ORDER BY 1, 2"
            ).fetchall()
        return [(str(instance), str(plan)) for instance, plan in rows]

    def latest_runs(self, instance: str, plan_id: str, limit: int) -> list[pb.Operation]:
        return self._operations(
            f"SELECT {_COLUMNS} FROM operations WHERE peer_instance_id = ? AND plan_id = ? "  # noqa: S608
            "ORDER BY id DESC LIMIT ?",
            (instance, plan_id, max(0, limit)),
        )

    def latest_with_status(
        self, instance: str, plan_id: str, status: int
    ) -> pb.Operation | None:
        found = self._operations(
            f"SELECT {_COLUMNS} FROM operations WHERE peer_instance_id = ? AND plan_id = ? "  # noqa: S608
            "AND status = ? ORDER BY id DESC LIMIT 1",
            (instance, plan_id, status),
        )
        return found[0] if found else None

    def local_modno(self) -> int:
        with self._errors("reading the modno counter"):
            return read_counters(self._conn())[1]

    def local_changes_since(self, modno: int, *, limit: int = 10_000) -> LocalChanges:
        db = self._conn()
        with self._errors("reading local changes"):
            db.execute("BEGIN")
            try:
                rows, gone = read_changes(db, modno, limit)
            finally:
                db.execute("COMMIT")
        return changes_page(rows, gone, modno, limit)

    def data_version(self) -> int:
        with self._errors("reading the data version"):
            return int(self._conn().execute("PRAGMA data_version").fetchone()[0])

    def count(self) -> int:
        with self._errors("count"):
            return int(self._conn().execute("SELECT count(*) FROM operations").fetchone()[0])

    def size_bytes(self) -> int:
        total = 0
        for suffix in ("", "-wal"):
            try:
                total += os.stat(f"{self.path}{suffix}").st_size
            except FileNotFoundError:
                continue
        return total

    def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            with self._errors("close"):
                db.close()


if TYPE_CHECKING:
    # mypy checks the class against the contract, signatures included.
    def _implements(reader: SqliteOplogReader) -> OplogReader:
        return reader
