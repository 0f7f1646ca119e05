"""The LocalOplogStore contract: a node's own oplog and its change feed.

Local writes (ids, own flows, store-wide modnos), the change feed with deletions,
paging it without skipping a change, the cheap "did anything change" poll, the
(id, modno) lists a diff sends, undecoded reads, ownership by keyid, and fresh
results. The local writes are the same in both oplog protocols, so those tests run
against every implementation of either.
"""

from __future__ import annotations

import pytest
from contract_support import (
    KEY_A,
    Backend,
    NodeOplogStore,
    length_delimited,
    local_op,
    remote_op,
)

from hub.errors import StoreError
from hub.pb import synchub_pb2 as pb
from hub.store import LocalOplogStore, OplogStore

LOCAL = pb.OpSelector(original_instance_keyid="")


def test_implements_the_protocol(local_store: LocalOplogStore) -> None:
    assert isinstance(local_store, LocalOplogStore)


# -- local writes (both oplog protocols) ----------------------------------------------


def test_local_adds_get_ids_own_flows_and_increasing_modnos(
    any_oplog_store: OplogStore | LocalOplogStore,
) -> None:
    store = any_oplog_store
    first, second = store.add_local([local_op("a"), local_op("b")])
    (joined,) = store.add_local([local_op("c", flow_id=first.id)])

    assert [(op.id, op.flow_id, op.modno) for op in (first, second, joined)] == [
        (1, 1, 1), (2, 2, 2), (3, 1, 3)
    ]
    assert [(op.id, op.flow_id, op.modno, op.original_instance_keyid, op.original_id,
             op.original_flow_id) for op in store.query(pb.OpSelector())] == [
        (1, 1, 1, "", 0, 0), (2, 2, 2, "", 0, 0), (3, 1, 3, "", 0, 0)
    ]
    with pytest.raises(ValueError, match="assigns ids"):
        store.add_local([pb.Operation(), pb.Operation(id=9)])
    assert [op.id for op in store.query(pb.OpSelector())] == [1, 2, 3]


def test_local_add_clears_remote_bookkeeping(
    any_oplog_store: OplogStore | LocalOplogStore,
) -> None:
    store = any_oplog_store
    (added,) = store.add_local([pb.Operation(original_id=4, original_instance_keyid=KEY_A)])
    assert (added.original_id, added.original_instance_keyid) == (0, "")
    assert store.query(LOCAL)[0].id == added.id


def test_local_add_leaves_the_callers_operations_alone(
    any_oplog_store: OplogStore | LocalOplogStore,
) -> None:
    mine = local_op("mine")
    before = mine.SerializeToString()
    (stored,) = any_oplog_store.add_local([mine])
    assert mine.SerializeToString() == before
    stored.display_message = "scribbled"
    assert any_oplog_store.query(LOCAL)[0].display_message == "mine"


def test_every_local_update_raises_the_modno(
    any_oplog_store: OplogStore | LocalOplogStore,
) -> None:
    store = any_oplog_store
    first, second = store.add_local([local_op("a"), local_op("b")])
    changed = pb.Operation()
    changed.CopyFrom(first)
    changed.status = pb.STATUS_INPROGRESS

    (updated,) = store.update_local([changed])
    (again,) = store.update_local([changed])

    assert (updated.id, updated.flow_id) == (first.id, first.flow_id)
    assert second.modno < updated.modno < again.modno
    (stored,) = store.query(pb.OpSelector(ids=[first.id]))
    assert (stored.status, stored.modno) == (pb.STATUS_INPROGRESS, again.modno)


def test_an_update_keeps_the_flow_unless_it_names_one(
    any_oplog_store: OplogStore | LocalOplogStore,
) -> None:
    store = any_oplog_store
    first, second = store.add_local([local_op("a"), local_op("b")])
    (kept,) = store.update_local([pb.Operation(id=second.id, display_message="b2")])
    (moved,) = store.update_local([pb.Operation(id=second.id, flow_id=first.id)])
    assert (kept.flow_id, moved.flow_id) == (second.id, first.id)


def test_updating_an_unknown_operation_changes_nothing(
    any_oplog_store: OplogStore | LocalOplogStore,
) -> None:
    store = any_oplog_store
    (first,) = store.add_local([local_op("a")])
    changed = pb.Operation(id=first.id, display_message="changed")
    with pytest.raises(StoreError, match="no such operation"):
        store.update_local([changed, pb.Operation(id=42)])
    (stored,) = store.query(pb.OpSelector(ids=[first.id]))
    assert (stored.display_message, stored.modno) == ("a", first.modno)


def test_delete_returns_the_ids_that_existed(
    any_oplog_store: OplogStore | LocalOplogStore,
) -> None:
    store = any_oplog_store
    store.add_local([local_op()] * 3)
    assert store.delete([3, 1, 7, 1]) == [1, 3]
    assert store.delete([1]) == []
    assert [op.id for op in store.query(pb.OpSelector())] == [2]


def test_empty_writes_change_nothing(any_oplog_store: OplogStore | LocalOplogStore) -> None:
    store = any_oplog_store
    assert store.add_local([]) == []
    assert store.update_local([]) == []
    assert store.delete([]) == []
    (first,) = store.add_local([local_op()])
    assert (first.id, first.modno) == (1, 1)


# -- the local change feed ------------------------------------------------------------


def test_local_changes_since_covers_adds_updates_and_deletes(local_store: LocalOplogStore) -> None:
    store = local_store
    assert store.local_modno() == 0
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


