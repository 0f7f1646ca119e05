"""restic commands wrapped by `synchub run`: which ones, and what restic reported.

``detect`` tells a restic command from its command line (``restic backup ...``,
``restic-0.17.3 --repo r forget ...``; with ``force`` the program may have any
name). ``ResticReport`` reads what the command prints while it runs (it is fed
the same chunks the terminal gets, and keeps only what it needs, bounded) and
records it in backrest's payload shapes (docs/protocol.md §4.1 (Operations)):

- ``backup``: ``operation_backup`` with restic's summary (snapshot id, files and
  dirs new / changed / unmodified, data added, bytes processed, duration) as its
  ``last_status``, the files restic could not read as ``errors``, and the
  operation's ``snapshot_id``. With ``--json`` from restic's JSON messages; without,
  from its closing text lines (sizes there are rounded by restic). Exit status 3
  (a snapshot was saved, some files could not be read) is a warning.
- ``forget``: ``operation_forget`` with the snapshots removed (``--json``: restic's
  full records; text: their short ids) and the ``--keep-*`` policy applied.
- ``check`` and ``prune``: ``operation_check`` / ``operation_prune`` with the outcome
  (restic's last line) as ``output`` and the log as ``output_logref``.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hub.pb import synchub_pb2 as pb

__all__ = ["MAX_ERRORS", "MAX_LINE_BYTES", "RESTIC_COMMANDS", "ResticCommand",
           "ResticReport", "detect"]

RESTIC_COMMANDS = ("backup", "forget", "check", "prune")
MAX_LINE_BYTES = 8 * 1024 * 1024
"""Longer lines of restic's output are not parsed (a forget of very many snapshots)."""
MAX_ERRORS = 100
"""A backup's unreadable files kept in its payload; restic's log has them all."""
MAX_OUTCOME_CHARS = 500
EXIT_WARNING = 3
"""restic backup: the snapshot was saved, but some source files could not be read."""

_PROGRAM = re.compile(r"restic(?:[-_.][\w.+-]*)?")
# restic's global options that take a value (as a separate argument, or after "=").
_VALUE_OPTIONS = frozenset({
    "-r", "--repo", "--repository-file", "-p", "--password-file", "--password-command",
    "--cacert", "--tls-client-cert", "--cache-dir", "--key-hint", "--limit-download",
    "--limit-upload", "-o", "--option", "--pack-size", "--compression", "--retry-lock",
    "--stuck-request-timeout", "--http-user-agent",
})


@dataclass(frozen=True, slots=True)
class ResticCommand:
    """A restic command line: its subcommand, whether restic prints JSON, its arguments."""

    subcommand: str
    json: bool
    args: tuple[str, ...]


def detect(argv: Sequence[str], *, force: bool = False) -> ResticCommand | None:
    """The restic command ``argv`` runs, or None when it is not one synchub records.

    Without ``force`` the program must be restic (``restic``, ``restic-0.17.3``...)
    and its first argument that is not a global option one of RESTIC_COMMANDS; with
    ``force`` any program, and the first argument that names one of them.
    """
    if not argv:
        return None
    args = list(argv[1:])
    has_json = "--json" in args
    if force:
        index = next((i for i, a in enumerate(args) if a in RESTIC_COMMANDS), None)
    else:
        if not _PROGRAM.fullmatch(os.path.basename(argv[0])):
            return None
        index = _first_positional(args)
        if index is not None and args[index] not in RESTIC_COMMANDS:
            index = None
    if index is None:
        return None
    return ResticCommand(args[index], has_json, tuple(args[index + 1 :]))


def _first_positional(args: Sequence[str]) -> int | None:
    skip = False
    for index, arg in enumerate(args):
        if skip:
            skip = False
        elif arg == "--":
            return index + 1 if index + 1 < len(args) else None
        elif arg.startswith("-"):
            skip = arg in _VALUE_OPTIONS
        else:
            return index
    return None


class _Lines:
    """Splits one stream's chunks into lines, dropping lines over MAX_LINE_BYTES."""

    def __init__(self, take: Callable[[bytes], None]) -> None:
        self._take = take
        self._partial = bytearray()
        self._overlong = False

    def feed(self, chunk: bytes) -> None:
        *complete, rest = chunk.split(b"\n")
        for piece in complete:
            if not self._overlong and len(self._partial) + len(piece) <= MAX_LINE_BYTES:
                self._take(bytes(self._partial + piece))
            self._partial.clear()
            self._overlong = False
        if len(self._partial) + len(rest) > MAX_LINE_BYTES:
            self._overlong = True
            self._partial.clear()
        elif not self._overlong:
            self._partial += rest

    def close(self) -> None:
        if self._partial and not self._overlong:
            self._take(bytes(self._partial))
        self._partial.clear()


