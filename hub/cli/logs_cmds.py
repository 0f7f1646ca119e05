"""`synchub logs OPID [--follow]`: print the whole log of one job.

On a hub, OPID is the hub's operation id (`synchub ops` shows it): the running hub
asks the client that ran the job for its log, through that client's live session,
part by part (docs/protocol.md §6.7 (Logs on demand)). The client must be connected
and grant the hub ``read_logs``; an offline client, a refusal, a missing file are
each one error line and exit status 1. The hub's own jobs, and any job on a node
where no hub runs, are read from this node's data_dir.

``--follow`` keeps reading a job that is still running, every second, until it
ends and its log is read to the end. Offsets are positions in the job's whole
output, so following goes on where it was when the job's log is cut to its end
as the job finishes; a part that was not kept is named on stderr.

On a terminal the log is shown inert: a job's output is text from a client, so its
control characters other than line breaks and tabs (colour and cursor sequences,
OSC title or clipboard writes, a lone carriage return) appear as escapes such as
``\\x1b``. ``--raw`` writes the bytes as they are; so does any output that is not a
terminal (a pipe or a file gets the exact log).
"""

from __future__ import annotations

import codecs
import sys
import time
from typing import Any, BinaryIO

import click

from hub.admin import LOG_WAIT, ask_hub
from hub.cli.main import CliContext, cli
from hub.config import Config
from hub.errors import AdminUnavailable, LogFetchError, LogUnavailable
from hub.pb import synchub_pb2 as pb
from hub.protocol import LOG_REQUEST_MAX_BYTES
from hub.store import LocalLogs, open_oplog, oplog_path
from hub.text import inert_lines

FOLLOW_INTERVAL = 1.0
_RUNNING = frozenset({pb.STATUS_PENDING, pb.STATUS_INPROGRESS})


class _InertWriter:
    """Writes a job's log as inert text: UTF-8 decoded across part boundaries (bytes
    that are not UTF-8 as ``\\xNN``), a CR LF split between parts still one break."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="backslashreplace")
        self._held = ""

    def write(self, data: bytes, *, final: bool = False) -> None:
        text = self._held + self._decoder.decode(data, final=final)
        self._held = ""
        if text.endswith("\r") and not final:
            text, self._held = text[:-1], "\r"
        self._out.write(inert_lines(text).encode("utf-8"))
        self._out.flush()


class _RawWriter:
    def __init__(self, out: BinaryIO) -> None:
        self._out = out

    def write(self, data: bytes, *, final: bool = False) -> None:
        self._out.write(data)
        self._out.flush()


@cli.command()
@click.argument("op_id", metavar="OPID", type=click.IntRange(min=1))
@click.option("-f", "--follow", is_flag=True,
              help="Keep reading a running job's log until the job ends.")
@click.option("--raw", is_flag=True,
              help="Write the log's bytes as they are, control characters included, "
              "even on a terminal.")
@click.pass_obj
def logs(obj: CliContext, op_id: int, follow: bool, raw: bool) -> None:
    """Print the log of operation OPID (on a hub: the hub's id, as `synchub ops` shows)."""
    config = obj.load()
    stdout = sys.stdout.buffer
    out = _RawWriter(stdout) if raw or not sys.stdout.isatty() else _InertWriter(stdout)
    try:
        _print_log(config, op_id, follow, out)
    finally:
        out.write(b"", final=True)


def _print_log(
    config: Config, op_id: int, follow: bool, out: _InertWriter | _RawWriter
) -> None:
    offset = 0
    while True:
        part = fetch_part(config, op_id, offset)
        data: bytes = part["data"]
        if int(part["offset"]) > offset:
            click.echo(
                f"synchub: [bytes {offset}-{part['offset']} of this job's output were not "
                "kept: a finished job's log keeps only its end]", err=True,
            )
        out.write(data)
        offset = int(part["offset"]) + len(data)
        if offset < int(part["log_size"]) and data:
            continue  # more is there already
        if part["complete"]:
            return
        if not follow:
            click.echo("synchub: the job is still running; --follow keeps reading", err=True)
            return
        time.sleep(FOLLOW_INTERVAL)


def fetch_part(config: Config, op_id: int, offset: int) -> dict[str, Any]:
    """Up to LOG_REQUEST_MAX_BYTES of the log from ``offset``: from the running hub, or,
    when none runs here, from this node's own files."""
    try:
        return ask_hub(
            config.data_dir, "logs", timeout=LOG_WAIT + 3.0,
            op_id=op_id, offset=offset, max_bytes=LOG_REQUEST_MAX_BYTES,
        )
    except AdminUnavailable as exc:
        if exc.listening:
            raise
        return _local_part(config, op_id, offset, reason=str(exc))


def _local_part(config: Config, op_id: int, offset: int, *, reason: str) -> dict[str, Any]:
    if not oplog_path(config.data_dir).exists():
        raise LogFetchError(f"{reason}, and this node has no oplog")
    with open_oplog(config) as oplog:
        found = oplog.query(pb.OpSelector(ids=[op_id]))
    if not found:
        raise LogFetchError(f"no operation {op_id} in this node's oplog (see `synchub ops`)")
    op = found[0]
    if op.original_instance_keyid:
        raise LogFetchError(
            f"operation {op_id} is a client's: {reason}; start the hub (`synchub start`) to "
            "fetch it from its client"
        )
    if not op.logref:
        raise LogFetchError(f"operation {op_id} has no log")
    finished = op.status not in _RUNNING
    total = op.output_size_bytes if finished else 0
    try:
        part = LocalLogs(config.data_dir).read_output(
            op.logref, offset, LOG_REQUEST_MAX_BYTES, total=total
        )
    except LogUnavailable as exc:
        raise LogFetchError(f"operation {op_id}: {exc}") from exc
    complete = finished and part.offset + len(part.data) >= part.size
    return {"offset": part.offset, "data": part.data, "log_size": part.size,
            "log_start": part.start, "complete": complete}
