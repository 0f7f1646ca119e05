"""The hub's ZAP policy: which CURVE connections the ROUTER admits, and under what name.

Policy only (as pyzmq's ``zmq.auth.base.Authenticator`` is to its thread): the front
owns the ZAP socket and hands each request to ``zap_reply``. Every CURVE client is
admitted; client authentication is the handshake's job (docs/protocol.md §2.2
(Encryption: CurveZMQ)). The reply names the connection by the client's CURVE public
key (in hex: the front only compares it), which libzmq then stamps on every frame
from it as ``User-Id``: that pins a session to the connection that started it.
"""

from __future__ import annotations

from collections.abc import Sequence

ZAP_ENDPOINT = "inproc://zeromq.zap.01"
ZAP_DOMAIN = "synchub"
ZAP_VERSION = b"1.0"
_CURVE_KEY_BYTES = 32


def zap_reply(request: Sequence[bytes]) -> list[bytes]:
    """The reply to one ZAP request (RFC 27): 200 with the CURVE key as user id, or 400."""
    request_id = request[1] if len(request) > 1 else b""
    if len(request) < 6 or request[0] != ZAP_VERSION:
        return [ZAP_VERSION, request_id, b"400", b"bad request", b"", b""]
    mechanism, credentials = request[5], request[6:]
    user_id = b""
    if mechanism == b"CURVE" and credentials and len(credentials[0]) == _CURVE_KEY_BYTES:
        user_id = credentials[0].hex().encode()
    return [ZAP_VERSION, request_id, b"200", b"OK", user_id, b""]
