"""This node's own operations in the SQLite oplog, and their change feed.

Every local add, update or delete takes the next value of the store-wide modno
counter inside its write transaction; a deleted local operation leaves a
tombstone (``local_deletions``) carrying its modno. "Everything past modno N" is
then a complete feed, deletions included, read from two indexed ranges in one
snapshot. A peer's operations never enter the feed: they keep their owner's
modnos and leave no tombstone.

The writers here run inside the transaction the caller opened, ``read_changes``
inside a read transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from hub.errors import StoreError
from hub.pb import synchub_pb2 as pb
from hub.store._api import LocalChanges
from hub.store._rules import local_copy, peer_of_local
from hub.store._sqlite_db import read_counters, save_counters
from hub.store._sqlite_schema import INSERT_SQL, LOOKUP_QUERIES, TOMBSTONE_SQL, UPDATE_SQL
from hub.store._sqlite_select import json_chunks
from hub.store._sqlite_sync import mark_dirty


def _local_row(op: pb.Operation) -> tuple[object, ...]:
    """The operations row of a local operation (no original ids: they are NULL)."""
    return (
        op.id, op.flow_id, op.modno, "", None, None,
        op.repo_guid, op.plan_id, op.instance_id, peer_of_local(op), op.snapshot_id,
        op.unix_time_start_ms, op.status, op.SerializeToString(),
    )


def insert_local(db: sqlite3.Connection, ops: Sequence[pb.Operation]) -> list[pb.Operation]:
    """Store new local operations, each with a new id and modno; return the stored copies."""
    last_id, last_modno = read_counters(db)
    stored_ops: list[pb.Operation] = []
    rows = []
    for op in ops:
        last_id += 1
        last_modno += 1
        stored = local_copy(op)
        stored.id = last_id
        stored.flow_id = op.flow_id if op.flow_id > 0 else last_id
        stored.modno = last_modno
        rows.append(_local_row(stored))
        stored_ops.append(stored)
    db.executemany(INSERT_SQL, rows)
    save_counters(db, last_id, last_modno)
    return stored_ops


def _owners(db: sqlite3.Connection, ids: list[int]) -> dict[int, tuple[int, str]]:
    """The flow id and owner key id of each existing operation among ``ids``."""
    known: dict[int, tuple[int, str]] = {}
    for chunk in json_chunks(ids):
        for op_id, flow_id, keyid in db.execute(LOOKUP_QUERIES["rows_by_id"], {"ids": chunk}):
            known[op_id] = (flow_id, keyid)
    return known


def replace_local(db: sqlite3.Connection, latest: dict[int, pb.Operation]) -> list[pb.Operation]:
    """Replace local operations by id, each with a new modno; StoreError for any other id."""
    known = _owners(db, list(latest))
    last_id, last_modno = read_counters(db)
    stored_ops: list[pb.Operation] = []
    rows = []
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
        rows.append((*_local_row(stored)[1:], op_id))
        stored_ops.append(stored)
    db.executemany(UPDATE_SQL, rows)
    save_counters(db, last_id, last_modno)
    return stored_ops


def delete_by_id(db: sqlite3.Connection, unique_ids: list[int]) -> list[int]:
    """Delete operations by local id, leaving a tombstone for each local one; ids deleted."""
    deleted: list[int] = []
    local: list[int] = []
    peers: dict[str, list[int]] = {}
    for chunk in json_chunks(unique_ids):
        for op_id, keyid, original_id in db.execute(
            LOOKUP_QUERIES["delete_by_id"], {"ids": chunk}
        ):
            deleted.append(op_id)
            if not keyid:
                local.append(op_id)
            else:
                peers.setdefault(keyid, []).append(original_id)
    for keyid, original_ids in peers.items():
        mark_dirty(db, keyid, original_ids)
    if local:
        last_id, last_modno = read_counters(db)
        tombstones = [(op_id, last_modno + n) for n, op_id in enumerate(local, start=1)]
        db.executemany(TOMBSTONE_SQL, tombstones)
        save_counters(db, last_id, last_modno + len(local))
    return sorted(deleted)


def read_changes(
    db: sqlite3.Connection, modno: int, limit: int
) -> tuple[list[tuple[bytes]], list[tuple[int, int]]]:
    """The rows of local changes past ``modno``: at most ``limit`` operations and tombstones.

    Run both reads in one snapshot, so they see the same commits.
    """
    params = {"modno": modno, "limit": limit}
    rows = db.execute(LOOKUP_QUERIES["local_changes_since"], params).fetchall()
    gone = db.execute(LOOKUP_QUERIES["local_deletions_since"], params).fetchall()
    return rows, gone


def changes_page(
    rows: list[tuple[bytes]], gone: list[tuple[int, int]], modno: int, limit: int
) -> LocalChanges:
    """The changes ``read_changes`` found, up to a mark that skips nothing."""
    operations = [pb.Operation.FromString(data) for (data,) in rows]
    # With a limit, report only up to the lower of the two feeds' last modnos
    # so nothing between them is skipped.
    ends = []
    if len(rows) == limit:
        ends.append(operations[-1].modno)
    if len(gone) == limit:
        ends.append(gone[-1][1])
    if ends:
        ceiling = min(ends)
        operations = [op for op in operations if op.modno <= ceiling]
        gone = [(op_id, m) for op_id, m in gone if m <= ceiling]
    mark = max([modno, *(op.modno for op in operations), *(m for _, m in gone)])
    return LocalChanges(tuple(operations), tuple(op_id for op_id, _ in gone), mark)
