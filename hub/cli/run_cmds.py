"""`synchub run -- CMD ARGS...`: run a command and record it as one operation.

The operation is written to this node's oplog as INPROGRESS before the command
starts and updated to SUCCESS or ERROR when it ends, with the end time, the
command line, the exit code and a log reference; a failed job also keeps the
last ``[run] error_output_bytes`` of its output in ``error_output``, so a hub
knows why it failed without reaching the client. A running client agent
delivers both changes to its hubs; with none running they wait in the oplog.

A restic command (``restic backup``, ``forget``, ``check``, ``prune``; detected from
the command line, ``--restic`` to force it) is recorded in backrest's payload
shapes instead of ``operation_run_command``, from what restic prints
(``hub.restic``): a backup's summary and snapshot id, the snapshots a forget
removed, the outcome of a check or a prune.

Exit status: the command's own; 128+N when a signal N ended it (recorded as
exit_code -N); 127 when it could not be started (recorded as ERROR with the
reason). The command's output goes to the terminal as usual and into
``<data_dir>/logs/<op id>.log``, trimmed to its last LOG_TAIL_BYTES.
SIGTERM and SIGHUP sent to ``synchub run`` are passed on to the command;
Ctrl-C reaches the command directly, and ``synchub run`` records how it ended.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import shlex
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO

import click

from hub.cli.main import CliContext, cli
from hub.config import Config
from hub.errors import ConfigError, SynchubError
from hub.pb import synchub_pb2 as pb
from hub.restic import RESTIC_COMMANDS, ResticReport, detect
from hub.scopes import ID_PATTERN, ID_RULE
from hub.store import LOGS_DIRNAME, log_path, logref_for, new_operation, now_ms, open_oplog
from hub.text import closest_match

LOG_TAIL_BYTES = 64 * 1024
EXIT_CANNOT_START = 127
_READ_CHUNK = 65536
_FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Tail:
    """The last ``limit`` bytes of what a command printed (stdout and stderr as they came)."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._chunks: deque[bytes] = deque()
        self._size = 0

    def add(self, chunk: bytes) -> None:
        if self._limit <= 0:
            return
        self._chunks.append(chunk)
        self._size += len(chunk)
        while self._size - len(self._chunks[0]) >= self._limit:
            self._size -= len(self._chunks.popleft())

    def value(self) -> bytes:
        joined = b"".join(self._chunks)
        return joined[-self._limit :] if self._limit > 0 else b""


def error_text(tail: bytes, limit: int) -> str:
    """``tail`` as text of at most ``limit`` UTF-8 bytes, cut at a character boundary.

    Bytes that are not UTF-8 become U+FFFD; a character cut by the start of the
    tail is left out.
    """
    start = 0
    while start < len(tail) and start < 4 and 0x80 <= tail[start] <= 0xBF:
        start += 1
    text = tail[start:].decode("utf-8", errors="replace")
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text
    # Replacement characters take 3 bytes for 1: drop from the front until it fits.
    return encoded[len(encoded) - limit :].decode("utf-8", errors="ignore")


@dataclass(frozen=True)
class Outcome:
    """How a command ended: its recorded exit code, our exit status, and why."""

    exit_code: int
    exit_status: int
    output_bytes: int
    problem: str = ""
    tail: bytes = b""
    """The last bytes of its output (as many as ``[run] error_output_bytes``)."""

    @property
    def status(self) -> pb.OperationStatus:
        return pb.STATUS_SUCCESS if self.exit_code == 0 and not self.problem else pb.STATUS_ERROR

    def describe(self) -> str:
        if self.problem:
            return self.problem
        if self.exit_code < 0:
            number = -self.exit_code
            try:
                name = signal.Signals(number).name
            except ValueError:
                name = f"signal {number}"
            return f"killed by {name}"
        return f"exit {self.exit_code}"


