"""FleetState: the per-plan history kept one operation at a time, and built once from a
real SQLite oplog with bounded lookups."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub import fleet as fleet_module
from hub.fleet import HISTORY, FleetState
from hub.pb import synchub_pb2 as pb
from hub.store import SqliteOplogReader, SqliteOplogStore

NOW = 1_700_000_000_000


def op(op_id: int, status: int = pb.STATUS_SUCCESS, *, plan: str = "nightly",
       instance: str = "web1", start: int = 0, message: str = "") -> pb.Operation:
    begin = start or NOW - 3_600_000 + op_id * 1000
    return pb.Operation(id=op_id, plan_id=plan, instance_id=instance, status=status,
                        repo_id="nas", repo_guid="guid-nas", unix_time_start_ms=begin,
                        unix_time_end_ms=begin + 500, display_message=message or f"op {op_id}")


def test_runs_are_kept_in_order_bounded_and_changes_reported() -> None:
    state = FleetState()
    changes = [state.apply(op(i), NOW) for i in range(1, HISTORY + 11)]
    assert all(c is not None and c.previous is None for c in changes)
    [plan] = state.snapshot(NOW).plans
    assert [r.op_id for r in plan.runs] == list(range(11, HISTORY + 11))
    assert plan.last is not None and plan.last.duration_ms == 500
    assert plan.last_success_ms == op(HISTORY + 10).unix_time_end_ms
    assert state.apply(op(HISTORY + 10, message="same status"), NOW) is None
    failed = state.apply(op(HISTORY + 10, pb.STATUS_ERROR), NOW)
    assert failed is not None and failed.previous == pb.STATUS_SUCCESS
    snapshot = state.snapshot(NOW)
    assert snapshot.plans[0].last is not None
    assert snapshot.plans[0].last.status == pb.STATUS_ERROR
    assert [f.op_id for f in snapshot.failures] == [HISTORY + 10]


def test_a_snapshot_reuses_the_summaries_of_plans_that_did_not_change() -> None:
    state = FleetState()
    state.apply(op(1, plan="nightly"), NOW)
    state.apply(op(2, plan="hourly"), NOW)
    first = state.snapshot(NOW)
    assert state.snapshot(NOW) is first
    state.apply(op(3, plan="hourly"), NOW)
    second = state.snapshot(NOW)
    assert second.version > first.version
    by_plan = {p.plan: p for p in second.plans}
    assert by_plan["nightly"] is {p.plan: p for p in first.plans}["nightly"]
    assert by_plan["hourly"] is not {p.plan: p for p in first.plans}["hourly"]


def test_deletes_and_moves_between_plans() -> None:
    state = FleetState()
    state.apply(op(1, pb.STATUS_ERROR), NOW)
    state.apply(op(2), NOW)
    state.remove(1)
    snapshot = state.snapshot(NOW)
    assert [r.op_id for r in snapshot.plans[0].runs] == [2]
    assert snapshot.failures == ()
    state.apply(op(2, plan="hourly"), NOW)
    plans = state.snapshot(NOW).plans
    assert [(p.plan, [r.op_id for r in p.runs]) for p in plans] == [("hourly", [2]),
                                                                   ("nightly", [])]


def test_old_failures_leave_the_last_day_and_old_runs_still_count_as_success() -> None:
    state = FleetState()
    state.apply(op(1, pb.STATUS_ERROR, start=NOW - 25 * 3_600_000), NOW)
    assert state.snapshot(NOW).failures == ()
    state.apply(op(2, pb.STATUS_ERROR, start=NOW - 60_000), NOW)
    assert len(state.snapshot(NOW).failures) == 1
    assert state.snapshot(NOW + 24 * 3_600_000).failures == ()
    for i in range(10, 10 + HISTORY):
        state.apply(op(i, start=NOW - 1000 + i), NOW)
    state.apply(op(5, start=NOW - 10**7), NOW)  # older than every run kept
    [plan] = state.snapshot(NOW).plans
    assert 5 not in [r.op_id for r in plan.runs]


def test_plans_per_instance_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fleet_module._state, "MAX_PLANS_PER_INSTANCE", 3)
    state = FleetState()
    for i in range(1, 6):
        state.apply(op(i, plan=f"p{i}"), NOW)
    snapshot = state.snapshot(NOW)
    assert [p.plan for p in snapshot.plans] == ["p1", "p2", "p3"]
    assert snapshot.untracked == 2


def test_load_builds_the_same_state_from_the_store(tmp_path: Path) -> None:
    path = tmp_path / "oplog.sqlite"
    store = SqliteOplogStore(path)
    ops = [op(i, pb.STATUS_ERROR if i % 7 == 0 else pb.STATUS_SUCCESS,
              plan="nightly" if i % 2 else "hourly", start=NOW - 3_600_000 + i * 1000)
           for i in range(1, 131)]
    for item in ops:
        item.id = 0
    stored = store.add_local(ops)
    store.close()
    live = FleetState()
    for item in stored:
        live.apply(item, NOW)
    reader = SqliteOplogReader(path)
    try:
        loaded = FleetState()
        loaded.load(reader, NOW)
    finally:
        reader.close()
    def seen(state: FleetState) -> list[tuple[object, ...]]:
        # first_seen_ms is the earliest run *kept*: a reload keeps only the last HISTORY.
        return [(p.instance, p.plan, p.repo, p.runs, p.last_success_ms)
                for p in state.snapshot(NOW).plans]

    assert seen(loaded) == seen(live)
    assert len(seen(loaded)) == 2
    assert loaded.snapshot(NOW).failures == live.snapshot(NOW).failures
    assert len(loaded.snapshot(NOW).failures) == 18


def test_a_batch_gives_the_same_picture_and_the_changes_alerts_need() -> None:
    statuses = [pb.STATUS_SUCCESS] * 70 + [pb.STATUS_ERROR] * 3 + [pb.STATUS_SUCCESS] * 40
    ops = [op(i, status, plan="nightly" if i % 3 else "hourly", start=NOW - 10**6 + i * 1000)
           for i, status in enumerate(statuses, start=1)]
    one_by_one, batched = FleetState(), FleetState()
    for item in ops:
        one_by_one.apply(item, NOW)
    changes = []
    for first in range(0, len(ops), 25):
        changes += batched.apply_all(ops[first:first + 25], NOW)
    assert batched.snapshot(NOW).plans == one_by_one.snapshot(NOW).plans
    assert batched.snapshot(NOW).failures == one_by_one.snapshot(NOW).failures
    nightly = [(c.op_id, c.status) for c in changes if c.plan == "nightly"]
    # Condensed: every change of status is there, in order, and each batch's last one.
    statuses_seen = [s for _, s in nightly]
    assert pb.STATUS_ERROR in statuses_seen
    first_error = statuses_seen.index(pb.STATUS_ERROR)
    assert pb.STATUS_SUCCESS in statuses_seen[first_error:]
    assert len(changes) < len(ops) / 3
    # A later update of a kept run is reported one at a time, with its previous status.
    update = op(ops[-1].id, pb.STATUS_ERROR, plan=ops[-1].plan_id,
                start=ops[-1].unix_time_start_ms)
    [change] = batched.apply_all([update], NOW)
    assert (change.status, change.previous) == (pb.STATUS_ERROR, pb.STATUS_SUCCESS)