class ResticReport:
    """What one restic command printed, kept as needed to record it. One thread only."""

    def __init__(self, command: ResticCommand) -> None:
        self.command = command
        self._stdout = _Lines(self._line)
        self._stderr = _Lines(self._error_line)
        self._summary: dict[str, Any] | None = None
        self._status: dict[str, Any] | None = None
        self._errors: list[pb.BackupProgressError] = []
        self._forget_groups: list[Any] | None = None
        self._text: dict[str, str] = {}
        self._removed_short_ids: list[str] = []
        self._in_remove_list = False
        self._last_out = ""
        self._last_err = ""

    # -- what the command prints ------------------------------------------------------

    def stdout(self, chunk: bytes) -> None:
        self._stdout.feed(chunk)

    def stderr(self, chunk: bytes) -> None:
        self._stderr.feed(chunk)

    def _line(self, raw: bytes) -> None:
        line = raw.decode("utf-8", errors="replace").rstrip("\r")
        if line.strip():
            self._last_out = line.strip()
        parsed = _json(line) if self.command.json else None
        if isinstance(parsed, dict):
            self._message(parsed)
        elif isinstance(parsed, list) and self.command.subcommand == "forget":
            self._forget_groups = parsed
        elif parsed is None:
            self._text_line(line)

    def _error_line(self, raw: bytes) -> None:
        line = raw.decode("utf-8", errors="replace").strip()
        if line:
            self._last_err = line

    def _message(self, message: dict[str, Any]) -> None:
        kind = message.get("message_type")
        if kind == "summary":
            self._summary = message
        elif kind == "status":
            self._status = message
        elif kind == "error" and len(self._errors) < MAX_ERRORS:
            self._errors.append(pb.BackupProgressError(
                item=str(message.get("item") or ""), during=str(message.get("during") or ""),
                message=_error_text(message.get("error")),
            ))

    def _text_line(self, line: str) -> None:
        if self.command.subcommand == "forget":
            self._forget_text(line)
            return
        for key, pattern in _TEXT_PATTERNS.items():
            match = pattern.search(line)
            if match:
                self._text[key] = match.group(1) if pattern.groups else line

    def _forget_text(self, line: str) -> None:
        if re.match(r"remove \d+ snapshots?:", line):
            self._in_remove_list = True
        elif self._in_remove_list:
            match = re.match(r"([0-9a-f]{8})\s", line)
            if match:
                self._removed_short_ids.append(match.group(1))
            elif re.match(r"keep \d+ snapshots?:", line) or line.startswith(("Applying", "{")):
                self._in_remove_list = False

    # -- recording ----------------------------------------------------------------------

    def start(self, op: pb.Operation, logref: str) -> None:
        """Give a new operation its (empty) payload, so the hub sees its kind while it runs."""
        _PAYLOAD_START[self.command.subcommand](op, logref)

    def finish(self, op: pb.Operation, exit_code: int) -> pb.OperationStatus:
        """Record what restic reported in ``op``; the operation's status for ``exit_code``."""
        self._stdout.close()
        self._stderr.close()
        return _FINISH[self.command.subcommand](self, op, exit_code)

    def _finish_backup(self, op: pb.Operation, exit_code: int) -> pb.OperationStatus:
        backup = op.operation_backup
        summary = self._json_summary() if self._summary is not None else self._text_summary()
        if summary is not None:
            backup.last_status.summary.CopyFrom(summary)
            op.snapshot_id = summary.snapshot_id
        elif self._status is not None:
            backup.last_status.status.CopyFrom(_status_entry(self._status))
        del backup.errors[:]
        backup.errors.extend(self._errors)
        if exit_code == 0:
            return pb.STATUS_SUCCESS
        saved = summary is not None and summary.snapshot_id
        return pb.STATUS_WARNING if exit_code == EXIT_WARNING and saved else pb.STATUS_ERROR

    def _finish_forget(self, op: pb.Operation, exit_code: int) -> pb.OperationStatus:
        forget = op.operation_forget
        del forget.forget[:]
        if self._forget_groups is not None:
            for group in self._forget_groups:
                removed = group.get("remove") if isinstance(group, dict) else None
                for record in removed or ():
                    if isinstance(record, dict):
                        forget.forget.append(_snapshot(record))
        else:
            forget.forget.extend(pb.ResticSnapshot(id=s) for s in self._removed_short_ids)
        policy = retention_policy(self.command.args)
        if policy is not None:
            forget.policy.CopyFrom(policy)
        return pb.STATUS_SUCCESS if exit_code == 0 else pb.STATUS_ERROR

    def _finish_outcome(self, op: pb.Operation, exit_code: int) -> pb.OperationStatus:
        payload = getattr(op, _MEMBERS[self.command.subcommand])
        if exit_code != 0:
            outcome = self._last_err or self._last_out
        else:
            outcome = self._text.get("pruned") or self._last_out
        payload.output = " ".join(outcome.split())[:MAX_OUTCOME_CHARS]
        return pb.STATUS_SUCCESS if exit_code == 0 else pb.STATUS_ERROR

    def _json_summary(self) -> pb.BackupProgressSummary:
        assert self._summary is not None
        return _summary(self._summary)

    def _text_summary(self) -> pb.BackupProgressSummary | None:
        text = self._text
        if "snapshot" not in text:
            return None
        summary = pb.BackupProgressSummary(snapshot_id=text["snapshot"])
        for key, prefix in (("files", "files"), ("dirs", "dirs")):
            counts = re.findall(r"(\d+) (new|changed|unmodified)", text.get(key, ""))
            for count, which in counts:
                setattr(summary, f"{prefix}_{which}", int(count))
        if "added" in text:
            summary.data_added = _parse_size(text["added"])
        processed = _PROCESSED.search(text.get("processed", ""))
        if processed:
            summary.total_files_processed = int(processed.group(1))
            summary.total_bytes_processed = _parse_size(processed.group(2))
            summary.total_duration = _parse_duration(processed.group(3))
        return summary


