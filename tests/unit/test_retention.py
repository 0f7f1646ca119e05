"""Retention on the SQLite oplog store and its passes (docs/operations.md, "Retention").

What it removes (peers' dated operations older than their plan's days, never the
latest run of an (instance, plan), never the node's own), in batches, and what a
peer's next diff does about it: an operation retention removed is not asked for
again while the peer lists it with the modno it had; a changed one is.
"""

from __future__ import annotations

from pathlib import Path
from unittest.mock import create_autospec

import pytest

from actors import RetentionPass
from hub.config import RetentionSettings
from hub.pb import synchub_pb2 as pb
from hub.store import RetentionStore, RetireBatch, SqliteOplogStore

DAY_MS = 86_400_000
NOW_MS = 1_800_000_000_000
WEB1 = "ed25519." + "A" * 43
MAIL1 = "ed25519." + "B" * 43


def op(op_id: int, days_ago: float, *, plan: str = "nightly", modno: int = 1) -> pb.Operation:
    return pb.Operation(
        id=op_id, modno=modno, plan_id=plan, repo_guid="guid-nas",
        unix_time_start_ms=int(NOW_MS - days_ago * DAY_MS) if days_ago >= 0 else 0,
        display_message=f"run {op_id}",
    )


@pytest.fixture
def store(tmp_path: Path) -> SqliteOplogStore:
    s = SqliteOplogStore(tmp_path / "oplog.sqlite")
    yield s
    s.close()


def held(store: SqliteOplogStore, keyid: str) -> list[int]:
    return sorted(o.original_id for o in store.query(
        pb.OpSelector(original_instance_keyid=keyid)))


def run_pass(store: SqliteOplogStore, settings: RetentionSettings, limit: int = 1000) -> list[int]:
    removed: list[int] = []
    after = 0
    while True:
        batch = store.retire(settings, NOW_MS, after_id=after, limit=limit)
        removed.extend(batch.removed)
        after = batch.next_after
        if batch.done:
            return removed


def test_old_operations_go_but_the_latest_run_of_each_instance_and_plan_stays(
    store: SqliteOplogStore,
) -> None:
    store.apply_remote(WEB1, [op(1, 100), op(2, 50), op(3, 40), op(4, 5), op(5, 45, plan="weekly"),
                              op(6, -1)], [], peer_instance_id="web1")
    store.apply_remote(MAIL1, [op(1, 100), op(2, 90)], [], peer_instance_id="mail1")
    store.add_local([pb.Operation(plan_id="nightly", unix_time_start_ms=NOW_MS - 400 * DAY_MS)])
    removed = run_pass(store, RetentionSettings(keep_days=30))
    # web1/nightly: 1-3 are old, 4 is recent; weekly's only run is its latest; 6 has
    # no time; mail1's latest nightly run (2) stays though old; the local one stays.
    assert held(store, WEB1) == [4, 5, 6]
    assert held(store, MAIL1) == [2]
    assert len(store.query(pb.OpSelector(original_instance_keyid=""))) == 1
    assert len(removed) == 4
    assert run_pass(store, RetentionSettings(keep_days=30)) == []


def test_per_plan_days_override_and_zero_keeps_forever(store: SqliteOplogStore) -> None:
    store.apply_remote(WEB1, [op(1, 20), op(2, 10), op(3, 1), op(4, 20, plan="hourly"),
                              op(5, 10, plan="hourly"), op(6, 1, plan="hourly"),
                              op(7, 900, plan="audit"), op(8, 800, plan="audit")], [],
                       peer_instance_id="web1")
    settings = RetentionSettings(keep_days=0, plans=(("hourly", 5), ("audit", 0)))
    run_pass(store, settings)
    assert held(store, WEB1) == [1, 2, 3, 6, 7, 8]
    run_pass(store, RetentionSettings(keep_days=15, plans=(("hourly", 5), ("audit", 0))))
    assert held(store, WEB1) == [2, 3, 6, 7, 8]
    assert not RetentionSettings(keep_days=0, plans=(("audit", 0),)).enabled


def test_a_pass_goes_in_batches_of_the_given_size(store: SqliteOplogStore) -> None:
    store.apply_remote(WEB1, [op(i, 100 - i / 100) for i in range(1, 501)], [],
                       peer_instance_id="web1")
    settings = RetentionSettings(keep_days=1)
    first = store.retire(settings, NOW_MS, after_id=0, limit=100)
    assert len(first.removed) == 100 and not first.done
    second = store.retire(settings, NOW_MS, after_id=first.next_after, limit=100)
    assert set(second.removed).isdisjoint(first.removed) and not second.done
    rest = run_pass(store, settings, limit=100)
    assert len(first.removed) + len(second.removed) + len(rest) == 499
    assert held(store, WEB1) == [500]


