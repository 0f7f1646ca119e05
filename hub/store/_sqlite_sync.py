"""Resumed sync in the SQLite oplog: the epoch, peers' cursors, cached digests.

``_sync`` states the digest and the caches; this module keeps them in the tables of
``SYNC_TABLES_SQL``. Every function runs inside the transaction its caller opened;
the digest functions bring their cache up to date, so they need a write transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Iterable, Mapping

from hub.pb import synchub_pb2 as pb
from hub.store._sqlite_db import read_counters
from hub.store._sync import (
    BUCKET_BITS,
    BucketDigest,
    SyncCursor,
    bucket_ids,
    digest_pairs,
    peer_selection_key,
    signed,
    unsigned,
)

# Past this many changed buckets, and half of a selection's, one pass over it beats
# reading bucket by bucket.
_REBUILD_BUCKETS = 64


def store_epoch(db: sqlite3.Connection) -> bytes:
    row = db.execute("SELECT epoch FROM sync_epoch WHERE singleton = 1").fetchone()
    return bytes(row[0])


def cursors(db: sqlite3.Connection, keyid: str) -> list[SyncCursor]:
    rows = db.execute(
        "SELECT selection, epoch, sequence FROM sync_cursors WHERE keyid = ? ORDER BY selection",
        (keyid,),
    )
    return [SyncCursor(selection, bytes(epoch), sequence) for selection, epoch, sequence in rows]


def record_cursor(db: sqlite3.Connection, keyid: str, cursor: SyncCursor) -> None:
    db.execute(
        "INSERT INTO sync_cursors (keyid, selection, epoch, sequence) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (keyid, selection) DO UPDATE SET epoch = excluded.epoch, "
        "sequence = excluded.sequence",
        (keyid, cursor.selection, cursor.epoch, cursor.sequence),
    )


def mark_dirty(db: sqlite3.Connection, keyid: str, original_ids: Iterable[int]) -> None:
    """Note the buckets of a peer's ids a write touched (in the writer's transaction)."""
    buckets = {op_id >> BUCKET_BITS for op_id in original_ids}
    if keyid and buckets:
        db.executemany(
            "INSERT OR IGNORE INTO sync_dirty (keyid, bucket) VALUES (?, ?)",
            [(keyid, bucket) for bucket in buckets],
        )


# -- a peer's selections (the hub's side) --------------------------------------------


def _peer_where(repo_guid: str, plan_id: str | None) -> tuple[str, tuple[object, ...]]:
    # Unary + keeps SQLite from choosing the (repo_guid, plan_id) index: a range of ids
    # is read through the id (or original id) index, whatever the repo holds.
    if plan_id is None:
        return "+repo_guid = ?", (repo_guid,)
    return "+repo_guid = ? AND +plan_id = ?", (repo_guid, plan_id)


def _peer_pairs(
    db: sqlite3.Connection, keyid: str, place: tuple[str, str | None],
    first_id: int, last_id: int,
) -> list[tuple[int, int]]:
    where, params = _peer_where(*place)
    # Operations retention removed still count, at the modno they had
    # (hub.store._sqlite_retention): an id is in one table or the other, never both.
    return db.execute(
        "SELECT original_id, modno FROM operations WHERE original_instance_keyid = ? "  # noqa: S608
        f"AND original_id BETWEEN ? AND ? AND {where} "
        "UNION ALL SELECT original_id, modno FROM retired WHERE keyid = ? "
        f"AND original_id BETWEEN ? AND ? AND {where} ORDER BY 1",
        (keyid, first_id, last_id, *params, keyid, first_id, last_id, *params),
    ).fetchall()


def peer_pairs(
    db: sqlite3.Connection, keyid: str, selector: pb.OpSelector, first_id: int, last_id: int
) -> tuple[list[int], list[int]]:
    """The (original id, modno) pairs of a peer's selection between two ids, by id."""
    repo_guid, plan_id = json.loads(peer_selection_key(selector))
    pairs = _peer_pairs(db, keyid, (repo_guid, plan_id), first_id, last_id)
    return [p[0] for p in pairs], [p[1] for p in pairs]


