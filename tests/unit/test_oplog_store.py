"""SqliteOplogStore against a real database file: id and flow translation, atomicity,
isolation between peers, diffs, and the schema's indexes."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf.internal import encoder

from hub.errors import ProtocolError, StoreError
from hub.pb import synchub_pb2 as pb
from hub.store import LOOKUP_QUERIES, SCHEMA_VERSION, OplogStore, OpMetadata, SqliteOplogStore

KEY_A = "ed25519.peer-a"
KEY_B = "ed25519.peer-b"


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


def remote_op(
    op_id: int,
    flow_id: int = 0,
    modno: int = 1,
    *,
    repo_guid: str = "guid-nas",
    plan_id: str = "nightly",
    message: str = "",
) -> pb.Operation:
    return pb.Operation(
        id=op_id,
        flow_id=flow_id or op_id,
        modno=modno,
        repo_id="nas",
        repo_guid=repo_guid,
        plan_id=plan_id,
        instance_id="web1",
        status=pb.STATUS_SUCCESS,
        display_message=message or f"op {op_id}",
    )


def local_op(message: str = "", flow_id: int = 0) -> pb.Operation:
    return pb.Operation(
        repo_id="nas", repo_guid="guid-nas", plan_id="nightly", instance_id="hub-1",
        display_message=message, flow_id=flow_id,
    )


def rows(db_path: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(db_path) as db:
        return db.execute(
            "SELECT id, flow_id, modno, original_instance_keyid, original_id, original_flow_id "
            "FROM operations ORDER BY id"
        ).fetchall()


def length_delimited(field_number: int, payload: bytes) -> bytes:
    return encoder.TagBytes(field_number, 2) + encoder._VarintBytes(len(payload)) + payload


def test_implements_the_store_protocol(store: SqliteOplogStore) -> None:
    assert isinstance(store, OplogStore)


# -- remote batches: ids and flows ----------------------------------------------------


def test_protocol_example_ids_and_flows_are_translated(store: SqliteOplogStore) -> None:
    store.add_local([local_op("first"), local_op("second")])

    result = store.apply_remote(
        KEY_A, [remote_op(1, flow_id=1), remote_op(2, flow_id=1), remote_op(3, flow_id=2)], []
    )

    assert [(op.id, op.flow_id) for op in result.created] == [(3, 3), (4, 3), (5, 5)]
    assert result.updated == () and result.deleted_ids == ()
    stored = store.query(pb.OpSelector(original_instance_keyid=KEY_A))
    assert [(op.id, op.flow_id) for op in stored] == [(3, 3), (4, 3), (5, 5)]
    assert [(op.original_id, op.original_flow_id) for op in stored] == [(1, 1), (2, 1), (3, 2)]
    assert {op.original_instance_keyid for op in stored} == {KEY_A}
    assert [op.modno for op in stored] == [1, 1, 1]


def test_later_batches_join_flows_already_stored(store: SqliteOplogStore) -> None:
    store.apply_remote(KEY_A, [remote_op(10, flow_id=10)], [])
    result = store.apply_remote(KEY_A, [remote_op(11, flow_id=10), remote_op(12, flow_id=0)], [])

    assert [(op.id, op.flow_id) for op in result.created] == [(2, 1), (3, 3)]
    # A flow id of 0 means the operation starts its own flow.
    assert result.created[1].original_flow_id == 12


def test_update_in_place_keeps_the_id_and_takes_the_clients_modno(
    store: SqliteOplogStore, db_path: Path
) -> None:
    first = store.apply_remote(KEY_A, [remote_op(7, modno=3, message="running")], [])
    (created,) = first.created

    second = store.apply_remote(KEY_A, [remote_op(7, modno=9, message="done")], [])

    assert second.created == ()
    (updated,) = second.updated
    assert (updated.id, updated.flow_id, updated.modno) == (created.id, created.flow_id, 9)
    assert store.count() == 1
    again = store.get(created.id)
    assert again is not None
    assert (again.display_message, again.modno, again.original_id) == ("done", 9, 7)
    assert rows(db_path) == [(created.id, created.flow_id, 9, KEY_A, 7, 7)]


def test_a_repeated_id_in_one_batch_is_one_operation_last_copy_wins(
    store: SqliteOplogStore,
) -> None:
    result = store.apply_remote(
        KEY_A, [remote_op(1, modno=1, message="a"), remote_op(1, modno=2, message="b")], []
    )
    assert len(result.created) == 1
    assert (result.created[0].modno, result.created[0].display_message) == (2, "b")
    assert store.count() == 1


def test_the_callers_operations_are_not_modified(store: SqliteOplogStore) -> None:
    sent = remote_op(5, flow_id=4)
    before = sent.SerializeToString()
    store.apply_remote(KEY_A, [sent], [])
    assert sent.SerializeToString() == before


def test_remote_ids_continue_after_local_ids_and_are_never_reused(
    store: SqliteOplogStore,
) -> None:
    (local,) = store.add_local([local_op()])
    store.delete([local.id])
    (created,) = store.apply_remote(KEY_A, [remote_op(1)], []).created
    assert created.id == local.id + 1
    store.delete([created.id])
    (again,) = store.add_local([local_op()])
    assert again.id == created.id + 1


def test_ids_survive_reopening(db_path: Path) -> None:
    first = SqliteOplogStore(db_path)
    try:
        first.apply_remote(KEY_A, [remote_op(1), remote_op(2)], [])
        first.delete([2])
    finally:
        first.close()
    second = SqliteOplogStore(db_path)
    try:
        (created,) = second.apply_remote(KEY_A, [remote_op(3)], []).created
        assert created.id == 3
        assert [op.original_id for op in second.query(pb.OpSelector())] == [1, 3]
    finally:
        second.close()


# -- atomicity ------------------------------------------------------------------------


@pytest.mark.parametrize("bad_id", [0, -4])
def test_a_non_positive_id_rejects_the_whole_batch(
    store: SqliteOplogStore, db_path: Path, bad_id: int
) -> None:
    with pytest.raises(ProtocolError, match="batch rejected"):
        store.apply_remote(KEY_A, [remote_op(1), remote_op(bad_id), remote_op(3)], [2])
    assert store.count() == 0
    assert rows(db_path) == []


def test_a_rejected_batch_does_not_apply_its_deletes(store: SqliteOplogStore) -> None:
    store.apply_remote(KEY_A, [remote_op(1)], [])
    with pytest.raises(ProtocolError):
        store.apply_remote(KEY_A, [remote_op(-1)], [1])
    assert [op.original_id for op in store.query(pb.OpSelector())] == [1]


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
    store: SqliteOplogStore, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.apply_remote(KEY_A, [remote_op(1, modno=1)], [])
    before = rows(db_path)
    real_write = SqliteOplogStore._write_remote_rows

    def write_then_fail(
        self: SqliteOplogStore,
        db: sqlite3.Connection,
        inserts: list[tuple[object, ...]],
        updates: list[tuple[object, ...]],
    ) -> None:
        real_write(self, db, inserts, updates)
        assert db.execute("SELECT count(*) FROM operations").fetchone()[0] == 3
        raise RuntimeError("crash between statements")

    monkeypatch.setattr(SqliteOplogStore, "_write_remote_rows", write_then_fail)
    with pytest.raises(RuntimeError, match="crash between statements"):
        store.apply_remote(KEY_A, [remote_op(1, modno=5), remote_op(2), remote_op(3)], [])
    monkeypatch.undo()

    assert rows(db_path) == before
    assert store.count() == 1
    store.apply_remote(KEY_A, [remote_op(2)], [])
    assert [r[0] for r in rows(db_path)] == [1, 2]


# -- isolation between peers ----------------------------------------------------------


def test_the_same_ids_from_another_peer_are_separate_operations(
    store: SqliteOplogStore,
) -> None:
    a = store.apply_remote(KEY_A, [remote_op(1, modno=1), remote_op(2, flow_id=1)], [])
    b = store.apply_remote(KEY_B, [remote_op(1, modno=5), remote_op(2, flow_id=1)], [])

    assert [(op.id, op.flow_id) for op in a.created] == [(1, 1), (2, 1)]
    assert [(op.id, op.flow_id) for op in b.created] == [(3, 3), (4, 3)]
    assert b.updated == ()
    a_ops = store.query(pb.OpSelector(original_instance_keyid=KEY_A))
    assert [op.modno for op in a_ops] == [1, 1]


def test_a_peer_cannot_delete_another_peers_operations(store: SqliteOplogStore) -> None:
    store.apply_remote(KEY_A, [remote_op(1), remote_op(2)], [])

    result = store.apply_remote(KEY_B, [], [1, 2, 99])

    assert result.deleted_ids == ()
    assert store.count() == 2
    assert store.apply_remote(KEY_A, [], [2, 99]).deleted_ids == (2,)
    assert [op.original_id for op in store.query(pb.OpSelector())] == [1]


def test_deleting_unknown_ids_is_a_no_op(store: SqliteOplogStore) -> None:
    assert store.apply_remote(KEY_A, [], [5, 6]).empty
    assert store.count() == 0


def test_a_peer_cannot_update_a_local_operation_through_its_original_id(
    store: SqliteOplogStore,
) -> None:
    (local,) = store.add_local([local_op("mine")])
    result = store.apply_remote(KEY_A, [remote_op(local.id, message="theirs")], [])
    assert result.created[0].id != local.id
    kept = store.get(local.id)
    assert kept is not None and kept.display_message == "mine"


def test_a_remote_operation_cannot_be_changed_as_a_local_one(store: SqliteOplogStore) -> None:
    (remote,) = store.apply_remote(KEY_A, [remote_op(1)], []).created
    changed = pb.Operation(id=remote.id, display_message="hijack")
    with pytest.raises(StoreError, match="only its owner"):
        store.update_local([changed])


# -- diff -----------------------------------------------------------------------------


def test_diff_requests_changed_missing_and_unlisted_ids(store: SqliteOplogStore) -> None:
    store.apply_remote(KEY_A, [remote_op(1, modno=1), remote_op(2, modno=2),
                               remote_op(4, modno=4)], [])
    selector = pb.OpSelector(original_instance_keyid=KEY_A, repo_guid="guid-nas")

    requested = store.diff(KEY_A, selector, [1, 2, 3], [1, 5, 3])

    # 2: modno differs; 3: the hub lacks it; 4: the client did not list it.
    assert requested == [2, 3, 4]
    assert store.diff(KEY_A, selector, [1, 2, 4], [1, 2, 4]) == []


def test_diff_only_sees_the_peers_own_operations(store: SqliteOplogStore) -> None:
    store.apply_remote(KEY_B, [remote_op(1), remote_op(2)], [])
    store.add_local([local_op(), local_op()])
    selector = pb.OpSelector(original_instance_keyid=KEY_A, repo_guid="guid-nas")
    assert store.diff(KEY_A, selector, [], []) == []
    assert store.diff(KEY_A, selector, [1], [1]) == [1]


def test_diff_filters_by_repo_guid_and_plan_id(store: SqliteOplogStore) -> None:
    store.apply_remote(KEY_A, [
        remote_op(1, repo_guid="guid-nas", plan_id="nightly"),
        remote_op(2, repo_guid="guid-nas", plan_id="hourly"),
        remote_op(3, repo_guid="guid-s3", plan_id="nightly"),
    ], [])

    by_repo = pb.OpSelector(original_instance_keyid=KEY_A, repo_guid="guid-nas")
    assert store.diff(KEY_A, by_repo, [], []) == [1, 2]
    by_plan = pb.OpSelector(original_instance_keyid=KEY_A, repo_guid="guid-nas",
                            plan_id="nightly")
    assert store.diff(KEY_A, by_plan, [], []) == [1]
    assert store.diff(KEY_A, by_plan, [1], [1]) == []
    other_repo = pb.OpSelector(original_instance_keyid=KEY_A, repo_guid="guid-s3")
    assert store.diff(KEY_A, other_repo, [3], [1]) == []


def test_diff_selector_ids_are_the_peers_ids(store: SqliteOplogStore) -> None:
    store.add_local([local_op()] * 5)
    store.apply_remote(KEY_A, [remote_op(1), remote_op(2), remote_op(3)], [])
    selector = pb.OpSelector(original_instance_keyid=KEY_A, ids=[2, 3])
    assert store.diff(KEY_A, selector, [], []) == [2, 3]


def test_diff_rejects_mismatched_lengths_and_other_keyids(store: SqliteOplogStore) -> None:
    selector = pb.OpSelector(original_instance_keyid=KEY_A)
    with pytest.raises(ProtocolError, match="2 ids but 1 modnos"):
        store.diff(KEY_A, selector, [1, 2], [1])
    with pytest.raises(ProtocolError, match="another peer"):
        store.diff(KEY_A, pb.OpSelector(original_instance_keyid=KEY_B), [], [])


# -- payload preservation -------------------------------------------------------------


def test_unknown_fields_survive_storage_byte_exact(store: SqliteOplogStore) -> None:
    payload = bytes(range(256)) * 2
    unknown = length_delimited(100, payload) + length_delimited(107, b"\x08\x01")
    sent = pb.Operation.FromString(remote_op(1, flow_id=1).SerializeToString() + unknown)

    (created,) = store.apply_remote(KEY_A, [sent], []).created
    stored = store.get(created.id)

    assert stored is not None
    assert stored.SerializeToString().endswith(unknown)
    assert stored.SerializeToString() == created.SerializeToString()
    # Re-sending the stored operation reproduces the peer's bytes once the hub's
    # bookkeeping fields are put back.
    resent = pb.Operation()
    resent.CopyFrom(stored)
    resent.id, resent.flow_id = 1, 1
    for field in ("original_id", "original_flow_id", "original_instance_keyid"):
        resent.ClearField(field)
    assert resent.SerializeToString() == sent.SerializeToString()
    (local,) = store.add_local([pb.Operation.FromString(local_op().SerializeToString() + unknown)])
    again = store.get(local.id)
    assert again is not None and again.SerializeToString().endswith(unknown)


# -- local operations -----------------------------------------------------------------


def test_local_adds_get_ids_own_flows_and_increasing_modnos(
    store: SqliteOplogStore, db_path: Path
) -> None:
    first, second = store.add_local([local_op("a"), local_op("b")])
    (joined,) = store.add_local([local_op("c", flow_id=first.id)])

    assert [(op.id, op.flow_id, op.modno) for op in (first, second, joined)] == [
        (1, 1, 1), (2, 2, 2), (3, 1, 3)
    ]
    assert rows(db_path) == [(1, 1, 1, "", None, None), (2, 2, 2, "", None, None),
                             (3, 1, 3, "", None, None)]
    with pytest.raises(ValueError, match="assigns ids"):
        store.add_local([pb.Operation(id=9)])


def test_local_add_clears_remote_bookkeeping(store: SqliteOplogStore) -> None:
    (added,) = store.add_local([pb.Operation(original_id=4, original_instance_keyid=KEY_A)])
    assert (added.original_id, added.original_instance_keyid) == (0, "")
    assert store.query(pb.OpSelector(original_instance_keyid=""))[0].id == added.id


def test_every_local_update_raises_the_modno(store: SqliteOplogStore) -> None:
    first, second = store.add_local([local_op("a"), local_op("b")])
    changed = pb.Operation()
    changed.CopyFrom(first)
    changed.status = pb.STATUS_INPROGRESS

    (updated,) = store.update_local([changed])
    (again,) = store.update_local([changed])

    assert (updated.id, updated.flow_id) == (first.id, first.flow_id)
    assert second.modno < updated.modno < again.modno
    stored = store.get(first.id)
    assert stored is not None
    assert (stored.status, stored.modno) == (pb.STATUS_INPROGRESS, again.modno)


def test_updating_an_unknown_operation_changes_nothing(store: SqliteOplogStore) -> None:
    (first,) = store.add_local([local_op("a")])
    changed = pb.Operation(id=first.id, display_message="changed")
    with pytest.raises(StoreError, match="no such operation"):
        store.update_local([changed, pb.Operation(id=42)])
    stored = store.get(first.id)
    assert stored is not None and stored.display_message == "a"


def test_delete_returns_the_ids_that_existed(store: SqliteOplogStore) -> None:
    store.add_local([local_op()] * 3)
    assert store.delete([3, 1, 7, 1]) == [1, 3]
    assert store.delete([1]) == []
    assert [op.id for op in store.query(pb.OpSelector())] == [2]


# -- queries --------------------------------------------------------------------------


def test_query_selectors_limit_and_order(store: SqliteOplogStore) -> None:
    store.add_local([local_op("l1"), local_op("l2")])
    store.apply_remote(KEY_A, [remote_op(1, plan_id="nightly"), remote_op(2, plan_id="hourly",
                                                                          flow_id=1)], [])

    def ids(selector: pb.OpSelector, **kwargs: object) -> list[int]:
        return [op.id for op in store.query(selector, **kwargs)]  # type: ignore[arg-type]

    assert ids(pb.OpSelector()) == [1, 2, 3, 4]
    assert ids(pb.OpSelector(), newest_first=True, limit=2) == [4, 3]
    assert ids(pb.OpSelector(original_instance_keyid="")) == [1, 2]
    assert ids(pb.OpSelector(original_instance_keyid=KEY_A, plan_id="hourly")) == [4]
    assert ids(pb.OpSelector(flow_id=3)) == [3, 4]
    assert ids(pb.OpSelector(ids=[4, 1, 99])) == [1, 4]
    assert ids(pb.OpSelector(instance_id="web1")) == [3, 4]
    assert store.get(99) is None
    assert store.count() == 4


def test_query_metadata(store: SqliteOplogStore) -> None:
    store.add_local([local_op()])
    store.apply_remote(KEY_A, [remote_op(5, modno=8, flow_id=4)], [])
    assert store.query_metadata(pb.OpSelector()) == [
        OpMetadata(id=1, flow_id=1, modno=1, original_instance_keyid="", original_id=0,
                   original_flow_id=0),
        OpMetadata(id=2, flow_id=2, modno=8, original_instance_keyid=KEY_A, original_id=5,
                   original_flow_id=4),
    ]


def test_results_are_fresh_objects(store: SqliteOplogStore) -> None:
    (created,) = store.apply_remote(KEY_A, [remote_op(1)], []).created
    created.display_message = "scribbled"
    (queried,) = store.query(pb.OpSelector())
    assert queried.display_message == "op 1"
    queried.display_message = "scribbled"
    assert store.query(pb.OpSelector())[0].display_message == "op 1"


# -- schema and storage ---------------------------------------------------------------


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
        ["original_instance_keyid", "modno"],
    ])
    unique_columns = [columns[name] for name, is_unique in unique.items() if is_unique]
    assert unique_columns == [["original_instance_keyid", "original_id"]]


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


def test_a_closed_store_raises_store_error(db_path: Path) -> None:
    closed = SqliteOplogStore(db_path)
    closed.close()
    closed.close()
    with pytest.raises(StoreError, match="closed"):
        closed.count()


def test_in_memory_store(tmp_path: Path) -> None:
    memory = SqliteOplogStore(":memory:")
    try:
        memory.apply_remote(KEY_A, [remote_op(1)], [])
        assert memory.count() == 1
    finally:
        memory.close()


# -- the local change feed ----------------------------------------------------------


def test_local_changes_since_covers_adds_updates_and_deletes(store: SqliteOplogStore) -> None:
    first, second, third = store.add_local([pb.Operation(), pb.Operation(), pb.Operation()])
    mark = store.local_modno()
    assert mark == 3

    second.display_message = "changed"
    store.update_local([second])
    store.delete([first.id])
    changes = store.local_changes_since(mark)
    assert [op.display_message for op in changes.operations] == ["changed"]
    assert changes.deleted_ids == (first.id,)
    assert changes.mark == store.local_modno() == 5

    nothing = store.local_changes_since(changes.mark)
    assert (nothing.operations, nothing.deleted_ids, nothing.mark) == ((), (), changes.mark)
    assert [op.id for op in store.local_changes_since(0).operations] == [third.id, second.id]


def test_deleting_a_peers_operation_leaves_no_local_tombstone(store: SqliteOplogStore) -> None:
    store.apply_remote(KEY_A, [remote_op(1)], [])
    [remote] = store.query(pb.OpSelector(original_instance_keyid=KEY_A))
    mark = store.local_modno()
    store.delete([remote.id])
    assert store.local_changes_since(mark).deleted_ids == ()


def test_local_changes_with_a_limit_never_skip_a_change(store: SqliteOplogStore) -> None:
    ops = store.add_local([pb.Operation() for _ in range(5)])
    store.delete([ops[0].id, ops[1].id])  # modnos 6, 7
    store.add_local([pb.Operation()])  # modno 8
    seen_ops: list[int] = []
    seen_deleted: list[int] = []
    mark = 0
    for _ in range(20):
        page = store.local_changes_since(mark, limit=2)
        if page.mark == mark:
            break
        seen_ops.extend(o.modno for o in page.operations)
        seen_deleted.extend(page.deleted_ids)
        mark = page.mark
    assert seen_ops == [3, 4, 5, 8]  # ops 1 and 2 were deleted before being read
    assert seen_deleted == [ops[0].id, ops[1].id]
    assert mark == 8


def test_data_version_moves_when_another_connection_commits(db_path: Path) -> None:
    watcher = SqliteOplogStore(db_path)
    writer = SqliteOplogStore(db_path)
    try:
        before = watcher.data_version()
        assert watcher.data_version() == before
        writer.add_local([pb.Operation()])
        assert watcher.data_version() != before
    finally:
        watcher.close()
        writer.close()


def test_database_files_are_private(tmp_path: Path) -> None:
    store = SqliteOplogStore(tmp_path / "private.sqlite")
    try:
        store.add_local([pb.Operation(display_message="secret")])
        for name in ("private.sqlite", "private.sqlite-wal", "private.sqlite-shm"):
            assert (tmp_path / name).stat().st_mode & 0o777 == 0o600, name
    finally:
        store.close()