def test_the_next_diff_does_not_ask_for_what_retention_removed(
    store: SqliteOplogStore, tmp_path: Path
) -> None:
    store.apply_remote(WEB1, [op(1, 100, modno=7), op(2, 90, modno=8), op(3, 1, modno=9)], [],
                       peer_instance_id="web1")
    run_pass(store, RetentionSettings(keep_days=30))
    assert held(store, WEB1) == [3]
    everything = pb.OpSelector(original_instance_keyid=WEB1, repo_guid="guid-nas")
    # The client lists what it still has, unchanged: nothing is requested.
    assert store.diff(WEB1, everything, [1, 2, 3], [7, 8, 9]) == []
    # It remembers across a restart.
    store.close()
    reopened = SqliteOplogStore(tmp_path / "oplog.sqlite")
    try:
        assert reopened.diff(WEB1, everything, [1, 2, 3], [7, 8, 9]) == []
        # Changed since: asked for, stored again, and judged anew by the next pass.
        assert reopened.diff(WEB1, everything, [1, 2, 3], [7, 18, 9]) == [2]
        reopened.apply_remote(WEB1, [op(2, 90, modno=18)], [], peer_instance_id="web1")
        assert held(reopened, WEB1) == [2, 3]
        assert reopened.diff(WEB1, everything, [1, 2, 3], [7, 18, 9]) == []
        # Another client's ids are its own: mail1's id 1 is asked for.
        assert reopened.diff(MAIL1, pb.OpSelector(original_instance_keyid=MAIL1), [1], [7]) == [1]
        # A delete from the client is accepted; the id is then new if it ever comes back.
        reopened.apply_remote(WEB1, [], [1], peer_instance_id="web1")
        assert reopened.diff(WEB1, everything, [1, 2, 3], [7, 18, 9]) == [1]
    finally:
        reopened.close()


def test_a_pass_steps_once_per_due_tick_and_waits_the_interval() -> None:
    store = create_autospec(RetentionStore, instance=True)
    store.retire.side_effect = [
        RetireBatch((1, 2), next_after=10, done=False),
        RetireBatch((3,), next_after=20, done=True),
        RetireBatch((), next_after=0, done=True),
    ]
    retention = RetentionPass(batch_rows=10)
    assert retention.step(store, 100.0) is None  # off until configured
    settings = RetentionSettings(keep_days=3, interval=60.0)
    retention.configure(settings)
    assert retention.step(store, 100.0) == RetireBatch((1, 2), 10, False)
    assert retention.step(store, 101.0) == RetireBatch((3,), 20, True)
    assert retention.step(store, 150.0) is None  # the next pass is due at 161
    assert retention.step(store, 161.0) == RetireBatch((), 0, True)
    calls = [(c.args[1], c.kwargs["after_id"]) for c in store.retire.call_args_list]
    assert calls == [(100_000, 0), (101_000, 10), (161_000, 0)]
    assert all(c.kwargs["limit"] == 10 and c.args[0] is settings
               for c in store.retire.call_args_list)
    retention.configure(RetentionSettings())
    assert retention.step(store, 1000.0) is None


def test_resumed_sync_digests_and_pairs_still_count_what_retention_removed(
    store: SqliteOplogStore,
) -> None:
    store.apply_remote(WEB1, [op(i, 100 - i / 100, modno=i + 10) for i in range(1, 2001)], [],
                       peer_instance_id="web1")
    selection = pb.OpSelector(original_instance_keyid=WEB1, repo_guid="guid-nas")
    before = store.peer_digest(WEB1, selection)
    pairs = store.peer_pairs(WEB1, selection, 0, 5000)
    removed = run_pass(store, RetentionSettings(keep_days=30))
    assert len(removed) > 1000 and len(held(store, WEB1)) < 1000
    assert store.peer_digest(WEB1, selection) == before
    assert store.peer_pairs(WEB1, selection, 0, 5000) == pairs
    # Another plan's selection holds none of them.
    weekly = pb.OpSelector(original_instance_keyid=WEB1, repo_guid="guid-nas", plan_id="weekly")
    assert store.peer_pairs(WEB1, weekly, 0, 5000) == ([], [])
    # The client changes one of them: the hub's pairs follow once it is sent again.
    store.apply_remote(WEB1, [op(5, 95, modno=99)], [], peer_instance_id="web1")
    ids, modnos = store.peer_pairs(WEB1, selection, 5, 5)
    assert (ids, modnos) == ([5], [99])
    assert store.peer_digest(WEB1, selection) != before