def peer_pairs_page(
    db: sqlite3.Connection, keyid: str, selector: pb.OpSelector, after_id: int, limit: int
) -> list[tuple[int, int]]:
    """The first ``limit`` (original id, modno) pairs of a peer's selection past
    ``after_id``, by id (the retired ones among them, as ``_peer_pairs``)."""
    where, params = _peer_where(*json.loads(peer_selection_key(selector)))
    # Each table read through its (keyid, original id) index up to the limit, then merged.
    held = db.execute(
        "SELECT original_id, modno FROM operations WHERE original_instance_keyid = ? "  # noqa: S608
        f"AND original_id > ? AND {where} ORDER BY original_id LIMIT ?",
        (keyid, after_id, *params, limit),
    ).fetchall()
    retired = db.execute(
        "SELECT original_id, modno FROM retired WHERE keyid = ? "  # noqa: S608
        f"AND original_id > ? AND {where} ORDER BY original_id LIMIT ?",
        (keyid, after_id, *params, limit),
    ).fetchall()
    if not retired:
        return held
    return sorted(held + retired)[:limit]


def peer_refresh(db: sqlite3.Connection, keyid: str, selector: pb.OpSelector) -> bool:
    """Bring the cached digests of a peer's selections up to date (the buckets its
    writes marked); whether ``selector``'s selection is one of them."""
    dirty = [row[0] for row in db.execute(
        "SELECT bucket FROM sync_dirty WHERE keyid = ?", (keyid,)
    )]
    if dirty:
        cached = [row[0] for row in db.execute(
            "SELECT selection FROM sync_digest_marks WHERE owner = ?", (keyid,)
        )]
        for key in cached:
            repo_guid, plan_id = json.loads(key)
            for bucket in dirty:
                first, last = bucket_ids(bucket)
                pairs = _peer_pairs(db, keyid, (repo_guid, plan_id), first, last)
                _save_buckets(db, keyid, key, (bucket,), digest_pairs(pairs))
        db.execute("DELETE FROM sync_dirty WHERE keyid = ?", (keyid,))
    return db.execute(
        "SELECT 1 FROM sync_digest_marks WHERE owner = ? AND selection = ?",
        (keyid, peer_selection_key(selector)),
    ).fetchone() is not None


def _save_buckets(
    db: sqlite3.Connection, owner: str, selection: str, buckets: Iterable[int],
    digests: dict[int, BucketDigest],
) -> None:
    for bucket in buckets:
        found = digests.get(bucket)
        if found is None:
            db.execute(
                "DELETE FROM sync_digests WHERE owner = ? AND selection = ? AND bucket = ?",
                (owner, selection, bucket),
            )
        else:
            db.execute(
                "INSERT OR REPLACE INTO sync_digests (owner, selection, bucket, count, digest) "
                "VALUES (?, ?, ?, ?, ?)",
                (owner, selection, bucket, found.count, signed(found.digest)),
            )


def _cached(db: sqlite3.Connection, owner: str, selection: str) -> dict[int, BucketDigest]:
    rows = db.execute(
        "SELECT bucket, count, digest FROM sync_digests WHERE owner = ? AND selection = ?",
        (owner, selection),
    )
    return {bucket: BucketDigest(count, unsigned(digest)) for bucket, count, digest in rows}


def _set_mark(db: sqlite3.Connection, owner: str, selection: str, mark: int) -> None:
    db.execute(
        "INSERT OR REPLACE INTO sync_digest_marks (owner, selection, mark) VALUES (?, ?, ?)",
        (owner, selection, mark),
    )


def _rebuild(
    db: sqlite3.Connection, owner: str, selection: str, digests: dict[int, BucketDigest]
) -> None:
    db.execute(
        "DELETE FROM sync_digests WHERE owner = ? AND selection = ?", (owner, selection)
    )
    _save_buckets(db, owner, selection, digests, digests)


