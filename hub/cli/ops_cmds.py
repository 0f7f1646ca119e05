"""`synchub ops`: list the operations this node's oplog holds, by start time, newest first.

The listing is read from this node's store beside any hub running on it (a read-only
view: SQLite's WAL lets it read while the hub writes; PostgreSQL for a hub with
``[store] url``); ``-v`` says which. ``--sort id`` lists in the order they arrived
here instead, ``--reverse`` oldest first.

``--instance`` selects by the instance an operation came from (the client that
synced it, verified by its handshake; for a node's own operations their own
instance), ``--producer`` by the ``instance_id`` its producer wrote in it, ``--repo``
by a ``[[repos]]`` id or a repo guid, ``--status`` by status, ``--since`` /
``--until`` by start time. The table shows one line per operation
(``hub.payloads.summary``), its times in ISO 8601 with the zone and how long it
ran; ``--json`` shows everything the schema declares, payloads included.
"""

from __future__ import annotations

import logging
import time

import click

from hub.admin import MAX_OPS_LIMIT
from hub.cli.listing import TIME_HELP, TimeZoneChoice, duration_text, table
from hub.cli.main import CliContext, cli, print_json
from hub.config import Config
from hub.jsonview import message_to_dict
from hub.payloads import summary
from hub.pb import synchub_pb2 as pb
from hub.store import OperationQuery, hub_stores, oplog_path

log = logging.getLogger(__name__)


_STATUS = {
    value: name.removeprefix("STATUS_").lower() for name, value in pb.OperationStatus.items()
}
_STATUS_BY_NAME = {name: value for value, name in _STATUS.items() if name != "unknown"}
_SORTS = ("id", "started")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of operations.")
@click.option(
    "--instance",
    help="Only operations that came from this instance (the client that synced them, "
    "as its handshake proved; a node's own operations by their own instance).",
)
@click.option(
    "--producer", metavar="INSTANCE",
    help="Only operations whose instance_id, as their producer wrote it, is this.",
)
@click.option("--repo", metavar="REPO",
              help="Only operations of this repo: a [[repos]] id (or one a client "
                   "shared) or a repo guid.")
@click.option("--plan", "plan_id", help="Only operations of this plan id.")
@click.option("--status", "status_name", type=click.Choice(sorted(_STATUS_BY_NAME)),
              help="Only operations with this status.")
@click.option("--since", metavar="TIME",
              help=f"Only operations started at or after TIME: {TIME_HELP}.")
@click.option("--until", metavar="TIME", help="Only operations started before TIME (as --since).")
@click.option("--sort", type=click.Choice(_SORTS), default="started",
              show_default=True,
              help="started: by start time; id: in the order they arrived in this oplog.")
@click.option("--reverse", is_flag=True, help="Oldest first.")
@click.option("--utc", is_flag=True, help="Show and read times in UTC instead of local time.")
@click.option("--wide", is_flag=True, help="Cut nothing: every column as wide as its content.")
@click.option(
    "--limit", type=click.IntRange(min=1, max=MAX_OPS_LIMIT), default=50, show_default=True,
    help=f"Show at most this many operations (1 to {MAX_OPS_LIMIT:,}).",
)
@click.pass_obj
def ops(  # noqa: PLR0917 - one parameter per click option
    obj: CliContext,
    as_json: bool,
    instance: str | None,
    producer: str | None,
    repo: str | None,
    plan_id: str | None,
    status_name: str | None,
    since: str | None,
    until: str | None,
    sort: str,
    reverse: bool,
    utc: bool,
    wide: bool,
    limit: int,
) -> None:
    """List operations in this node's oplog (hub or client), by start time, newest first."""
    config = obj.load()
    zone = TimeZoneChoice(utc=utc)
    now_ms = time.time_ns() // 1_000_000
    query = OperationQuery(
        instance=instance,
        producer=producer,
        repo_guid=repo_guid_for(config, repo) if repo is not None else None,
        plan_id=plan_id,
        status=_STATUS_BY_NAME[status_name] if status_name is not None else None,
        since_ms=zone.parse(since, now_ms, "--since") if since is not None else None,
        until_ms=zone.parse(until, now_ms, "--until") if until is not None else None,
        limit=limit,
        order="started" if sort == "started" else "id",
        ascending=reverse,
    )
    operations = load_operations(config, query)
    if as_json:
        print_json([message_to_dict(op) for op in operations])
        return
    if not operations:
        click.echo("no operations")
        return
    for line in operations_table(operations, zone=zone, wide=wide):
        click.echo(line)


def repo_guid_for(config: Config, repo: str) -> str:
    """The guid ``--repo`` names: a [[repos]] id's guid, or ``repo`` itself (a guid)."""
    for entry in config.repos:
        if repo in (entry.id, entry.guid):
            return entry.guid
    return repo


def operations_table(
    operations: list[pb.Operation], *, zone: TimeZoneChoice | None = None, wide: bool = False
) -> list[str]:
    """One line per operation; no field can break a row, and a cut one ends in an ellipsis."""
    zone = zone or TimeZoneChoice()
    header = ("ID", "STARTED", "DURATION", "STATUS", "INSTANCE", "PLAN", "SUMMARY")
    rows = [
        (
            str(op.id),
            zone.show(op.unix_time_start_ms),
            _duration(op),
            _STATUS.get(op.status, "?"),
            _instance(op),
            op.plan_id or "-",
            summary(op, 10_000),
        )
        for op in operations
    ]
    return table(header, rows, (None, None, None, None, 16, 12, 80), wide=wide)


def _duration(op: pb.Operation) -> str:
    start, end = op.unix_time_start_ms, op.unix_time_end_ms
    if start <= 0 or end <= 0 or end < start:
        return "-"
    return duration_text(end - start)


def _instance(op: pb.Operation) -> str:
    """Where an operation came from; ``laptop@web1`` when web1 synced laptop's operation."""
    peer = op.peer_instance_id
    if peer and op.instance_id and op.instance_id != peer:
        return f"{op.instance_id}@{peer}"
    return peer or op.instance_id


def load_operations(config: Config, query: OperationQuery) -> list[pb.Operation]:
    """What ``query`` selects in this node's store, read beside any hub running on it."""
    stores = hub_stores(config)
    if not stores.postgresql and not oplog_path(config.data_dir).exists():
        log.info("ops: no oplog at %s yet", oplog_path(config.data_dir))
        return []
    where = stores.describe() if stores.postgresql else oplog_path(config.data_dir)
    log.info("ops: reading %s", where)
    reader = stores.open_reader()
    try:
        return reader.find(query)
    finally:
        reader.close()
