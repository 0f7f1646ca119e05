"""FleetState: the per-(instance, plan) run history, kept up to date one operation at a time.

Built once from the store (bounded, indexed lookups: the last ``HISTORY`` runs and the
last success of each plan, the failures of the last day), then changed only by the
operations that arrive. A snapshot rebuilds only the plans that changed since the
last one, so showing the fleet never scans the oplog.

Bounds: at most ``MAX_PLANS_PER_INSTANCE`` plans per instance and ``MAX_PLANS`` in
all, ``MAX_FAILURES`` recent failures; operations past a bound are counted in
``untracked`` and not shown. Not thread-safe: one owner (the FleetActor).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from typing import Final

from hub.fleet._model import (
    HISTORY,
    Failure,
    FleetSnapshot,
    PlanSummary,
    Run,
    RunChange,
    instance_of,
)
from hub.pb import synchub_pb2 as pb
from hub.store import OperationQuery, OplogReader

MAX_PLANS: Final = 20_000
MAX_PLANS_PER_INSTANCE: Final = 256
MAX_FAILURES: Final = 1_000
FAILURE_WINDOW_MS: Final = 24 * 3600 * 1000
MESSAGE_CHARS: Final = 300

Key = tuple[str, str]


def _run(op: pb.Operation) -> Run:
    return Run(
        op.id, op.status, op.unix_time_start_ms, op.unix_time_end_ms,
        op.display_message[:MESSAGE_CHARS],
    )


def _order(run: Run) -> tuple[int, int]:
    return run.start_ms, run.op_id


class _PlanRuns:
    """One plan's retained runs, ordered by (start, id), oldest first."""

    def __init__(self, instance: str, plan: str) -> None:
        self.instance = instance
        self.plan = plan
        self.repo_id = ""
        self.repo_guid = ""
        self.runs: list[Run] = []
        self.last_success_ms = 0
        self.first_seen_ms = 0

    def find(self, op_id: int) -> Run | None:
        return next((run for run in self.runs if run.op_id == op_id), None)

    def has(self, op_id: int) -> bool:
        return any(run.op_id == op_id for run in self.runs)

    def remove(self, op_id: int) -> bool:
        before = len(self.runs)
        self.runs = [run for run in self.runs if run.op_id != op_id]
        return len(self.runs) != before

    def put(self, op: pb.Operation) -> list[int]:
        """Insert or replace the operation's run; returns the op ids evicted."""
        run = _run(op)
        self.remove(op.id)
        if op.repo_guid or op.repo_id:
            self.repo_id, self.repo_guid = op.repo_id, op.repo_guid
        if run.start_ms > 0 and (self.first_seen_ms == 0 or run.start_ms < self.first_seen_ms):
            self.first_seen_ms = run.start_ms
        if run.status == pb.STATUS_SUCCESS:
            self.last_success_ms = max(self.last_success_ms, run.finished_ms)
        if len(self.runs) >= HISTORY and _order(run) < _order(self.runs[0]):
            return []  # older than everything kept: counts for last success only
        if not self.runs or _order(run) > _order(self.runs[-1]):
            self.runs.append(run)
        else:
            bisect.insort(self.runs, run, key=_order)
        evicted = self.runs[: max(0, len(self.runs) - HISTORY)]
        del self.runs[: len(evicted)]
        return [old.op_id for old in evicted]

    def summary(self) -> PlanSummary:
        return PlanSummary(
            self.instance, self.plan, self.repo_id, self.repo_guid, tuple(self.runs),
            self.last_success_ms, self.first_seen_ms,
        )


