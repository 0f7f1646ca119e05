"""The resumed-sync contract of the stores (docs/protocol.md §6.8 (Resumed sync)).

Hub stores (SQLite and PostgreSQL): the cursors recorded per peer and selection,
and a peer's selection digest that follows every write to the peer's operations
(batches, deletes, deletes by local id), computed from scratch for comparison.
Local stores: the epoch, and the digest of a local selection that follows the
change feed, excluded plans left out.
"""

from __future__ import annotations

from contract_support import KEY_A, KEY_B, Backend, local_op, remote_op

from hub.pb import synchub_pb2 as pb
from hub.store import (
    BucketDigest,
    LocalOplogStore,
    OplogStore,
    SyncCursor,
    digest_pairs,
)

REPO = pb.OpSelector(original_instance_keyid=KEY_A, repo_guid="guid-nas")
NIGHTLY = pb.OpSelector(original_instance_keyid=KEY_A, repo_guid="guid-nas", plan_id="nightly")


def expected_peer(
    store: OplogStore, keyid: str, selector: pb.OpSelector
) -> dict[int, BucketDigest]:
    """The digest computed from every stored operation of the peer, no cache involved."""
    wanted = pb.OpSelector(original_instance_keyid=keyid, repo_guid=selector.repo_guid)
    pairs = [
        (m.original_id, m.modno) for m, op in zip(
            store.query_metadata(wanted), store.query(wanted), strict=True
        )
        if not selector.HasField("plan_id") or op.plan_id == selector.plan_id
    ]
    return digest_pairs(pairs)


def test_cursors_are_recorded_per_peer_and_selection_and_survive_a_reopen(
    oplog_backend: Backend[OplogStore],
) -> None:
    store = oplog_backend.open()
    assert store.sync_cursors(KEY_A) == []
    store.record_cursor(KEY_A, SyncCursor("repo", b"e" * 16, 5))
    store.record_cursor(KEY_A, SyncCursor("plan", b"e" * 16, 3))
    store.record_cursor(KEY_B, SyncCursor("repo", b"f" * 16, 9))
    store.record_cursor(KEY_A, SyncCursor("repo", b"g" * 16, 7))

    reopened = oplog_backend.open()
    assert reopened.sync_cursors(KEY_A) == [
        SyncCursor("plan", b"e" * 16, 3), SyncCursor("repo", b"g" * 16, 7),
    ]
    assert reopened.sync_cursors(KEY_B) == [SyncCursor("repo", b"f" * 16, 9)]


def test_peer_digest_follows_every_write_to_the_peers_operations(
    oplog_backend: Backend[OplogStore],
) -> None:
    store = oplog_backend.open()
    store.apply_remote(KEY_A, [remote_op(i, modno=i) for i in range(1, 3001)], [])
    store.apply_remote(KEY_A, [remote_op(i, plan_id="weekly") for i in range(3001, 3100)], [])
    store.apply_remote(KEY_B, [remote_op(i) for i in range(1, 50)], [])
    for selector in (REPO, NIGHTLY):
        assert store.peer_digest(KEY_A, selector) == expected_peer(store, KEY_A, selector)

    # A changed modno, a delete by the peer, a new id far away, a plan that moves:
    store.apply_remote(KEY_A, [remote_op(7, modno=70), remote_op(5000, modno=1)], [9, 2048])
    store.apply_remote(KEY_A, [remote_op(3050, plan_id="nightly")], [])
    # ... and a delete by local id (an operator removing a peer's operation).
    [victim] = [m.id for m in store.query_metadata(pb.OpSelector(
        original_instance_keyid=KEY_A, ids=[1500]))]
    store.delete([victim])

    reopened = oplog_backend.open()
    for selector in (REPO, NIGHTLY):
        digest = reopened.peer_digest(KEY_A, selector)
        assert digest == expected_peer(reopened, KEY_A, selector)
    assert sum(d.count for d in reopened.peer_digest(KEY_A, REPO).values()) == 3099 - 3 + 1
    assert reopened.peer_digest(KEY_B, pb.OpSelector(
        original_instance_keyid=KEY_B, repo_guid="guid-nas")) == expected_peer(
        reopened, KEY_B, pb.OpSelector(repo_guid="guid-nas"))


