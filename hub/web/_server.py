"""WebServer: the HTTP listener, cheroot's threaded WSGI server in a ThreadService.

Who owns what: this service's thread binds the listening socket (``prepare``: a bind
that fails is the start-up error) and runs cheroot's accept loop; cheroot's pool of
``workers`` threads runs the requests, each reading the hub through the WebApp's
sources (asks with timeouts), so a slow page holds one worker, never an actor.
``stop`` ends the loop and joins the workers; the reader pool is closed after them.

Why cheroot: a maintained, pure-Python HTTP/1.1 server (the CherryPy project's) whose
model is the hub's own, threads: no event loop to run beside the actors, binding in a
step of its own so a taken port is reported before the hub claims to be up, and a
documented ``stop`` from another thread that leaves no thread behind.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket

from cheroot import wsgi

from hub.errors import ServiceError, SynchubError, WebError
from hub.threads import ThreadService
from hub.web._app import WebApp
from hub.web._sources import ReaderPool

log = logging.getLogger(__name__)

WORKERS = 8
REQUEST_TIMEOUT = 10
"""Seconds a connection may stay silent mid-request (slow clients give their worker back)."""


class WebServer(ThreadService):
    def __init__(
        self, app: WebApp, host: str, port: int, readers: ReaderPool, *, workers: int = WORKERS
    ) -> None:
        super().__init__(
            thread_name="synchub-web", what="the web server",
            failure_note="the dashboard, /api, /metrics and /healthz are down until the hub "
            "restarts",
        )
        self._bind = (host, port)
        self._readers = readers
        self._server = wsgi.Server(
            self._bind, app, numthreads=workers, timeout=REQUEST_TIMEOUT, shutdown_timeout=2,
            server_name="synchub",
        )
        self._server.error_log = self._cheroot_log  # type: ignore[method-assign]

    @staticmethod
    def _cheroot_log(msg: str = "", level: int = logging.INFO, traceback: bool = False) -> None:
        log.log(logging.DEBUG if level < logging.ERROR else logging.WARNING, "web: %s", msg,
                exc_info=traceback)

    def _open(self) -> str:
        self._server.prepare()
        host, port = self._server.bind_addr[:2]
        shown = f"[{host}]" if ":" in str(host) else str(host)
        return f"http://{shown}:{port}"

    def _serve(self) -> None:
        self._server.serve()

    def stop(self, timeout: float = 10.0) -> None:
        with contextlib.suppress(Exception):
            self._server.stop()
        super().stop(timeout)

    def _close(self) -> None:
        with contextlib.suppress(Exception):
            self._server.stop()
        self._readers.close()

    def _startup_failed(self, error: Exception) -> SynchubError:
        if isinstance(error, OSError) and _address_in_use(error):
            return WebError(
                f"cannot serve HTTP on {self._bind[0]}:{self._bind[1]}: the port is taken; "
                "set [web] bind to a free one (or \"\" for no web side)", in_use=True,
            )
        if isinstance(error, OSError):
            return WebError(
                f"cannot serve HTTP on {self._bind[0]}:{self._bind[1]}: {error}; check "
                "[web] bind"
            )
        return ServiceError(f"the web server did not start: {error}")


def _address_in_use(error: OSError) -> bool:
    if error.errno == errno.EADDRINUSE:
        return True
    # cheroot wraps the bind error in a socket.error whose message names it.
    return isinstance(error, socket.error) and "Address already in use" in str(error)
