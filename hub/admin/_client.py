"""The admin socket's client: what the CLI uses to ask a running hub."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import zmq

from hub.admin._paths import admin_endpoint, admin_socket_path, path_too_long, probe
from hub.admin._server import decode, encode
from hub.errors import AdminError, AdminUnavailable, RequestError

log = logging.getLogger(__name__)


def ask_hub(
    data_dir: Path, op: str, *, timeout: float = 2.0, **fields: Any
) -> dict[str, Any]:
    """Send one request to the hub running on ``data_dir`` and return its answer.

    AdminUnavailable when no hub answers (``listening`` tells a silent hub from none),
    AdminError when the hub refused the request or answered with an error.
    """
    path = admin_socket_path(data_dir)
    if path_too_long(path):
        raise AdminUnavailable(f"the admin socket path {path} is too long to use")
    try:
        live = probe(path)
    except PermissionError as exc:
        raise AdminError(
            f"{path}: permission denied: run this as the user the hub runs as"
        ) from exc
    except OSError as exc:
        raise AdminUnavailable(f"{path}: {exc.strerror or exc}") from exc
    if not live:
        raise AdminUnavailable(f"no hub is running on {data_dir} (nothing listens on {path})")
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    try:
        req = context.socket(zmq.REQ)
        try:
            req.setsockopt(zmq.LINGER, 0)
            req.connect(f"ipc://{path}")
            req.send(encode({"op": op, **fields}))
            if not req.poll(int(timeout * 1000), zmq.POLLIN):
                raise AdminUnavailable(
                    f"the hub on {data_dir} did not answer within {timeout:g}s", listening=True
                )
            data = req.recv()
        finally:
            req.close(linger=0)
    finally:
        context.term()
    try:
        answer = decode(data)
    except RequestError as exc:
        raise AdminError(f"the hub sent a malformed answer: {exc}") from exc
    if not isinstance(answer, dict) or not isinstance(answer.get("ok"), bool):
        raise AdminError("the hub sent a malformed answer (no 'ok' field)")
    if not answer["ok"]:
        raise AdminError(str(answer.get("error") or "the hub refused the request"))
    return answer


def ask_running_hub(
    data_dir: Path, op: str, *, timeout: float = 2.0, **fields: Any
) -> dict[str, Any] | None:
    """The hub's answer, or None (logged at info level) when no hub answers.

    For reads that can fall back to the files: a hub that listens but stays
    silent is treated like no hub. AdminError passes through.
    """
    try:
        answer = ask_hub(data_dir, op, timeout=timeout, **fields)
    except AdminUnavailable as exc:
        log.info("%s", exc)
        return None
    log.info("%s: answered by the running hub over %s", op, admin_endpoint(data_dir))
    return answer
