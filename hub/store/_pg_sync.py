"""Resumed sync in the PostgreSQL oplog: peers' cursors and cached selection digests.

The same caches as the SQLite store's (``_sync`` states them, migration 4 of
``_pg_schema`` holds the tables). The buckets a write touches are marked by the
operations table's statement triggers, inside the writer's transaction, whichever
hub wrote; a refresh reads the marks, re-reads those buckets of every cached
selection of the peer, and clears only the marks it read (``touched`` unchanged),
so a mark made meanwhile by another hub's write stays for the next refresh.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from hub.pb import synchub_pb2 as pb
from hub.store._pg_db import Connection
from hub.store._sync import (
    BucketDigest,
    SyncCursor,
    bucket_ids,
    digest_pairs,
    peer_selection_key,
    signed,
    unsigned,
)

Place = tuple[str, "str | None"]


def cursors(conn: Connection, keyid: str) -> list[SyncCursor]:
    rows = conn.execute(
        "SELECT selection, epoch, sequence FROM sync_cursors WHERE keyid = %s "
        "ORDER BY selection", (keyid,),
    ).fetchall()
    return [SyncCursor(selection, bytes(epoch), sequence) for selection, epoch, sequence in rows]


def record_cursor(conn: Connection, keyid: str, cursor: SyncCursor) -> None:
    conn.execute(
        "INSERT INTO sync_cursors (keyid, selection, epoch, sequence) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (keyid, selection) DO UPDATE SET epoch = EXCLUDED.epoch, "
        "sequence = EXCLUDED.sequence",
        (keyid, cursor.selection, cursor.epoch, cursor.sequence),
    )


def _pairs(
    conn: Connection, keyid: str, place: Place, first_id: int, last_id: int
) -> list[tuple[int, int]]:
    repo_guid, plan_id = place
    plan_sql = "" if plan_id is None else " AND plan_id = %s"
    params: tuple[object, ...] = (keyid, first_id, last_id, repo_guid)
    if plan_id is not None:
        params = (*params, plan_id)
    rows = conn.execute(
        "SELECT original_id, modno FROM operations WHERE original_instance_keyid = %s "  # noqa: S608
        f"AND original_id BETWEEN %s AND %s AND repo_guid = %s{plan_sql} ORDER BY original_id",
        params,
    ).fetchall()
    return [(int(a), int(b)) for a, b in rows]


def peer_pairs(
    conn: Connection, keyid: str, selector: pb.OpSelector, first_id: int, last_id: int
) -> tuple[list[int], list[int]]:
    repo_guid, plan_id = json.loads(peer_selection_key(selector))
    pairs = _pairs(conn, keyid, (repo_guid, plan_id), first_id, last_id)
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _save(
    conn: Connection, keyid: str, key: str, bucket: int, found: BucketDigest | None
) -> None:
    if found is None:
        conn.execute(
            "DELETE FROM sync_digests WHERE owner = %s AND selection = %s AND bucket = %s",
            (keyid, key, bucket),
        )
        return
    conn.execute(
        "INSERT INTO sync_digests (owner, selection, bucket, count, digest) "
        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (owner, selection, bucket) "
        "DO UPDATE SET count = EXCLUDED.count, digest = EXCLUDED.digest",
        (keyid, key, bucket, found.count, signed(found.digest)),
    )


def _refresh_dirty(conn: Connection, keyid: str) -> None:
    dirty = conn.execute(
        "SELECT bucket, touched FROM sync_dirty WHERE keyid = %s", (keyid,)
    ).fetchall()
    if not dirty:
        return
    cached = [row[0] for row in conn.execute(
        "SELECT selection FROM sync_digest_marks WHERE owner = %s", (keyid,)
    ).fetchall()]
    for key in cached:
        repo_guid, plan_id = json.loads(key)
        for bucket, _touched in dirty:
            first, last = bucket_ids(bucket)
            fresh = digest_pairs(_pairs(conn, keyid, (repo_guid, plan_id), first, last))
            _save(conn, keyid, key, bucket, fresh.get(bucket))
    with conn.cursor() as cur:
        cur.executemany(
            "DELETE FROM sync_dirty WHERE keyid = %s AND bucket = %s AND touched = %s",
            [(keyid, bucket, touched) for bucket, touched in dirty],
        )


def _lock(conn: Connection, keyid: str) -> None:
    # The peer's cache rows are locked by the first statement of a transaction, so
    # two hubs refreshing the same peer's caches take turns.
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"synchub-digest:{keyid}",))


def _is_cached(conn: Connection, keyid: str, key: str) -> bool:
    return conn.execute(
        "SELECT 1 FROM sync_digest_marks WHERE owner = %s AND selection = %s", (keyid, key)
    ).fetchone() is not None


def peer_refresh(conn: Connection, keyid: str, selector: pb.OpSelector) -> bool:
    """Bring the cached digests of a peer's selections up to date; whether ``selector``'s
    selection is one of them. Runs in one transaction."""
    _lock(conn, keyid)
    _refresh_dirty(conn, keyid)
    return _is_cached(conn, keyid, peer_selection_key(selector))


def peer_pairs_page(
    conn: Connection, keyid: str, selector: pb.OpSelector, after_id: int, limit: int
) -> tuple[list[int], list[int]]:
    """The first ``limit`` (original id, modno) pairs of a peer's selection past
    ``after_id``, by id."""
    repo_guid, plan_id = json.loads(peer_selection_key(selector))
    plan_sql = "" if plan_id is None else " AND plan_id = %s"
    params: tuple[object, ...] = (keyid, after_id, repo_guid)
    if plan_id is not None:
        params = (*params, plan_id)
    rows = conn.execute(
        "SELECT original_id, modno FROM operations WHERE original_instance_keyid = %s "  # noqa: S608
        f"AND original_id > %s AND repo_guid = %s{plan_sql} ORDER BY original_id LIMIT %s",
        (*params, limit),
    ).fetchall()
    return [int(r[0]) for r in rows], [int(r[1]) for r in rows]


def _install(
    conn: Connection, keyid: str, key: str, digests: Mapping[int, BucketDigest]
) -> None:
    conn.execute(
        "DELETE FROM sync_digests WHERE owner = %s AND selection = %s", (keyid, key)
    )
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO sync_digests (owner, selection, bucket, count, digest) "
            "VALUES (%s, %s, %s, %s, %s)",
            [(keyid, key, b, d.count, signed(d.digest)) for b, d in digests.items()],
        )
    conn.execute(
        "INSERT INTO sync_digest_marks (owner, selection) VALUES (%s, %s)", (keyid, key)
    )


def peer_buckets(
    conn: Connection, keyid: str, selector: pb.OpSelector,
    built: Mapping[int, BucketDigest] | None = None,
) -> dict[int, BucketDigest]:
    """The bucket digests of a peer's selection, its cache brought up to date first.

    Runs in one transaction. ``built``: the digests of a selection not cached yet,
    read in steps since the last refresh: they become its cache, and the buckets
    written to since are read again with the other cached selections'.
    """
    _lock(conn, keyid)
    key = peer_selection_key(selector)
    installed = built is not None and not _is_cached(conn, keyid, key)
    if built is not None and installed:
        _install(conn, keyid, key, built)
    _refresh_dirty(conn, keyid)
    if not installed and not _is_cached(conn, keyid, key):
        repo_guid, plan_id = json.loads(key)
        digests = digest_pairs(_pairs(conn, keyid, (repo_guid, plan_id), 0, 2**63 - 1))
        _install(conn, keyid, key, digests)
        return digests
    rows = conn.execute(
        "SELECT bucket, count, digest FROM sync_digests WHERE owner = %s AND selection = %s",
        (keyid, key),
    ).fetchall()
    return {int(b): BucketDigest(int(c), unsigned(int(d))) for b, c, d in rows}
