"""SqliteOplogStore: the embedded oplog store (SQLite, WAL), implementing both
``OplogStore`` and ``LocalOplogStore`` (``hub.store._api`` states the contracts).

The class is the face of the SQLite implementation and owns its database; the
work is in the private modules beside it:

    _sqlite_db       the connection: open, pragmas, schema and version check,
                     transactions, errors as StoreError, the id and modno counters
    _sqlite_schema   the schema and every statement
    _sqlite_select   the WHERE clause for an OpSelector, id lists as JSON parameters
    _sqlite_remote   a peer's batches (id and flow translation) and what a diff reads
    _sqlite_feed     this node's own operations and their change feed
    _rules           the checks and decisions every store makes alike (no I/O)
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from hub.config import RetentionSettings
from hub.pb import synchub_pb2 as pb
from hub.store import _sqlite_sync as sync
from hub.store._api import (
    LocalChanges,
    LocalOplogStore,
    OplogStore,
    OpMetadata,
    RemoteApplyResult,
    RetentionStore,
    RetireBatch,
    SerializedOperation,
)
from hub.store._rules import (
    checked_remote_batch,
    peer_diff_selector,
    requested_ids,
)
from hub.store._sqlite_db import OplogDatabase, read_counters
from hub.store._sqlite_feed import (
    changes_page,
    delete_by_id,
    insert_local,
    read_changes,
    replace_local,
)
from hub.store._sqlite_remote import apply_remote_batch, held_modnos, held_window
from hub.store._sqlite_retention import (
    any_retired,
    forget_retired,
    requested_unretired,
    retire_batch,
)
from hub.store._sqlite_select import selection
from hub.store._sync import BucketDigest, SyncCursor


class SqliteOplogStore:
    """The embedded oplog store: one SQLite database file in WAL mode.

    ``path`` may be ``":memory:"`` for a private in-memory database. Only the
    thread that constructs the store may use it. Other processes may read the file
    at the same time, and may write: writes are BEGIN IMMEDIATE transactions that
    read the id and modno counters inside the transaction.
    """

    def __init__(self, path: Path | str, *, mmap_bytes: int = 0, check: bool = False) -> None:
        """``mmap_bytes``: read up to that much of the file through a memory map (SQLite's
        ``mmap_size``) instead of a read() call per page; for a store that reads
        a lot, such as a client agent sending its whole oplog. ``check``: refuse the
        file when ``PRAGMA quick_check`` finds a damaged page (StoreError)."""
        self._db = OplogDatabase(path, mmap_bytes=mmap_bytes, check=check)
        with self._db.errors("open"):
            self._retired = any_retired(self._db.connection())

    # -- local changes -------------------------------------------------------------------

    def add_local(self, ops: Sequence[pb.Operation]) -> list[pb.Operation]:
        for op in ops:
            if op.id != 0:
                raise ValueError(f"add_local assigns ids itself; got an operation with id {op.id}")
        if not ops:
            return []
        with self._db.transaction("adding operations") as db:
            return insert_local(db, ops)

    def update_local(self, ops: Sequence[pb.Operation]) -> list[pb.Operation]:
        latest = {op.id: op for op in ops}
        if not latest:
            return []
        with self._db.transaction("updating operations") as db:
            return replace_local(db, latest)

    def delete(self, ids: Sequence[int]) -> list[int]:
        unique = list(dict.fromkeys(ids))
        if not unique:
            return []
        with self._db.transaction("deleting operations") as db:
            return delete_by_id(db, unique)

    def local_modno(self) -> int:
        with self._db.errors("reading the modno counter"):
            return read_counters(self._db.connection())[1]

    def local_changes_since(self, modno: int, *, limit: int = 10_000) -> LocalChanges:
        with self._db.snapshot("reading local changes") as db:
            rows, gone = read_changes(db, modno, limit)
        return changes_page(rows, gone, modno, limit)

    def data_version(self) -> int:
        with self._db.errors("reading the data version"):
            return int(self._db.connection().execute("PRAGMA data_version").fetchone()[0])

    # -- remote changes ------------------------------------------------------------------

    def apply_remote(
        self,
        keyid: str,
        created_or_updated: Sequence[pb.Operation],
        deleted_original_ids: Sequence[int],
        *,
        reuse: bool = False,
        peer_instance_id: str = "",
    ) -> RemoteApplyResult:
        """Apply one send_operations batch from the peer ``keyid``, all or nothing.

        Deletes are applied first, then the created / updated operations in order
        (an id repeated within the batch: the last copy wins). Only rows carrying
        ``keyid`` are ever read, changed or deleted. A flow id of 0 means the
        operation is the start of its own flow. ``peer_instance_id`` is the
        instance the peer authenticated as, recorded beside each operation.
        """
        latest = checked_remote_batch(keyid, created_or_updated)
        to_delete = list(dict.fromkeys(deleted_original_ids))
        if not latest and not to_delete:
            return RemoteApplyResult()
        with self._db.transaction(f"applying a batch from {keyid}") as db:
            if self._retired:
                forget_retired(db, keyid, [*to_delete, *latest])
            return apply_remote_batch(
                db, keyid, latest, to_delete, reuse=reuse, peer_instance_id=peer_instance_id
            )

    def diff(
        self,
        keyid: str,
        selector: pb.OpSelector,
        have_ids: Sequence[int],
        have_modnos: Sequence[int],
    ) -> list[int]:
        """The hub's answer to a diff_operations from ``keyid``.

        The selector is in the peer's terms (its ids and flow ids). Requested:
        ids whose modno differs, ids the peer has and this store lacks, and ids
        this store has (from ``keyid``, in the selection) that the peer did not list.
        """
        peer_selector = peer_diff_selector(keyid, selector, have_ids, have_modnos)
        with self._db.errors("diff"):
            held = held_modnos(self._db.connection(), peer_selector)
            requested = requested_ids(held, have_ids, have_modnos)
            if self._retired and requested:
                # What retention removed is not asked for again while the peer's modno
                # is unchanged (see the module docstring of _sqlite_retention).
                requested = requested_unretired(
                    self._db.connection(), keyid, requested, have_ids, have_modnos
                )
        return requested

    def retire(
        self, settings: RetentionSettings, now_ms: int, *, after_id: int, limit: int
    ) -> RetireBatch:
        """One batch of a retention pass: at most ``limit`` rows after ``after_id`` looked at.

        Removes peers' operations older than ``settings`` keeps, never the latest
        run of an (instance, plan), and remembers each one so the peer's next diff
        does not ask for it again (``hub.store._sqlite_retention``).
        """
        with self._db.transaction("removing old operations") as db:
            batch = retire_batch(db, settings, now_ms, after_id=after_id, limit=limit)
        if batch.removed:
            self._retired = True
        return batch

    def unretired(
        self,
        keyid: str,
        requested: Sequence[int],
        have_ids: Sequence[int],
        have_modnos: Sequence[int],
    ) -> list[int]:
        """``requested`` without what retention removed (see ``diff``)."""
        if not self._retired or not requested:
            return list(requested)
        with self._db.errors("diff"):
            return requested_unretired(
                self._db.connection(), keyid, requested, have_ids, have_modnos)

    def held_window(
        self,
        keyid: str,
        selector: pb.OpSelector,
        after: int | None,
        upto: int | None,
        limit: int,
    ) -> tuple[dict[int, int], int | None]:
        """One bounded step of a diff (see ``OplogStore.held_window``)."""
        peer_selector = peer_diff_selector(keyid, selector, (), ())
        with self._db.errors("diff"):
            return held_window(self._db.connection(), peer_selector, after, upto, limit)

    # -- reads ---------------------------------------------------------------------------

    def query(
        self, selector: pb.OpSelector, *, limit: int | None = None, newest_first: bool = False
    ) -> list[pb.Operation]:
        where = selection(selector)
        sql = (
            f"SELECT data, {_HANDED_OUT_PEER} FROM operations "  # noqa: S608
            f"WHERE {where.sql} ORDER BY id"
        )
        if newest_first:
            sql += " DESC"
        params = where.params
        if limit is not None:
            sql += " LIMIT ?"
            params = (*params, max(limit, 0))
        with self._db.errors("query"):
            rows = self._db.connection().execute(sql, params).fetchall()
        return [_with_peer(data, peer) for data, peer in rows]

    def query_metadata(self, selector: pb.OpSelector) -> list[OpMetadata]:
        where = selection(selector)
        sql = (
            "SELECT id, flow_id, modno, original_instance_keyid, original_id, "  # noqa: S608
            f"original_flow_id FROM operations WHERE {where.sql} ORDER BY id"
        )
        with self._db.errors("query"):
            rows = self._db.connection().execute(sql, where.params).fetchall()
        return [
            OpMetadata(op_id, flow_id, modno, keyid, original_id or 0, original_flow_id or 0)
            for op_id, flow_id, modno, keyid, original_id, original_flow_id in rows
        ]

    def query_serialized(self, selector: pb.OpSelector) -> list[SerializedOperation]:
        """Like ``query``, without decoding: each operation's stored bytes, by id."""
        where = selection(selector)
        sql = (
            "SELECT id, repo_guid, plan_id, data FROM operations "  # noqa: S608
            f"WHERE {where.sql} ORDER BY id"
        )
        with self._db.errors("query"):
            rows = self._db.connection().execute(sql, where.params).fetchall()
        return [SerializedOperation(*row) for row in rows]

    def ids_and_modnos(self, selector: pb.OpSelector) -> tuple[list[int], list[int]]:
        """The (id, modno) pairs of the operations matching ``selector``, by id, as two lists.

        What a diff lists; cheaper than ``query_metadata`` for a whole oplog.
        """
        where = selection(selector)
        sql = f"SELECT id, modno FROM operations WHERE {where.sql} ORDER BY id"  # noqa: S608
        with self._db.errors("query"):
            rows = self._db.connection().execute(sql, where.params).fetchall()
        return [row[0] for row in rows], [row[1] for row in rows]

    def query_plan(self, selector: pb.OpSelector, *, peer_ids: bool = False) -> list[str]:
        """SQLite's plan for selecting ``selector``'s rows (EXPLAIN QUERY PLAN details).

        With ``peer_ids`` the selection is a diff's, in the peer's ids. For checking
        that each selection the hub makes is an index search, not a scan.
        """
        where = selection(selector, peer_ids=peer_ids)
        sql = f"EXPLAIN QUERY PLAN SELECT id FROM operations WHERE {where.sql}"  # noqa: S608
        with self._db.errors("explain"):
            rows = self._db.connection().execute(sql, where.params).fetchall()
        return [str(row[3]) for row in rows]

    def get(self, op_id: int) -> pb.Operation | None:
        with self._db.errors("get"):
            row = self._db.connection().execute(
                f"SELECT data, {_HANDED_OUT_PEER} FROM operations WHERE id = ?",  # noqa: S608
                (op_id,),
            ).fetchone()
        return None if row is None else _with_peer(*row)

    def count(self) -> int:
        with self._db.errors("count"):
            return int(
                self._db.connection().execute("SELECT count(*) FROM operations").fetchone()[0]
            )

    def check_writable(self) -> None:
        self._db.check_writable()

    # -- resumed sync (docs/protocol.md §6.8 (Resumed sync), ``_sqlite_sync``) -----------

    def store_epoch(self) -> bytes:
        with self._db.errors("reading the store epoch"):
            return sync.store_epoch(self._db.connection())

    def sync_cursors(self, keyid: str) -> list[SyncCursor]:
        with self._db.errors("reading sync cursors"):
            return sync.cursors(self._db.connection(), keyid)

    def record_cursor(self, keyid: str, cursor: SyncCursor) -> None:
        with self._db.transaction(f"recording the sync cursor of {keyid}") as db:
            sync.record_cursor(db, keyid, cursor)

    def peer_digest(
        self, keyid: str, selector: pb.OpSelector,
        built: Mapping[int, BucketDigest] | None = None,
    ) -> dict[int, BucketDigest]:
        with self._db.transaction(f"digesting a selection of {keyid}") as db:
            return sync.peer_buckets(db, keyid, selector, built)

    def peer_digest_refresh(self, keyid: str, selector: pb.OpSelector) -> bool:
        with self._db.transaction(f"refreshing the digests of {keyid}") as db:
            return sync.peer_refresh(db, keyid, selector)

    def peer_pairs_page(
        self, keyid: str, selector: pb.OpSelector, after_id: int, limit: int
    ) -> tuple[list[int], list[int]]:
        with self._db.snapshot(f"listing a selection of {keyid}") as db:
            pairs = sync.peer_pairs_page(db, keyid, selector, after_id, limit)
        return [p[0] for p in pairs], [p[1] for p in pairs]

    def peer_pairs(
        self, keyid: str, selector: pb.OpSelector, first_id: int, last_id: int
    ) -> tuple[list[int], list[int]]:
        with self._db.snapshot(f"listing a range of {keyid}") as db:
            return sync.peer_pairs(db, keyid, selector, first_id, last_id)

    def local_digest(
        self, selector: pb.OpSelector, excluded_plans: Collection[str] = ()
    ) -> dict[int, BucketDigest]:
        with self._db.transaction("digesting a local selection") as db:
            return sync.local_buckets(db, selector, excluded_plans)

    def local_pairs(
        self, selector: pb.OpSelector, excluded_plans: Collection[str],
        first_id: int, last_id: int,
    ) -> tuple[list[int], list[int]]:
        with self._db.snapshot("listing a local range") as db:
            return sync.local_pairs(db, selector, excluded_plans, first_id, last_id)

    def close(self) -> None:
        self._db.close()


# A peer's operations are handed out with the instance they came from; a node's
# own keep exactly their stored bytes (the column still selects them by instance).
_HANDED_OUT_PEER = (
    "CASE WHEN original_instance_keyid = '' THEN '' ELSE peer_instance_id END"
)


def _with_peer(data: bytes, peer_instance_id: str) -> pb.Operation:
    """A stored operation as handed out: a peer's with the instance it came from set."""
    op = pb.Operation.FromString(data)
    if peer_instance_id:
        op.peer_instance_id = peer_instance_id
    return op


if TYPE_CHECKING:
    # mypy checks the class against both contracts, signatures included.
    def _implements(
        store: SqliteOplogStore,
    ) -> tuple[OplogStore, LocalOplogStore, RetentionStore]:
        return store, store, store
