"""The admin socket's server: one thread owns the REP socket."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import msgpack
import zmq

from hub.admin._paths import MAX_SOCKET_PATH_BYTES, admin_socket_path, claim_data_dir, path_too_long
from hub.errors import AdminSocketError, RequestError

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 1024 * 1024

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


class AdminServer:
    """Serves admin requests on ``ipc://<data_dir>/admin.sock``; start, then stop in a finally.

    ``handler`` gets each decoded request and returns the answer map; it runs in
    the server's thread. ``allowed_uid`` is who may ask (the hub's own uid).
    """

    def __init__(
        self,
        context: zmq.Context[Any],
        data_dir: Path,
        handler: Handler,
        *,
        allowed_uid: int | None = None,
    ) -> None:
        self._context = context
        self._data_dir = Path(data_dir)
        self._handler = handler
        self._allowed_uid = os.getuid() if allowed_uid is None else allowed_uid
        self.path = admin_socket_path(self._data_dir)
        self.endpoint = f"ipc://{self.path}"
        self._stopping = threading.Event()
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._thread: threading.Thread | None = None
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
        self._thread = threading.Thread(target=self._run, name="synchub-admin", daemon=False)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise AdminSocketError(f"the admin socket {self.path} was not ready in {timeout}s")
        if self._startup_error is not None:
            self._thread.join()
            raise AdminSocketError(
                f"cannot serve the admin socket {self.path}: {self._startup_error}"
            ) from self._startup_error
        return self.endpoint

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("the admin socket thread did not stop within %.0fs", timeout)
            self._thread = None

    def _bind(self) -> zmq.Socket[Any]:
        rep: zmq.Socket[Any] = self._context.socket(zmq.REP)
        try:
            rep.setsockopt(zmq.LINGER, 0)
            rep.setsockopt(zmq.MAXMSGSIZE, MAX_REQUEST_BYTES)
            rep.setsockopt(zmq.SNDTIMEO, 1000)
            rep.bind(self.endpoint)
            os.chmod(self.path, 0o600)
            self._inode = os.stat(self.path).st_ino
        except BaseException:
            rep.close(linger=0)
            raise
        return rep

    def _run(self) -> None:
        try:
            rep = self._bind()
        except (zmq.ZMQError, OSError) as exc:
            self._startup_error = exc
            self._ready.set()
            return
        self._ready.set()
        log.info("admin socket at %s", self.path)
        try:
            while not self._stopping.is_set():
                if rep.poll(100, zmq.POLLIN):
                    frames = rep.recv_multipart(copy=False)
                    reply = self._answer(frames)
                    try:
                        rep.send(encode(reply))
                    except zmq.Again:
                        log.warning("admin: an answer could not be delivered; dropped")
        except Exception:
            log.exception("the admin socket failed; admin commands will read files directly")
        finally:
            rep.close(linger=0)
            self._remove_socket_file()

    def _remove_socket_file(self) -> None:
        with contextlib.suppress(OSError):
            if os.stat(self.path).st_ino == self._inode:
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
