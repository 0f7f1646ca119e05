"""The pages (server-rendered, usable without JavaScript) and the JSON API.

Each handler reads through ``WebSources`` (asks with timeouts, the status snapshot, a
lent reader) and never through the ``Hub``. JSON uses the CLI's ``--json`` shapes and
field names: ``/api/operations`` is what ``synchub ops --json`` prints (with a
``Link: <...>; rel="next"`` header for the next page), ``/api/peers`` what ``synchub
peers --json`` prints, ``/api/status`` what ``synchub status --json`` prints,
``/api/pending`` what ``synchub pending --json`` prints.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

from hub.admin import pending_rows, status_answer
from hub.alerting import ActiveAlert, active_alert_dict
from hub.config import Config
from hub.fleet import STATUS_NAMES, FleetSnapshot
from hub.jsonview import message_to_dict
from hub.pb import synchub_pb2 as pb
from hub.web._dashboard import PlanRows, build_dashboard
from hub.web._http import HttpError, Request, Response
from hub.web._query import OperationFilters, parse_filters
from hub.web._render import Pages, fields_html
from hub.web._sources import WebSources

REFRESH_SECONDS: Final = 10
LOG_TAIL_BYTES: Final = 64 * 1024

OUTPUT_FIELDS: Final[tuple[tuple[str, str], ...]] = (
    ("Failure output (the job's last output, kept with the operation)", "error_output"),
)
"""Fields of an operation shown as its output, when set: (title, dotted field path).
A field that carries a job's output goes here, one line each."""


@dataclass
class WebContext:
    sources: WebSources
    pages: Pages
    hub: str
    data_dir: Path
    clock: Callable[[], float] = time.time

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def config(self) -> Config:
        return self.sources.answer(self.sources.actors.config.get(), "config")

    def alerts(self) -> tuple[ActiveAlert, ...]:
        alerts = self.sources.actors.alerts
        return () if alerts is None else self.sources.answer(alerts.active(), "alert")

    def version(self) -> str:
        actors = self.sources.actors
        fleet_answer, pending_answer = actors.fleet.version(), actors.peers.pending()
        fleet = self.sources.answer(fleet_answer, "fleet")
        firing = sorted((a.alert, a.key) for a in self.alerts())
        # A key starting or ending its wait changes the page; another attempt does not.
        waiting = sorted(k.keyid for k in self.sources.answer(pending_answer, "peer state"))
        return f"{fleet}.{hash((tuple(firing), tuple(waiting))) & 0xFFFFFF:x}"

    def pending(self, config: Config) -> list[dict[str, Any]]:
        """The keys waiting to be authorized, as ``synchub pending --json`` shows them."""
        keys = self.sources.answer(self.sources.actors.peers.pending(), "peer state")
        return pending_rows(config, keys)


# -- pages ----------------------------------------------------------------------------------


def dashboard(ctx: WebContext, request: Request, _arg: str) -> Response:
    actors = ctx.sources.actors
    fleet_answer, peers_answer = actors.fleet.snapshot(), actors.peers.list()
    fleet: FleetSnapshot = ctx.sources.answer(fleet_answer, "fleet")
    states = ctx.sources.answer(peers_answer, "peer state")
    config = ctx.config()
    board = build_dashboard(
        hub=ctx.hub, fleet=fleet, states=states, alerts=ctx.alerts(), config=config,
        now_ms=ctx.now_ms(), rows=PlanRows.for_this_thread(),
    )
    return Response.html(ctx.pages.render(
        "dashboard.html", now_ms=board.now_ms, refresh=REFRESH_SECONDS, version=ctx.version(),
        d=board, waiting=ctx.pending(config),
    ))


def _find(ctx: WebContext, filters: OperationFilters) -> tuple[list[pb.Operation], str | None]:
    """One page of operations, and the link to the next one (None on the last page)."""
    query = filters.query
    with ctx.sources.reader() as reader:
        found = reader.find(replace(query, limit=query.limit + 1))
    more = len(found) > query.limit
    found = found[: query.limit]
    next_link = filters.link("", before=found[-1].id) if more and found else None
    return found, next_link


def operations(ctx: WebContext, request: Request, _arg: str) -> Response:
    filters = parse_filters(request.query, ctx.config(), default_limit=50)
    found, next_link = _find(ctx, filters)
    return Response.html(ctx.pages.render(
        "operations.html", now_ms=ctx.now_ms(), f=filters, ops=found,
        next_link=f"/operations{next_link}" if next_link else None,
        statuses=list(STATUS_NAMES.values()),
    ))


