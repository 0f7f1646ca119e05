"""The admin socket: local requests to a running hub, and the client the CLI uses.

The hub serves ``ipc://<data_dir>/admin.sock`` from one thread that owns a REP
socket. Requests and answers are msgpack maps, one frame each:

    {"op": "status"}                                   hub identity, counts, uptime
    {"op": "peers"}                                    every PeerState
    {"op": "ops", "selector": <OpSelector bytes>, "limit": 50, "newest_first": true}
    {"op": "authorize", "keyid": ..., "instance_id": ..., "permissions": [...] | None}
    {"op": "revoke", "keyid": ...}
    {"op": "reload"}

Answers are ``{"ok": true, ...}`` or ``{"ok": false, "error": "<one line>"}``.
Protobuf messages travel as their serialized bytes (``peers``: list of PeerState,
``ops``: list of Operation), so the CLI prints them exactly as it prints what it
reads from the files, and fields this version does not know survive. A request
that is not msgpack, not a map, names an unknown op or has bad fields gets an
error answer; the server keeps serving.

Who may talk to it: the socket file is made mode 0600 right after bind (connecting
to a Unix socket needs write permission on it), and each request's sender uid,
which libzmq reads with SO_PEERCRED into the message's ``Peer-Address`` property,
must be the hub's own uid; a request from any other uid is refused. The uid check
also covers the moment between bind and chmod.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack
import pykka
import zmq

from hub.config import AuthorizedClient, Config
from hub.errors import SynchubError
from hub.identity import is_valid_keyid
from hub.pb import synchub_pb2 as pb
from hub.scopes import ID_PATTERN, Permissions, PermissionsError, parse_permissions

log = logging.getLogger(__name__)

ADMIN_SOCKET_NAME = "admin.sock"
MAX_REQUEST_BYTES = 1024 * 1024
MAX_OPS_LIMIT = 100_000
# sockaddr_un.sun_path holds 108 bytes including the terminating NUL.
MAX_SOCKET_PATH_BYTES = 107
ACTOR_TIMEOUT = 10.0

OPS = ("status", "peers", "ops", "authorize", "revoke", "reload")

Handler = Callable[[Any], dict[str, Any]]


class AdminError(SynchubError):
    """The running hub answered an admin request with an error, or refused the caller."""


class AdminUnavailable(SynchubError):
    """No hub answers on the admin socket.

    ``listening`` is True when something accepts connections on the socket but gave
    no answer in time (a hub that is busy or stuck), False when no hub runs there.
    """

    def __init__(self, message: str, *, listening: bool = False) -> None:
        super().__init__(message)
        self.listening = listening


class AdminSocketError(SynchubError):
    """The hub cannot serve its admin socket (another hub owns it, or bind failed)."""


class RequestError(SynchubError):
    """An admin request is malformed; its message is the answer's error line."""


def admin_socket_path(data_dir: Path) -> Path:
    return Path(os.path.abspath(data_dir)) / ADMIN_SOCKET_NAME


def admin_endpoint(data_dir: Path) -> str:
    return f"ipc://{admin_socket_path(data_dir)}"


def _path_too_long(path: Path) -> bool:
    return len(os.fsencode(path)) > MAX_SOCKET_PATH_BYTES


def _probe(path: Path) -> bool:
    """True if a process accepts connections on the Unix socket at ``path``.

    False when nothing listens there (no file, or a file left by a stopped hub).
    PermissionError when the caller may not connect to it.
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError):
            return False
        except OSError as exc:
            if exc.errno in (errno.ENOTSOCK, errno.ECONNREFUSED, errno.ENOENT):
                return False
            raise
    return True


def check_no_hub_serving(data_dir: Path) -> None:
    """AdminSocketError if a hub already serves ``data_dir`` (its admin socket answers)."""
    path = admin_socket_path(data_dir)
    if _path_too_long(path):
        return
    try:
        live = _probe(path)
    except PermissionError as exc:
        raise AdminSocketError(
            f"{path} exists and belongs to another user: stop the hub using it, or remove "
            "the file if none runs"
        ) from exc
    except OSError:
        live = False  # not a socket we can use; binding replaces it or says why not
    if live:
        raise AdminSocketError(
            f"another hub already runs on data_dir {data_dir} (its admin socket {path} "
            "accepts connections): two hubs cannot share a data_dir"
        )


def claim_data_dir(data_dir: Path) -> None:
    """Before a hub starts: create ``data_dir`` private (0700) if it is missing, and
    refuse if another hub already serves it."""
    if not data_dir.exists():
        data_dir.mkdir(mode=0o700, parents=True)
    check_no_hub_serving(data_dir)


# --- keyids, fingerprints, permissions: shared by the CLI and the server ------------------------


def check_keyid(text: str) -> str:
    """``text`` if it is a well-formed key id; RequestError saying what one looks like."""
    expected = (
        "expected 'ed25519.' followed by 43 base64url characters, as `synchub id` "
        "prints on the client"
    )
    if not is_valid_keyid(text):
        raise RequestError(f"malformed key id {text!r}: {expected}")
    encoded = text.removeprefix("ed25519.")
    raw = base64.urlsafe_b64decode(encoded + "=")
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != encoded:
        raise RequestError(f"malformed key id {text!r}: its last character is not canonical")
    return text


def check_instance_id(text: str) -> str:
    if not ID_PATTERN.fullmatch(text):
        raise RequestError(
            f"bad instance id {text!r}: use letters, digits, '_', '.' or '-'"
        )
    return text


def keyid_fingerprint(keyid: str) -> str:
    """The key id's 43 characters in groups of four, easy to read aloud and compare."""
    body = keyid.removeprefix("ed25519.")
    return " ".join(body[i : i + 4] for i in range(0, len(body), 4))