def test_a_digest_read_in_pages_becomes_the_cache_and_meets_later_writes(
    oplog_backend: Backend[OplogStore],
) -> None:
    store = oplog_backend.open()
    store.apply_remote(KEY_A, [remote_op(i, modno=i) for i in range(1, 401)], [])
    store.apply_remote(KEY_A, [remote_op(i, plan_id="weekly") for i in range(401, 451)], [])
    store.apply_remote(KEY_B, [remote_op(i) for i in range(1, 50)], [])
    assert not store.peer_digest_refresh(KEY_A, NIGHTLY)  # not cached yet
    # Pages past an id, by id, the selection's only (the plan's; not KEY_B's).
    pages: list[tuple[list[int], list[int]]] = []
    after = 0
    while True:
        ids, modnos = store.peer_pairs_page(KEY_A, NIGHTLY, after, 150)
        if not ids:
            break
        assert ids == sorted(ids) and ids[0] > after and len(ids) <= 150
        pages.append((ids, modnos))
        after = ids[-1]
    assert [len(ids) for ids, _ in pages] == [150, 150, 100]
    read = digest_pairs(
        (i, m) for ids, modnos in pages for i, m in zip(ids, modnos, strict=True))
    # Written after the pages were read: the cache takes the pages and then these.
    store.apply_remote(KEY_A, [remote_op(3, modno=99), remote_op(700, modno=1)], [10])
    digest = store.peer_digest(KEY_A, NIGHTLY, read)
    assert digest == expected_peer(store, KEY_A, NIGHTLY) != read
    assert store.peer_digest_refresh(KEY_A, NIGHTLY)
    reopened = oplog_backend.open()
    assert reopened.peer_digest(KEY_A, NIGHTLY) == expected_peer(reopened, KEY_A, NIGHTLY)


def test_peer_pairs_lists_one_range_of_the_selection(oplog_store: OplogStore) -> None:
    store = oplog_store
    store.apply_remote(KEY_A, [remote_op(i, modno=i * 2) for i in range(1, 30)], [])
    store.apply_remote(KEY_A, [remote_op(12, plan_id="weekly", modno=5)], [])
    store.apply_remote(KEY_B, [remote_op(i) for i in range(1, 30)], [])
    assert store.peer_pairs(KEY_A, NIGHTLY, 10, 14) == ([10, 11, 13, 14], [20, 22, 26, 28])
    assert store.peer_pairs(KEY_A, REPO, 10, 13) == ([10, 11, 12, 13], [20, 22, 5, 26])


def test_local_store_has_one_epoch_for_its_life(local_backend: Backend[LocalOplogStore]) -> None:
    store = local_backend.open()
    epoch = store.store_epoch()
    assert len(epoch) == 16
    store.add_local([local_op("one")])
    assert local_backend.open().store_epoch() == epoch


def test_local_digest_follows_the_change_feed(local_backend: Backend[LocalOplogStore]) -> None:
    store = local_backend.open()
    added = store.add_local([local_op(str(i)) for i in range(2500)])
    store.add_local([local_op("weekly", plan_id="weekly") for _ in range(10)])
    selector = pb.OpSelector(repo_guid="guid-nas")

    def expected(excluded: frozenset[str]) -> dict[int, BucketDigest]:
        ops = store.query(pb.OpSelector(original_instance_keyid="", repo_guid="guid-nas"))
        return digest_pairs((op.id, op.modno) for op in ops if op.plan_id not in excluded)

    assert store.local_digest(selector) == expected(frozenset())
    assert store.local_digest(selector, {"weekly"}) == expected(frozenset({"weekly"}))

    changed = added[5]
    changed.display_message = "changed"
    store.update_local([changed])
    store.delete([added[2000].id])
    moved = added[100]
    moved.plan_id = "weekly"
    store.update_local([moved])

    reopened = local_backend.open()
    assert reopened.local_digest(selector) == expected(frozenset())
    assert reopened.local_digest(selector, {"weekly"}) == expected(frozenset({"weekly"}))
    ids, modnos = reopened.local_pairs(selector, {"weekly"}, added[99].id, added[101].id)
    assert ids == [added[99].id, added[101].id]
    assert modnos == [added[99].modno, added[101].modno]
