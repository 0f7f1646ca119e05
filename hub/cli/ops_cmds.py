"""`synchub ops`: list the operations this node's oplog holds, newest first.

When a hub runs on this node's data_dir the listing comes from it over the admin
socket; otherwise its store is read directly (``-v`` says which): the oplog file,
or the PostgreSQL database of a hub with ``[store] url``.

``--instance`` selects by the instance an operation came from (the client that
synced it, verified by its handshake; for a node's own operations their own
instance), ``--producer`` by the ``instance_id`` its producer wrote in it. The
table shows one line per operation (``hub.payloads.summary``); ``--json`` shows
everything the schema declares, payloads included.
"""

from __future__ import annotations

import datetime as dt
import logging

import click

from hub.admin import MAX_OPS_LIMIT, ask_running_hub
from hub.cli.main import CliContext, cli, print_json
from hub.config import Config
from hub.jsonview import message_to_dict
from hub.payloads import summary
from hub.pb import synchub_pb2 as pb
from hub.store import hub_stores, open_oplog, oplog_path
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
    operations = load_operations(config, selector, limit)
    if as_json:
        print_json([message_to_dict(op) for op in operations])
        return
    if not operations:
        click.echo("no operations")
        return
    for line in operations_table(operations):
        click.echo(line)


def operations_table(operations: list[pb.Operation]) -> list[str]:
    lines = [f"{'ID':>7}  {'STARTED':19}  {'STATUS':11}  {'INSTANCE':16}  {'PLAN':10}  SUMMARY"]
    for op in operations:
        lines.append(
            f"{op.id:>7}  {_when(op.unix_time_start_ms):19}  {_STATUS.get(op.status, '?'):11}  "
            f"{cell(_instance(op), 16)}  {cell(op.plan_id, 10)}  "
            f"{summary(op, 80)}"
        )
    return lines


def _instance(op: pb.Operation) -> str:
    """Where an operation came from; ``laptop@web1`` when web1 synced laptop's operation."""
    peer = op.peer_instance_id
    if peer and op.instance_id and op.instance_id != peer:
        return f"{op.instance_id}@{peer}"
    return peer or op.instance_id


def load_operations(config: Config, selector: pb.OpSelector, limit: int) -> list[pb.Operation]:
    """Newest first, from the running hub when one answers, else from the oplog file."""
    answer = ask_running_hub(
        config.data_dir, "ops", timeout=READ_TIMEOUT,
        selector=selector.SerializeToString(), limit=limit, newest_first=True,
    )
    if answer is not None:
        return [pb.Operation.FromString(raw) for raw in answer["operations"]]
    stores = hub_stores(config)
    if stores.postgresql:
        log.info("ops: reading %s directly", stores.describe())
        store = stores.open_oplog()
        try:
            return store.query(selector, limit=limit, newest_first=True)
        finally:
            store.close()
    path = oplog_path(config.data_dir)
    log.info("ops: reading %s directly", path)
    if not path.exists():
        return []
    with open_oplog(config) as oplog:
        return oplog.query(selector, limit=limit, newest_first=True)


def _when(ms: int) -> str:
    if ms <= 0:
        return "-"
    return dt.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")
