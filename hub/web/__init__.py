"""The hub's HTTP side: the dashboard, the JSON API, ``/metrics`` and ``/healthz``.

``WebApp`` is the WSGI application (routes in ``_app.ROUTES``), ``WebServer`` serves
it (cheroot, one listening thread and a pool of workers), ``HubMetrics`` is the
Prometheus registry and the actors' ``Telemetry``. Everything reads a running hub
through ``WebSources``: the typed actor proxies (asks with timeouts), the status
snapshot and read-only oplog readers; this package never imports ``hub.server``,
which builds it (``build_web``) and starts it beside the admin socket.
"""

from hub.web._access import Access
from hub.web._app import ROUTES, WebApp
from hub.web._build import build_web
from hub.web._dashboard import DEFAULT_LOST_SECONDS, DEFAULT_STALE_SECONDS, plan_row
from hub.web._http import CSP, HttpError, Request, Response
from hub.web._metrics import MAX_INSTANCE_LABELS, HubMetrics
from hub.web._pages import OUTPUT_FIELDS, REFRESH_SECONDS, WebContext
from hub.web._query import MAX_LIMIT, OperationFilters, parse_filters, parse_time
from hub.web._render import Pages
from hub.web._server import WebServer
from hub.web._sources import Actors, ReaderPool, WebSources

__all__ = [
    "CSP",
    "DEFAULT_LOST_SECONDS",
    "DEFAULT_STALE_SECONDS",
    "MAX_INSTANCE_LABELS",
    "MAX_LIMIT",
    "OUTPUT_FIELDS",
    "REFRESH_SECONDS",
    "ROUTES",
    "Access",
    "Actors",
    "HttpError",
    "HubMetrics",
    "OperationFilters",
    "Pages",
    "ReaderPool",
    "Request",
    "Response",
    "WebApp",
    "WebContext",
    "WebServer",
    "WebSources",
    "build_web",
    "parse_filters",
    "parse_time",
    "plan_row",
]
