"""Requests and responses as the web side's handlers see them (WSGI underneath).

A handler takes a ``Request`` and returns a ``Response``; ``HttpError`` is a response
raised from anywhere in a handler (400 for a bad parameter, 404, 503 when the hub does
not answer). Every response carries the same security headers: a strict
Content-Security-Policy (no inline script or style; scripts and styles only from
``/static``), no sniffing, no framing, no referrer, no caching.
"""

from __future__ import annotations

import gzip
import json
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS: Final = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
)
HTML: Final = "text/html; charset=utf-8"
JSON: Final = "application/json"
TEXT: Final = "text/plain; charset=utf-8"

_REASONS: Final = {
    200: "OK", 304: "Not Modified", 400: "Bad Request", 401: "Unauthorized",
    403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 500: "Internal Server Error",
    503: "Service Unavailable",
}
_GZIP_MIN_BYTES: Final = 4096


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    """Header names in lower case."""

    @classmethod
    def from_environ(cls, environ: Mapping[str, Any]) -> Request:
        raw_path = environ.get("PATH_INFO", "") or "/"
        # WSGI hands the path as latin-1 decoded bytes; take them back as UTF-8.
        path = raw_path.encode("latin-1", "replace").decode("utf-8", "replace")
        pairs = urllib.parse.parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        query: dict[str, str] = {}
        for name, value in pairs:
            query.setdefault(name, value)
        headers = {
            key[5:].replace("_", "-").lower(): str(value)
            for key, value in environ.items() if key.startswith("HTTP_")
        }
        return cls(str(environ.get("REQUEST_METHOD", "GET")).upper(), path, query, headers)

    def wants_gzip(self) -> bool:
        return "gzip" in self.headers.get("accept-encoding", "")


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def html(cls, text: str, status: int = 200) -> Response:
        return cls(status, text.encode("utf-8"), HTML)

    @classmethod
    def json(cls, value: Any, status: int = 200) -> Response:
        return cls(status, json.dumps(value, ensure_ascii=False).encode("utf-8"), JSON)

    @classmethod
    def text(cls, text: str, status: int = 200) -> Response:
        return cls(status, text.encode("utf-8"), TEXT)

    def status_line(self) -> str:
        return f"{self.status} {_REASONS.get(self.status, 'Unknown')}"

    def finish(self, request: Request) -> tuple[list[tuple[str, str]], bytes]:
        """The final headers and body: security headers added, gzip when it pays."""
        body = self.body
        headers = [("Content-Type", self.content_type), *SECURITY_HEADERS, *self.headers]
        if not any(name.lower() == "cache-control" for name, _ in self.headers):
            headers.append(("Cache-Control", "no-store"))
        if len(body) >= _GZIP_MIN_BYTES and request.wants_gzip():
            body = gzip.compress(body, compresslevel=1)
            headers += [("Content-Encoding", "gzip"), ("Vary", "Accept-Encoding")]
        headers.append(("Content-Length", str(len(body))))
        if request.method == "HEAD":
            body = b""
        return headers, body


class HttpError(Exception):
    """A response raised by a handler: ``status`` and a one-line ``message``."""

    def __init__(self, status: int, message: str, headers: list[tuple[str, str]] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or []
