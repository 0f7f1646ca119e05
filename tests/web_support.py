"""Support for the web side's tests: a hub with HTTP on a free loopback port, requests
that return whatever status they get, and a webhook receiver on loopback."""

from __future__ import annotations

import base64
import http.server
import json
import queue
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hub.config import Config
from synchub_testing import hub_text_with, write_config

WEB_ON_FREE_PORT = '\n[web]\nbind = "127.0.0.1:0"\n'


def web_hub_config(directory: Path, *, web: str = WEB_ON_FREE_PORT, extra: str = "",
                   **hub_settings: object) -> Config:
    """The test hub's config with its HTTP side on a free loopback port (or ``web``)."""
    return write_config(directory, hub_text_with(**hub_settings) + web + extra)


@dataclass
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def json(self) -> Any:
        return json.loads(self.body)


def get(url: str, *, headers: Mapping[str, str] | None = None, method: str = "GET",
        timeout: float = 10.0) -> Answer:
    request = urllib.request.Request(url, headers=dict(headers or {}), method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return Answer(answer.status, {k.lower(): v for k, v in answer.headers.items()},
                          answer.read())
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read())


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class Receiver:
    """A webhook receiver on loopback: each POST's JSON body lands in ``events``.

    ``fail_next(n)`` makes the next n POSTs answer 503 (they are counted in ``attempts``).
    """

    def __init__(self) -> None:
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.attempts = 0
        self._failures = 0
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                receiver.attempts += 1
                if receiver._failures > 0:
                    receiver._failures -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                receiver.events.put(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def fail_next(self, count: int) -> None:
        self._failures = count

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def next_event(self, timeout: float = 5.0) -> dict[str, Any]:
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no webhook call within {timeout}s") from None

    def no_event(self, within: float) -> None:
        try:
            event = self.events.get(timeout=within)
        except queue.Empty:
            return
        raise AssertionError(f"unexpected webhook call: {event}")

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


@contextmanager
def receiver() -> Iterator[Receiver]:
    running = Receiver().start()
    try:
        yield running
    finally:
        running.stop()
