"""The OplogReader contract: a read-only view of a hub's oplog beside its writer.

A reader sees what the writer committed, filters and pages newest first, answers the
dashboard's per-plan questions with indexed lookups, follows the local change feed
written by any process, and never writes.
"""

from __future__ import annotations

import pytest
from conftest import ReaderRig
from contract_support import KEY_A, local_op, remote_op

from hub.errors import StoreError
from hub.pb import synchub_pb2 as pb
from hub.store import OperationQuery, OplogReader


def _seed(rig: ReaderRig) -> list[pb.Operation]:
    """Six remote operations of two plans, two of them failed, and two local ones."""
    ops = []
    for op_id in range(1, 7):
        op = remote_op(op_id, plan_id="nightly" if op_id % 2 else "hourly")
        op.unix_time_start_ms = 1_000 * op_id
        if op_id in (3, 6):
            op.status = pb.STATUS_ERROR
        ops.append(op)
    result = rig.writer.apply_remote(KEY_A, ops, [], peer_instance_id="web1")
    local = rig.writer.add_local([local_op("a"), local_op("b", plan_id="weekly")])
    return [*result.created, *local]


def test_implements_the_protocol(reader_rig: ReaderRig) -> None:
    assert isinstance(reader_rig.open_reader(), OplogReader)


def test_sees_what_the_writer_committed_after_it_opened(reader_rig: ReaderRig) -> None:
    reader = reader_rig.open_reader()
    assert reader.find(OperationQuery()) == []
    stored = _seed(reader_rig)
    assert [op.id for op in reader.find(OperationQuery())] == sorted(
        (op.id for op in stored), reverse=True
    )
    assert reader.count() == len(stored)
    assert reader.get(stored[0].id) == stored[0]
    assert reader.get(10_000) is None


def test_find_filters_and_pages_newest_first(reader_rig: ReaderRig) -> None:
    stored = _seed(reader_rig)
    reader = reader_rig.open_reader()
    failed = reader.find(OperationQuery(status=pb.STATUS_ERROR))
    assert [op.display_message for op in failed] == ["op 6", "op 3"]
    assert [op.id for op in reader.find(OperationQuery(plan_id="nightly", instance="web1"))] \
        == [stored[4].id, stored[2].id, stored[0].id]
    assert reader.find(OperationQuery(repo_guid="elsewhere")) == []
    window = reader.find(OperationQuery(instance="web1", since_ms=2_000, until_ms=5_000))
    assert [op.unix_time_start_ms for op in window] == [4_000, 3_000, 2_000]
    first = reader.find(OperationQuery(limit=3))
    second = reader.find(OperationQuery(limit=3, before_id=first[-1].id))
    assert len(first) == len(second) == 3
    assert first[-1].id > second[0].id
    assert not {op.id for op in first} & {op.id for op in second}


def test_find_by_start_time_lists_a_late_arrival_where_it_started(
    reader_rig: ReaderRig,
) -> None:
    stored = _seed(reader_rig)  # the local ones have the highest ids and start at 0
    late = remote_op(7, plan_id="nightly")
    late.unix_time_start_ms = 2_500  # synced last, started between op 2 and op 3
    tie = remote_op(8, plan_id="nightly")
    tie.unix_time_start_ms = 2_500
    [late, tie] = reader_rig.writer.apply_remote(
        KEY_A, [late, tie], [], peer_instance_id="web1"
    ).created
    reader = reader_rig.open_reader()

    by_start = reader.find(OperationQuery(order="started", instance="web1"))
    assert [op.unix_time_start_ms for op in by_start] == [
        6_000, 5_000, 4_000, 3_000, 2_500, 2_500, 2_000, 1_000]
    assert [op.id for op in by_start[4:6]] == [tie.id, late.id]  # ties: newest id first
    oldest = reader.find(OperationQuery(order="started", ascending=True, limit=2))
    assert {op.id for op in oldest} == {op.id for op in stored[6:]}  # local: started at 0
    by_id = reader.find(OperationQuery(instance="web1", limit=2))
    assert [op.id for op in by_id] == [tie.id, late.id]
    window = reader.find(OperationQuery(order="started", since_ms=2_500, until_ms=4_000,
                                        ascending=True))
    assert [op.id for op in window] == [late.id, tie.id, stored[2].id]


def test_per_plan_lookups(reader_rig: ReaderRig) -> None:
    stored = _seed(reader_rig)
    reader = reader_rig.open_reader()
    assert reader.plan_keys() == [
        ("hub-1", "nightly"), ("hub-1", "weekly"), ("web1", "hourly"), ("web1", "nightly"),
    ]
    runs = reader.latest_runs("web1", "hourly", 2)
    assert [op.display_message for op in runs] == ["op 6", "op 4"]
    success = reader.latest_with_status("web1", "hourly", pb.STATUS_SUCCESS)
    assert success is not None and success.display_message == "op 4"
    assert reader.latest_with_status("web1", "nightly", pb.STATUS_WARNING) is None
    assert stored


def test_follows_the_local_feed(reader_rig: ReaderRig) -> None:
    reader = reader_rig.open_reader()
    start = reader.local_modno()
    version = reader.data_version()
    [added] = reader_rig.writer.add_local([local_op("job")])
    assert reader.data_version() != version
    changes = reader.local_changes_since(start)
    assert [op.id for op in changes.operations] == [added.id]
    reader_rig.writer.delete([added.id])
    later = reader.local_changes_since(changes.mark)
    assert later.deleted_ids == (added.id,)
    assert reader.local_modno() == later.mark


def test_reads_what_was_stored_between_two_ids(reader_rig: ReaderRig) -> None:
    stored = _seed(reader_rig)
    reader = reader_rig.open_reader()
    ids = sorted(op.id for op in stored)
    between = reader.stored_between(ids[2], ids[4], limit=10)
    assert [op.id for op in between] == ids[2:5]
    assert all(op == reader.get(op.id) for op in between)  # as every other read hands out
    assert [op.id for op in reader.stored_between(0, ids[-1], limit=2)] == ids[:2]
    assert reader.stored_between(ids[-1] + 1, ids[-1] + 100, limit=10) == []
    changed = pb.Operation()
    changed.CopyFrom(stored[-1])
    changed.display_message = "changed"
    reader_rig.writer.update_local([changed])
    [again] = reader.stored_between(stored[-1].id, stored[-1].id, limit=10)
    assert again.display_message == "changed"


def test_size_is_reported_and_close_is_final(reader_rig: ReaderRig) -> None:
    _seed(reader_rig)
    reader = reader_rig.open_reader()
    assert reader.size_bytes() >= 0
    reader.close()
    reader.close()
    with pytest.raises(StoreError):
        reader.find(OperationQuery())
