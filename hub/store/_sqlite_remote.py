"""A peer's operations in the SQLite oplog: applying its batches, reading what a diff compares.

This is the ingest hot path, docs/protocol.md §6.4 (`send_operations`) in SQL: a
batch's deletes run first, then one loop iteration per operation maps the peer's
id and flow id to local ones. The lookups are prepared once (id lists travel as
JSON array parameters) and skipped altogether when every id and flow in the batch
is above the highest the peer sent before, as in an initial sync. With ``reuse``
the received operations become the stored ones, uncopied. Every statement is
confined to rows carrying the peer's key id.

The instance the peer authenticated as goes in the ``peer_instance_id`` column,
never into the stored bytes: an operation's ``instance_id`` is kept as its
producer wrote it, and a ``peer_instance_id`` the peer put in is dropped. The
operations handed back carry it set, as reads do.

The functions here run inside the transaction the caller opened; the caller has
checked the batch (``hub.store._rules``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from hub.pb import synchub_pb2 as pb
from hub.store._api import RemoteApplyResult
from hub.store._rules import lists_few_ids, window_bound
from hub.store._sqlite_db import read_counters, save_counters
from hub.store._sqlite_schema import INSERT_SQL, LOOKUP_QUERIES, UPDATE_SQL
from hub.store._sqlite_select import json_chunks, selection
from hub.store._sqlite_sync import mark_dirty

Row = tuple[object, ...]


def apply_remote_batch(
    db: sqlite3.Connection,
    keyid: str,
    latest: dict[int, pb.Operation],
    to_delete: Sequence[int],
    *,
    reuse: bool,
    peer_instance_id: str = "",
) -> RemoteApplyResult:
    """Delete ``to_delete`` (peer ids), then insert or update ``latest`` (by peer id)."""
    deleted: list[int] = []
    for chunk in json_chunks(to_delete):
        deleted.extend(
            row[0]
            for row in db.execute(
                LOOKUP_QUERIES["delete_by_original_id"], {"keyid": keyid, "ids": chunk}
            )
        )
    created, updated = _upsert_remote(db, keyid, latest, reuse, peer_instance_id)
    mark_dirty(db, keyid, [*to_delete, *latest])
    return RemoteApplyResult(tuple(created), tuple(updated), tuple(sorted(deleted)))


def _existing_ids(
    db: sqlite3.Connection, keyid: str, original_ids: list[int], highest_id: int | None
) -> dict[int, int]:
    """Local ids of the operations already held, by peer id."""
    existing: dict[int, int] = {}
    if highest_id is not None and min(original_ids) <= highest_id:
        for chunk in json_chunks(original_ids):
            existing.update(
                db.execute(
                    LOOKUP_QUERIES["existing_by_original_id"], {"keyid": keyid, "ids": chunk}
                ).fetchall()
            )
    return existing


def _known_flows(
    db: sqlite3.Connection, keyid: str, original_flows: list[int], highest_flow: int | None
) -> dict[int, int]:
    """Local flow ids of the peer's flows already held, by the peer's flow id."""
    flows: dict[int, int] = {}
    if highest_flow is not None and min(original_flows) <= highest_flow:
        for chunk in json_chunks(original_flows):
            for original_flow_id, flow_id in db.execute(
                LOOKUP_QUERIES["flow_by_original_flow_id"], {"keyid": keyid, "ids": chunk}
            ):
                if flow_id is not None:
                    flows[original_flow_id] = flow_id
    return flows


def _upsert_remote(
    db: sqlite3.Connection,
    keyid: str,
    latest: dict[int, pb.Operation],
    reuse: bool,
    peer_instance_id: str,
) -> tuple[list[pb.Operation], list[pb.Operation]]:
    if not latest:
        return [], []
    # A peer's initial sync sends ids and flows above any it sent before; two
    # index lookups of the highest ones then spare the per-id lookups.
    highest_id, highest_flow = db.execute(
        LOOKUP_QUERIES["highest_original_ids"], {"keyid": keyid}
    ).fetchone()
    existing = _existing_ids(db, keyid, list(latest), highest_id)
    original_flows = list(dict.fromkeys(op.flow_id or op.id for op in latest.values()))
    flows = _known_flows(db, keyid, original_flows, highest_flow)

    last_id, last_modno = read_counters(db)
    first_new_id = last_id + 1
    created: list[pb.Operation] = []
    updated: list[pb.Operation] = []
    inserts: list[Row] = []
    updates: list[Row] = []
    for original_id, op in latest.items():
        local_id = existing.get(original_id)
        if local_id is None:
            last_id += 1
            local_id = last_id
        original_flow_id = op.flow_id or original_id
        flow_id = flows.setdefault(original_flow_id, local_id)
        stored = op if reuse else _copy(op)
        stored.id = local_id
        stored.flow_id = flow_id
        stored.original_id = original_id
        stored.original_flow_id = original_flow_id
        stored.original_instance_keyid = keyid
        stored.ClearField("peer_instance_id")
        # The row spelled out rather than built by a helper: this runs once per operation.
        row = (
            local_id, flow_id, stored.modno, keyid, original_id, original_flow_id,
            stored.repo_guid, stored.plan_id, stored.instance_id, peer_instance_id,
            stored.snapshot_id, stored.unix_time_start_ms, stored.status,
            stored.SerializeToString(),
        )
        if peer_instance_id:
            stored.peer_instance_id = peer_instance_id
        if local_id >= first_new_id:
            inserts.append(row)
            created.append(stored)
        else:
            updates.append((*row[1:], local_id))
            updated.append(stored)
    write_remote_rows(db, inserts, updates)
    if last_id >= first_new_id:
        save_counters(db, last_id, last_modno)
    return created, updated


def _copy(op: pb.Operation) -> pb.Operation:
    fresh = pb.Operation()
    fresh.CopyFrom(op)
    return fresh


def write_remote_rows(db: sqlite3.Connection, inserts: list[Row], updates: list[Row]) -> None:
    if inserts:
        db.executemany(INSERT_SQL, inserts)
    if updates:
        db.executemany(UPDATE_SQL, updates)


def held_modnos(db: sqlite3.Connection, peer_selector: pb.OpSelector) -> dict[int, int]:
    """The modnos of the peer's operations in a diff's selection, by peer id."""
    where = selection(peer_selector, peer_ids=True)
    return dict(
        db.execute(
            f"SELECT original_id, modno FROM operations WHERE {where.sql}",  # noqa: S608
            where.params,
        ).fetchall()
    )


def held_window(
    db: sqlite3.Connection,
    peer_selector: pb.OpSelector,
    after: int | None,
    upto: int | None,
    limit: int,
) -> tuple[dict[int, int], int | None]:
    """One bounded step of a diff: see ``OplogStore.held_window``.

    The window's end is found on the (key id, original id) index alone, so a
    selection that matches few of the key's rows still costs at most ``limit``; a
    selection that lists at most ``limit`` ids needs no end.
    """
    keyid = peer_selector.original_instance_keyid
    low = -(2**63) if after is None else after
    row = None if lists_few_ids(peer_selector, limit) else db.execute(
        "SELECT original_id FROM operations WHERE original_instance_keyid = ? "
        "AND original_id > ? ORDER BY original_id LIMIT 1 OFFSET ?",
        (keyid, low, max(limit, 1) - 1),
    ).fetchone()
    end = window_bound(upto, None if row is None else int(row[0]))
    where = selection(peer_selector, peer_ids=True)
    sql = f"SELECT original_id, modno FROM operations WHERE {where.sql} AND original_id > ?"  # noqa: S608
    params: tuple[object, ...] = (*where.params, low)
    if end is not None:
        sql += " AND original_id <= ?"
        params = (*params, end)
    return dict(db.execute(sql, params).fetchall()), end