def peer_buckets(
    db: sqlite3.Connection, keyid: str, selector: pb.OpSelector,
    built: Mapping[int, BucketDigest] | None = None,
) -> dict[int, BucketDigest]:
    """The bucket digests of a peer's selection, its cache brought up to date first.

    ``built``: the digests of a selection not cached yet, read in steps since the
    last refresh (``peer_refresh``): they become its cache, and the buckets written
    to since are read again with the other cached selections'.
    """
    key = peer_selection_key(selector)
    installed = False
    if built is not None and db.execute(
        "SELECT 1 FROM sync_digest_marks WHERE owner = ? AND selection = ?", (keyid, key)
    ).fetchone() is None:
        _rebuild(db, keyid, key, dict(built))
        _set_mark(db, keyid, key, 0)
        installed = True
    if peer_refresh(db, keyid, selector) or installed:
        return _cached(db, keyid, key)
    repo_guid, plan_id = json.loads(key)
    digests = digest_pairs(_peer_pairs(db, keyid, (repo_guid, plan_id), 0, 2**63 - 1))
    _rebuild(db, keyid, key, digests)
    _set_mark(db, keyid, key, 0)
    return digests


# -- this node's own selections (the client's side) ----------------------------------


def local_selection_key(selector: pb.OpSelector, excluded: Collection[str]) -> str:
    return json.dumps([
        selector.repo_guid, selector.plan_id if selector.HasField("plan_id") else None,
        sorted(excluded),
    ])


def _local_pairs(
    db: sqlite3.Connection, selector: pb.OpSelector, excluded: Collection[str],
    first_id: int, last_id: int,
) -> list[tuple[int, int]]:
    where, params = _peer_where(
        selector.repo_guid, selector.plan_id if selector.HasField("plan_id") else None
    )
    rows = db.execute(
        "SELECT id, modno, plan_id FROM operations WHERE id BETWEEN ? AND ? "  # noqa: S608
        f"AND +original_instance_keyid = '' AND {where} ORDER BY id",
        (first_id, last_id, *params),
    )
    return [(op_id, modno) for op_id, modno, plan in rows if plan not in excluded]


def local_pairs(
    db: sqlite3.Connection, selector: pb.OpSelector, excluded: Collection[str],
    first_id: int, last_id: int,
) -> tuple[list[int], list[int]]:
    """The (id, modno) pairs of a local selection between two ids, by id."""
    pairs = _local_pairs(db, selector, excluded, first_id, last_id)
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _changed_buckets(db: sqlite3.Connection, mark: int) -> set[int]:
    changed = db.execute(
        "SELECT id FROM operations WHERE original_instance_keyid = '' AND modno > ? "
        "UNION SELECT id FROM local_deletions WHERE modno > ?",
        (mark, mark),
    )
    return {row[0] >> BUCKET_BITS for row in changed}


def local_buckets(
    db: sqlite3.Connection, selector: pb.OpSelector, excluded: Collection[str]
) -> dict[int, BucketDigest]:
    """The bucket digests of a local selection, its cache brought up to date from the feed.

    The cache's mark is the modno counter it reflects: the buckets of every id the
    feed shows past it are read again. A mark above the counter is no state of this
    file's history, so it means a full pass, as many changed buckets do.
    """
    key = local_selection_key(selector, excluded)
    now = read_counters(db)[1]
    row = db.execute(
        "SELECT mark FROM sync_digest_marks WHERE owner = '' AND selection = ?", (key,)
    ).fetchone()
    if row is not None and row[0] == now:
        return _cached(db, "", key)
    digests = _cached(db, "", key) if row is not None and row[0] < now else None
    changed = _changed_buckets(db, row[0]) if digests is not None else set()
    if digests is None or len(changed) > max(_REBUILD_BUCKETS, len(digests) // 2):
        digests = digest_pairs(_local_pairs(db, selector, excluded, 0, 2**63 - 1))
        _rebuild(db, "", key, digests)
    else:
        for bucket in changed:
            first, last = bucket_ids(bucket)
            fresh = digest_pairs(_local_pairs(db, selector, excluded, first, last))
            digests.pop(bucket, None)
            digests.update(fresh)
            _save_buckets(db, "", key, (bucket,), fresh)
    _set_mark(db, "", key, now)
    return digests
