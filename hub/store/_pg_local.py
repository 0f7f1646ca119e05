"""This node's own operations in the PostgreSQL oplog: adds, updates and deletes.

The same rules as the SQLite store's (``_sqlite_feed``): every local change takes
the next value of the store-wide modno counter, and a deleted local operation
leaves a tombstone carrying its modno. Each function runs inside the transaction
the caller opened and locks the counters row first, as every writer does.
"""

from __future__ import annotations

from collections.abc import Sequence

from hub.errors import StoreError
from hub.pb import synchub_pb2 as pb
from hub.store._pg_db import Connection
from hub.store._pg_rows import Columns
from hub.store._pg_schema import (
    DELETE_BY_ID_SQL,
    INSERT_ROWS_SQL,
    LOCK_COUNTERS_SQL,
    OWNERS_SQL,
    SAVE_COUNTERS_SQL,
    TOMBSTONES_SQL,
    UPDATE_ROWS_SQL,
)
from hub.store._rules import local_copy


def lock_counters(conn: Connection) -> tuple[int, int]:
    """The last id and modno handed out, with the counters row locked until COMMIT."""
    row = conn.execute(LOCK_COUNTERS_SQL).fetchone()
    if row is None:
        raise StoreError("the counters row is missing: the store's schema is damaged")
    return int(row[0]), int(row[1])


def insert_local(conn: Connection, ops: Sequence[pb.Operation]) -> list[pb.Operation]:
    """Store new local operations, each with a new id and modno; return the stored copies."""
    last_id, last_modno = lock_counters(conn)
    stored_ops: list[pb.Operation] = []
    rows = Columns()
    for op in ops:
        last_id += 1
        last_modno += 1
        stored = local_copy(op)
        stored.id = last_id
        stored.flow_id = op.flow_id if op.flow_id > 0 else last_id
        stored.modno = last_modno
        rows.add_local(stored)
        stored_ops.append(stored)
    conn.execute(INSERT_ROWS_SQL, rows.params())
    conn.execute(SAVE_COUNTERS_SQL, (last_id, last_modno))
    return stored_ops


def replace_local(conn: Connection, latest: dict[int, pb.Operation]) -> list[pb.Operation]:
    """Replace local operations by id, each with a new modno; StoreError for any other id."""
    last_id, last_modno = lock_counters(conn)
    known = {
        op_id: (flow_id, keyid)
        for op_id, flow_id, keyid in conn.execute(OWNERS_SQL, (list(latest),))
    }
    stored_ops: list[pb.Operation] = []
    rows = Columns()
    for op_id, op in latest.items():
        if op_id not in known:
            raise StoreError(f"cannot update operation {op_id}: no such operation")
        flow_id, keyid = known[op_id]
        if keyid:
            raise StoreError(
                f"cannot update operation {op_id}: it belongs to {keyid}, "
                "and only its owner changes it"
            )
        last_modno += 1
        stored = local_copy(op)
        stored.flow_id = op.flow_id if op.flow_id > 0 else flow_id
        stored.modno = last_modno
        rows.add_local(stored)
        stored_ops.append(stored)
    conn.execute(UPDATE_ROWS_SQL, rows.params())
    conn.execute(SAVE_COUNTERS_SQL, (last_id, last_modno))
    return stored_ops


def delete_by_id(conn: Connection, unique_ids: list[int]) -> list[int]:
    """Delete operations by local id, leaving a tombstone for each local one; ids deleted."""
    last_id, last_modno = lock_counters(conn)
    deleted: list[int] = []
    local: list[int] = []
    for op_id, keyid in conn.execute(DELETE_BY_ID_SQL, (unique_ids,)):
        deleted.append(op_id)
        if not keyid:
            local.append(op_id)
    if local:
        local.sort()
        modnos = list(range(last_modno + 1, last_modno + 1 + len(local)))
        conn.execute(TOMBSTONES_SQL, (local, modnos))
        conn.execute(SAVE_COUNTERS_SQL, (last_id, modnos[-1]))
    return sorted(deleted)
