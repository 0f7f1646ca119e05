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

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pykka

from hub.admin._requests import (
    check_instance_id,
    check_keyid,
    client_summary,
    parse_permission_list,
)
from hub.config import AuthorizedClient, Config
from hub.errors import RequestError, SynchubError
from hub.pb import synchub_pb2 as pb
from hub.scopes import Permissions

log = logging.getLogger(__name__)

MAX_OPS_LIMIT = 100_000
ACTOR_TIMEOUT = 10.0

OPS = ("status", "peers", "ops", "authorize", "revoke", "reload")


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
