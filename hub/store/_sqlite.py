"""SqliteOplogStore: the embedded oplog store (SQLite, WAL); see ``hub.store._api``
for the contract it implements.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from hub.errors import ProtocolError, StoreError
from hub.pb import synchub_pb2 as pb
from hub.store._api import (
    LocalChanges,
    OpMetadata,
    RemoteApplyResult,
    SerializedOperation,
)
from hub.store._files import ensure_private_database

SCHEMA_VERSION: Final = 1

BUSY_TIMEOUT_SECONDS: Final = 10.0

# Large enough that a normal batch (256 operations) is one lookup; bounds the size
# of a single JSON parameter for unusually large batches.
_LOOKUP_CHUNK: Final = 4096

SCHEMA_SQL: Final = """
CREATE TABLE operations (
    id INTEGER PRIMARY KEY,
    flow_id INTEGER NOT NULL,
    modno INTEGER NOT NULL,
    original_instance_keyid TEXT NOT NULL,
    original_id INTEGER,
    original_flow_id INTEGER,
    repo_guid TEXT NOT NULL,
    plan_id TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    snapshot_id TEXT NOT NULL,
    unix_time_start_ms INTEGER NOT NULL,
    status INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE UNIQUE INDEX operations_by_original_id
    ON operations (original_instance_keyid, original_id);
CREATE INDEX operations_by_original_flow
    ON operations (original_instance_keyid, original_flow_id);
CREATE INDEX operations_by_repo_plan ON operations (repo_guid, plan_id);
CREATE INDEX operations_by_instance ON operations (instance_id);
CREATE INDEX operations_local_changes ON operations (original_instance_keyid, modno);
CREATE TABLE local_deletions (
    id INTEGER PRIMARY KEY,
    modno INTEGER NOT NULL
);
CREATE INDEX local_deletions_by_modno ON local_deletions (modno);
CREATE TABLE counters (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    last_id INTEGER NOT NULL,
    last_modno INTEGER NOT NULL
);
INSERT INTO counters (singleton, last_id, last_modno) VALUES (1, 0, 0);
"""

# Local operations store NULL original ids: the UNIQUE (keyid, original_id) index
# admits any number of NULLs, and remote rows always have both set.
INSERT_SQL: Final = (
    "INSERT INTO operations (id, flow_id, modno, original_instance_keyid, original_id, "
    "original_flow_id, repo_guid, plan_id, instance_id, snapshot_id, unix_time_start_ms, "
    "status, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_UPDATE_SQL: Final = (
    "UPDATE operations SET flow_id = ?, modno = ?, original_instance_keyid = ?, "
    "original_id = ?, original_flow_id = ?, repo_guid = ?, plan_id = ?, instance_id = ?, "
    "snapshot_id = ?, unix_time_start_ms = ?, status = ?, data = ? WHERE id = ?"
)

# The hot-path lookups, with named parameters; lists travel as one JSON array
# parameter so each statement is prepared once whatever the batch size.
LOOKUP_QUERIES: Final[dict[str, str]] = {
    "highest_original_ids": (
        "SELECT (SELECT max(original_id) FROM operations "
        "WHERE original_instance_keyid = :keyid), "
        "(SELECT max(original_flow_id) FROM operations WHERE original_instance_keyid = :keyid)"
    ),
    "existing_by_original_id": (
        "SELECT original_id, id FROM operations "
        "WHERE original_instance_keyid = :keyid "
        "AND original_id IN (SELECT value FROM json_each(:ids))"
    ),
    "flow_by_original_flow_id": (
        "SELECT f.value, (SELECT o.flow_id FROM operations AS o "
        "WHERE o.original_instance_keyid = :keyid AND o.original_flow_id = f.value LIMIT 1) "
        "FROM json_each(:ids) AS f"
    ),
    "delete_by_original_id": (
        "DELETE FROM operations WHERE original_instance_keyid = :keyid "
        "AND original_id IN (SELECT value FROM json_each(:ids)) RETURNING id"
    ),
    "rows_by_id": (
        "SELECT id, flow_id, original_instance_keyid FROM operations "
        "WHERE id IN (SELECT value FROM json_each(:ids))"
    ),
    "delete_by_id": (
        "DELETE FROM operations WHERE id IN (SELECT value FROM json_each(:ids)) "
        "RETURNING id, original_instance_keyid"
    ),
    "local_changes_since": (
        "SELECT data FROM operations WHERE original_instance_keyid = '' AND modno > :modno "
        "ORDER BY modno LIMIT :limit"
    ),
    "local_deletions_since": (
        "SELECT id, modno FROM local_deletions WHERE modno > :modno ORDER BY modno LIMIT :limit"
    ),
}


@dataclass(frozen=True, slots=True)
class _Where:
    sql: str
    params: tuple[object, ...]


def _selection(selector: pb.OpSelector, *, peer_ids: bool = False) -> _Where:
    """WHERE clause for ``selector``.

    With ``peer_ids`` the selector's ids and flow id are the peer's own (as in a
    diff_operations selector) and match ``original_id`` / ``original_flow_id``.
    """
    clauses: list[str] = []
    params: list[object] = []
    # Listed local ids are primary-key lookups; "+" keeps SQLite from preferring an
    # index on another term (all local rows share original_instance_keyid "", so
    # that index would scan every one of them for each lookup).
    by_rowid = bool(selector.ids) and not peer_ids
    if selector.ids:
        clauses.append(
            "original_id IN (SELECT value FROM json_each(?))"
            if peer_ids
            else "id IN (SELECT value FROM json_each(?))"
        )
        params.append(json.dumps(list(selector.ids)))
    if selector.HasField("flow_id"):
        clauses.append("original_flow_id = ?" if peer_ids else "+flow_id = ?" if by_rowid
                       else "flow_id = ?")
        params.append(selector.flow_id)
    for field in ("original_instance_keyid", "repo_guid", "plan_id", "instance_id", "snapshot_id"):
        if selector.HasField(field):
            clauses.append(f"+{field} = ?" if by_rowid else f"{field} = ?")
            params.append(getattr(selector, field))
    return _Where(" AND ".join(clauses) if clauses else "1", tuple(params))


def _chunks(values: Sequence[int]) -> Iterator[str]:
    for start in range(0, len(values), _LOOKUP_CHUNK):
        yield json.dumps(list(values[start : start + _LOOKUP_CHUNK]))


def _row(op: pb.Operation, keyid: str, original_id: int | None,
         original_flow_id: int | None) -> tuple[object, ...]:
    return (
        op.id, op.flow_id, op.modno, keyid, original_id, original_flow_id,
        op.repo_guid, op.plan_id, op.instance_id, op.snapshot_id,
        op.unix_time_start_ms, op.status, op.SerializeToString(),
    )


def _as_local(op: pb.Operation) -> pb.Operation:
    stored = pb.Operation()
    stored.CopyFrom(op)
    stored.ClearField("original_instance_keyid")
    stored.ClearField("original_id")
    stored.ClearField("original_flow_id")
    return stored


class SqliteOplogStore:
    """The embedded oplog store: one SQLite database file in WAL mode.

    ``path`` may be ``":memory:"`` for a private in-memory database. Only the
    thread that constructs the store may use it. Other processes may read the file
    at the same time, and may write: writes are BEGIN IMMEDIATE transactions that
    read the id and modno counters inside the transaction.
    """

    def __init__(self, path: Path | str, *, mmap_bytes: int = 0) -> None:
        """``mmap_bytes``: read up to that much of the file through a memory map (SQLite's
        ``mmap_size``) instead of a read() call per page; for a store that reads
        a lot, such as a client agent sending its whole oplog."""
        self._path = str(path)
        self._mmap_bytes = mmap_bytes
        try:
            ensure_private_database(self._path)
            self._db: sqlite3.Connection | None = sqlite3.connect(
                self._path,
                timeout=BUSY_TIMEOUT_SECONDS,
                isolation_level=None,
                cached_statements=256,
            )
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the oplog store {self._path}: {exc}") from exc
        try:
            with self._errors("open"):
                self._configure()
        except BaseException:
            self.close()
            raise

    # -- setup ---------------------------------------------------------------------------

    def _configure(self) -> None:
        db = self._conn()
        mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode not in ("wal", "memory"):
            raise StoreError(f"oplog store {self._path}: cannot use WAL journal mode ({mode})")
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute("PRAGMA temp_store = MEMORY")
        if self._mmap_bytes:
            db.execute(f"PRAGMA mmap_size = {int(self._mmap_bytes)}")
        db.execute("BEGIN IMMEDIATE")
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                tables = db.execute(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
                ).fetchone()[0]
                if tables:
                    raise StoreError(
                        f"{self._path} is an SQLite database but not a synchub oplog store"
                    )
                for statement in SCHEMA_SQL.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            elif version != SCHEMA_VERSION:
                raise StoreError(
                    f"oplog store {self._path} has schema version {version}; this synchub "
                    f"reads version {SCHEMA_VERSION}: upgrade synchub or use another data_dir"
                )
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreError(f"oplog store {self._path} is closed")
        return self._db

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise StoreError(f"oplog store {self._path}: {action} failed: {exc}") from exc

    @contextmanager
    def _transaction(self, action: str) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed on success, rolled back on any exception."""
        with self._errors(action):
            db = self._conn()
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    @staticmethod
    def _counters(db: sqlite3.Connection) -> tuple[int, int]:
        last_id, last_modno = db.execute(
            "SELECT last_id, last_modno FROM counters WHERE singleton = 1"
        ).fetchone()
        return int(last_id), int(last_modno)

    @staticmethod
    def _save_counters(db: sqlite3.Connection, last_id: int, last_modno: int) -> None:
        db.execute(
            "UPDATE counters SET last_id = ?, last_modno = ? WHERE singleton = 1",
            (last_id, last_modno),
        )

    # -- local changes -------------------------------------------------------------------

    def add_local(self, ops: Sequence[pb.Operation]) -> list[pb.Operation]:
        for op in ops:
            if op.id != 0:
                raise ValueError(f"add_local assigns ids itself; got an operation with id {op.id}")
        if not ops:
            return []
        stored_ops: list[pb.Operation] = []
        with self._transaction("adding operations") as db:
            last_id, last_modno = self._counters(db)
            rows = []
            for op in ops:
                last_id += 1
                last_modno += 1
                stored = _as_local(op)
                stored.id = last_id
                stored.flow_id = op.flow_id if op.flow_id > 0 else last_id
                stored.modno = last_modno
                rows.append(_row(stored, "", None, None))
                stored_ops.append(stored)
            db.executemany(INSERT_SQL, rows)
            self._save_counters(db, last_id, last_modno)
        return stored_ops

    def update_local(self, ops: Sequence[pb.Operation]) -> list[pb.Operation]:
        latest = {op.id: op for op in ops}
        if not latest:
            return []
        stored_ops: list[pb.Operation] = []
        with self._transaction("updating operations") as db:
            known: dict[int, tuple[int, str]] = {}
            for chunk in _chunks(list(latest)):
                for op_id, flow_id, keyid in db.execute(
                    LOOKUP_QUERIES["rows_by_id"], {"ids": chunk}
                ):
                    known[op_id] = (flow_id, keyid)
            last_id, last_modno = self._counters(db)
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
                stored = _as_local(op)
                stored.flow_id = op.flow_id if op.flow_id > 0 else flow_id
                stored.modno = last_modno
                row = _row(stored, "", None, None)
                rows.append((*row[1:], op_id))
                stored_ops.append(stored)
            db.executemany(_UPDATE_SQL, rows)
            self._save_counters(db, last_id, last_modno)
        return stored_ops

    def delete(self, ids: Sequence[int]) -> list[int]:
        unique = list(dict.fromkeys(ids))
        if not unique:
            return []
        deleted: list[int] = []
        with self._transaction("deleting operations") as db:
            local: list[int] = []
            for chunk in _chunks(unique):
                for op_id, keyid in db.execute(LOOKUP_QUERIES["delete_by_id"], {"ids": chunk}):
                    deleted.append(op_id)
                    if not keyid:
                        local.append(op_id)
            if local:
                last_id, last_modno = self._counters(db)
                tombstones = [(op_id, last_modno + n) for n, op_id in enumerate(local, start=1)]
                db.executemany(
                    "INSERT OR REPLACE INTO local_deletions (id, modno) VALUES (?, ?)", tombstones
                )
                self._save_counters(db, last_id, last_modno + len(local))
        return sorted(deleted)

    def local_modno(self) -> int:
        with self._errors("reading the modno counter"):
            return self._counters(self._conn())[1]

    def local_changes_since(self, modno: int, *, limit: int = 10_000) -> LocalChanges:
        params = {"modno": modno, "limit": limit}
        with self._errors("reading local changes"):
            # One read transaction, so operations and deletions are one snapshot.
            db = self._conn()
            db.execute("BEGIN")
            try:
                rows = db.execute(LOOKUP_QUERIES["local_changes_since"], params).fetchall()
                gone = db.execute(LOOKUP_QUERIES["local_deletions_since"], params).fetchall()
            finally:
                db.execute("COMMIT")
        operations = [pb.Operation.FromString(data) for (data,) in rows]
        # With a limit, report only up to the lower of the two feeds' last modnos
        # so nothing between them is skipped.
        ends = []
        if len(rows) == limit:
            ends.append(operations[-1].modno)
        if len(gone) == limit:
            ends.append(gone[-1][1])
        ceiling = min(ends) if ends else None
        if ceiling is not None:
            operations = [op for op in operations if op.modno <= ceiling]
            gone = [(op_id, m) for op_id, m in gone if m <= ceiling]
        mark = max(
            [modno, *(op.modno for op in operations), *(m for _, m in gone)]
        )
        return LocalChanges(tuple(operations), tuple(op_id for op_id, _ in gone), mark)

    def data_version(self) -> int:
        with self._errors("reading the data version"):
            return int(self._conn().execute("PRAGMA data_version").fetchone()[0])

    # -- remote changes ------------------------------------------------------------------

    def apply_remote(
        self,
        keyid: str,
        created_or_updated: Sequence[pb.Operation],
        deleted_original_ids: Sequence[int],
        *,
        reuse: bool = False,
    ) -> RemoteApplyResult:
        """Apply one send_operations batch from the peer ``keyid``, all or nothing.

        Deletes are applied first, then the created / updated operations in order
        (an id repeated within the batch: the last copy wins). Only rows carrying
        ``keyid`` are ever read, changed or deleted. A flow id of 0 means the
        operation is the start of its own flow.
        """
        if not keyid:
            raise ValueError("apply_remote needs the peer's key id")
        latest: dict[int, pb.Operation] = {}
        for op in created_or_updated:
            if op.id <= 0:
                raise ProtocolError(
                    f"operation id {op.id} is not valid: ids start at 1 (batch rejected)"
                )
            if op.flow_id < 0:
                raise ProtocolError(
                    f"operation {op.id} has flow id {op.flow_id}: flow ids are operation ids "
                    "(batch rejected)"
                )
            latest[op.id] = op
        to_delete = list(dict.fromkeys(deleted_original_ids))
        if not latest and not to_delete:
            return RemoteApplyResult()

        with self._transaction(f"applying a batch from {keyid}") as db:
            deleted: list[int] = []
            for chunk in _chunks(to_delete):
                deleted.extend(
                    row[0]
                    for row in db.execute(
                        LOOKUP_QUERIES["delete_by_original_id"], {"keyid": keyid, "ids": chunk}
                    )
                )
            created, updated = self._upsert_remote(db, keyid, latest, reuse)
        return RemoteApplyResult(tuple(created), tuple(updated), tuple(sorted(deleted)))

    def _upsert_remote(
        self, db: sqlite3.Connection, keyid: str, latest: dict[int, pb.Operation], reuse: bool
    ) -> tuple[list[pb.Operation], list[pb.Operation]]:
        if not latest:
            return [], []
        # A peer's initial sync sends ids and flows above any it sent before; two
        # index lookups of the highest ones then spare the per-id lookups.
        highest_id, highest_flow = db.execute(
            LOOKUP_QUERIES["highest_original_ids"], {"keyid": keyid}
        ).fetchone()
        existing: dict[int, int] = {}
        original_ids = list(latest)
        if highest_id is not None and min(original_ids) <= highest_id:
            for chunk in _chunks(original_ids):
                existing.update(
                    db.execute(
                        LOOKUP_QUERIES["existing_by_original_id"], {"keyid": keyid, "ids": chunk}
                    ).fetchall()
                )
        original_flows = list(dict.fromkeys(op.flow_id or op.id for op in latest.values()))
        flows: dict[int, int] = {}
        if highest_flow is not None and min(original_flows) <= highest_flow:
            for chunk in _chunks(original_flows):
                for original_flow_id, flow_id in db.execute(
                    LOOKUP_QUERIES["flow_by_original_flow_id"], {"keyid": keyid, "ids": chunk}
                ):
                    if flow_id is not None:
                        flows[original_flow_id] = flow_id

        last_id, last_modno = self._counters(db)
        first_new_id = last_id + 1
        created: list[pb.Operation] = []
        updated: list[pb.Operation] = []
        inserts: list[tuple[object, ...]] = []
        updates: list[tuple[object, ...]] = []
        for original_id, op in latest.items():
            local_id = existing.get(original_id)
            if local_id is None:
                last_id += 1
                local_id = last_id
            original_flow_id = op.flow_id or original_id
            flow_id = flows.setdefault(original_flow_id, local_id)
            if reuse:
                stored = op
            else:
                stored = pb.Operation()
                stored.CopyFrom(op)
            stored.id = local_id
            stored.flow_id = flow_id
            stored.original_id = original_id
            stored.original_flow_id = original_flow_id
            stored.original_instance_keyid = keyid
            # _row, spelled out: this loop runs once per operation received.
            row = (
                local_id, flow_id, stored.modno, keyid, original_id, original_flow_id,
                stored.repo_guid, stored.plan_id, stored.instance_id, stored.snapshot_id,
                stored.unix_time_start_ms, stored.status, stored.SerializeToString(),
            )
            if local_id >= first_new_id:
                inserts.append(row)
                created.append(stored)
            else:
                updates.append((*row[1:], local_id))
                updated.append(stored)
        self._write_remote_rows(db, inserts, updates)
        if last_id >= first_new_id:
            self._save_counters(db, last_id, last_modno)
        return created, updated

    def _write_remote_rows(
        self,
        db: sqlite3.Connection,
        inserts: list[tuple[object, ...]],
        updates: list[tuple[object, ...]],
    ) -> None:
        if inserts:
            db.executemany(INSERT_SQL, inserts)
        if updates:
            db.executemany(_UPDATE_SQL, updates)

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
        if len(have_ids) != len(have_modnos):
            raise ProtocolError(
                f"diff_operations lists {len(have_ids)} ids but {len(have_modnos)} modnos"
            )
        if selector.HasField("original_instance_keyid") and (
            selector.original_instance_keyid != keyid
        ):
            raise ProtocolError(
                "diff_operations selector names another peer's operations "
                f"({selector.original_instance_keyid})"
            )
        peer_selector = pb.OpSelector()
        peer_selector.CopyFrom(selector)
        peer_selector.original_instance_keyid = keyid
        where = _selection(peer_selector, peer_ids=True)
        with self._errors("diff"):
            held: dict[int, int] = dict(
                self._conn().execute(
                    f"SELECT original_id, modno FROM operations WHERE {where.sql}",  # noqa: S608
                    where.params,
                ).fetchall()
            )
        if not held:
            return sorted(set(have_ids))
        theirs = dict(zip(have_ids, have_modnos, strict=True))
        if theirs == held:
            return []
        wanted = {op_id for op_id, modno in theirs.items() if held.get(op_id) != modno}
        wanted.update(op_id for op_id in held if op_id not in theirs)
        return sorted(wanted)

    # -- reads ---------------------------------------------------------------------------

    def query(
        self, selector: pb.OpSelector, *, limit: int | None = None, newest_first: bool = False
    ) -> list[pb.Operation]:
        where = _selection(selector)
        sql = f"SELECT data FROM operations WHERE {where.sql} ORDER BY id"  # noqa: S608
        if newest_first:
            sql += " DESC"
        params = where.params
        if limit is not None:
            sql += " LIMIT ?"
            params = (*params, max(limit, 0))
        with self._errors("query"):
            rows = self._conn().execute(sql, params).fetchall()
        return [pb.Operation.FromString(data) for (data,) in rows]

    def query_metadata(self, selector: pb.OpSelector) -> list[OpMetadata]:
        where = _selection(selector)
        sql = (
            "SELECT id, flow_id, modno, original_instance_keyid, original_id, "  # noqa: S608
            f"original_flow_id FROM operations WHERE {where.sql} ORDER BY id"
        )
        with self._errors("query"):
            rows = self._conn().execute(sql, where.params).fetchall()
        return [
            OpMetadata(op_id, flow_id, modno, keyid, original_id or 0, original_flow_id or 0)
            for op_id, flow_id, modno, keyid, original_id, original_flow_id in rows
        ]

    def query_serialized(self, selector: pb.OpSelector) -> list[SerializedOperation]:
        """Like ``query``, without decoding: each operation's stored bytes, by id."""
        where = _selection(selector)
        sql = (
            "SELECT id, repo_guid, plan_id, data FROM operations "  # noqa: S608
            f"WHERE {where.sql} ORDER BY id"
        )
        with self._errors("query"):
            rows = self._conn().execute(sql, where.params).fetchall()
        return [SerializedOperation(*row) for row in rows]

    def ids_and_modnos(self, selector: pb.OpSelector) -> tuple[list[int], list[int]]:
        """The (id, modno) pairs of the operations matching ``selector``, by id, as two lists.

        What a diff lists; cheaper than ``query_metadata`` for a whole oplog.
        """
        where = _selection(selector)
        sql = f"SELECT id, modno FROM operations WHERE {where.sql} ORDER BY id"  # noqa: S608
        with self._errors("query"):
            rows = self._conn().execute(sql, where.params).fetchall()
        return [row[0] for row in rows], [row[1] for row in rows]

    def query_plan(self, selector: pb.OpSelector, *, peer_ids: bool = False) -> list[str]:
        """SQLite's plan for selecting ``selector``'s rows (EXPLAIN QUERY PLAN details).

        With ``peer_ids`` the selection is a diff's, in the peer's ids. For checking
        that each selection the hub makes is an index search, not a scan.
        """
        where = _selection(selector, peer_ids=peer_ids)
        sql = f"EXPLAIN QUERY PLAN SELECT id FROM operations WHERE {where.sql}"  # noqa: S608
        with self._errors("explain"):
            rows = self._conn().execute(sql, where.params).fetchall()
        return [str(row[3]) for row in rows]

    def get(self, op_id: int) -> pb.Operation | None:
        with self._errors("get"):
            row = self._conn().execute(
                "SELECT data FROM operations WHERE id = ?", (op_id,)
            ).fetchone()
        return None if row is None else pb.Operation.FromString(row[0])

    def count(self) -> int:
        with self._errors("count"):
            return int(self._conn().execute("SELECT count(*) FROM operations").fetchone()[0])

    def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            with self._errors("close"):
                db.close()
