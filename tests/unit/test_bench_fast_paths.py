"""The ingest fast paths: each must give exactly what the plain path gives."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.agent import LocalOplog
from hub.pb import synchub_pb2 as pb
from hub.protocol import (
    DiffSelection,
    SyncScope,
    batch_operations,
    batch_serialized,
    operations_item,
    serialized_operations_frame,
)
from hub.store import SerializedOperation, SqliteOplogStore

KEY = "ed25519.peer-a"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteOplogStore]:
    opened = SqliteOplogStore(tmp_path / "oplog.sqlite")
    try:
        yield opened
    finally:
        opened.close()


def local_op(n: int, *, repo_guid: str = "guid-nas", plan_id: str = "nightly") -> pb.Operation:
    return pb.Operation(
        instance_id="web1", repo_guid=repo_guid, plan_id=plan_id, status=pb.STATUS_SUCCESS,
        display_message=f"job {n} " + "x" * (n % 300), unix_time_start_ms=1_700_000_000_000 + n,
    )


def remote_op(op_id: int, flow_id: int = 0, modno: int = 1) -> pb.Operation:
    return pb.Operation(id=op_id, flow_id=flow_id or op_id, modno=modno, repo_guid="guid-nas",
                        display_message=f"op {op_id}")


@pytest.mark.parametrize("kind", ["created_operations", "updated_operations"])
@pytest.mark.parametrize("count", [0, 1, 3, 256])
def test_a_frame_built_from_stored_bytes_is_the_encoded_item(
    store: SqliteOplogStore, kind: str, count: int
) -> None:
    ops = store.add_local([local_op(n) for n in range(count)]) if count else []
    serialized = store.query_serialized(pb.OpSelector(ids=[op.id for op in ops])) if ops else []
    frame = serialized_operations_frame(serialized, kind)
    assert frame == operations_item(ops, kind).SerializeToString()
    item = pb.SyncStreamItem.FromString(frame)
    assert list(getattr(item.send_operations.event, kind).operations) == ops


def test_serialized_queries_agree_with_the_decoding_ones(store: SqliteOplogStore) -> None:
    ops = store.add_local([local_op(n, plan_id="p" if n % 3 else "q") for n in range(20)])
    selector = pb.OpSelector(original_instance_keyid="", plan_id="p")
    decoded = store.query(selector)
    assert [
        (s.id, s.repo_guid, s.plan_id, pb.Operation.FromString(s.data))
        for s in store.query_serialized(selector)
    ] == [(op.id, op.repo_guid, op.plan_id, op) for op in decoded]
    ids, modnos = store.ids_and_modnos(selector)
    assert ids == [m.id for m in store.query_metadata(selector)]
    assert modnos == [m.modno for m in store.query_metadata(selector)]
    assert len(ids) == len([op for op in ops if op.plan_id == "p"])


def test_serialized_batches_split_like_decoded_ones(store: SqliteOplogStore) -> None:
    ops = store.add_local([local_op(n) for n in range(600)])
    serialized = store.query_serialized(pb.OpSelector())
    limit = 40_000
    plain = [[op.id for op in b] for b in batch_operations(ops, max_frame_bytes=limit)]
    fast = [[op.id for op in b] for b in batch_serialized(serialized, max_frame_bytes=limit)]
    assert fast == plain and len(fast) > 2
    for batch in batch_serialized(serialized, max_frame_bytes=limit):
        assert len(serialized_operations_frame(batch, "created_operations")) <= limit


def test_listed_local_ids_are_primary_key_lookups(store: SqliteOplogStore) -> None:
    plan = store.query_plan(pb.OpSelector(original_instance_keyid="", ids=[1, 2], repo_guid="g"))
    assert any("PRIMARY KEY" in detail for detail in plan), plan


def test_batches_above_everything_held_skip_lookups_yet_map_flows(
    store: SqliteOplogStore,
) -> None:
    # A child arrives before its flow's root; the root, later and above every
    # id held, must still join the child's flow.
    first = store.apply_remote(KEY, [remote_op(5, flow_id=3)], [])
    later = store.apply_remote(KEY, [remote_op(3), remote_op(6, flow_id=3)], [])
    assert [op.flow_id for op in later.created] == [first.created[0].flow_id] * 2
    # Ids below the highest held are updates in place.
    again = store.apply_remote(KEY, [remote_op(5, flow_id=3, modno=2), remote_op(7)], [])
    assert [op.id for op in again.updated] == [first.created[0].id]
    assert [op.original_id for op in again.created] == [7]
    # New ids, an old flow: the existing-id lookup is skipped, the flow one is not.
    [joined] = store.apply_remote(KEY, [remote_op(8, flow_id=3)], []).created
    assert joined.flow_id == first.created[0].flow_id
    assert store.count() == 5


def test_diff_of_an_identical_list_requests_nothing(store: SqliteOplogStore) -> None:
    store.apply_remote(KEY, [remote_op(n, modno=n) for n in range(1, 50)], [])
    selector = pb.OpSelector(original_instance_keyid=KEY, repo_guid="guid-nas")
    ids = list(range(1, 50))
    assert store.diff(KEY, selector, ids, ids) == []
    assert store.diff(KEY, selector, ids[1:], ids[1:]) == [1]
    assert store.diff(KEY, pb.OpSelector(original_instance_keyid=KEY, ids=[0]), [], []) == []


def test_have_is_reread_after_another_connection_commits(tmp_path: Path) -> None:
    path = tmp_path / "oplog.sqlite"
    writer = SqliteOplogStore(path)
    local = LocalOplog(path)
    try:
        [a] = writer.add_local([local_op(1)])
        selection = DiffSelection("guid-nas")
        assert local.have(selection) == ([a.id], [a.modno])
        assert local.have(selection) == ([a.id], [a.modno])
        [b] = writer.add_local([local_op(2)])
        assert local.have(selection) == ([a.id, b.id], [a.modno, b.modno])
        [changed] = writer.update_local([a])
        assert local.have(selection) == ([a.id, b.id], [changed.modno, b.modno])
        writer.delete([b.id])
        ids, _ = local.have(selection)
        assert ids == [a.id]
        ids.append(99)
        assert local.have(selection)[0] == [a.id]
    finally:
        local.close()
        writer.close()


def test_serialized_operations_are_checked_by_scope_like_decoded_ones() -> None:
    scope = SyncScope((DiffSelection("guid-nas", excluded_plans=frozenset({"secret"})),))
    rows = [
        SerializedOperation(1, "guid-nas", "nightly", b""),
        SerializedOperation(2, "guid-nas", "secret", b""),
        SerializedOperation(3, "guid-other", "nightly", b""),
        SerializedOperation(4, "guid-nas", "nightly", b""),
    ]
    assert [op.id for op in scope.filter(rows)] == [1, 4]
    assert [op.id for op in rows if scope.allows(op)] == [1, 4]


def test_reused_operations_are_stored_like_copied_ones(tmp_path: Path) -> None:
    copied = SqliteOplogStore(tmp_path / "copied.sqlite")
    reused = SqliteOplogStore(tmp_path / "reused.sqlite")
    try:
        batches = [[remote_op(n, flow_id=1 + n // 3 * 3) for n in range(1, 9)],
                   [remote_op(n, modno=2) for n in (2, 9)]]
        for batch in batches:
            kept = [pb.Operation.FromString(op.SerializeToString()) for op in batch]
            plain = copied.apply_remote(KEY, batch, [])
            given = reused.apply_remote(KEY, kept, [], reuse=True)
            assert plain == given
            assert all(any(r is op for op in kept) for r in (*given.created, *given.updated))
            assert batch == [remote_op(n, flow_id=1 + n // 3 * 3) for n in range(1, 9)] or (
                batch == [remote_op(n, modno=2) for n in (2, 9)]
            ), "without reuse the caller's operations are left alone"
        selector = pb.OpSelector(original_instance_keyid=KEY)
        assert copied.query(selector) == reused.query(selector)
    finally:
        copied.close()
        reused.close()
