"""What only SqliteOplogStore does: its file (schema, indexes, version, WAL, modes),
its query plans, failures inside SQLite, other processes writing, reading through
a memory map, and handing received operations back uncopied.

The behaviour every oplog store must have is in tests/contract/.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.errors import StoreError
from hub.pb import synchub_pb2 as pb
from hub.store import (
    LOOKUP_QUERIES,
    SCHEMA_VERSION,
    LocalOplogStore,
    OplogStore,
    SqliteOplogStore,
)
from synchub_testing import SQLITE_SCHEMA_V1

KEY_A = "ed25519.peer-a"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "oplog.sqlite"


@pytest.fixture
def store(db_path: Path) -> Iterator[SqliteOplogStore]:
    opened = SqliteOplogStore(db_path)
    try:
        yield opened
    finally:
        opened.close()


def remote_op(op_id: int, flow_id: int = 0, modno: int = 1) -> pb.Operation:
    return pb.Operation(
        id=op_id, flow_id=flow_id or op_id, modno=modno, repo_guid="guid-nas",
        plan_id="nightly", instance_id="web1", display_message=f"op {op_id}",
    )


def local_op(message: str = "", flow_id: int = 0) -> pb.Operation:
    return pb.Operation(
        repo_guid="guid-nas", plan_id="nightly", instance_id="hub-1",
        display_message=message, flow_id=flow_id,
    )


def rows(db_path: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(db_path) as db:
        return db.execute(
            "SELECT id, flow_id, modno, original_instance_keyid, original_id, original_flow_id "
            "FROM operations ORDER BY id"
        ).fetchall()


def test_implements_both_oplog_protocols(store: SqliteOplogStore) -> None:
    assert isinstance(store, OplogStore)
    assert isinstance(store, LocalOplogStore)


# -- the file -------------------------------------------------------------------------


def test_schema_indexes_wal_and_version(store: SqliteOplogStore, db_path: Path) -> None:
    with sqlite3.connect(db_path) as db:
        indexes = dict(db.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'operations'"
        ).fetchall())
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        columns = {
            name: [row[2] for row in db.execute(f"PRAGMA index_info({name})")]
            for name in indexes
        }
        unique = {row[1]: bool(row[2]) for row in db.execute("PRAGMA index_list(operations)")}
    assert sorted(columns.values()) == sorted([
        ["original_instance_keyid", "original_id"],
        ["original_instance_keyid", "original_flow_id"],
        ["repo_guid", "plan_id"],
        ["instance_id"],
        ["peer_instance_id"],
        ["original_instance_keyid", "modno"],
        ["status"],
        ["peer_instance_id", "plan_id"],
    ])
    unique_columns = [columns[name] for name, is_unique in unique.items() if is_unique]
    assert unique_columns == [["original_instance_keyid", "original_id"]]


def test_opening_a_file_without_the_reader_indexes_adds_them(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    SqliteOplogStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("DROP INDEX operations_by_status")
        db.execute("DROP INDEX operations_by_peer_plan")
    reopened = SqliteOplogStore(path)
    try:
        with sqlite3.connect(path) as db:
            names = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        assert {"operations_by_status", "operations_by_peer_plan"} <= names
    finally:
        reopened.close()


def test_local_rows_hold_null_original_ids(store: SqliteOplogStore, db_path: Path) -> None:
    first, _ = store.add_local([local_op("a"), local_op("b")])
    store.add_local([local_op("c", flow_id=first.id)])
    store.apply_remote(KEY_A, [remote_op(5, flow_id=4, modno=8)], [])
    # The UNIQUE (keyid, original_id) index admits any number of local rows.
    assert rows(db_path) == [(1, 1, 1, "", None, None), (2, 2, 2, "", None, None),
                             (3, 1, 3, "", None, None), (4, 4, 8, KEY_A, 5, 4)]


def test_a_version_1_file_is_upgraded_in_place(db_path: Path) -> None:
    own = pb.Operation(id=1, flow_id=1, modno=1, instance_id="hub-1", display_message="own")
    # Version 1 stored a peer's operations with the authenticated instance written in.
    theirs = pb.Operation(id=2, flow_id=2, modno=4, instance_id="web1", original_id=9,
                          original_flow_id=9, original_instance_keyid=KEY_A)
    with sqlite3.connect(db_path) as db:
        db.executescript(SQLITE_SCHEMA_V1)
        db.executemany(
            "INSERT INTO operations VALUES (?, ?, ?, ?, ?, ?, '', '', ?, '', 0, 0, ?)",
            [(1, 1, 1, "", None, None, "hub-1", own.SerializeToString()),
             (2, 2, 4, KEY_A, 9, 9, "web1", theirs.SerializeToString())],
        )
        db.execute("PRAGMA user_version = 1")
    db.close()

    store = SqliteOplogStore(db_path)
    try:
        assert [op.id for op in store.query(pb.OpSelector(peer_instance_id="web1"))] == [2]
        assert [op.id for op in store.query(pb.OpSelector(peer_instance_id="hub-1"))] == [1]
        migrated = store.get(2)
        assert migrated is not None and migrated.peer_instance_id == "web1"
        # From now on the producer's instance is kept as sent.
        laptop = remote_op(10, flow_id=10)
        laptop.instance_id = "laptop"
        (created,) = store.apply_remote(KEY_A, [laptop], [], peer_instance_id="web1").created
        assert created.id == 3
        assert [op.instance_id for op in store.query(pb.OpSelector(peer_instance_id="web1"))] \
            == ["web1", "laptop"]
    finally:
        store.close()
    with sqlite3.connect(db_path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        plan = db.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM operations WHERE peer_instance_id = 'x'"
        ).fetchall()
    db.close()
    assert "operations_by_peer_instance" in str(plan)


def test_a_newer_schema_version_is_refused(db_path: Path) -> None:
    SqliteOplogStore(db_path).close()
    with sqlite3.connect(db_path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="schema version"):
        SqliteOplogStore(db_path)


def test_a_foreign_database_is_refused(db_path: Path) -> None:
    with sqlite3.connect(db_path) as db:
        db.execute("CREATE TABLE something_else (x)")
    with pytest.raises(StoreError, match="not a synchub oplog store"):
        SqliteOplogStore(db_path)


def test_an_unopenable_path_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        SqliteOplogStore(tmp_path / "missing-dir" / "oplog.sqlite")


def test_in_memory_store(tmp_path: Path) -> None:
    memory = SqliteOplogStore(":memory:")
    try:
        memory.apply_remote(KEY_A, [remote_op(1)], [])
        assert memory.count() == 1
    finally:
        memory.close()


def test_database_files_are_private(tmp_path: Path) -> None:
    store = SqliteOplogStore(tmp_path / "private.sqlite")
    try:
        store.add_local([pb.Operation(display_message="secret")])
        for name in ("private.sqlite", "private.sqlite-wal", "private.sqlite-shm"):
            assert (tmp_path / name).stat().st_mode & 0o777 == 0o600, name
    finally:
        store.close()


# -- query plans ----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(LOOKUP_QUERIES))
def test_lookup_queries_use_an_index(store: SqliteOplogStore, db_path: Path, name: str) -> None:
    with sqlite3.connect(db_path) as db:
        plan = db.execute(
            f"EXPLAIN QUERY PLAN {LOOKUP_QUERIES[name]}",
            {"keyid": KEY_A, "ids": "[1, 2]", "modno": 0, "limit": 10},
        ).fetchall()
    details = [row[3] for row in plan]
    assert any("USING" in d and ("INDEX" in d or "PRIMARY KEY" in d) for d in details), details
    assert not any(d.startswith("SCAN operations") or d.startswith("SCAN o ") for d in details)


@pytest.mark.parametrize(
    "selector",
    [
        pb.OpSelector(original_instance_keyid=KEY_A, repo_guid="guid-nas"),
        pb.OpSelector(original_instance_keyid=KEY_A, repo_guid="guid-nas", plan_id="nightly"),
        pb.OpSelector(original_instance_keyid=KEY_A, ids=[1, 2]),
    ],
)
def test_diff_selection_uses_an_index(
    store: SqliteOplogStore, db_path: Path, selector: pb.OpSelector
) -> None:
    details = store.query_plan(selector, peer_ids=True)
    assert any(d.startswith("SEARCH operations USING") for d in details), details
    assert not any(d.startswith("SCAN operations") for d in details), details


# -- failures inside a batch ----------------------------------------------------------


def test_a_failure_inside_sqlite_mid_insert_stores_nothing(
    store: SqliteOplogStore, db_path: Path
) -> None:
    store.apply_remote(KEY_A, [remote_op(1, modno=1)], [])
    with sqlite3.connect(db_path) as db:
        db.execute(
            "CREATE TRIGGER refuse_third BEFORE INSERT ON operations "
            "WHEN NEW.original_id = 4 BEGIN SELECT RAISE(ABORT, 'disk on fire'); END"
        )
    before = rows(db_path)

    with pytest.raises(StoreError, match="disk on fire") as failure:
        store.apply_remote(
            KEY_A, [remote_op(1, modno=2), remote_op(2), remote_op(3), remote_op(4)], [1]
        )

    assert isinstance(failure.value.__cause__, sqlite3.Error)
    assert rows(db_path) == before
    with sqlite3.connect(db_path) as db:
        db.execute("DROP TRIGGER refuse_third")
    # The failed batch consumed no ids.
    (created,) = store.apply_remote(KEY_A, [remote_op(2)], []).created
    assert created.id == 2


def test_a_failure_after_the_inserts_ran_rolls_them_back(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    crash = {"armed": False}

    class CrashAfterInserts(sqlite3.Connection):
        def executemany(self, sql: str, parameters: object, /) -> sqlite3.Cursor:
            cursor = super().executemany(sql, parameters)  # type: ignore[arg-type]
            if crash["armed"] and sql.startswith("UPDATE operations"):
                # Every row of the batch is written, the transaction not yet committed.
                assert self.execute("SELECT count(*) FROM operations").fetchone()[0] == 3
                assert self.execute("SELECT modno FROM operations WHERE id = 1").fetchone() == (5,)
                raise RuntimeError("crash between statements")
            return cursor

    connect = sqlite3.connect
    monkeypatch.setattr(
        sqlite3, "connect", lambda *args, **kwargs: connect(
            *args, factory=CrashAfterInserts, **kwargs
        )
    )
    store = SqliteOplogStore(db_path)
    monkeypatch.undo()
    try:
        store.apply_remote(KEY_A, [remote_op(1, modno=1)], [])
        before = rows(db_path)
        crash["armed"] = True
        with pytest.raises(RuntimeError, match="crash between statements"):
            store.apply_remote(KEY_A, [remote_op(1, modno=5), remote_op(2), remote_op(3)], [])
        crash["armed"] = False

        assert rows(db_path) == before
        assert store.count() == 1
        store.apply_remote(KEY_A, [remote_op(2)], [])
        assert [r[0] for r in rows(db_path)] == [1, 2]
    finally:
        store.close()


def test_reuse_hands_the_received_operations_back_uncopied(store: SqliteOplogStore) -> None:
    sent = [remote_op(1), remote_op(2, flow_id=1)]
    result = store.apply_remote(KEY_A, sent, [], reuse=True)
    assert all(got is given for got, given in zip(result.created, sent, strict=True))
    assert [(op.id, op.original_instance_keyid) for op in sent] == [(1, KEY_A), (2, KEY_A)]


# -- other connections and processes --------------------------------------------------

_WRITE_FROM_ANOTHER_PROCESS = textwrap.dedent(
    """\
    import sys
    from hub.pb import synchub_pb2 as pb
    from hub.store import SqliteOplogStore
    store = SqliteOplogStore(sys.argv[1])
    try:
        store.add_local([pb.Operation(display_message="there")])
    finally:
        store.close()
    """
)


def test_another_process_writing_is_seen_and_takes_the_next_ids(
    store: SqliteOplogStore, db_path: Path
) -> None:
    (here,) = store.add_local([local_op("here")])
    version = store.data_version()

    subprocess.run(
        [sys.executable, "-c", _WRITE_FROM_ANOTHER_PROCESS, str(db_path)],
        check=True, timeout=60, capture_output=True,
    )

    assert store.data_version() != version
    changes = store.local_changes_since(0)
    assert [(op.id, op.modno, op.display_message) for op in changes.operations] == [
        (here.id, here.modno, "here"), (here.id + 1, here.modno + 1, "there")
    ]
    (after,) = store.add_local([local_op("after")])
    assert (after.id, after.modno) == (here.id + 2, here.modno + 2)


def test_a_memory_mapped_store_reads_what_others_wrote(
    store: SqliteOplogStore, db_path: Path
) -> None:
    written = store.add_local([local_op(str(n)) for n in range(50)])
    mapped = SqliteOplogStore(db_path, mmap_bytes=1 << 20)
    try:
        assert mapped.query(pb.OpSelector()) == written
        assert mapped.ids_and_modnos(pb.OpSelector()) == (
            [op.id for op in written], [op.modno for op in written]
        )
        (more,) = mapped.add_local([local_op("mapped")])
    finally:
        mapped.close()
    assert store.get(more.id) == more
