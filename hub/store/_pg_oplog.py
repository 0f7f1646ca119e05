"""PostgresOplogStore: the hub's oplog in PostgreSQL, implementing ``OplogStore``
(``hub.store._api`` states the contract; the contract suite runs against it).

The class is the face of the PostgreSQL implementation; the work is in the
private modules beside it:

    _pg_db       connecting, migrations, the pool, errors as StoreError
    _pg_schema   the migrations, the apply function and every statement
    _pg_select   the WHERE clause for an OpSelector
    _pg_rows     operations as rows (the encoding without id and flow id) and back
    _pg_remote   a peer's batch: one call, one round trip, one implicit transaction
    _pg_local    this node's own operations
    _rules       the checks and decisions every store makes alike (no I/O)

Every call takes a connection from the store's pool and gives it back; a write
returns only after its COMMIT, so what it returns (and what the OplogActor
acknowledges) is durable. Several stores, in one process or many, may share
one database: writers take turns on the counters row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hub.pb import synchub_pb2 as pb
from hub.store import _pg_sync as sync
from hub.store._api import OplogStore, OpMetadata, RemoteApplyResult
from hub.store._pg_db import APPLICATION_NAME, CONNECT_TIMEOUT_SECONDS, PostgresDatabase
from hub.store._pg_local import delete_by_id, insert_local, replace_local
from hub.store._pg_remote import apply_remote_batch
from hub.store._pg_rows import decoded
from hub.store._pg_schema import HANDED_OUT_PEER_SQL
from hub.store._pg_select import selection
from hub.store._rules import (
    checked_remote_batch,
    lists_few_ids,
    peer_diff_selector,
    requested_ids,
    window_bound,
)
from hub.store._sync import BucketDigest, Digests, SyncCursor


@dataclass(frozen=True, slots=True)
class _CachedDigests:
    """``Digests`` read from a selection's cache, one query a range."""

    db: PostgresDatabase
    owner: str
    key: str

    def range(self, first: int, last: int) -> BucketDigest:
        with self.db.connection("reading a digest range") as conn:
            return sync.range_sum(conn, self.owner, self.key, first, last)

    def highest(self) -> int:
        with self.db.connection("reading a digest range") as conn:
            return sync.highest_bucket(conn, self.owner, self.key)