class FleetState:
    """The fleet's plans and recent failures; ``apply`` and ``remove`` change it."""

    def __init__(self) -> None:
        self._plans: dict[Key, _PlanRuns] = {}
        self._plans_of: dict[str, int] = {}
        self._where: dict[int, Key] = {}
        self._failures: dict[int, Failure] = {}
        self._summaries: dict[Key, PlanSummary] = {}
        self._dirty: set[Key] = set()
        self._version = 0
        self._untracked = 0
        self._snapshot: FleetSnapshot | None = None

    @property
    def version(self) -> int:
        return self._version

    # -- building from the store -----------------------------------------------------

    def load(self, reader: OplogReader, now_ms: int) -> None:
        """Fill an empty state from the store: bounded lookups, never a scan of the oplog."""
        for instance, plan in reader.plan_keys():
            if not self._admit((instance, plan)):
                continue
            runs = reader.latest_runs(instance, plan, HISTORY)
            for op in reversed(runs):
                self.apply(op, now_ms)
            success = reader.latest_with_status(instance, plan, pb.STATUS_SUCCESS)
            if success is not None:
                self.apply(success, now_ms)
        recent = OperationQuery(
            status=pb.STATUS_ERROR, since_ms=now_ms - FAILURE_WINDOW_MS, limit=MAX_FAILURES
        )
        for op in reader.find(recent):
            self._note_failure(op, now_ms)

    # -- changes ---------------------------------------------------------------------

    def apply_all(self, ops: Sequence[pb.Operation], now_ms: int) -> list[RunChange]:
        """Take in a batch: operations new to the fleet in bulk, per plan, and the rest
        one at a time. The changes of new operations are condensed per plan: the first
        of each run of one status, the latest success and the last operation (what
        alerts need); a plan's history gets only the newest ``HISTORY`` of them."""
        changes: list[RunChange] = []
        groups: dict[Key, list[pb.Operation]] = {}
        where = self._where
        for op in ops:
            if op.id in where:
                change = self.apply(op, now_ms)
                if change is not None:
                    changes.append(change)
                continue
            key = (instance_of(op), op.plan_id)
            group = groups.get(key)
            if group is None:
                groups[key] = [op]
            else:
                group.append(op)
        for key, group in groups.items():
            changes.extend(self._take_new(key, group, now_ms))
        return changes

    def _take_new(self, key: Key, group: list[pb.Operation], now_ms: int) -> list[RunChange]:
        if not self._admit(key):
            self._untracked += len(group)
            return []
        plans = self._plans[key]
        shown: dict[int, pb.Operation] = {}
        last_status = plans.runs[-1].status if plans.runs else None
        best: pb.Operation | None = None
        best_finished = first = 0
        previous_start, ordered = -1, True
        for op in group:
            status, start = op.status, op.unix_time_start_ms
            if start < previous_start:
                ordered = False
            previous_start = start
            if start > 0 and (first == 0 or start < first):
                first = start
            if status != last_status:
                shown[op.id] = op
                last_status = status
            if status == pb.STATUS_SUCCESS:
                finished = op.unix_time_end_ms or start
                if best is None or finished > best_finished:
                    best, best_finished = op, finished
            elif status == pb.STATUS_ERROR:
                self._note_failure(op, now_ms)
        if best is not None:
            plans.last_success_ms = max(plans.last_success_ms, best_finished)
            shown[best.id] = best
        if first and (plans.first_seen_ms == 0 or first < plans.first_seen_ms):
            plans.first_seen_ms = first
        newest = group if ordered else sorted(group, key=lambda o: (o.unix_time_start_ms, o.id))
        self._merge(plans, key, newest[-HISTORY:], best)
        last = group[-1]
        if last.repo_guid or last.repo_id:
            plans.repo_id, plans.repo_guid = last.repo_id, last.repo_guid
        self._changed(key)
        shown[last.id] = last
        return [self._change(op, None, key) for op in shown.values()]

    def _merge(
        self, plans: _PlanRuns, key: Key, newest: list[pb.Operation], best: pb.Operation | None
    ) -> None:
        """Put a batch's newest runs (and its best success) into a plan's history at once."""
        runs = {op.id: _run(op) for op in newest}
        if best is not None:
            runs.setdefault(best.id, _run(best))
        merged = [run for run in plans.runs if run.op_id not in runs]
        merged.extend(runs.values())
        merged.sort(key=_order)
        for evicted in merged[:-HISTORY]:
            self._where.pop(evicted.op_id, None)
        plans.runs = merged[-HISTORY:]
        for run in plans.runs:
            if run.op_id in runs:
                self._where[run.op_id] = key

    def _change(self, op: pb.Operation, previous: int | None, key: Key) -> RunChange:
        return RunChange(
            op.id, key[0], key[1], op.repo_id, op.repo_guid, op.status, previous,
            op.unix_time_start_ms, op.unix_time_end_ms, op.display_message[:MESSAGE_CHARS],
        )

    def apply(self, op: pb.Operation, now_ms: int) -> RunChange | None:
        """Take in a new or changed operation; the change when it is new or changed status."""
        key = (instance_of(op), op.plan_id)
        previous = self._previous_status(op.id)
        old_key = self._where.get(op.id)
        if old_key is not None and old_key != key:
            self._forget_run(op.id)
        if not self._admit(key):
            self._untracked += 1
            return None
        plans = self._plans[key]
        for evicted in plans.put(op):
            self._where.pop(evicted, None)
        if plans.has(op.id):
            self._where[op.id] = key
        self._note_failure(op, now_ms)
        self._changed(key)
        if previous == op.status:
            return None
        return self._change(op, previous, key)

    def remove(self, op_id: int) -> None:
        """An operation was deleted."""
        if self._failures.pop(op_id, None) is not None:
            self._changed(None)
        self._forget_run(op_id)

    def _previous_status(self, op_id: int) -> int | None:
        key = self._where.get(op_id)
        run = self._plans[key].find(op_id) if key is not None else None
        return run.status if run is not None else None

    def _forget_run(self, op_id: int) -> None:
        key = self._where.pop(op_id, None)
        if key is None:
            return
        plans = self._plans[key]
        plans.remove(op_id)
        if not plans.runs and plans.last_success_ms == 0:
            del self._plans[key]
            self._plans_of[key[0]] -= 1
            self._summaries.pop(key, None)
            self._dirty.discard(key)
            self._changed(None)
        else:
            self._changed(key)

    def _admit(self, key: Key) -> bool:
        if key in self._plans:
            return True
        instance = key[0]
        if len(self._plans) >= MAX_PLANS or self._plans_of.get(instance, 0) >= (
            MAX_PLANS_PER_INSTANCE
        ):
            return False
        self._plans[key] = _PlanRuns(*key)
        self._plans_of[instance] = self._plans_of.get(instance, 0) + 1
        return True

    def _note_failure(self, op: pb.Operation, now_ms: int) -> None:
        if op.status != pb.STATUS_ERROR:
            if self._failures.pop(op.id, None) is not None:
                self._changed(None)
            return
        if op.unix_time_start_ms < now_ms - FAILURE_WINDOW_MS:
            return
        self._failures[op.id] = Failure(
            op.id, instance_of(op), op.plan_id, op.repo_id, op.unix_time_start_ms,
            op.display_message[:MESSAGE_CHARS],
        )
        if len(self._failures) > MAX_FAILURES:
            oldest = min(self._failures.values(), key=lambda f: (f.start_ms, f.op_id))
            del self._failures[oldest.op_id]
        self._changed(None)

    def _changed(self, key: Key | None) -> None:
        if key is not None:
            self._dirty.add(key)
        self._version += 1
        self._snapshot = None

    # -- reading ---------------------------------------------------------------------

    def snapshot(self, now_ms: int) -> FleetSnapshot:
        """Every plan and the failures of the last day; rebuilt only where something changed."""
        cutoff = now_ms - FAILURE_WINDOW_MS
        expired = [f.op_id for f in self._failures.values() if f.start_ms < cutoff]
        for op_id in expired:
            del self._failures[op_id]
        if expired:
            self._changed(None)
        if self._snapshot is None:
            for key in self._dirty:
                if key in self._plans:
                    self._summaries[key] = self._plans[key].summary()
            self._dirty.clear()
            failures = sorted(
                self._failures.values(), key=lambda f: (f.start_ms, f.op_id), reverse=True
            )
            self._snapshot = FleetSnapshot(
                self._version,
                tuple(self._summaries[key] for key in sorted(self._summaries)),
                tuple(failures),
                self._untracked,
            )
        return self._snapshot

    def plan(self, instance: str, plan: str) -> PlanSummary | None:
        plans = self._plans.get((instance, plan))
        return plans.summary() if plans is not None else None

    def plans(self) -> Iterable[PlanSummary]:
        return (plans.summary() for plans in self._plans.values())
