"""Who may read the web side.

With ``[web] token`` set, every request but ``/healthz`` must present it, either as
``Authorization: Bearer <token>`` (scripts, Prometheus) or as the password of HTTP
basic auth, any user name (a browser asks for it). The comparison is of SHA-256
digests with ``hmac.compare_digest``: constant time, whatever the lengths.

Without a token (only allowed on a loopback bind) no credentials are asked, but the
``Host`` header must name a loopback host (``localhost``, ``127.0.0.1``, ``[::1]``...),
so a web page elsewhere cannot read the dashboard through DNS rebinding.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Final

from hub.config import is_loopback_host
from hub.web._http import HttpError, Request

OPEN_PATHS: Final = frozenset({"/healthz"})
_CHALLENGE: Final = [("WWW-Authenticate", 'Basic realm="synchub", charset="UTF-8"')]


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8")).digest()


def host_of(header: str) -> str:
    """``"[::1]:7471"`` -> ``"::1"``; ``"localhost:80"`` -> ``"localhost"``."""
    if header.startswith("["):
        return header[1:].partition("]")[0]
    return header.rpartition(":")[0] if header.count(":") == 1 else header


class Access:
    def __init__(self, token: str | None) -> None:
        self._token = _digest(token) if token else None

    @property
    def needs_token(self) -> bool:
        return self._token is not None

    def check(self, request: Request) -> None:
        """Raise HttpError (401 or 403) unless ``request`` may be answered."""
        if request.path in OPEN_PATHS:
            return
        if self._token is None:
            host = request.headers.get("host", "")
            if host and not is_loopback_host(host_of(host)):
                raise HttpError(
                    403, "this hub serves loopback host names only; to reach it as "
                    f"{host_of(host)!r}, set [web] token",
                )
            return
        presented = _presented(request.headers.get("authorization", ""))
        if presented is None or not hmac.compare_digest(_digest(presented), self._token):
            raise HttpError(401, "a token is required: send Authorization: Bearer <token>",
                            _CHALLENGE)


def _presented(header: str) -> str | None:
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2]
    return None
