"""The OplogStore contract: what every hub oplog store must do, whatever it stores in.

Peers' batches (id and flow translation, docs/protocol.md §6.4 (`send_operations`)),
atomic batches, isolation between peers, diffs (§6.3 (The hub's answer to
`diff_operations`)), payload preservation, queries, fresh results. The local writes
both oplog protocols share are in test_local_oplog_contract.py; what only SQLite
does is in tests/unit/test_sqlite_oplog_store.py.
"""

from __future__ import annotations

import pytest
from contract_support import KEY_A, KEY_B, Backend, length_delimited, local_op, remote_op

from hub.errors import ProtocolError, StoreError
from hub.pb import synchub_pb2 as pb
from hub.store import OplogStore, OpMetadata


def metadata(store: OplogStore) -> list[tuple[int, int, int, str, int, int]]:
    return [
        (m.id, m.flow_id, m.modno, m.original_instance_keyid, m.original_id, m.original_flow_id)
        for m in store.query_metadata(pb.OpSelector())
    ]


def test_implements_the_protocol(oplog_store: OplogStore) -> None:
    assert isinstance(oplog_store, OplogStore)


# -- remote batches: ids and flows ----------------------------------------------------


def test_protocol_example_ids_and_flows_are_translated(oplog_store: OplogStore) -> None:
    store = oplog_store
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


def test_later_batches_join_flows_already_stored(oplog_store: OplogStore) -> None:
    store = oplog_store
    store.apply_remote(KEY_A, [remote_op(10, flow_id=10)], [])
    result = store.apply_remote(KEY_A, [remote_op(11, flow_id=10), remote_op(12, flow_id=0)], [])

    assert [(op.id, op.flow_id) for op in result.created] == [(2, 1), (3, 3)]
    # A flow id of 0 means the operation starts its own flow.
    assert result.created[1].original_flow_id == 12


def test_a_flow_joins_a_root_stored_later_in_the_same_batch(oplog_store: OplogStore) -> None:
    result = oplog_store.apply_remote(
        KEY_A, [remote_op(5, flow_id=3), remote_op(3), remote_op(6, flow_id=3)], []
    )
    assert [(op.original_id, op.id, op.flow_id) for op in result.created] == [
        (5, 1, 1), (3, 2, 1), (6, 3, 1)
    ]


def test_update_in_place_keeps_the_id_and_takes_the_clients_modno(
    oplog_store: OplogStore,
) -> None:
    store = oplog_store
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
    assert metadata(store) == [(created.id, created.flow_id, 9, KEY_A, 7, 7)]


def test_a_repeated_id_in_one_batch_is_one_operation_last_copy_wins(
    oplog_store: OplogStore,
) -> None:
    store = oplog_store
    result = store.apply_remote(
        KEY_A, [remote_op(1, modno=1, message="a"), remote_op(1, modno=2, message="b")], []
    )
    assert len(result.created) == 1
    assert (result.created[0].modno, result.created[0].display_message) == (2, "b")
    assert store.count() == 1


def test_deletes_apply_before_the_batchs_operations(oplog_store: OplogStore) -> None:
    store = oplog_store
    (first,) = store.apply_remote(KEY_A, [remote_op(1)], []).created

    result = store.apply_remote(KEY_A, [remote_op(1, modno=2, message="again")], [1])

    assert result.deleted_ids == (first.id,)
    (created,) = result.created
    assert created.id > first.id and created.original_id == 1
    assert [(op.id, op.display_message) for op in store.query(pb.OpSelector())] == [
        (created.id, "again")
    ]


def test_the_callers_operations_are_not_modified(oplog_store: OplogStore) -> None:
    sent = remote_op(5, flow_id=4)
    before = sent.SerializeToString()
    oplog_store.apply_remote(KEY_A, [sent], [])
    assert sent.SerializeToString() == before


def test_reuse_gives_the_same_results(oplog_store: OplogStore) -> None:
    store = oplog_store
    store.apply_remote(KEY_A, [remote_op(1)], [])

    result = store.apply_remote(KEY_A, [remote_op(1, modno=4), remote_op(2, flow_id=1)], [],
                                reuse=True)

    assert [(op.id, op.flow_id, op.modno, op.original_id) for op in result.updated] == [
        (1, 1, 4, 1)
    ]
    assert [(op.id, op.flow_id, op.original_id, op.original_instance_keyid)
            for op in result.created] == [(2, 1, 2, KEY_A)]
    assert store.query(pb.OpSelector()) == [*result.updated, *result.created]