_MEMBERS: Mapping[str, str] = {
    "backup": "operation_backup", "forget": "operation_forget",
    "check": "operation_check", "prune": "operation_prune",
}


def _start_backup(op: pb.Operation, _logref: str) -> None:
    op.operation_backup.SetInParent()


def _start_forget(op: pb.Operation, _logref: str) -> None:
    op.operation_forget.SetInParent()


def _start_check(op: pb.Operation, logref: str) -> None:
    op.operation_check.output_logref = logref


def _start_prune(op: pb.Operation, logref: str) -> None:
    op.operation_prune.output_logref = logref


_PAYLOAD_START: Mapping[str, Callable[[pb.Operation, str], None]] = {
    "backup": _start_backup, "forget": _start_forget,
    "check": _start_check, "prune": _start_prune,
}
_FINISH: Mapping[str, Callable[[ResticReport, pb.Operation, int], pb.OperationStatus]] = {
    "backup": ResticReport._finish_backup, "forget": ResticReport._finish_forget,
    "check": ResticReport._finish_outcome, "prune": ResticReport._finish_outcome,
}

_SIZE = r"([\d.]+\s*(?:B|KiB|MiB|GiB|TiB|PiB))"
_TEXT_PATTERNS: Mapping[str, re.Pattern[str]] = {
    "snapshot": re.compile(r"snapshot ([0-9a-f]{8,64}) saved"),
    "files": re.compile(r"^Files:\s"),
    "dirs": re.compile(r"^Dirs:\s"),
    "added": re.compile(r"^Added to the repo(?:sitory)?:\s*" + _SIZE),
    "processed": re.compile(r"^processed \d+ files"),
    "pruned": re.compile(r"^total prune:\s"),
}
_PROCESSED = re.compile(r"processed (\d+) files, " + _SIZE + r" in ([\d:]+)")
_UNITS = {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40, "PiB": 2**50}


def _parse_size(text: str) -> int:
    """restic's rounded size (``1.021 KiB``) in bytes."""
    match = re.fullmatch(r"([\d.]+)\s*([A-Za-z]+)", text.strip())
    if match is None or match.group(2) not in _UNITS:
        return 0
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def _parse_duration(text: str) -> float:
    seconds = 0.0
    for part in text.split(":"):
        seconds = seconds * 60 + float(part or 0)
    return seconds


def _json(line: str) -> Any:
    stripped = line.strip()
    if not stripped or stripped[0] not in "[{":
        return None
    try:
        return json.loads(stripped)
    except ValueError:
        return None


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    if isinstance(value, float) and not math.isfinite(value):
        return 0
    return int(value)