def test_an_operation_changed_twice_is_in_the_feed_once(local_store: LocalOplogStore) -> None:
    store = local_store
    (op,) = store.add_local([local_op("a")])
    mark = store.local_modno()
    op.display_message = "b"
    store.update_local([op])
    op.display_message = "c"
    (latest,) = store.update_local([op])

    changes = store.local_changes_since(mark)

    assert [(o.id, o.display_message, o.modno) for o in changes.operations] == [
        (op.id, "c", latest.modno)
    ]
    assert changes.mark == latest.modno


def test_modnos_keep_rising_after_deletes(local_store: LocalOplogStore) -> None:
    store = local_store
    (first,) = store.add_local([local_op()])
    store.delete([first.id])
    deleted_at = store.local_modno()
    (second,) = store.add_local([local_op()])
    assert first.modno < deleted_at < second.modno == store.local_modno()


def test_local_changes_with_a_limit_never_skip_a_change(local_store: LocalOplogStore) -> None:
    store = local_store
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


def test_the_feed_keeps_unknown_fields_byte_exact(local_store: LocalOplogStore) -> None:
    unknown = length_delimited(150, b"payload") + length_delimited(157, b"\x08\x01")
    (stored,) = local_store.add_local(
        [pb.Operation.FromString(local_op().SerializeToString() + unknown)]
    )
    (fed,) = local_store.local_changes_since(0).operations
    assert fed.SerializeToString() == stored.SerializeToString()
    assert fed.SerializeToString().endswith(unknown)


def test_data_version_moves_when_another_connection_commits(
    local_backend: Backend[LocalOplogStore],
) -> None:
    watcher = local_backend.open()
    writer = local_backend.open()
    before = watcher.data_version()
    assert watcher.data_version() == before
    writer.add_local([pb.Operation()])
    assert watcher.data_version() != before
    assert watcher.local_modno() == 1
    assert [op.modno for op in watcher.local_changes_since(0).operations] == [1]


def test_writers_on_one_oplog_never_hand_out_an_id_or_modno_twice(
    local_backend: Backend[LocalOplogStore],
) -> None:
    one, two = local_backend.open(), local_backend.open()
    stored = [*one.add_local([local_op("a")]), *two.add_local([local_op("b")]),
              *one.add_local([local_op("c")])]
    assert [(op.id, op.modno) for op in stored] == [(1, 1), (2, 2), (3, 3)]


# -- what a diff sends, and undecoded reads -------------------------------------------


def test_ids_and_modnos_list_a_selection_pairwise_by_id(local_store: LocalOplogStore) -> None:
    store = local_store
    a, b, c = store.add_local([local_op("a"), local_op("b", plan_id="hourly"), local_op("c")])
    a.display_message = "a2"
    (a2,) = store.update_local([a])

    assert store.ids_and_modnos(LOCAL) == ([a.id, b.id, c.id], [a2.modno, b.modno, c.modno])
    hourly = pb.OpSelector(original_instance_keyid="", plan_id="hourly")
    assert store.ids_and_modnos(hourly) == ([b.id], [b.modno])
    assert store.ids_and_modnos(pb.OpSelector(repo_guid="guid-none")) == ([], [])


def test_query_serialized_is_query_without_decoding(local_store: LocalOplogStore) -> None:
    store = local_store
    store.add_local([local_op("a"), local_op("b", plan_id="hourly"), local_op("c")])
    selector = pb.OpSelector(original_instance_keyid="", ids=[3, 1, 2])

    serialized = store.query_serialized(selector)
    decoded = store.query(selector)

    assert [(s.id, s.repo_guid, s.plan_id) for s in serialized] == [
        (1, "guid-nas", "nightly"), (2, "guid-nas", "hourly"), (3, "guid-nas", "nightly")
    ]
    assert [pb.Operation.FromString(s.data) for s in serialized] == decoded
    assert [s.data for s in serialized] == [op.SerializeToString() for op in decoded]


def test_feed_results_are_fresh_objects(local_store: LocalOplogStore) -> None:
    store = local_store
    store.add_local([local_op("a")])
    (fed,) = store.local_changes_since(0).operations
    fed.display_message = "scribbled"
    (again,) = store.local_changes_since(0).operations
    assert again.display_message == "a"
    (queried,) = store.query(LOCAL)
    queried.display_message = "scribbled"
    assert store.query(LOCAL)[0].display_message == "a"


def test_a_closed_store_raises_store_error(local_store: LocalOplogStore) -> None:
    local_store.close()
    local_store.close()
    with pytest.raises(StoreError, match="closed"):
        local_store.local_modno()
    with pytest.raises(StoreError, match="closed"):
        local_store.local_changes_since(0)


# -- ownership: a node that is also a hub ---------------------------------------------


def test_deleting_a_peers_operation_leaves_no_local_tombstone(node_store: NodeOplogStore) -> None:
    store = node_store
    store.apply_remote(KEY_A, [remote_op(1)], [])
    [remote] = store.query(pb.OpSelector(original_instance_keyid=KEY_A))
    mark = store.local_modno()
    store.delete([remote.id])
    assert store.local_changes_since(mark).deleted_ids == ()


def test_peers_operations_stay_out_of_the_local_feed(node_store: NodeOplogStore) -> None:
    store = node_store
    (mine,) = store.add_local([local_op("mine")])
    store.apply_remote(KEY_A, [remote_op(1, modno=50), remote_op(2, modno=60)], [])

    assert store.local_modno() == mine.modno
    assert [op.id for op in store.local_changes_since(0).operations] == [mine.id]
    assert store.ids_and_modnos(LOCAL) == ([mine.id], [mine.modno])
    assert [s.id for s in store.query_serialized(LOCAL)] == [mine.id]