def test_remote_ids_continue_after_local_ids_and_are_never_reused(
    oplog_store: OplogStore,
) -> None:
    store = oplog_store
    (local,) = store.add_local([local_op()])
    store.delete([local.id])
    (created,) = store.apply_remote(KEY_A, [remote_op(1)], []).created
    assert created.id == local.id + 1
    store.delete([created.id])
    (again,) = store.add_local([local_op()])
    assert again.id == created.id + 1


def test_ids_survive_reopening(oplog_backend: Backend[OplogStore]) -> None:
    first = oplog_backend.open()
    first.apply_remote(KEY_A, [remote_op(1), remote_op(2)], [])
    first.delete([2])
    first.close()

    second = oplog_backend.open()
    (created,) = second.apply_remote(KEY_A, [remote_op(3)], []).created
    assert created.id == 3
    assert [op.original_id for op in second.query(pb.OpSelector())] == [1, 3]


# -- atomicity ------------------------------------------------------------------------


@pytest.mark.parametrize("bad_id", [0, -4])
def test_a_non_positive_id_rejects_the_whole_batch(oplog_store: OplogStore, bad_id: int) -> None:
    store = oplog_store
    with pytest.raises(ProtocolError, match="batch rejected"):
        store.apply_remote(KEY_A, [remote_op(1), remote_op(bad_id), remote_op(3)], [2])
    assert store.count() == 0
    assert store.query_metadata(pb.OpSelector()) == []


def test_a_negative_flow_id_rejects_the_whole_batch(oplog_store: OplogStore) -> None:
    store = oplog_store
    store.apply_remote(KEY_A, [remote_op(1)], [])
    bad = remote_op(3)
    bad.flow_id = -1
    with pytest.raises(ProtocolError, match="batch rejected"):
        store.apply_remote(KEY_A, [remote_op(2), bad], [1])
    assert metadata(store) == [(1, 1, 1, KEY_A, 1, 1)]


def test_a_rejected_batch_does_not_apply_its_deletes(oplog_store: OplogStore) -> None:
    store = oplog_store
    store.apply_remote(KEY_A, [remote_op(1)], [])
    with pytest.raises(ProtocolError):
        store.apply_remote(KEY_A, [remote_op(-1)], [1])
    assert [op.original_id for op in store.query(pb.OpSelector())] == [1]


def test_a_batch_needs_the_peers_key_id(oplog_store: OplogStore) -> None:
    with pytest.raises(ValueError, match="key id"):
        oplog_store.apply_remote("", [remote_op(1)], [])
    assert oplog_store.count() == 0


# -- isolation between peers ----------------------------------------------------------


def test_the_same_ids_from_another_peer_are_separate_operations(
    oplog_store: OplogStore,
) -> None:
    store = oplog_store
    a = store.apply_remote(KEY_A, [remote_op(1, modno=1), remote_op(2, flow_id=1)], [])
    b = store.apply_remote(KEY_B, [remote_op(1, modno=5), remote_op(2, flow_id=1)], [])

    assert [(op.id, op.flow_id) for op in a.created] == [(1, 1), (2, 1)]
    assert [(op.id, op.flow_id) for op in b.created] == [(3, 3), (4, 3)]
    assert b.updated == ()
    a_ops = store.query(pb.OpSelector(original_instance_keyid=KEY_A))
    assert [op.modno for op in a_ops] == [1, 1]


def test_a_peer_cannot_delete_another_peers_operations(oplog_store: OplogStore) -> None:
    store = oplog_store
    store.apply_remote(KEY_A, [remote_op(1), remote_op(2)], [])

    result = store.apply_remote(KEY_B, [], [1, 2, 99])

    assert result.deleted_ids == ()
    assert store.count() == 2
    assert store.apply_remote(KEY_A, [], [2, 99]).deleted_ids == (2,)
    assert [op.original_id for op in store.query(pb.OpSelector())] == [1]


def test_deleting_unknown_ids_is_a_no_op(oplog_store: OplogStore) -> None:
    assert oplog_store.apply_remote(KEY_A, [], [5, 6]).empty
    assert oplog_store.count() == 0