def _operation(ctx: WebContext, arg: str) -> pb.Operation:
    if not arg.isdigit() or len(arg) > 19:
        raise HttpError(404, f"no operation {arg!r}: ids are whole numbers")
    with ctx.sources.reader() as reader:
        op = reader.get(int(arg))
    if op is None:
        raise HttpError(404, f"no operation {arg} in this hub's oplog")
    return op


def _path_value(value: Any, path: str) -> Any:
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _local_log(ctx: WebContext, op: pb.Operation) -> str | None:
    """The tail of a log this hub wrote itself (its own ``synchub run`` jobs)."""
    if op.original_instance_keyid:
        return None
    logref = op.operation_run_command.output_logref or op.logref
    logs = (ctx.data_dir / "logs").resolve()
    path = (ctx.data_dir / logref).resolve() if logref else None
    if path is None or path.parent != logs or not path.is_file():
        return None
    with path.open("rb") as log_file:
        size = log_file.seek(0, os.SEEK_END)
        log_file.seek(max(0, size - LOG_TAIL_BYTES))
        return log_file.read().decode("utf-8", "replace")


def operation(ctx: WebContext, request: Request, arg: str) -> Response:
    op = _operation(ctx, arg)
    fields = message_to_dict(op)
    outputs = [(title, str(text)) for title, path in OUTPUT_FIELDS
               if (text := _path_value(fields, path))]
    log_tail = _local_log(ctx, op)
    if log_tail:
        outputs.append(("Output (the hub's own log)", log_tail))
    running = op.status in (pb.STATUS_PENDING, pb.STATUS_INPROGRESS)
    return Response.html(ctx.pages.render(
        "operation.html", now_ms=ctx.now_ms(), refresh=REFRESH_SECONDS if running else 0,
        version=ctx.version() if running else "", op=op, fields=fields_html(fields),
        outputs=outputs,
    ))


def peer(ctx: WebContext, request: Request, instance: str) -> Response:
    actors = ctx.sources.actors
    states = ctx.sources.answer(actors.peers.list(), "peer state")
    config = ctx.config()
    mine = [s for s in states if s.peer_instance_id == instance]
    histories = [actors.fleet.peer_history(s.peer_keyid) for s in mine]
    fleet = ctx.sources.answer(actors.fleet.snapshot(), "fleet")
    peers = []
    for state, history in zip(mine, histories, strict=True):
        client = config.authorized_client(state.peer_keyid)
        peers.append({
            "state": state,
            "history": ctx.sources.answer(history, "fleet"),
            "authorized": "no" if client is None else (
                f"as {client.instance_id}" + ("" if client.keyid_verified else " (not verified)")
            ),
            "config": fields_html(message_to_dict(state.remote_config)),
        })
    rows = PlanRows.for_this_thread()
    plan_rows = [rows.row(plan) for plan in fleet.plans if plan.instance == instance]
    if not peers and not plan_rows and instance != ctx.hub:
        raise HttpError(404, f"no peer or operations with instance id {instance!r}")
    return Response.html(ctx.pages.render(
        "peer.html", now_ms=ctx.now_ms(), refresh=REFRESH_SECONDS, version=ctx.version(),
        instance=instance, is_hub=instance == ctx.hub, peers=peers, rows=plan_rows,
    ))


# -- the JSON API ---------------------------------------------------------------------------


def api_status(ctx: WebContext, request: Request, _arg: str) -> Response:
    return Response.json({"running": True, **status_answer(ctx.sources.hub_status())})


def api_peers(ctx: WebContext, request: Request, _arg: str) -> Response:
    states = ctx.sources.answer(ctx.sources.actors.peers.list(), "peer state")
    return Response.json([message_to_dict(state) for state in states])


def api_operations(ctx: WebContext, request: Request, _arg: str) -> Response:
    filters = parse_filters(request.query, ctx.config())
    found, next_link = _find(ctx, filters)
    response = Response.json([message_to_dict(op) for op in found])
    if next_link:
        response.headers.append(("Link", f'</api/operations{next_link}>; rel="next"'))
    return response


def api_operation(ctx: WebContext, request: Request, arg: str) -> Response:
    return Response.json(message_to_dict(_operation(ctx, arg)))


def api_pending(ctx: WebContext, request: Request, _arg: str) -> Response:
    return Response.json(ctx.pending(ctx.config()))


def api_alerts(ctx: WebContext, request: Request, _arg: str) -> Response:
    return Response.json([active_alert_dict(a) for a in ctx.alerts()])


def api_version(ctx: WebContext, request: Request, _arg: str) -> Response:
    return Response.json({"version": ctx.version()})