def _open_log(data_dir: Path, op_id: int) -> IO[bytes]:
    directory = data_dir / LOGS_DIRNAME
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(log_path(data_dir, op_id), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    # Unbuffered: each chunk the command prints is in the file at once, for whoever
    # follows the log meanwhile (the chunks are up to 64 KiB, one write each).
    return os.fdopen(fd, "wb", buffering=0)


def keep_tail(path: Path, limit: int = LOG_TAIL_BYTES) -> None:
    """Cut the file down to its last ``limit`` bytes (atomically, by rename)."""
    size = path.stat().st_size
    if size <= limit:
        return
    with path.open("rb") as source:
        source.seek(size - limit)
        tail = source.read(limit)
    temp = path.with_name(f".{path.name}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as target:
        target.write(tail)
    os.replace(temp, path)


@contextlib.contextmanager
def _forwarding_signals(process: subprocess.Popen[bytes]) -> Iterator[None]:
    """Pass SIGTERM and SIGHUP on to the command while it runs (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def forward(signum: int, _frame: FrameType | None) -> None:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in _FORWARDED_SIGNALS}
    previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


Observer = Callable[[bytes], None]


def _pump(
    process: subprocess.Popen[bytes], log: IO[bytes], out: IO[bytes], err: IO[bytes],
    tail: Tail, *, observers: tuple[Observer | None, Observer | None] = (None, None),
) -> int:
    """Copy the command's stdout and stderr to ours, to the log and to ``tail`` until both
    close; each stream's chunks also go to its observer, if any."""
    assert process.stdout is not None and process.stderr is not None
    total = 0
    targets: dict[int, IO[bytes] | None] = {
        process.stdout.fileno(): out,
        process.stderr.fileno(): err,
    }
    watching = dict(zip(targets, observers, strict=True))
    with selectors.DefaultSelector() as selector:
        for fd in targets:
            selector.register(fd, selectors.EVENT_READ)
        while targets:
            for key, _ in selector.select():
                fd = int(key.fd)
                chunk = os.read(fd, _READ_CHUNK)
                if not chunk:
                    selector.unregister(fd)
                    del targets[fd]
                    continue
                total += len(chunk)
                log.write(chunk)
                tail.add(chunk)
                observer = watching[fd]
                if observer is not None:
                    observer(chunk)
                target = targets[fd]
                if target is not None:
                    try:
                        target.write(chunk)
                        target.flush()
                    except (BrokenPipeError, ValueError):
                        # Our own output went away; keep recording the command's.
                        targets[fd] = None
    return total


def run_command(
    argv: Sequence[str], log: IO[bytes], out: IO[bytes], err: IO[bytes],
    *, tail_bytes: int = 0, report: ResticReport | None = None,
) -> Outcome:
    try:
        process = subprocess.Popen(
            list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    except OSError as exc:
        reason = exc.strerror or str(exc)
        return Outcome(
            exit_code=EXIT_CANNOT_START,
            exit_status=EXIT_CANNOT_START,
            output_bytes=0,
            problem=f"cannot start {argv[0]!r}: {reason}",
        )
    tail = Tail(tail_bytes)
    observers = (report.stdout, report.stderr) if report is not None else (None, None)
    with process, _forwarding_signals(process):
        total = _pump(process, log, out, err, tail, observers=observers)
        code = process.wait()
    status = 128 - code if code < 0 else code
    return Outcome(exit_code=code, exit_status=status, output_bytes=total, tail=tail.value())


def _check_ids(config: Config, plan_id: str, repo: str) -> tuple[str, str]:
    """The plan id and repo id a job is recorded with; ConfigError for one not configured.

    ``repo`` is a ``[[repos]]`` id or guid, as ``--repo`` is on every command; ``--plan``
    alone fills in its plan's repo.
    """
    where = config.path or "<embedded defaults>"
    if not plan_id:
        return "", resolve_repo_id(config, repo) if repo else ""
    if not ID_PATTERN.fullmatch(plan_id):
        raise ConfigError(where, "plans", f"bad plan id {plan_id!r}: use {ID_RULE}")
    plan = config.plan(plan_id)
    if plan is None:
        raise ConfigError(where, "plans", _unknown("plan", plan_id, [p.id for p in config.plans]))
    plans_repo = config.repo(plan.repo)
    if repo and repo != plan.repo and (plans_repo is None or repo != plans_repo.guid):
        raise ConfigError(
            where, "plans", f"plan {plan_id!r} uses repo {plan.repo!r}, not {repo!r}"
        )
    return plan_id, plan.repo


def resolve_repo_id(config: Config, repo: str) -> str:
    """The id of the ``[[repos]]`` entry whose id or guid is ``repo``; ConfigError if none."""
    for entry in config.repos:
        if repo in (entry.id, entry.guid):
            return entry.id
    where = config.path or "<embedded defaults>"
    raise ConfigError(
        where, "repos", _unknown("repo with id or guid", repo, [r.id for r in config.repos])
    )


def _unknown(kind: str, name: str, known: list[str]) -> str:
    guess = closest_match(name, known)
    hint = f"did you mean {guess!r}? " if guess else ""
    listed = ", ".join(known) if known else "none configured"
    section = "[[plans]]" if kind == "plan" else "[[repos]]"
    return (
        f"no {kind} {name!r} ({hint}known: {listed}); nothing was run or recorded: "
        f"add a {section} entry or pick a known one"
    )


@dataclass(frozen=True)
class Job:
    """A recorded job: the operation as last written, how the command ended, and
    why its end could not be written (empty when it was)."""

    operation: pb.Operation
    outcome: Outcome
    record_error: str = ""


def record_job(
    config: Config,
    argv: Sequence[str],
    *,
    out: IO[bytes],
    err: IO[bytes],
    plan_id: str = "",
    repo_id: str = "",
    message: str = "",
    restic: bool = False,
) -> Job:
    """Record ``argv`` as an INPROGRESS operation, run it, and record how it ended.

    A restic command is recorded in backrest's payload shapes (``restic`` forces it).
    Raises before running anything when the ids are bad, ``restic`` is asked for a
    command that is not one, or the oplog cannot be written.
    """
    plan_id, repo_id = _check_ids(config, plan_id, repo_id)
    command = detect(argv, force=restic)
    if restic and command is None:
        raise ConfigError(
            "--restic", "", f"no restic command ({', '.join(RESTIC_COMMANDS)}) in "
            f"{shlex.join(argv)!r}"
        )
    report = ResticReport(command) if command is not None else None
    line = shlex.join(argv)
    base = message or line
    operation = new_operation(config, display_message=base, plan_id=plan_id, repo_id=repo_id)
    with open_oplog(config) as oplog:
        [operation] = oplog.add_local([operation])
        # The log is named before the job starts, so its hubs can follow it meanwhile.
        operation.logref = logref_for(operation.id)
        if report is not None:
            report.start(operation, operation.logref)
        else:
            operation.operation_run_command.command = line
            operation.operation_run_command.output_logref = operation.logref
        [operation] = oplog.update_local([operation])

    try:
        with _open_log(config.data_dir, operation.id) as log:
            outcome = run_command(
                argv, log, out, err, tail_bytes=config.run.error_output_bytes, report=report
            )
    except BaseException as exc:
        _record_end(config, operation, Outcome(
            exit_code=EXIT_CANNOT_START, exit_status=EXIT_CANNOT_START, output_bytes=0,
            problem=f"synchub run failed: {type(exc).__name__}: {exc}",
        ), base)
        raise
    try:
        finished = _record_end(config, operation, outcome, base, report)
    except SynchubError as exc:
        # Left whole: without the recorded output size a reader could not place a cut log.
        return Job(operation, outcome, record_error=str(exc))
    # Cut only once the end (and the output's size) is recorded, so whoever reads the
    # log meanwhile can always tell which part of the output the file holds.
    _keep_tail_of(config.data_dir, operation.id)
    return Job(finished, outcome)


def _keep_tail_of(data_dir: Path, op_id: int) -> None:
    try:
        keep_tail(log_path(data_dir, op_id))
    except OSError as exc:
        logging.getLogger(__name__).warning(
            "the log of operation %d was kept whole: cutting it failed: %s", op_id, exc
        )


@cli.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("--plan", "plan_id", default="",
              help="The [[plans]] id this job belongs to (refused when not configured).")
@click.option("--repo", "repo_id", default="", metavar="REPO",
              help="The [[repos]] entry this job works on: its id or its guid.")
@click.option("-m", "--message", default="", help="What the oplog shows (default: the command).")
@click.option("--restic", is_flag=True,
              help="Record COMMAND as restic (its backup, forget, check or prune) even when "
              "its program is not named restic.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_obj
def run(obj: CliContext, plan_id: str, repo_id: str, message: str, restic: bool,  # noqa: PLR0917
        command: tuple[str, ...]) -> None:
    """Run COMMAND and record it in this node's oplog; exits with COMMAND's status.

    A restic backup, forget, check or prune is recorded with what restic reported
    (add --json to restic for its exact numbers). Put `--` before the command:

    \b
        synchub run --plan nightly -- restic backup --json /home
    """
    config = obj.load()
    sys.stdout.flush()
    sys.stderr.flush()
    job = record_job(
        config, command, out=sys.stdout.buffer, err=sys.stderr.buffer,
        plan_id=plan_id, repo_id=repo_id, message=message, restic=restic,
    )
    if job.outcome.problem:
        click.echo(f"synchub: error: {job.outcome.problem}", err=True)
    if job.record_error:
        click.echo(
            f"synchub: error: the job ran but its end was not recorded: {job.record_error}",
            err=True,
        )
    raise click.exceptions.Exit(job.outcome.exit_status)


def _record_end(
    config: Config, operation: pb.Operation, outcome: Outcome, base: str,
    report: ResticReport | None = None,
) -> pb.Operation:
    finished = pb.Operation()
    finished.CopyFrom(operation)
    status = outcome.status
    if report is not None and not outcome.problem:
        status = report.finish(finished, outcome.exit_code)
    finished.status = status
    finished.unix_time_end_ms = now_ms()
    finished.logref = logref_for(operation.id)
    finished.output_size_bytes = outcome.output_bytes
    if status != pb.STATUS_SUCCESS:
        finished.display_message = f"{base} [{outcome.describe()}]"
        limit = config.run.error_output_bytes
        if limit > 0:
            finished.error_output = error_text(outcome.tail, limit) or error_text(
                outcome.problem.encode(), limit
            )
    if report is None:
        run = finished.operation_run_command
        run.exit_code = outcome.exit_code
        run.output_logref = finished.logref
        run.output_size_bytes = outcome.output_bytes
    with open_oplog(config) as oplog:
        [stored] = oplog.update_local([finished])
    return stored
