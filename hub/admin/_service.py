"""The admin socket: local requests to a running hub, and the client the CLI uses.

The hub serves ``ipc://<data_dir>/admin.sock`` from one thread that owns a REP
socket. Requests and answers are msgpack maps, one frame each:

    {"op": "status"}                                   hub identity, counts, uptime
    {"op": "peers"}                                    every PeerState
    {"op": "ops", "selector": <OpSelector bytes>, "limit": 50, "before_id": N | None}
                                                       a page of operations, newest first
    {"op": "authorize", "keyid": ..., "instance_id": ..., "permissions": [...] | None}
    {"op": "revoke", "keyid": ...}
    {"op": "reload"}
    {"op": "logs", "op_id": N, "offset": 0, "max_bytes": 1048576}   part of a job's log
    {"op": "pending"}                                  keys refused after a valid PROOF

Answers are ``{"ok": true, ...}`` or ``{"ok": false, "error": "<one line>"}``.
``ops`` answers a page (``_pages``): at most ``limit`` operations below ``before_id``
and about ``ANSWER_MAX_BYTES`` (4 MiB) of them, read through an OplogReader of the
admin thread's own (no actor is asked), with ``next_before_id`` for the next page
(None when the listing is complete); the selector may name peer_instance_id,
instance_id, repo_guid and plan_id.
``logs`` names the operation by the hub's id: the hub's own job's log is read from
its data_dir; a client's is asked of that client's live session (``actors._logs``),
waiting at most ``LOG_WAIT`` seconds, and comes back as ``data`` (bytes from
``offset``), ``log_size``, ``log_start`` (the first offset still kept) and
``complete``, offsets being positions in the job's whole output.
``pending`` answers ``pending`` (rows of ``_pending.pending_row``, most recent first),
``max_keys`` and ``max_age_seconds`` (the bounds of the table the PeerStateActor keeps).
``status`` answers from the hub's status snapshot (``hub.status.HubStatus``, built
by the source the hub passes in); the other ops ask the actors themselves.
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
from typing import Any, TypeVar

import pykka

from actors import (
    MAX_PENDING_KEYS,
    PENDING_MAX_AGE,
    ConfigProxy,
    FetchLog,
    LogReply,
    OplogProxy,
    PeerStateProxy,
)
from hub.admin._limits import ACTOR_TIMEOUT, LOG_WAIT, MAX_OPS_LIMIT, OPS
from hub.admin._pages import query_for, read_page
from hub.admin._pending import pending_rows
from hub.admin._requests import (
    check_instance_id,
    check_keyid,
    client_summary,
    parse_permission_list,
)
from hub.config import AuthorizedClient
from hub.errors import LogFetchError, LogUnavailable, RequestError, SynchubError
from hub.pb import synchub_pb2 as pb
from hub.protocol import LOG_REQUEST_MAX_BYTES, LogAnswer, LogQuery
from hub.scopes import Permissions
from hub.status import HubStatus, StatusSource
from hub.store import LocalLogs, OplogReader

log = logging.getLogger(__name__)

T = TypeVar("T")

_RUNNING = frozenset({pb.STATUS_PENDING, pb.STATUS_INPROGRESS})

Answer = dict[str, Any]
OpHandler = Callable[[Mapping[str, Any]], Answer]


def _whole_field(request: Mapping[str, Any], name: str, default: int | None,
                 low: int, high: int) -> int:
    value = request.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise RequestError(f"{request.get('op')}: {name!r} must be a whole number {low}-{high}")
    return value


def _text_field(request: Mapping[str, Any], name: str) -> str:
    value = request.get(name)
    if not isinstance(value, str) or not value:
        raise RequestError(f"{request.get('op')}: {name!r} must be a non-empty string")
    return value


class AdminService:
    """Answers admin requests by asking the hub's actors, each ask with a timeout.

    ``status`` builds the hub's status snapshot (hub.server's ``HubStatusSource``);
    ``handle`` never raises: every failure becomes an ``{"ok": false}`` answer.
    """

    def __init__(
        self,
        *,
        status: StatusSource,
        config: ConfigProxy,
        oplog: OplogProxy,
        peers: PeerStateProxy,
        timeout: float = ACTOR_TIMEOUT,
        local_logs: LocalLogs | None = None,
        log_wait: float = LOG_WAIT,
        reader_factory: Callable[[], OplogReader] | None = None,
    ) -> None:
        self._status = status
        self._config = config
        self._oplog = oplog
        self._peers = peers
        self._timeout = timeout
        self._local_logs = local_logs
        self._log_wait = log_wait
        self._reader_factory = reader_factory
        self._ops: Mapping[str, OpHandler] = {
            "status": self._op_status,
            "peers": self._op_peers,
            "ops": self._op_ops,
            "authorize": self._op_authorize,
            "revoke": self._op_revoke,
            "reload": self._op_reload,
            "logs": self._op_logs,
            "pending": self._op_pending,
        }
        assert tuple(self._ops) == OPS

    def handle(self, request: Any) -> Answer:
        try:
            if not isinstance(request, dict):
                raise RequestError("a request is a map with an 'op' key")
            op = request.get("op")
            handler = self._ops.get(op) if isinstance(op, str) else None
            if handler is None:
                raise RequestError(f"unknown op {op!r}; expected one of: {', '.join(OPS)}")
            answer = handler(request)
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

    def _ask(self, future: pykka.Future[T]) -> T:
        return future.get(timeout=self._timeout)

    def _op_status(self, _request: Mapping[str, Any]) -> Answer:
        return status_answer(self._status())

    def _op_peers(self, _request: Mapping[str, Any]) -> Answer:
        states, holders = self._peers.list(), self._peers.holders()
        return {
            "peers": [s.SerializeToString() for s in self._ask(states)],
            "holders": self._ask(holders),
        }

    def _op_ops(self, request: Mapping[str, Any]) -> Answer:
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
        if request.get("newest_first", True) is not True:
            raise RequestError(
                "ops: 'newest_first' must be true: pages go newest first (by 'before_id')"
            )
        before = request.get("before_id")
        if before is not None:
            before = _whole_field(request, "before_id", None, 1, 2**63 - 1)
        if self._reader_factory is None:
            raise RequestError("ops: this hub has no oplog reader")
        reader = self._reader_factory()
        try:
            page = read_page(reader, query_for(selector, limit, before))
        finally:
            reader.close()
        return {"operations": list(page.operations), "next_before_id": page.next_before_id}

    def _op_authorize(self, request: Mapping[str, Any]) -> Answer:
        keyid = check_keyid(_text_field(request, "keyid"))
        instance_id = check_instance_id(_text_field(request, "instance_id"))
        verified = request.get("verified", True)
        if not isinstance(verified, bool):
            raise RequestError("authorize: 'verified' must be true or false")
        current = self._ask(self._config.get())
        existing = current.authorized_client(keyid)
        raw_permissions = request.get("permissions")
        if raw_permissions is None:
            permissions = existing.permissions if existing is not None else Permissions()
        else:
            permissions = parse_permission_list(raw_permissions)
        client = AuthorizedClient(
            instance_id=instance_id, keyid=keyid, keyid_verified=verified, permissions=permissions
        )
        updated = self._ask(self._config.authorize(client))
        log.info("admin: authorized %s as %s", keyid, instance_id)
        return {
            "client": client_summary(client),
            "created": existing is None,
            "config_path": str(updated.path) if updated.path else None,
        }

    def _op_revoke(self, request: Mapping[str, Any]) -> Answer:
        keyid = check_keyid(_text_field(request, "keyid"))
        current = self._ask(self._config.get())
        existing = current.authorized_client(keyid)
        updated = self._ask(self._config.revoke(keyid))
        log.info("admin: revoked %s", keyid)
        return {
            "client": client_summary(existing) if existing is not None else None,
            "config_path": str(updated.path) if updated.path else None,
        }

    def _op_reload(self, _request: Mapping[str, Any]) -> Answer:
        config = self._ask(self._config.reload())
        return {"config_path": str(config.path) if config.path else None}

    def _op_pending(self, _request: Mapping[str, Any]) -> Answer:
        keys_answer, config_answer = self._peers.pending(), self._config.get()
        keys, config = self._ask(keys_answer), self._ask(config_answer)
        return {
            "pending": pending_rows(config, keys),
            "max_keys": MAX_PENDING_KEYS, "max_age_seconds": PENDING_MAX_AGE,
        }

    def _op_logs(self, request: Mapping[str, Any]) -> Answer:
        op_id = _whole_field(request, "op_id", None, 1, 2**63 - 1)
        offset = _whole_field(request, "offset", 0, 0, 2**63 - 1)
        max_bytes = _whole_field(request, "max_bytes", LOG_REQUEST_MAX_BYTES, 1,
                                 LOG_REQUEST_MAX_BYTES)
        op = self._ask(self._oplog.get(op_id))
        if op is None:
            raise RequestError(f"logs: no operation {op_id} on this hub (see `synchub ops`)")
        if op.original_instance_keyid:
            instance, answer = self._client_log(op, LogQuery(op.original_id, offset, max_bytes))
        else:
            instance, answer = op.instance_id, self._own_log(op, offset, max_bytes)
        return {
            "instance": instance, "offset": answer.offset, "data": answer.data,
            "log_size": answer.log_size, "log_start": answer.log_start,
            "complete": answer.complete,
        }

    def _own_log(self, op: pb.Operation, offset: int, max_bytes: int) -> LogAnswer:
        """The log of one of the hub's own jobs, read from its data_dir."""
        if self._local_logs is None or not op.logref:
            raise LogFetchError(f"operation {op.id} of this hub has no log it keeps")
        finished = op.status not in _RUNNING
        total = op.output_size_bytes if finished else 0
        try:
            part = self._local_logs.read_output(op.logref, offset, max_bytes, total=total)
        except LogUnavailable as exc:
            raise LogFetchError(f"operation {op.id} of this hub: {exc}") from exc
        complete = finished and part.offset + len(part.data) >= part.size
        return LogAnswer(offset=part.offset, data=part.data, log_size=part.size,
                         complete=complete, log_start=part.start)

    def _client_log(self, op: pb.Operation, query: LogQuery) -> tuple[str, LogAnswer]:
        """Part of a client's job log, asked of the client's live session."""
        keyid = op.original_instance_keyid
        state_answer, session_answer = self._peers.get(keyid), self._peers.live_session(keyid)
        state, session = self._ask(state_answer), self._ask(session_answer)
        instance = (state.peer_instance_id if state is not None else "") or (
            op.peer_instance_id or keyid
        )
        reply = LogReply()
        try:
            if session is None:
                raise pykka.ActorDeadError(keyid)
            session.tell(FetchLog(query, reply))
        except pykka.ActorDeadError as exc:
            holder = self._ask(self._peers.holders()).get(keyid)
            if holder:  # a hub of the same cluster holds it (this one's just ended)
                raise LogFetchError(
                    f"client {instance} is connected to hub {holder}, not this one: run "
                    f"`synchub logs {op.id}` on that hub (`synchub peers` names each "
                    "client's hub)"
                ) from exc
            raise LogFetchError(_offline(instance, state)) from exc
        answer = reply.wait(self._log_wait)
        if not answer.ok:
            raise LogFetchError(_refused(instance, op.id, answer))
        return instance, answer


