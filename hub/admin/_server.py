"""The admin socket's server: one thread owns the REP socket (a ``ThreadService``).

Who owns what: the server's thread owns the REP socket and the socket file it binds
(mode 0600, removed on stop if it is still the one it bound); each request is decoded
here, checked against the sender's uid, and answered by the handler (``AdminService``).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import msgpack
import zmq

from hub.admin._paths import MAX_SOCKET_PATH_BYTES, admin_socket_path, claim_data_dir, path_too_long
from hub.errors import AdminSocketError, RequestError, SynchubError
from hub.threads import ThreadService

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 1024 * 1024

Socket = zmq.Socket[bytes]
Handler = Callable[[Any], dict[str, Any]]


def _sender_uid(frame: zmq.Frame) -> int | None:
    """The sender's uid from libzmq's ``Peer-Address`` property ("addr:uid:gid:pid")."""
    try:
        address = frame.get("Peer-Address")
    except zmq.ZMQError:
        return None
    parts = str(address).rsplit(":", 3)
    if len(parts) != 4:
        return None
    try:
        return int(parts[1])
    except ValueError:
        return None


def encode(message: Mapping[str, Any]) -> bytes:
    packed: bytes = msgpack.packb(message, use_bin_type=True)
    return packed


def decode(data: bytes) -> Any:
    """The msgpack value in ``data``; RequestError when it is not one."""
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=True)
    except Exception as exc:
        raise RequestError(f"malformed request: not one msgpack value ({exc})") from exc


class AdminServer(ThreadService):
    """Serves admin requests on ``ipc://<data_dir>/admin.sock``; start, then stop in a finally.

    ``handler`` gets each decoded request and returns the answer map; it runs in
    the server's thread. ``allowed_uid`` is who may ask (the hub's own uid).
    """

    def __init__(
        self,
        context: zmq.Context[Socket],
        data_dir: Path,
        handler: Handler,
        *,
        allowed_uid: int | None = None,
    ) -> None:
        super().__init__(
            thread_name="synchub-admin",
            what="the admin socket thread",
            failure_note="admin commands will read files directly",
        )
        self._context = context
        self._data_dir = Path(data_dir)
        self._handler = handler
        self._allowed_uid = os.getuid() if allowed_uid is None else allowed_uid
        self.path = admin_socket_path(self._data_dir)
        self.endpoint = f"ipc://{self.path}"
        self._rep: Socket | None = None
        self._inode: int | None = None
        self._uid_unknown_logged = False

    def start(self, timeout: float = 10.0) -> str:
        """Bind and serve; return the endpoint. AdminSocketError if it cannot."""
        if path_too_long(self.path):
            raise AdminSocketError(
                f"the admin socket path {self.path} is longer than "
                f"{MAX_SOCKET_PATH_BYTES} bytes; use a shorter data_dir"
            )
        claim_data_dir(self._data_dir)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        return super().start(timeout)

    def _startup_timeout(self, timeout: float) -> SynchubError:
        return AdminSocketError(f"the admin socket {self.path} was not ready in {timeout}s")

    def _startup_failed(self, error: Exception) -> SynchubError:
        return AdminSocketError(f"cannot serve the admin socket {self.path}: {error}")

    def _open(self) -> str:
        rep = self._rep = self._context.socket(zmq.REP)
        rep.setsockopt(zmq.LINGER, 0)
        rep.setsockopt(zmq.MAXMSGSIZE, MAX_REQUEST_BYTES)
        rep.setsockopt(zmq.SNDTIMEO, 1000)
        rep.bind(self.endpoint)
        os.chmod(self.path, 0o600)
        self._inode = os.stat(self.path).st_ino
        log.info("admin socket at %s", self.path)
        return self.endpoint

    def _serve(self) -> None:
        rep = self._rep
        assert rep is not None
        while not self.stopping.is_set():
            if rep.poll(100, zmq.POLLIN):
                frames = rep.recv_multipart(copy=False)
                reply = self._answer(frames)
                try:
                    rep.send(encode(reply))
                except zmq.Again:
                    log.warning("admin: an answer could not be delivered; dropped")

    def _close(self) -> None:
        if self._rep is not None:
            self._rep.close(linger=0)
            self._rep = None
        with contextlib.suppress(OSError):
            if self._inode is not None and os.stat(self.path).st_ino == self._inode:
                self.path.unlink()

    def _answer(self, frames: list[zmq.Frame]) -> dict[str, Any]:
        uid = _sender_uid(frames[0])
        if uid is None:
            if not self._uid_unknown_logged:
                log.info("admin: sender uid unavailable; the socket's file mode protects it")
                self._uid_unknown_logged = True
        elif uid != self._allowed_uid:
            log.warning("admin: refused a request from uid %d", uid)
            return {
                "ok": False,
                "error": f"refused: the admin socket answers only uid {self._allowed_uid}",
            }
        if len(frames) != 1:
            return {"ok": False, "error": "malformed request: expected exactly one frame"}
        try:
            request = decode(frames[0].bytes)
        except RequestError as exc:
            return {"ok": False, "error": str(exc)}
        try:
            answer = self._handler(request)
            encode(answer)
        except Exception as exc:
            log.exception("admin: handler failed")
            return {"ok": False, "error": f"internal error: {type(exc).__name__}: {exc}"}
        return answer
