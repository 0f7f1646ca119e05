"""The admin socket: the server thread, the request service (alone and on a real hub),
the client."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest.mock import Mock

import msgpack
import pykka
import pytest
import zmq

from hub.admin import (
    AdminServer,
    AdminService,
    admin_socket_path,
    ask_hub,
    check_keyid,
    keyid_fingerprint,
    permissions_from_flags,
)
from hub.config import Config, load_config
from hub.errors import AdminError, AdminSocketError, AdminUnavailable, FrontError, RequestError
from hub.identity import load_identity
from hub.pb import synchub_pb2 as pb
from hub.server import Hub
from hub.status import FrontCounters, HubInfo, HubStatus
from synchub_testing import (
    CLIENT,
    OTHER_CLIENT,
    STRANGER,
    RawClient,
    hub_config_text,
    operation,
    wait_until,
)

NOBODY = 65534


class Recorder:
    """A handler that records requests and answers each with its op."""

    def __init__(self) -> None:
        self.requests: list[Any] = []

    def __call__(self, request: Any) -> dict[str, Any]:
        self.requests.append(request)
        return {"ok": True, "echo": request}


@pytest.fixture
def context() -> Iterator[zmq.Context[Any]]:
    ctx: zmq.Context[Any] = zmq.Context()
    yield ctx
    ctx.term()


@pytest.fixture
def server(tmp_path: Path, context: zmq.Context[Any]) -> Iterator[tuple[AdminServer, Recorder]]:
    recorder = Recorder()
    admin = AdminServer(context, tmp_path / "data", recorder)
    admin.start()
    try:
        yield admin, recorder
    finally:
        admin.stop()


def raw_request(path: Path, frames: list[bytes], timeout: float = 5.0) -> Any:
    ctx: zmq.Context[Any] = zmq.Context()
    try:
        req = ctx.socket(zmq.REQ)
        req.setsockopt(zmq.LINGER, 0)
        req.connect(f"ipc://{path}")
        req.send_multipart(frames)
        assert req.poll(int(timeout * 1000)), "no answer from the admin socket"
        answer = msgpack.unpackb(req.recv(), raw=False)
        req.close()
        return answer
    finally:
        ctx.term()


# --- the server --------------------------------------------------------------------------------


def test_socket_is_private_to_the_owner(
    server: tuple[AdminServer, Recorder], tmp_path: Path
) -> None:
    admin, _ = server
    mode = os.stat(admin.path).st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "data").st_mode) == 0o700
    assert admin.path == tmp_path / "data" / "admin.sock"


def test_malformed_msgpack_gets_an_error_and_the_server_keeps_serving(
    server: tuple[AdminServer, Recorder],
) -> None:
    admin, recorder = server
    for garbage in (b"\xc1", b"\x92\x01", b"\x81\x01\x02", b"\x01\x02", b"\xdd" + b"\xff" * 4):
        answer = raw_request(admin.path, [garbage])
        assert answer["ok"] is False
        assert "malformed request" in answer["error"]
    answer = raw_request(admin.path, [b"one", b"two"])
    assert answer == {"ok": False, "error": "malformed request: expected exactly one frame"}
    assert recorder.requests == []
    assert raw_request(admin.path, [msgpack.packb({"op": "status"})]) == {
        "ok": True, "echo": {"op": "status"},
    }


def test_a_failing_handler_is_an_error_answer(tmp_path: Path, context: zmq.Context[Any]) -> None:
    def broken(_request: Any) -> dict[str, Any]:
        raise RuntimeError("boom")

    admin = AdminServer(context, tmp_path / "data", broken)
    admin.start()
    try:
        answer = raw_request(admin.path, [msgpack.packb({"op": "status"})])
        assert answer == {"ok": False, "error": "internal error: RuntimeError: boom"}
        assert raw_request(admin.path, [msgpack.packb({"op": "x"})])["ok"] is False
    finally:
        admin.stop()


def test_requests_from_another_uid_are_refused(tmp_path: Path, context: zmq.Context[Any]) -> None:
    recorder = Recorder()
    admin = AdminServer(context, tmp_path / "data", recorder, allowed_uid=os.getuid() + 1)
    admin.start()
    try:
        answer = raw_request(admin.path, [msgpack.packb({"op": "status"})])
        assert answer["ok"] is False
        assert answer["error"].startswith("refused")
        assert recorder.requests == []
    finally:
        admin.stop()


def _as_nobody(path: Path) -> dict[str, Any]:
    """In a forked child running as nobody: can it connect, and what does a request get?"""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        result: dict[str, Any] = {}
        try:
            os.close(read_fd)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                try:
                    probe.connect(str(path))
                    result["connect"] = "ok"
                except PermissionError:
                    result["connect"] = "denied"
            if result["connect"] == "ok":
                ctx: zmq.Context[Any] = zmq.Context()
                req = ctx.socket(zmq.REQ)
                req.setsockopt(zmq.LINGER, 0)
                req.connect(f"ipc://{path}")
                req.send(msgpack.packb({"op": "status"}))
                if req.poll(5000):
                    result["answer"] = msgpack.unpackb(req.recv(), raw=False)
                req.close()
                ctx.term()
        except BaseException as exc:
            result["failure"] = repr(exc)
        finally:
            os.write(write_fd, msgpack.packb(result))
            os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    return msgpack.unpackb(data, raw=False)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_other_users_cannot_connect_and_are_refused_if_the_mode_is_loosened(
    context: zmq.Context[Any],
) -> None:
    # pytest's own tmp folders are private to root; nobody must reach this one.
    base = Path(tempfile.mkdtemp(prefix="synchub-admin-"))
    try:
        os.chmod(base, 0o755)
        recorder = Recorder()
        admin = AdminServer(context, base / "data", recorder)
        admin.start()
        try:
            os.chmod(admin.path.parent, 0o755)  # the socket file's own mode must protect it
            assert _as_nobody(admin.path) == {"connect": "denied"}

            os.chmod(admin.path, 0o666)
            result = _as_nobody(admin.path)
            assert result["connect"] == "ok"
            assert result["answer"]["ok"] is False
            assert result["answer"]["error"].startswith("refused")
            assert recorder.requests == []
        finally:
            admin.stop()
    finally:
        shutil.rmtree(base)


def test_a_failure_to_bind_in_the_server_thread_is_raised_by_start(tmp_path: Path) -> None:
    dead: zmq.Context[Any] = zmq.Context()
    dead.term()
    admin = AdminServer(dead, tmp_path / "data", Recorder())
    with pytest.raises(AdminSocketError, match="cannot serve the admin socket") as caught:
        admin.start()
    assert isinstance(caught.value.__cause__, zmq.ZMQError)
    admin.stop()  # nothing left to stop, and no thread left behind


def test_stop_removes_the_socket_and_a_stale_one_is_replaced(
    tmp_path: Path, context: zmq.Context[Any]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(data / "admin.sock"))
    stale.close()  # the file stays behind, as after kill -9
    admin = AdminServer(context, data, Recorder())
    admin.start()
    try:
        assert ask_hub(data, "anything")["ok"] is True
    finally:
        admin.stop()
    assert not (data / "admin.sock").exists()


def test_a_second_server_on_the_same_data_dir_is_refused(
    server: tuple[AdminServer, Recorder], tmp_path: Path, context: zmq.Context[Any]
) -> None:
    second = AdminServer(context, tmp_path / "data", Recorder())
    with pytest.raises(AdminSocketError, match="two hubs cannot share"):
        second.start()
    assert ask_hub(tmp_path / "data", "still-first")["echo"] == {"op": "still-first"}


def test_a_path_too_long_for_a_unix_socket_is_refused(
    tmp_path: Path, context: zmq.Context[Any]
) -> None:
    deep = tmp_path / ("d" * 100)
    with pytest.raises(AdminSocketError, match="shorter data_dir"):
        AdminServer(context, deep, Recorder()).start()
    with pytest.raises(AdminUnavailable):
        ask_hub(deep, "status")


# --- the client --------------------------------------------------------------------------------


def test_client_without_a_hub_is_unavailable_at_once(tmp_path: Path) -> None:
    with pytest.raises(AdminUnavailable) as caught:
        ask_hub(tmp_path, "status")
    assert caught.value.listening is False


def test_client_treats_a_socket_left_by_a_killed_hub_as_no_hub(tmp_path: Path) -> None:
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(admin_socket_path(tmp_path)))
    stale.close()
    started = time.monotonic()
    with pytest.raises(AdminUnavailable, match="nothing listens") as caught:
        ask_hub(tmp_path, "status", timeout=5.0)
    assert caught.value.listening is False
    assert time.monotonic() - started < 1.0  # no waiting for an answer that cannot come


def test_client_tells_a_silent_hub_from_none(tmp_path: Path, context: zmq.Context[Any]) -> None:
    silent = context.socket(zmq.REP)
    silent.bind(f"ipc://{admin_socket_path(tmp_path)}")
    try:
        with pytest.raises(AdminUnavailable, match=r"did not answer within 0\.2s") as caught:
            ask_hub(tmp_path, "status", timeout=0.2)
        assert caught.value.listening is True
    finally:
        silent.close(linger=0)


def test_client_raises_the_hubs_error_line(server: tuple[AdminServer, Recorder]) -> None:
    admin, _ = server
    admin._handler = lambda request: {"ok": False, "error": "no such thing"}
    with pytest.raises(AdminError, match=r"^no such thing$"):
        ask_hub(admin.path.parent, "status")


# --- helpers shared with the CLI ---------------------------------------------------------------


def test_keyid_checks_and_fingerprint() -> None:
    assert check_keyid(CLIENT.keyid) == CLIENT.keyid
    non_canonical = "ed25519." + "A" * 42 + "B"
    for bad in ("ed25519.short", "rsa." + "A" * 43, CLIENT.keyid + "x", non_canonical):
        with pytest.raises(RequestError, match="malformed key id"):
            check_keyid(bad)
    groups = keyid_fingerprint(CLIENT.keyid).split(" ")
    assert len(groups) == 11
    assert "".join(groups) == CLIENT.keyid.removeprefix("ed25519.")


def test_permission_flags_group_by_type() -> None:
    assert permissions_from_flags(
        ["read_config:*", "read_operations:repo:nas", "read_config:!plan:secret"]
    ) == [
        {"type": "read_config", "scopes": ["*", "!plan:secret"]},
        {"type": "read_operations", "scopes": ["repo:nas"]},
    ]
    for bad in ("read_config", ":*", "read_config:"):
        with pytest.raises(RequestError, match="TYPE:SCOPE"):
            permissions_from_flags([bad])


# --- the status op -----------------------------------------------------------------------------

INFO = HubInfo(
    instance="hub-1", endpoint="tcp://127.0.0.1:7470", keyid=CLIENT.keyid,
    curve_public_key=None, config_path=None, data_dir="/srv/synchub", pid=42,
    started_ms=1_800_000_000_000,
)
COUNTERS = FrontCounters(
    sessions=3, sessions_started=9, pending_handshakes=1, pending_high_water=4,
    backlog_frames=2, backlog_bytes=300, refused=5, dropped=6,
)


def service_answering_status(status: Callable[[], HubStatus]) -> AdminService:
    unused = Mock(name="actors", side_effect=AssertionError("status asks no actor itself"))
    return AdminService(status=status, config=unused, oplog=unused, peers=unused, timeout=3)


def test_status_answers_the_snapshot_of_its_status_source() -> None:
    snapshot = HubStatus(
        info=INFO, uptime_seconds=61, operations=7, peers_known=2, peers_connected=1,
        authorized_clients=3, front=COUNTERS,
    )
    answer = service_answering_status(lambda: snapshot).handle({"op": "status"})
    assert answer == {
        "ok": True, "instance": "hub-1", "endpoint": "tcp://127.0.0.1:7470",
        "keyid": CLIENT.keyid, "curve_public_key": None, "config_path": None,
        "data_dir": "/srv/synchub", "pid": 42, "uptime_seconds": 61, "operations": 7,
        "peers_known": 2, "peers_connected": 1, "authorized_clients": 3,
    }


@pytest.mark.parametrize(
    ("failure", "error"),
    [
        (pykka.Timeout("slow"), "the hub did not answer within 3s"),
        (pykka.ActorDeadError("gone"), "the hub is stopping"),
    ],
    ids=["timeout", "stopping"],
)
def test_a_status_source_that_fails_is_an_error_answer(
    failure: Exception, error: str
) -> None:
    def failing() -> HubStatus:
        raise failure

    assert service_answering_status(failing).handle({"op": "status"}) == {
        "ok": False, "error": error,
    }


# --- the service on a real hub -----------------------------------------------------------------


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[tuple[Hub, Config]]:
    text = hub_config_text().replace(
        "heartbeat_interval = 10", 'heartbeat_interval = 10\nbind = "tcp://127.0.0.1:0"'
    )
    path = tmp_path / "hub.toml"
    path.write_text("# operators' notes stay\n" + text)
    config = load_config(path)
    running = Hub(config)
    try:
        running.start()
        yield running, config
    finally:
        running.stop()
    assert not admin_socket_path(config.data_dir).exists()


def test_status_peers_and_ops_from_a_running_hub(hub: tuple[Hub, Config]) -> None:
    running, config = hub
    assert stat.S_IMODE(config.data_dir.stat().st_mode) == 0o700  # the hub created it
    running.oplog.add([operation(0, modno=0, flow_id=0, message="first")]).get(timeout=5)
    status = ask_hub(config.data_dir, "status")
    snapshot = running.status()
    assert status["operations"] == snapshot.operations
    assert status["authorized_clients"] == snapshot.authorized_clients
    assert (status["instance"], status["pid"]) == (snapshot.info.instance, snapshot.info.pid)
    assert snapshot.front.sessions == 0
    assert status["instance"] == "hub-1"
    assert status["endpoint"] == running.endpoint
    assert status["pid"] == os.getpid()
    assert status["operations"] == 1
    assert status["authorized_clients"] == 3
    assert status["peers_known"] == 0

    running.peers.connected(CLIENT.keyid, "web1", "s1")
    peers = ask_hub(config.data_dir, "peers")["peers"]
    [state] = [pb.PeerState.FromString(raw) for raw in peers]
    assert state.peer_instance_id == "web1"
    assert state.state == pb.CONNECTION_STATE_CONNECTED

    answer = ask_hub(
        config.data_dir, "ops",
        selector=pb.OpSelector(instance_id="web1").SerializeToString(), limit=5,
    )
    [op] = [pb.Operation.FromString(raw) for raw in answer["operations"]]
    assert op.display_message == "first"
    none = ask_hub(
        config.data_dir, "ops", selector=pb.OpSelector(plan_id="other").SerializeToString()
    )
    assert none["operations"] == []


BAD_REQUESTS: list[tuple[dict[str, Any], str]] = [
    ({"op": "launch"}, "unknown op 'launch'"),
    ({"no_op": 1}, "unknown op None"),
    ({"op": "ops", "selector": "text"}, "'selector' must be the bytes"),
    ({"op": "ops", "selector": b"\xff\xff"}, "is not an OpSelector"),
    ({"op": "ops", "limit": 0}, "'limit' must be a whole number"),
    ({"op": "ops", "limit": True}, "'limit' must be a whole number"),
    ({"op": "ops", "newest_first": "yes"}, "'newest_first' must be true"),
    ({"op": "ops", "newest_first": False}, "pages go newest first"),
    ({"op": "ops", "before_id": 0}, "'before_id' must be a whole number"),
    ({"op": "ops", "selector": pb.OpSelector(ids=[1]).SerializeToString()},
     "selecting by 'ids' is not supported"),
    ({"op": "authorize", "keyid": "ed25519.nope", "instance_id": "x"}, "malformed key id"),
    ({"op": "authorize", "keyid": STRANGER.keyid}, "'instance_id' must be"),
    ({"op": "authorize", "keyid": STRANGER.keyid, "instance_id": "a b"}, "bad instance id"),
    (
        {"op": "authorize", "keyid": STRANGER.keyid, "instance_id": "x",
         "permissions": [{"type": "read_config", "scopes": ["host:x"]}]},
        "unknown scope 'host:x'",
    ),
    ({"op": "revoke", "keyid": STRANGER.keyid}, "no authorized client has keyid"),
    ({"op": "revoke"}, "'keyid' must be a non-empty string"),
]


def test_bad_requests_get_one_error_line_and_change_nothing(hub: tuple[Hub, Config]) -> None:
    _, config = hub
    assert config.path is not None
    before = config.path.read_bytes()
    for request, fragment in BAD_REQUESTS:
        answer = raw_request(admin_socket_path(config.data_dir), [msgpack.packb(request)])
        assert answer["ok"] is False, request
        assert fragment in answer["error"], (request, answer)
        assert "\n" not in answer["error"]
    assert ask_hub(config.data_dir, "status")["authorized_clients"] == 3
    assert config.path.read_bytes() == before


def test_authorize_writes_the_file_and_applies_live(hub: tuple[Hub, Config]) -> None:
    running, config = hub
    answer = ask_hub(
        config.data_dir, "authorize", keyid=STRANGER.keyid, instance_id="new1",
        permissions=[{"type": "read_config", "scopes": ["repo:nas"]}],
    )
    assert answer["created"] is True
    assert answer["client"]["keyid_verified"] is True
    live = running.config_actor.get().get(timeout=5).authorized_client(STRANGER.keyid)
    assert live.instance_id == "new1"
    assert config.path is not None
    text = config.path.read_text()
    assert text.startswith("# operators' notes stay\n")
    assert load_config(config.path).authorized_client(STRANGER.keyid) == live

    # Without permissions an existing client keeps the ones it has.
    again = ask_hub(config.data_dir, "authorize", keyid=STRANGER.keyid, instance_id="renamed")
    assert again["created"] is False
    assert again["client"]["permissions"] == [{"type": "read_config", "scopes": ["repo:nas"]}]


def test_revoke_ends_the_live_session_at_once(hub: tuple[Hub, Config]) -> None:
    running, config = hub
    assert running.identity is not None and running.endpoint is not None
    client = RawClient(running.endpoint, running.identity.curve.public)
    try:
        client.handshake(running.identity.signing.keyid, identity=OTHER_CLIENT, instance_id="db1")
        client.recv_action("send_config")
        client.recv_action("list_resources")
        answer = ask_hub(config.data_dir, "revoke", keyid=OTHER_CLIENT.keyid)
        assert answer["client"]["instance_id"] == "db1"
        error = client.recv_action("error", timeout=1.0)
        assert error.error.state == pb.CONNECTION_STATE_ERROR_AUTH
    finally:
        client.close()
    assert config.path is not None
    assert load_config(config.path).authorized_client(OTHER_CLIENT.keyid) is None
    wait_until(
        lambda: running.peers.get(OTHER_CLIENT.keyid).get(timeout=5).state
        != pb.CONNECTION_STATE_CONNECTED,
        what="the revoked peer to be marked down",
    )


def test_reload_reports_a_broken_file_and_keeps_running(hub: tuple[Hub, Config]) -> None:
    _, config = hub
    assert config.path is not None
    assert ask_hub(config.data_dir, "reload")["config_path"] == str(config.path)
    config.path.write_text(config.path.read_text() + "\n[hub.nonsense\n")
    with pytest.raises(AdminError, match="invalid TOML"):
        ask_hub(config.data_dir, "reload")
    assert ask_hub(config.data_dir, "status")["authorized_clients"] == 3


def test_a_second_hub_on_the_same_data_dir_refuses_to_start(hub: tuple[Hub, Config]) -> None:
    _, config = hub
    with pytest.raises(AdminSocketError, match="two hubs cannot share"):
        Hub(config).start()
    assert load_identity(config.data_dir) is not None


def test_a_hub_whose_port_is_taken_stops_everything_it_started(tmp_path: Path) -> None:
    taken = zmq.Context()
    holder = taken.socket(zmq.ROUTER)
    try:
        port = holder.bind_to_random_port("tcp://127.0.0.1")
        text = hub_config_text().replace(
            "heartbeat_interval = 10", f'heartbeat_interval = 10\nbind = "tcp://127.0.0.1:{port}"'
        )
        path = tmp_path / "hub.toml"
        path.write_text(text)
        hub = Hub(load_config(path))
        with pytest.raises(FrontError, match="no other hub uses the port"):
            hub.start()
        assert hub.front is None
        assert pykka.ActorRegistry.get_all() == []  # the actors it had started are stopped
        hub.stop()
    finally:
        holder.close(linger=0)
        taken.term()