def test_a_peer_cannot_update_a_local_operation_through_its_original_id(
    oplog_store: OplogStore,
) -> None:
    store = oplog_store
    (local,) = store.add_local([local_op("mine")])
    result = store.apply_remote(KEY_A, [remote_op(local.id, message="theirs")], [])
    assert result.created[0].id != local.id
    kept = store.get(local.id)
    assert kept is not None and kept.display_message == "mine"


def test_a_peer_cannot_delete_a_local_operation_through_its_original_id(
    oplog_store: OplogStore,
) -> None:
    store = oplog_store
    (local,) = store.add_local([local_op("mine")])
    assert store.apply_remote(KEY_A, [], [local.id]).empty
    assert store.get(local.id) is not None


def test_a_remote_operation_cannot_be_changed_as_a_local_one(oplog_store: OplogStore) -> None:
    store = oplog_store
    (remote,) = store.apply_remote(KEY_A, [remote_op(1)], []).created
    changed = pb.Operation(id=remote.id, display_message="hijack")
    with pytest.raises(StoreError, match="only its owner"):
        store.update_local([changed])
    kept = store.get(remote.id)
    assert kept is not None and kept.display_message == "op 1"


def test_delete_by_local_id_removes_a_peers_operation_too(oplog_store: OplogStore) -> None:
    store = oplog_store
    (local,) = store.add_local([local_op()])
    (remote,) = store.apply_remote(KEY_A, [remote_op(1)], []).created
    assert store.delete([remote.id, local.id]) == [local.id, remote.id]
    assert store.count() == 0


# -- diff -----------------------------------------------------------------------------


def test_diff_requests_changed_missing_and_unlisted_ids(oplog_store: OplogStore) -> None:
    store = oplog_store
    store.apply_remote(KEY_A, [remote_op(1, modno=1), remote_op(2, modno=2),
                               remote_op(4, modno=4)], [])
    selector = pb.OpSelector(original_instance_keyid=KEY_A, repo_guid="guid-nas")

    requested = store.diff(KEY_A, selector, [1, 2, 3], [1, 5, 3])

    # 2: modno differs; 3: the hub lacks it; 4: the client did not list it.
    assert requested == [2, 3, 4]
    assert store.diff(KEY_A, selector, [1, 2, 4], [1, 2, 4]) == []


def test_diff_of_an_empty_selection_requests_every_listed_id_once(
    oplog_store: OplogStore,
) -> None:
    selector = pb.OpSelector(original_instance_keyid=KEY_A)
    assert oplog_store.diff(KEY_A, selector, [3, 1, 3], [1, 1, 2]) == [1, 3]


def test_diff_only_sees_the_peers_own_operations(oplog_store: OplogStore) -> None:
    store = oplog_store
    store.apply_remote(KEY_B, [remote_op(1), remote_op(2)], [])
    store.add_local([local_op(), local_op()])
    selector = pb.OpSelector(original_instance_keyid=KEY_A, repo_guid="guid-nas")
    assert store.diff(KEY_A, selector, [], []) == []
    assert store.diff(KEY_A, selector, [1], [1]) == [1]
    # A selector without a key id is confined to the asking peer all the same.
    assert store.diff(KEY_A, pb.OpSelector(repo_guid="guid-nas"), [], []) == []


def test_diff_filters_by_repo_guid_and_plan_id(oplog_store: OplogStore) -> None:
    store = oplog_store
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


def test_diff_selector_ids_are_the_peers_ids(oplog_store: OplogStore) -> None:
    store = oplog_store
    store.add_local([local_op()] * 5)
    store.apply_remote(KEY_A, [remote_op(1), remote_op(2), remote_op(3)], [])
    selector = pb.OpSelector(original_instance_keyid=KEY_A, ids=[2, 3])
    assert store.diff(KEY_A, selector, [], []) == [2, 3]


