"""PostgresOplogReader: the web side's read-only view of a hub's oplog in PostgreSQL.

It implements ``OplogReader`` (``hub.store._api``) on its own small pool of
connections to the database the hub's ``PostgresOplogStore`` writes, and only reads.
The local change feed is read in one REPEATABLE READ transaction, so the operations
and the tombstones it returns are of the same commit; ``data_version`` is the local
modno counter (what changes when this node's own operations do).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from hub.pb import synchub_pb2 as pb
from hub.store._api import LocalChanges, OperationQuery, OplogReader
from hub.store._pg_db import CONNECT_TIMEOUT_SECONDS, PostgresDatabase
from hub.store._pg_rows import decoded
from hub.store._pg_schema import HANDED_OUT_PEER_SQL

_FILTERS: Final = (
    ("instance", "peer_instance_id = %s"),
    ("producer", "instance_id = %s"),
    ("repo_guid", "repo_guid = %s"),
    ("plan_id", "plan_id = %s"),
    ("status", "status = %s"),
    ("since_ms", "unix_time_start_ms >= %s"),
    ("until_ms", "unix_time_start_ms < %s"),
    ("before_id", "id < %s"),
)
_COLUMNS: Final = f"id, flow_id, data, {HANDED_OUT_PEER_SQL}"


def pg_find_sql(query: OperationQuery) -> tuple[str, tuple[object, ...]]:
    clauses, params = [], []
    for field, clause in _FILTERS:
        value = getattr(query, field)
        if value is not None:
            clauses.append(clause)
            params.append(value)
    where = " AND ".join(clauses) if clauses else "TRUE"
    sql = f"SELECT {_COLUMNS} FROM operations WHERE {where} ORDER BY {query.order_sql()} LIMIT %s"  # noqa: S608
    return sql, (*params, max(0, query.limit))


class PostgresOplogReader:
    """Reads the oplog in the PostgreSQL database at ``url``; usable from any thread."""

    def __init__(self, url: str, *, wait_seconds: float = CONNECT_TIMEOUT_SECONDS) -> None:
        self._db = PostgresDatabase(url, name="reader", max_connections=2,
                                    wait_seconds=wait_seconds)

    def _operations(self, sql: str, params: tuple[object, ...], what: str) -> list[pb.Operation]:
        with self._db.connection(what) as conn:
            rows = conn.execute(sql, params).fetchall()
        return [decoded(*row) for row in rows]

    def find(self, query: OperationQuery) -> list[pb.Operation]:
        return self._operations(*pg_find_sql(query), "reading operations")

    def get(self, op_id: int) -> pb.Operation | None:
        found = self._operations(
            f"SELECT {_COLUMNS} FROM operations WHERE id = %s", (op_id,), "get"  # noqa: S608
        )
        return found[0] if found else None

    def stored_between(
        self, first_id: int, last_id: int, *, limit: int
    ) -> list[pb.Operation]:
        return self._operations(
            f"SELECT {_COLUMNS} FROM operations WHERE id >= %s AND id <= %s "  # noqa: S608
            "ORDER BY id LIMIT %s",
            (first_id, last_id, max(0, limit)), "reading stored operations",
        )

    def plan_keys(self) -> list[tuple[str, str]]:
        with self._db.connection("listing plans") as conn:
            rows = conn.execute(
                "SELECT DISTINCT peer_instance_id COLLATE \"C\", plan_id COLLATE \"C\" "
                "FROM operations ORDER BY 1, 2"
            ).fetchall()
        return [(str(instance), str(plan)) for instance, plan in rows]

    def latest_runs(self, instance: str, plan_id: str, limit: int) -> list[pb.Operation]:
        return self._operations(
            f"SELECT {_COLUMNS} FROM operations WHERE peer_instance_id = %s "  # noqa: S608
            "AND plan_id = %s ORDER BY id DESC LIMIT %s",
            (instance, plan_id, max(0, limit)), "reading a plan's runs",
        )

    def latest_with_status(
        self, instance: str, plan_id: str, status: int
    ) -> pb.Operation | None:
        found = self._operations(
            f"SELECT {_COLUMNS} FROM operations WHERE peer_instance_id = %s "  # noqa: S608
            "AND plan_id = %s AND status = %s ORDER BY id DESC LIMIT 1",
            (instance, plan_id, status), "reading a plan's runs",
        )
        return found[0] if found else None

    def local_modno(self) -> int:
        with self._db.connection("reading the modno counter") as conn:
            row = conn.execute("SELECT last_modno FROM counters WHERE singleton = 1").fetchone()
        return int(row[0]) if row else 0

    def local_changes_since(self, modno: int, *, limit: int = 10_000) -> LocalChanges:
        with self._db.connection("reading local changes") as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            rows = conn.execute(
                "SELECT id, flow_id, data, modno FROM operations "
                "WHERE original_instance_keyid = '' AND modno > %s ORDER BY modno LIMIT %s",
                (modno, limit),
            ).fetchall()
            gone = conn.execute(
                "SELECT id, modno FROM local_deletions WHERE modno > %s ORDER BY modno LIMIT %s",
                (modno, limit),
            ).fetchall()
        operations = [decoded(op_id, flow_id, data) for op_id, flow_id, data, _ in rows]
        for op, row in zip(operations, rows, strict=True):
            op.modno = row[3]
        ends = []
        if len(rows) == limit:
            ends.append(rows[-1][3])
        if len(gone) == limit:
            ends.append(gone[-1][1])
        if ends:
            ceiling = min(ends)
            operations = [op for op in operations if op.modno <= ceiling]
            gone = [(op_id, m) for op_id, m in gone if m <= ceiling]
        mark = max([modno, *(op.modno for op in operations), *(m for _, m in gone)])
        return LocalChanges(tuple(operations), tuple(op_id for op_id, _ in gone), mark)

    def data_version(self) -> int:
        return self.local_modno()

    def count(self) -> int:
        with self._db.connection("count") as conn:
            row = conn.execute("SELECT count(*) FROM operations").fetchone()
        return int(row[0]) if row else 0

    def size_bytes(self) -> int:
        with self._db.connection("size") as conn:
            row = conn.execute("SELECT pg_total_relation_size('operations')").fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        self._db.close()


if TYPE_CHECKING:
    # mypy checks the class against the contract, signatures included.
    def _implements(reader: PostgresOplogReader) -> OplogReader:
        return reader
