"""An operation's payload as people read it: its kind and a one-line summary.

The payloads are backrest's (``operation_backup`` ... ``operation_check``, numbered as
in backrest's schema) and synchub's ``operation_run_command``; docs/protocol.md
§4.1 (Operations) lists their fields. ``summary`` is what ``synchub ops`` shows for
an operation, and what any other listing (a web page) may show: one line, no
control characters, at most ``limit`` characters. Pure: no I/O.

    >>> op = pb.Operation(status=pb.STATUS_SUCCESS)
    >>> done = op.operation_backup.last_status.summary
    >>> done.data_added, done.files_new, done.snapshot_id = 1288490189, 345, "1a2b3c4d" * 8
    >>> summary(op)
    'backup: 1.2 GiB added, 345 new files, snapshot 1a2b3c4d'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from hub.pb import synchub_pb2 as pb
from hub.text import printable

__all__ = ["SUMMARY_LIMIT", "human_bytes", "kind", "summary"]

SUMMARY_LIMIT = 100

_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def human_bytes(count: int) -> str:
    """``count`` bytes in binary units, one decimal: ``512 B``, ``1.2 GiB``."""
    if abs(count) < 1024:
        return f"{count} B"
    value = float(count)
    for unit in _UNITS:
        value /= 1024
        if abs(value) < 1024 or unit == _UNITS[-1]:
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


def kind(op: pb.Operation) -> str:
    """The payload's kind (``backup``, ``forget``, ``run_command``...), or "" without one."""
    member = op.WhichOneof("op")
    return member.removeprefix("operation_") if member else ""


def summary(op: pb.Operation, limit: int = SUMMARY_LIMIT) -> str:
    """One line for people: the payload's facts, or the display message.

    A failed operation shows its display message (it says why: ``[exit 3]``); so
    does one whose payload holds nothing worth a line.
    """
    described = ""
    member = op.WhichOneof("op")
    if op.status != pb.STATUS_ERROR and member is not None:
        describe = _DESCRIBERS.get(member)
        described = describe(getattr(op, member)) if describe is not None else ""
    if op.status == pb.STATUS_WARNING and described:
        described += " (warnings)"
    return printable(described or op.display_message, limit)


def _short(snapshot_id: str) -> str:
    return snapshot_id[:8]


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _backup(payload: pb.OperationBackup) -> str:
    entry = payload.last_status
    errors = f", {_plural(len(payload.errors), 'error')}" if payload.errors else ""
    if entry.HasField("summary"):
        done = entry.summary
        parts = [f"{human_bytes(done.data_added)} added", f"{done.files_new} new files"]
        if done.files_changed:
            parts.append(f"{done.files_changed} changed")
        if done.snapshot_id:
            parts.append(f"snapshot {_short(done.snapshot_id)}")
        return "backup: " + ", ".join(parts) + errors
    if entry.HasField("status"):
        status = entry.status
        return (
            f"backup: {status.percent_done * 100:.0f}% of {human_bytes(status.total_bytes)}, "
            f"{status.files_done} of {status.total_files} files" + errors
        )
    return f"backup: no summary{errors}" if errors else ""


def _index_snapshot(payload: pb.OperationIndexSnapshot) -> str:
    snapshot = payload.snapshot
    if not snapshot.id:
        return ""
    where = f" of {snapshot.hostname}:{','.join(snapshot.paths)}" if snapshot.hostname else ""
    forgot = " (forgotten)" if payload.forgot else ""
    return f"snapshot {_short(snapshot.id)}{where}{forgot}"


def _policy(policy: pb.RetentionPolicy) -> str:
    chosen = policy.WhichOneof("policy")
    if chosen == "policy_keep_last_n":
        return f"keep last {policy.policy_keep_last_n}"
    if chosen == "policy_keep_all":
        return "keep all"
    if chosen == "policy_time_bucketed":
        counts = policy.policy_time_bucketed
        named = [
            f"{getattr(counts, name)} {name}"
            for name in ("hourly", "daily", "weekly", "monthly", "yearly")
            if getattr(counts, name)
        ]
        if counts.keep_last_n:
            named.insert(0, f"last {counts.keep_last_n}")
        return "keep " + ", ".join(named) if named else ""
    return ""


def _forget(payload: pb.OperationForget) -> str:
    removed = len(payload.forget)
    text = f"forget: {_plural(removed, 'snapshot')} removed"
    if removed:
        text += " (" + ", ".join(_short(s.id) for s in payload.forget[:3])
        text += ", ...)" if removed > 3 else ")"
    policy = _policy(payload.policy) if payload.HasField("policy") else ""
    return f"{text}; {policy}" if policy else text


def _output_line(word: str, output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return f"{word}: {lines[-1]}" if lines else word


def _prune(payload: pb.OperationPrune) -> str:
    return _output_line("prune", payload.output)


def _check(payload: pb.OperationCheck) -> str:
    return _output_line("check", payload.output)


def _restore(payload: pb.OperationRestore) -> str:
    status = payload.last_status
    target = f" to {payload.target}" if payload.target else ""
    return (
        f"restore: {human_bytes(status.bytes_restored)} of {human_bytes(status.total_bytes)}, "
        f"{status.files_restored} files{target}"
    )


def _stats(payload: pb.OperationStats) -> str:
    stats = payload.stats
    return (
        f"stats: {human_bytes(stats.total_size)} stored, "
        f"{_plural(stats.snapshot_count, 'snapshot')}"
    )


def _run_hook(payload: pb.OperationRunHook) -> str:
    condition = pb.HookCondition.Name(payload.condition) if (
        payload.condition in pb.HookCondition.values()
    ) else str(payload.condition)
    return f"hook {payload.name or '?'} on {condition.removeprefix('CONDITION_').lower()}"


def _run_command(payload: pb.OperationRunCommand) -> str:
    return ""  # the display message is the command line (or the -m message): clearer


_DESCRIBERS: Mapping[str, Callable[[Any], str]] = {
    "operation_backup": _backup,
    "operation_index_snapshot": _index_snapshot,
    "operation_forget": _forget,
    "operation_prune": _prune,
    "operation_restore": _restore,
    "operation_stats": _stats,
    "operation_run_hook": _run_hook,
    "operation_check": _check,
    "operation_run_command": _run_command,
}
