"""`synchub ops`: list the operations this node's oplog holds, newest first.

When a hub runs on this node's data_dir the listing comes from it over the admin
socket; otherwise its store is read directly (``-v`` says which): the oplog file,
or the PostgreSQL database of a hub with ``[store] url``.

``--instance`` selects by the instance an operation came from (the client that
synced it, verified by its handshake; for a node's own operations their own
instance), ``--producer`` by the ``instance_id`` its producer wrote in it. The
table shows one line per operation (``hub.payloads.summary``); ``--json`` shows
everything the schema declares, payloads included. Both are printed a page at a time
as the pages come (``hub.admin``'s ``ops`` pages, bounded in bytes), so neither the
hub nor this command holds a long listing of large operations at once.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import textwrap
from collections.abc import Iterable, Iterator
from typing import Any

import click

from hub.admin import MAX_OPS_LIMIT, ask_hub, ask_running_hub, iter_pages, query_for
from hub.cli.main import CliContext, cli
from hub.config import Config
from hub.jsonview import message_to_dict
from hub.payloads import summary
from hub.pb import synchub_pb2 as pb
from hub.store import hub_stores, oplog_path
from hub.text import cell

log = logging.getLogger(__name__)

READ_TIMEOUT = 2.0

_STATUS = {
    value: name.removeprefix("STATUS_").lower() for name, value in pb.OperationStatus.items()
}


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
@click.option("--repo", "repo_guid", metavar="GUID", help="Only operations of this repo guid.")
@click.option("--plan", "plan_id", help="Only operations of this plan id.")
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
    repo_guid: str | None,
    plan_id: str | None,
    limit: int,
) -> None:
    """List operations in this node's oplog (hub or client), newest first."""
    config = obj.load()
    selector = pb.OpSelector()
    if instance is not None:
        selector.peer_instance_id = instance
    if producer is not None:
        selector.instance_id = producer
    if repo_guid is not None:
        selector.repo_guid = repo_guid
    if plan_id is not None:
        selector.plan_id = plan_id
    operations = iter_operations(config, selector, limit)
    if as_json:
        _print_json_array(message_to_dict(op) for op in operations)
        return
    shown = 0
    for op in operations:
        if not shown:
            click.echo(OPS_HEADER)
        click.echo(operation_row(op))
        shown += 1
    if not shown:
        click.echo("no operations")


def _print_json_array(items: Iterator[dict[str, Any]]) -> None:
    """As ``print_json`` prints a list, one element at a time (a long listing is never
    whole in memory)."""
    first = True
    for item in items:
        body = textwrap.indent(json.dumps(item, indent=2), "  ")
        click.echo(("[\n" if first else ",\n") + body, nl=False)
        first = False
    click.echo("[]" if first else "\n]")


OPS_HEADER = f"{'ID':>7}  {'STARTED':19}  {'STATUS':11}  {'INSTANCE':16}  {'PLAN':10}  SUMMARY"


def operation_row(op: pb.Operation) -> str:
    """One line of the table: peer text inert, columns clipped."""
    return (
        f"{op.id:>7}  {_when(op.unix_time_start_ms):19}  {_STATUS.get(op.status, '?'):11}  "
        f"{cell(_instance(op), 16)}  {cell(op.plan_id, 10)}  {summary(op, 80)}"
    )


def operations_table(operations: Iterable[pb.Operation]) -> list[str]:
    return [OPS_HEADER, *(operation_row(op) for op in operations)]


def _instance(op: pb.Operation) -> str:
    """Where an operation came from; ``laptop@web1`` when web1 synced laptop's operation."""
    peer = op.peer_instance_id
    if peer and op.instance_id and op.instance_id != peer:
        return f"{op.instance_id}@{peer}"
    return peer or op.instance_id


def iter_operations(config: Config, selector: pb.OpSelector, limit: int) -> Iterator[pb.Operation]:
    """Newest first, page by page: from the running hub when one answers, else from
    the oplog (the file, or the PostgreSQL database of a hub with ``[store] url``)."""
    encoded = selector.SerializeToString()
    answer = ask_running_hub(
        config.data_dir, "ops", timeout=READ_TIMEOUT, selector=encoded, limit=limit,
    )
    if answer is None:
        yield from _from_store(config, selector, limit)
        return
    left = limit
    while True:
        page = answer["operations"]
        for raw in page:
            yield pb.Operation.FromString(raw)
        left -= len(page)
        before = answer.get("next_before_id")
        if before is None or left <= 0:
            return
        answer = ask_hub(
            config.data_dir, "ops", timeout=READ_TIMEOUT, selector=encoded, limit=left,
            before_id=before,
        )


def _from_store(config: Config, selector: pb.OpSelector, limit: int) -> Iterator[pb.Operation]:
    stores = hub_stores(config)
    if not stores.postgresql:
        path = oplog_path(config.data_dir)
        log.info("ops: reading %s directly", path)
        if not path.exists():
            return
    else:
        log.info("ops: reading %s directly", stores.describe())
    reader = stores.open_reader()
    try:
        for page in iter_pages(reader, query_for(selector, limit, None)):
            for raw in page.operations:
                yield pb.Operation.FromString(raw)
    finally:
        reader.close()


def _when(ms: int) -> str:
    if ms <= 0:
        return "-"
    return dt.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")