def short_keyid(keyid: str, chars: int = 12) -> str:
    body = keyid.removeprefix("ed25519.")
    return body[:chars] if body else "-"


def permissions_from_flags(flags: tuple[str, ...] | list[str]) -> list[dict[str, Any]]:
    """``TYPE:SCOPE`` flags grouped by type, in order of first appearance (config form)."""
    grouped: dict[str, list[str]] = {}
    for flag in flags:
        kind, sep, scope = flag.partition(":")
        if not sep or not kind or not scope:
            raise RequestError(
                f"bad --perm {flag!r}: expected TYPE:SCOPE, e.g. read_config:* or "
                "read_operations:repo:nas"
            )
        grouped.setdefault(kind, []).append(scope)
    return [{"type": kind, "scopes": scopes} for kind, scopes in grouped.items()]


def parse_permission_list(raw: object) -> Permissions:
    try:
        return parse_permissions(raw)
    except PermissionsError as exc:
        raise RequestError(f"bad permissions: {exc}") from exc


def client_summary(client: AuthorizedClient) -> dict[str, Any]:
    return {
        "instance_id": client.instance_id,
        "keyid": client.keyid,
        "keyid_verified": client.keyid_verified,
        "permissions": client.permissions.to_toml(),
    }


# --- the service: what each request does ------------------------------------------------------


@dataclass(frozen=True)
class HubInfo:
    instance: str
    endpoint: str
    keyid: str
    curve_public_key: str | None
    config_path: str | None
    data_dir: str
    pid: int
    started_ms: int


def _text_field(request: Mapping[str, Any], name: str) -> str:
    value = request.get(name)
    if not isinstance(value, str) or not value:
        raise RequestError(f"{request.get('op')}: {name!r} must be a non-empty string")
    return value