def test_a_diff_step_of_a_few_listed_ids_is_one_step_however_many_are_held(
    oplog_store: OplogStore,
) -> None:
    store = oplog_store
    store.apply_remote(KEY_A, [remote_op(n, modno=n) for n in range(1, 41)], [])
    listed = pb.OpSelector(original_instance_keyid=KEY_A, ids=[3, 30, 99])
    # Past the limit of rows, the window of a listed selection still holds all of it.
    assert store.held_window(KEY_A, listed, None, None, 10) == ({3: 3, 30: 30}, None)
    assert store.held_window(KEY_A, listed, 3, None, 10) == ({30: 30}, None)
    acknowledgement = pb.OpSelector(original_instance_keyid=KEY_A, ids=[0])
    assert store.held_window(KEY_A, acknowledgement, None, None, 10) == ({}, None)
    # More ids than the limit: bounded by the key's rows, as any selection.
    many = pb.OpSelector(original_instance_keyid=KEY_A, ids=list(range(1, 21)))
    held, end = store.held_window(KEY_A, many, None, None, 10)
    assert (held, end) == ({n: n for n in range(1, 11)}, 10)


def test_diff_selector_flow_id_is_the_peers_flow_id(oplog_store: OplogStore) -> None:
    store = oplog_store
    store.add_local([local_op()] * 3)
    store.apply_remote(KEY_A, [remote_op(7), remote_op(8, flow_id=7), remote_op(9)], [])
    selector = pb.OpSelector(original_instance_keyid=KEY_A, flow_id=7)
    assert store.diff(KEY_A, selector, [], []) == [7, 8]


def test_diff_rejects_mismatched_lengths_and_other_keyids(oplog_store: OplogStore) -> None:
    store = oplog_store
    selector = pb.OpSelector(original_instance_keyid=KEY_A)
    with pytest.raises(ProtocolError, match="2 ids but 1 modnos"):
        store.diff(KEY_A, selector, [1, 2], [1])
    with pytest.raises(ProtocolError, match="another peer"):
        store.diff(KEY_A, pb.OpSelector(original_instance_keyid=KEY_B), [], [])


# -- payload preservation -------------------------------------------------------------


def test_unknown_fields_survive_storage_byte_exact(oplog_store: OplogStore) -> None:
    store = oplog_store
    payload = bytes(range(256)) * 2
    # Numbers no version of the schema declares (backrest's next payloads, say).
    unknown = length_delimited(150, payload) + length_delimited(157, b"\x08\x01")
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


def test_a_declared_payload_keeps_the_fields_inside_it_the_schema_lacks(
    oplog_store: OplogStore,
) -> None:
    summary = pb.BackupProgressSummary(files_new=4, data_added=2048, snapshot_id="5e" * 32)
    inner = summary.SerializeToString() + length_delimited(77, b"newer restic field")
    backup = length_delimited(3, length_delimited(2, inner))
    wire = remote_op(1).SerializeToString() + length_delimited(100, backup)

    (created,) = oplog_store.apply_remote(KEY_A, [pb.Operation.FromString(wire)], []).created
    stored = oplog_store.get(created.id)

    assert stored is not None
    assert stored.operation_backup.last_status.summary.data_added == 2048
    assert stored.SerializeToString().endswith(length_delimited(100, backup))


# -- who an operation came from -------------------------------------------------------


def test_instance_id_is_kept_as_sent_and_the_peer_is_recorded_beside_it(
    oplog_store: OplogStore,
) -> None:
    store = oplog_store
    sent = remote_op(1)
    sent.instance_id = "laptop"
    sent.peer_instance_id = "claimed-by-the-peer"

    (created,) = store.apply_remote(KEY_A, [sent], [], peer_instance_id="web1").created

    assert (created.instance_id, created.peer_instance_id) == ("laptop", "web1")
    stored = store.get(created.id)
    assert stored is not None
    assert (stored.instance_id, stored.peer_instance_id) == ("laptop", "web1")
    # The peer's claim is not kept; the instance it authenticated as is not in the bytes.
    bare = pb.Operation()
    bare.CopyFrom(stored)
    bare.ClearField("peer_instance_id")
    assert b"claimed-by-the-peer" not in bare.SerializeToString()
    assert b"web1" not in bare.SerializeToString()