def _offline(instance: str, state: pb.PeerState | None) -> str:
    heard = ""
    if state is not None and state.last_heartbeat_millis > 0:
        heard = f", last heard {_ago(time.time() - state.last_heartbeat_millis / 1000)}"
    return (
        f"client {instance} is not connected{heard}: a job's log is fetched from its client "
        "while the client's agent is connected (a failed job's last output is in "
        "`synchub ops --json`, error_output)"
    )


def _ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def _refused(instance: str, op_id: int, answer: LogAnswer) -> str:
    status, detail = answer.status, answer.message or "no reason given"
    if status == pb.LOG_STATUS_DENIED:
        return (
            f"client {instance} refused the log of operation {op_id}: {detail} (the client "
            "must grant this hub read_logs in its [[known_hosts]] entry)"
        )
    if status == pb.LOG_STATUS_NOT_AVAILABLE:
        return f"client {instance} has no log for operation {op_id}: {detail}"
    if status == pb.LOG_STATUS_NOT_FOUND:
        return f"client {instance} no longer has operation {op_id}: {detail}"
    if status == pb.LOG_STATUS_BUSY:
        return f"client {instance} is busy answering other log requests: try again ({detail})"
    return f"client {instance} answered the log request with {answer.status_name}: {detail}"


def status_answer(status: HubStatus) -> Answer:
    """The ``status`` op's answer fields (the CLI's ``synchub status`` reads them)."""
    info = status.info
    return {
        "instance": info.instance,
        "endpoint": info.endpoint,
        "keyid": info.keyid,
        "curve_public_key": info.curve_public_key,
        "config_path": info.config_path,
        "data_dir": info.data_dir,
        "pid": info.pid,
        "uptime_seconds": status.uptime_seconds,
        "operations": status.operations,
        "peers_known": status.peers_known,
        "peers_connected": status.peers_connected,
        "authorized_clients": status.authorized_clients,
    }
