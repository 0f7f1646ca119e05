"""``/healthz``: 200 when every actor answers within a second and the store takes writes.

503 with the reasons otherwise (an actor stopped or late, the store refusing writes,
its database unreachable, the front's thread gone), for load balancers and systemd's
watchdog. The asks go out at once, so the check takes at most about a second
whatever fails.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import pykka

from hub.errors import ActorError, SynchubError
from hub.web._http import Request, Response
from hub.web._pages import WebContext

HEALTH_TIMEOUT: Final = 1.0


def healthz(ctx: WebContext, request: Request, _arg: str) -> Response:
    actors = ctx.sources.actors
    asks: list[tuple[str, Callable[[], pykka.Future[Any]]]] = [
        ("config", actors.config.ping),
        ("oplog", actors.oplog.ping),
        ("peer state", actors.peers.ping),
        ("fleet", actors.fleet.ping),
    ]
    if actors.alerts is not None:
        asks.append(("alert", actors.alerts.ping))
    problems: list[str] = []
    pending: list[tuple[str, pykka.Future[Any]]] = []
    for what, ask in asks:
        try:
            pending.append((what, ask()))
        except pykka.ActorDeadError:
            problems.append(f"the {what} actor is not running")
    try:
        writable = actors.oplog.check_writable()
    except pykka.ActorDeadError:
        writable = None
    for what, future in pending:
        try:
            ctx.sources.answer(future, what, HEALTH_TIMEOUT)
        except ActorError as exc:
            problems.append(str(exc))
    if writable is not None:
        try:
            ctx.sources.answer(writable, "oplog", HEALTH_TIMEOUT)
        except ActorError:
            pass  # already reported by the ping
        except SynchubError as exc:
            problems.append(f"the oplog store takes no writes: {exc}")
    store_problem = ctx.sources.store_problem()
    if store_problem is not None:
        problems.append(f"{store_problem} (new sessions get RETRY_WAIT)")
    if not ctx.sources.front_alive():
        problems.append("the front (the ROUTER's thread) is not running")
    if problems:
        return Response.json({"status": "unhealthy", "problems": problems}, 503)
    return Response.json({"status": "ok"})