def _float(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


_SUMMARY_COUNTS = (
    "files_new", "files_changed", "files_unmodified", "dirs_new", "dirs_changed",
    "dirs_unmodified", "data_blobs", "tree_blobs", "data_added", "total_files_processed",
    "total_bytes_processed",
)


def _summary(message: Mapping[str, Any]) -> pb.BackupProgressSummary:
    summary = pb.BackupProgressSummary(
        total_duration=_float(message.get("total_duration")),
        snapshot_id=str(message.get("snapshot_id") or ""),
    )
    for name in _SUMMARY_COUNTS:
        setattr(summary, name, _int(message.get(name)))
    return summary


def _status_entry(message: Mapping[str, Any]) -> pb.BackupProgressStatusEntry:
    current = message.get("current_files") or []
    return pb.BackupProgressStatusEntry(
        percent_done=_float(message.get("percent_done")),
        total_files=_int(message.get("total_files")), total_bytes=_int(message.get("total_bytes")),
        files_done=_int(message.get("files_done")), bytes_done=_int(message.get("bytes_done")),
        current_file=[str(f) for f in current] if isinstance(current, list) else [],
    )


def _error_text(error: Any) -> str:
    """restic's JSON error: a string, ``{"message": ...}`` (0.17), or an object it could
    not render (older releases print ``{}``)."""
    if isinstance(error, str):
        return error
    if isinstance(error, dict):
        for key in ("message", "Err", "Op"):
            if isinstance(error.get(key), str) and error[key]:
                return str(error[key])
        return json.dumps(error, sort_keys=True) if error else "(restic gave no message)"
    return "" if error is None else str(error)


def _snapshot(record: Mapping[str, Any]) -> pb.ResticSnapshot:
    snapshot = pb.ResticSnapshot(
        id=str(record.get("id") or record.get("short_id") or ""),
        hostname=str(record.get("hostname") or ""), username=str(record.get("username") or ""),
        tree=str(record.get("tree") or ""), parent=str(record.get("parent") or ""),
        paths=[str(p) for p in record.get("paths") or []],
        tags=[str(t) for t in record.get("tags") or []],
        unix_time_ms=_time_ms(record.get("time")),
    )
    if isinstance(record.get("summary"), dict):
        summary = _summary(record["summary"])
        snapshot.summary.CopyFrom(pb.SnapshotSummary(
            **{name: getattr(summary, name) for name in _SUMMARY_COUNTS},
            total_duration=summary.total_duration,
        ))
    return snapshot


def _time_ms(text: Any) -> int:
    """restic's RFC 3339 time (nanoseconds and all) as ms since the epoch; 0 if unreadable."""
    if not isinstance(text, str):
        return 0
    match = re.fullmatch(r"(.+?T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", text.strip())
    if match is None:
        return 0
    whole, fraction, zone = match.groups()
    try:
        moment = dt.datetime.fromisoformat(whole + ("+00:00" if zone == "Z" else zone))
    except ValueError:
        return 0
    millis = int((fraction or "0")[:3].ljust(3, "0"))
    return int(moment.timestamp()) * 1000 + millis


_KEEP_OPTIONS: Mapping[str, str] = {
    "--keep-last": "keep_last_n", "-l": "keep_last_n",
    "--keep-hourly": "hourly", "-H": "hourly", "--keep-daily": "daily", "-d": "daily",
    "--keep-weekly": "weekly", "-w": "weekly", "--keep-monthly": "monthly", "-m": "monthly",
    "--keep-yearly": "yearly", "-y": "yearly",
}


def retention_policy(args: Sequence[str]) -> pb.RetentionPolicy | None:
    """The ``--keep-*`` counts of a forget command line as backrest's RetentionPolicy."""
    counts: dict[str, int] = {}
    for index, arg in enumerate(args):
        name, _, inline = arg.partition("=")
        field = _KEEP_OPTIONS.get(name)
        if field is None:
            continue
        value = inline if inline else (args[index + 1] if index + 1 < len(args) else "")
        if value.isdigit():
            counts[field] = int(value)
    if not counts:
        return None
    if set(counts) == {"keep_last_n"}:
        return pb.RetentionPolicy(policy_keep_last_n=counts["keep_last_n"])
    return pb.RetentionPolicy(
        policy_time_bucketed=pb.RetentionPolicy.TimeBucketedCounts(**counts)
    )