class PostgresOplogStore:
    """The hub's oplog in the PostgreSQL database at ``url`` (a libpq URL).

    Opening it migrates the schema to the version this code knows, and refuses a
    newer one (StoreError); an unreachable database is StoreUnavailable. Usable
    from any thread.
    """

    def __init__(
        self, url: str, *, wait_seconds: float = CONNECT_TIMEOUT_SECONDS, origin: str = "",
    ) -> None:
        """``wait_seconds``: how long a call waits for the database before it fails
        with StoreUnavailable. ``origin`` names this hub in the notices of what it
        stores (``OplogCommitted.writer``: its connections' application_name), so its
        own are known; the URL's ``application_name``, when it sets one, wins."""
        self._db = PostgresDatabase(
            url, name="oplog", wait_seconds=wait_seconds,
            application_name=origin or APPLICATION_NAME,
        )

    @property
    def url(self) -> str:
        """The database's URL, any password hidden: for logs and messages."""
        return self._db.shown

    # -- local changes -------------------------------------------------------------------

    def add_local(self, ops: Sequence[pb.Operation]) -> list[pb.Operation]:
        for op in ops:
            if op.id != 0:
                raise ValueError(f"add_local assigns ids itself; got an operation with id {op.id}")
        if not ops:
            return []
        with self._db.transaction("adding operations") as conn:
            return insert_local(conn, ops)

    def update_local(self, ops: Sequence[pb.Operation]) -> list[pb.Operation]:
        latest = {op.id: op for op in ops}
        if not latest:
            return []
        with self._db.transaction("updating operations") as conn:
            return replace_local(conn, latest)

    def delete(self, ids: Sequence[int]) -> list[int]:
        unique = list(dict.fromkeys(ids))
        if not unique:
            return []
        with self._db.transaction("deleting operations") as conn:
            return delete_by_id(conn, unique)

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

        The same rules as ``SqliteOplogStore.apply_remote``; the batch is one
        statement, committed when this returns.
        """
        latest = checked_remote_batch(keyid, created_or_updated)
        to_delete = list(dict.fromkeys(deleted_original_ids))
        if not latest and not to_delete:
            return RemoteApplyResult()
        with self._db.connection(f"applying a batch from {keyid}") as conn:
            return apply_remote_batch(
                conn, keyid, latest, to_delete, reuse=reuse, peer_instance_id=peer_instance_id
            )

    def diff(
        self,
        keyid: str,
        selector: pb.OpSelector,
        have_ids: Sequence[int],
        have_modnos: Sequence[int],
    ) -> list[int]:
        """The hub's answer to a diff_operations from ``keyid`` (see ``_rules.requested_ids``)."""
        peer_selector = peer_diff_selector(keyid, selector, have_ids, have_modnos)
        where = selection(peer_selector, peer_ids=True)
        sql = f"SELECT original_id, modno FROM operations WHERE {where.sql}"  # noqa: S608
        with self._db.connection("diff") as conn:
            held = dict(conn.execute(sql, where.params, prepare=True).fetchall())
        return requested_ids(held, have_ids, have_modnos)

    def unretired(
        self,
        keyid: str,
        requested: Sequence[int],
        have_ids: Sequence[int],
        have_modnos: Sequence[int],
    ) -> list[int]:
        """``requested`` as it is: this store keeps no record of retention's removals."""
        return list(requested)

    def held_window(
        self,
        keyid: str,
        selector: pb.OpSelector,
        after: int | None,
        upto: int | None,
        limit: int,
    ) -> tuple[dict[int, int], int | None]:
        """One bounded step of a diff (see ``OplogStore.held_window``); the window's end
        is found on the (key id, original id) index alone."""
        peer_selector = peer_diff_selector(keyid, selector, (), ())
        low = -(2**63) if after is None else after
        with self._db.connection("diff") as conn:
            row = None if lists_few_ids(peer_selector, limit) else conn.execute(
                "SELECT original_id FROM operations WHERE original_instance_keyid = %s "
                "AND original_id > %s ORDER BY original_id LIMIT 1 OFFSET %s",
                (keyid, low, max(limit, 1) - 1), prepare=True,
            ).fetchone()
            end = window_bound(upto, None if row is None else int(row[0]))
            where = selection(peer_selector, peer_ids=True)
            sql = (
                f"SELECT original_id, modno FROM operations WHERE {where.sql} "  # noqa: S608
                "AND original_id > %s"
            )
            params: tuple[object, ...] = (*where.params, low)
            if end is not None:
                sql += " AND original_id <= %s"
                params = (*params, end)
            held = dict(conn.execute(sql, params, prepare=True).fetchall())
        return held, end

    # -- reads ---------------------------------------------------------------------------

    def query(
        self, selector: pb.OpSelector, *, limit: int | None = None, newest_first: bool = False
    ) -> list[pb.Operation]:
        where = selection(selector)
        sql = (
            f"SELECT id, flow_id, data, {HANDED_OUT_PEER_SQL} FROM operations "  # noqa: S608
            f"WHERE {where.sql} ORDER BY id"
        )
        if newest_first:
            sql += " DESC"
        params = where.params
        if limit is not None:
            sql += " LIMIT %s"
            params = (*params, max(limit, 0))
        with self._db.connection("query") as conn:
            rows = conn.execute(sql, params).fetchall()
        return [decoded(*row) for row in rows]

    def query_metadata(self, selector: pb.OpSelector) -> list[OpMetadata]:
        where = selection(selector)
        sql = (
            "SELECT id, flow_id, modno, original_instance_keyid, original_id, "  # noqa: S608
            f"original_flow_id FROM operations WHERE {where.sql} ORDER BY id"
        )
        with self._db.connection("query") as conn:
            rows = conn.execute(sql, where.params).fetchall()
        return [
            OpMetadata(op_id, flow_id, modno, keyid, original_id or 0, original_flow_id or 0)
            for op_id, flow_id, modno, keyid, original_id, original_flow_id in rows
        ]

    def get(self, op_id: int) -> pb.Operation | None:
        with self._db.connection("get") as conn:
            row = conn.execute(
                f"SELECT id, flow_id, data, {HANDED_OUT_PEER_SQL} "  # noqa: S608
                "FROM operations WHERE id = %s", (op_id,)
            ).fetchone()
        return None if row is None else decoded(*row)

    def count(self) -> int:
        with self._db.connection("count") as conn:
            row = conn.execute("SELECT count(*) FROM operations").fetchone()
        return int(row[0]) if row else 0

    def check_writable(self) -> None:
        with self._db.transaction("checking the store takes writes") as conn:
            conn.execute("UPDATE counters SET last_id = last_id WHERE singleton = 1")

    # -- resumed sync (docs/protocol.md §6.8 (Resumed sync), ``_pg_sync``) ---------------

    def sync_cursors(self, keyid: str) -> list[SyncCursor]:
        with self._db.connection("reading sync cursors") as conn:
            return sync.cursors(conn, keyid)

    def record_cursor(self, keyid: str, cursor: SyncCursor) -> None:
        with self._db.transaction(f"recording the sync cursor of {keyid}") as conn:
            sync.record_cursor(conn, keyid, cursor)

    def peer_digest(
        self, keyid: str, selector: pb.OpSelector,
        built: Mapping[int, BucketDigest] | None = None,
    ) -> dict[int, BucketDigest]:
        with self._db.transaction(f"digesting a selection of {keyid}") as conn:
            return sync.peer_buckets(conn, keyid, selector, built)

    def peer_digests(
        self, keyid: str, selector: pb.OpSelector,
        built: Mapping[int, BucketDigest] | None = None,
    ) -> Digests:
        with self._db.transaction(f"digesting a selection of {keyid}") as conn:
            key = sync.peer_ready(conn, keyid, selector, built)
        return _CachedDigests(self._db, keyid, key)

    def peer_digest_refresh(self, keyid: str, selector: pb.OpSelector) -> bool:
        with self._db.transaction(f"refreshing the digests of {keyid}") as conn:
            return sync.peer_refresh(conn, keyid, selector)

    def peer_pairs_page(
        self, keyid: str, selector: pb.OpSelector, after_id: int, limit: int
    ) -> tuple[list[int], list[int]]:
        with self._db.connection(f"listing a selection of {keyid}") as conn:
            return sync.peer_pairs_page(conn, keyid, selector, after_id, limit)

    def peer_pairs(
        self, keyid: str, selector: pb.OpSelector, first_id: int, last_id: int
    ) -> tuple[list[int], list[int]]:
        with self._db.connection(f"listing a range of {keyid}") as conn:
            return sync.peer_pairs(conn, keyid, selector, first_id, last_id)

    def close(self) -> None:
        self._db.close()


if TYPE_CHECKING:
    # mypy checks the class against the contract, signatures included.
    def _implements(store: PostgresOplogStore) -> OplogStore:
        return store