class AdminService:
    """Answers admin requests by asking the hub's actors, each ask with a timeout.

    ``handle`` never raises: every failure becomes an ``{"ok": false}`` answer.
    """

    def __init__(
        self,
        *,
        info: HubInfo,
        config: Any,
        oplog: Any,
        peers: Any,
        timeout: float = ACTOR_TIMEOUT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._info = info
        self._config = config
        self._oplog = oplog
        self._peers = peers
        self._timeout = timeout
        self._clock = clock

    def handle(self, request: Any) -> dict[str, Any]:
        try:
            if not isinstance(request, dict):
                raise RequestError("a request is a map with an 'op' key")
            op = request.get("op")
            handler = getattr(self, f"_op_{op}", None) if op in OPS else None
            if handler is None:
                raise RequestError(f"unknown op {op!r}; expected one of: {', '.join(OPS)}")
            answer: dict[str, Any] = handler(request)
        except SynchubError as exc:
            return {"ok": False, "error": str(exc)}
        except pykka.Timeout:
            return {"ok": False, "error": f"the hub did not answer within {self._timeout:g}s"}
        except pykka.ActorDeadError:
            return {"ok": False, "error": "the hub is stopping"}
        except Exception as exc:
            log.exception("admin request failed")
            return {"ok": False, "error": f"internal error: {type(exc).__name__}: {exc}"}
        return {"ok": True, **answer}

    def _ask(self, future: Any) -> Any:
        return future.get(timeout=self._timeout)

    def _op_status(self, _request: Mapping[str, Any]) -> dict[str, Any]:
        config: Config = self._ask(self._config.get())
        states: list[pb.PeerState] = self._ask(self._peers.list())
        operations: int = self._ask(self._oplog.count())
        info = self._info
        return {
            "instance": info.instance,
            "endpoint": info.endpoint,
            "keyid": info.keyid,
            "curve_public_key": info.curve_public_key,
            "config_path": info.config_path,
            "data_dir": info.data_dir,
            "pid": info.pid,
            "uptime_seconds": max(0, int(self._clock() - info.started_ms / 1000)),
            "operations": operations,
            "peers_known": len(states),
            "peers_connected": sum(
                1 for s in states if s.state == pb.CONNECTION_STATE_CONNECTED
            ),
            "authorized_clients": len(config.authorized_clients),
        }

    def _op_peers(self, _request: Mapping[str, Any]) -> dict[str, Any]:
        states: list[pb.PeerState] = self._ask(self._peers.list())
        return {"peers": [s.SerializeToString() for s in states]}

    def _op_ops(self, request: Mapping[str, Any]) -> dict[str, Any]:
        selector = pb.OpSelector()
        raw = request.get("selector", b"")
        if not isinstance(raw, bytes):
            raise RequestError("ops: 'selector' must be the bytes of an OpSelector")
        try:
            selector.ParseFromString(raw)
        except Exception as exc:
            raise RequestError(f"ops: 'selector' is not an OpSelector: {exc}") from exc
        limit = request.get("limit", 50)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 0 < limit <= MAX_OPS_LIMIT:
            raise RequestError(f"ops: 'limit' must be a whole number 1-{MAX_OPS_LIMIT}")
        newest_first = request.get("newest_first", True)
        if not isinstance(newest_first, bool):
            raise RequestError("ops: 'newest_first' must be true or false")
        found: tuple[pb.Operation, ...] = self._ask(
            self._oplog.query(selector, limit=limit, newest_first=newest_first)
        )
        return {"operations": [op.SerializeToString() for op in found]}

    def _op_authorize(self, request: Mapping[str, Any]) -> dict[str, Any]:
        keyid = check_keyid(_text_field(request, "keyid"))
        instance_id = check_instance_id(_text_field(request, "instance_id"))
        verified = request.get("verified", True)
        if not isinstance(verified, bool):
            raise RequestError("authorize: 'verified' must be true or false")
        current: Config = self._ask(self._config.get())
        existing = current.authorized_client(keyid)
        raw_permissions = request.get("permissions")
        if raw_permissions is None:
            permissions = existing.permissions if existing is not None else Permissions()
        else:
            permissions = parse_permission_list(raw_permissions)
        client = AuthorizedClient(
            instance_id=instance_id, keyid=keyid, keyid_verified=verified, permissions=permissions
        )
        updated: Config = self._ask(self._config.authorize(client))
        log.info("admin: authorized %s as %s", keyid, instance_id)
        return {
            "client": client_summary(client),
            "created": existing is None,
            "config_path": str(updated.path) if updated.path else None,
        }

    def _op_revoke(self, request: Mapping[str, Any]) -> dict[str, Any]:
        keyid = check_keyid(_text_field(request, "keyid"))
        current: Config = self._ask(self._config.get())
        existing = current.authorized_client(keyid)
        updated: Config = self._ask(self._config.revoke(keyid))
        log.info("admin: revoked %s", keyid)
        return {
            "client": client_summary(existing) if existing is not None else None,
            "config_path": str(updated.path) if updated.path else None,
        }

    def _op_reload(self, _request: Mapping[str, Any]) -> dict[str, Any]:
        config: Config = self._ask(self._config.reload())
        return {"config_path": str(config.path) if config.path else None}


# --- the server: one thread owns the REP socket --------------------------------------------------


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
        if _path_too_long(self.path):
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


# --- the client --------------------------------------------------------------------------------


def ask_hub(
    data_dir: Path, op: str, *, timeout: float = 2.0, **fields: Any
) -> dict[str, Any]:
    """Send one request to the hub running on ``data_dir`` and return its answer.

    AdminUnavailable when no hub answers (``listening`` tells a silent hub from none),
    AdminError when the hub refused the request or answered with an error.
    """
    path = admin_socket_path(data_dir)
    if _path_too_long(path):
        raise AdminUnavailable(f"the admin socket path {path} is too long to use")
    try:
        live = _probe(path)
    except PermissionError as exc:
        raise AdminError(
            f"{path}: permission denied: run this as the user the hub runs as"
        ) from exc
    except OSError as exc:
        raise AdminUnavailable(f"{path}: {exc.strerror or exc}") from exc
    if not live:
        raise AdminUnavailable(f"no hub is running on {data_dir} (nothing listens on {path})")
    context: zmq.Context[Any] = zmq.Context()
    try:
        req: zmq.Socket[Any] = context.socket(zmq.REQ)
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