def test_queries_select_by_peer_or_by_producer(oplog_store: OplogStore) -> None:
    store = oplog_store
    (own,) = store.add_local([local_op("own")])
    laptop = remote_op(1)
    laptop.instance_id = "laptop"
    store.apply_remote(KEY_A, [laptop, remote_op(2)], [], peer_instance_id="web1")
    store.apply_remote(KEY_B, [remote_op(1)], [], peer_instance_id="db1")

    def ids(**selector: str) -> list[int]:
        return [op.id for op in store.query(pb.OpSelector(**selector))]

    assert ids(peer_instance_id="web1") == [2, 3]
    assert ids(peer_instance_id="db1") == [4]
    assert ids(instance_id="laptop") == [2]
    assert ids(instance_id="web1") == [3, 4]
    assert ids(instance_id="web1", peer_instance_id="web1") == [3]
    # A node's own operations came from no peer: the peer filter matches them by the
    # instance they were recorded with, and they are handed out as stored.
    assert ids(peer_instance_id="hub-1") == [own.id]
    (mine,) = store.query(pb.OpSelector(ids=[own.id]))
    assert not mine.peer_instance_id


# -- queries --------------------------------------------------------------------------


def test_query_selectors_limit_and_order(oplog_store: OplogStore) -> None:
    store = oplog_store
    store.add_local([local_op("l1"), local_op("l2")])
    store.apply_remote(KEY_A, [remote_op(1, plan_id="nightly"), remote_op(2, plan_id="hourly",
                                                                          flow_id=1)], [])

    def ids(selector: pb.OpSelector, **kwargs: object) -> list[int]:
        return [op.id for op in store.query(selector, **kwargs)]  # type: ignore[arg-type]

    assert ids(pb.OpSelector()) == [1, 2, 3, 4]
    assert ids(pb.OpSelector(), newest_first=True, limit=2) == [4, 3]
    assert ids(pb.OpSelector(), limit=0) == []
    assert ids(pb.OpSelector(original_instance_keyid="")) == [1, 2]
    assert ids(pb.OpSelector(original_instance_keyid=KEY_A, plan_id="hourly")) == [4]
    assert ids(pb.OpSelector(flow_id=3)) == [3, 4]
    assert ids(pb.OpSelector(ids=[4, 1, 99])) == [1, 4]
    assert ids(pb.OpSelector(ids=[4, 1], original_instance_keyid="")) == [1]
    assert ids(pb.OpSelector(instance_id="web1")) == [3, 4]
    assert ids(pb.OpSelector(repo_guid="guid-s3")) == []
    assert store.get(99) is None
    assert store.count() == 4


def test_query_metadata(oplog_store: OplogStore) -> None:
    store = oplog_store
    store.add_local([local_op()])
    store.apply_remote(KEY_A, [remote_op(5, modno=8, flow_id=4)], [])
    assert store.query_metadata(pb.OpSelector()) == [
        OpMetadata(id=1, flow_id=1, modno=1, original_instance_keyid="", original_id=0,
                   original_flow_id=0),
        OpMetadata(id=2, flow_id=2, modno=8, original_instance_keyid=KEY_A, original_id=5,
                   original_flow_id=4),
    ]
    assert store.query_metadata(pb.OpSelector(original_instance_keyid=KEY_A, ids=[2])) == [
        OpMetadata(2, 2, 8, KEY_A, 5, 4)
    ]


def test_results_are_fresh_objects(oplog_store: OplogStore) -> None:
    store = oplog_store
    (created,) = store.apply_remote(KEY_A, [remote_op(1)], []).created
    created.display_message = "scribbled"
    (queried,) = store.query(pb.OpSelector())
    assert queried.display_message == "op 1"
    queried.display_message = "scribbled"
    assert store.query(pb.OpSelector())[0].display_message == "op 1"
    got = store.get(created.id)
    assert got is not None
    got.display_message = "scribbled"
    again = store.get(created.id)
    assert again is not None and again.display_message == "op 1"


# -- lifecycle ------------------------------------------------------------------------


def test_a_closed_store_raises_store_error(oplog_store: OplogStore) -> None:
    oplog_store.close()
    oplog_store.close()
    with pytest.raises(StoreError, match="closed"):
        oplog_store.count()
    with pytest.raises(StoreError, match="closed"):
        oplog_store.apply_remote(KEY_A, [remote_op(1)], [])


def test_check_writable_changes_nothing_and_fails_once_closed(
    oplog_backend: Backend[OplogStore],
) -> None:
    store = oplog_backend.open()
    [op] = store.add_local([local_op("kept")])
    store.check_writable()
    assert store.query(pb.OpSelector()) == [op]
    assert store.count() == 1
    store.close()
    with pytest.raises(StoreError):
        store.check_writable()
