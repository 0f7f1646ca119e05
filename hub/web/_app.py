"""WebApp: the hub's HTTP side as a WSGI application, its routes in one table.

A request is checked by ``Access`` first, then routed by its path to one handler (GET
and HEAD only: the web side only reads). A handler's ``HttpError`` becomes its status
with a one-line message (JSON under ``/api/``, a page elsewhere); a hub that does not
answer in time is a 503; anything unexpected is logged and a 500. To add an endpoint:
a handler taking ``(WebContext, Request, argument)`` and a line in ``ROUTES``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from typing import Any, Final

from hub.errors import ActorError, StoreError
from hub.web._access import Access
from hub.web._health import healthz
from hub.web._http import HttpError, Request, Response
from hub.web._metrics import HubMetrics, metrics_response
from hub.web._pages import (
    WebContext,
    api_alerts,
    api_operation,
    api_operations,
    api_peers,
    api_pending,
    api_status,
    api_version,
    dashboard,
    operation,
    operations,
    peer,
)

log = logging.getLogger(__name__)

Handler = Callable[[WebContext, Request, str], Response]
StartResponse = Callable[[str, list[tuple[str, str]]], Any]

_ARG: Final = "([^/]+)"
ROUTES: Final[tuple[tuple[str, Handler | None], ...]] = (
    ("/", dashboard),
    ("/operations", operations),
    (f"/operations/{_ARG}", operation),
    (f"/peers/{_ARG}", peer),
    ("/api/status", api_status),
    ("/api/peers", api_peers),
    ("/api/pending", api_pending),
    ("/api/operations", api_operations),
    (f"/api/operations/{_ARG}", api_operation),
    ("/api/alerts", api_alerts),
    ("/api/version", api_version),
    ("/healthz", healthz),
    ("/metrics", None),
    (f"/static/{_ARG}", None),
)
_COMPILED: Final = tuple((re.compile(pattern + r"\Z"), handler) for pattern, handler in ROUTES)


class WebApp:
    def __init__(self, context: WebContext, access: Access, metrics: HubMetrics) -> None:
        self._ctx = context
        self._access = access
        self._metrics = metrics

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        request = Request.from_environ(environ)
        response = self.respond(request)
        headers, body = response.finish(request)
        start_response(response.status_line(), headers)
        return [body]

    def respond(self, request: Request) -> Response:
        try:
            self._access.check(request)
            if request.method not in ("GET", "HEAD"):
                raise HttpError(405, "the web side only reads: use GET", [("Allow", "GET, HEAD")])
            return self._route(request)
        except HttpError as exc:
            response = self._error(request, exc.status, exc.message)
            response.headers.extend(exc.headers)
            return response
        except (ActorError, StoreError) as exc:
            log.warning("web: %s %s: %s", request.method, request.path[:200], exc)
            return self._error(request, 503, f"the hub cannot answer now: {exc}")
        except Exception:
            log.exception("web: %s %s failed", request.method, request.path[:200])
            return self._error(request, 500, "internal error; the hub's log has the details")

    def _route(self, request: Request) -> Response:
        for pattern, handler in _COMPILED:
            match = pattern.match(request.path)
            if match is None:
                continue
            arg = match.group(1) if match.groups() else ""
            if handler is not None:
                return handler(self._ctx, request, arg)
            if request.path == "/metrics":
                return metrics_response(self._metrics, request)
            return self._static(arg)
        raise HttpError(404, f"nothing at {request.path[:200]}")

    def _static(self, name: str) -> Response:
        found = self._ctx.pages.static(name)
        if found is None:
            raise HttpError(404, f"no static file {name[:100]!r}")
        body, content_type = found
        return Response(200, body, content_type, [("Cache-Control", "max-age=300")])

    def _error(self, request: Request, status: int, message: str) -> Response:
        if request.path.startswith("/api/") or request.path in ("/healthz", "/metrics"):
            return Response.json({"error": message}, status)
        try:
            page = self._ctx.pages.render(
                "error.html", now_ms=self._ctx.now_ms(), status=status, message=message
            )
        except Exception:
            log.exception("web: rendering the error page failed")
            return Response.text(f"{status}: {message}\n", status)
        return Response.html(page, status)
