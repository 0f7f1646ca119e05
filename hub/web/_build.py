"""Assembling the web side from what the hub hands over."""

from __future__ import annotations

from pathlib import Path

from hub.config import WebSettings
from hub.web._access import Access
from hub.web._app import WebApp
from hub.web._metrics import HubMetrics
from hub.web._pages import WebContext
from hub.web._render import Pages
from hub.web._server import WebServer
from hub.web._sources import WebSources


def build_web(
    settings: WebSettings, sources: WebSources, metrics: HubMetrics, *, hub: str,
    data_dir: Path,
) -> WebServer:
    """A WebServer for ``settings.bind``, not yet started."""
    metrics.watch(sources)
    context = WebContext(sources=sources, pages=Pages(hub), hub=hub, data_dir=data_dir)
    app = WebApp(context, Access(settings.token), metrics)
    return WebServer(app, settings.host, settings.port, sources.readers)
