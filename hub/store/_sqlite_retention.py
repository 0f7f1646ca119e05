"""Retention in the SQLite oplog: removing old peer operations, a small batch at a time.

A pass walks the operations table in id order, ``limit`` rows per call (one short
write transaction each, so the writer is never held for long), and removes the
rows that are

- a peer's (a node's own operations are never removed: they are its own log),
- dated (``unix_time_start_ms`` > 0) and started before their plan's cutoff
  (``[retention]`` ``keep_days``, or the plan's own number; 0 keeps forever),
- and not the latest run of their (instance, plan): the one with the latest start
  among the operations of that ``peer_instance_id`` and ``plan_id``, looked up in
  the same transaction.

Each removed operation leaves a row in ``retired`` (the peer's key id, its id, the
modno it had, its repo guid and plan), so that the peer's next diff does not ask for
it again (``requested_unretired``) and resumed sync's digests and pair lists still
count it (``_sqlite_sync``): the set of (id, modno) the hub answers for is the same
before and after a removal. A delete from the peer, or an update that brings the
operation back, supersedes the row.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Final

from hub.config import RetentionSettings
from hub.store._api import RetireBatch
from hub.store._sqlite_select import json_chunks

DAY_MS: Final = 86_400_000

_WALK: Final = (
    "SELECT id, original_instance_keyid, original_id, modno, peer_instance_id, plan_id, "
    "unix_time_start_ms, repo_guid FROM operations WHERE id > ? ORDER BY id LIMIT ?"
)
_LATEST: Final = (
    "SELECT id FROM operations WHERE peer_instance_id = ? AND plan_id = ? "
    "ORDER BY unix_time_start_ms DESC, id DESC LIMIT 1"
)
_DELETE: Final = "DELETE FROM operations WHERE id IN (SELECT value FROM json_each(?))"
_RETIRE: Final = (
    "INSERT OR REPLACE INTO retired (keyid, original_id, modno, repo_guid, plan_id) "
    "VALUES (?, ?, ?, ?, ?)"
)
_RETIRED_AMONG: Final = (
    "SELECT original_id, modno FROM retired WHERE keyid = ? "
    "AND original_id IN (SELECT value FROM json_each(?))"
)
_FORGET: Final = (
    "DELETE FROM retired WHERE keyid = ? AND original_id IN (SELECT value FROM json_each(?))"
)
_ANY_RETIRED: Final = "SELECT EXISTS (SELECT 1 FROM retired)"


def any_retired(db: sqlite3.Connection) -> bool:
    return bool(db.execute(_ANY_RETIRED).fetchone()[0])


def retire_batch(
    db: sqlite3.Connection,
    settings: RetentionSettings,
    now_ms: int,
    *,
    after_id: int,
    limit: int,
) -> RetireBatch:
    """One step of a pass, inside the caller's write transaction."""
    rows = db.execute(_WALK, (after_id, limit)).fetchall()
    latest: dict[tuple[str, str], int] = {}
    removed: list[int] = []
    for op_id, keyid, original_id, modno, peer, plan_id, started, repo_guid in rows:
        days = settings.days_for(plan_id)
        if not keyid or not days or started <= 0 or started >= now_ms - days * DAY_MS:
            continue
        group = (peer, plan_id)
        if group not in latest:
            latest[group] = db.execute(_LATEST, group).fetchone()[0]
        if latest[group] == op_id:
            continue
        removed.append(op_id)
        db.execute(_RETIRE, (keyid, original_id, modno, repo_guid, plan_id))
    for chunk in json_chunks(removed):
        db.execute(_DELETE, (chunk,))
    next_after = rows[-1][0] if rows else after_id
    return RetireBatch(tuple(removed), next_after, done=len(rows) < limit)


def requested_unretired(
    db: sqlite3.Connection,
    keyid: str,
    requested: Sequence[int],
    have_ids: Sequence[int],
    have_modnos: Sequence[int],
) -> list[int]:
    """``requested`` without the ids retention removed at the modno the peer still lists."""
    theirs = dict(zip(have_ids, have_modnos, strict=True))
    asked = [op_id for op_id in requested if op_id in theirs]
    if not asked:
        return list(requested)
    retired: dict[int, int] = {}
    for chunk in json_chunks(asked):
        retired.update(db.execute(_RETIRED_AMONG, (keyid, chunk)).fetchall())
    if not retired:
        return list(requested)
    return [op_id for op_id in requested
            if op_id not in retired or retired[op_id] != theirs.get(op_id)]


def forget_retired(db: sqlite3.Connection, keyid: str, original_ids: Sequence[int]) -> None:
    """The peer deleted or sent again these operations: their retired rows are done."""
    for chunk in json_chunks(original_ids):
        db.execute(_FORGET, (keyid, chunk))
