"""Test support shared by several tiers: fixed identities, fakes, futures.

The client frame builders (``client_hello``, ``client_proof``,
``send_operations_frame``, ``deleted_operations_frame``, ``diff_frame``,
``heartbeat_frame``) and ``RawClient`` are thin wrappers over hub.protocol, so
the tests speak exactly what the agent speaks.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import queue
import select
import signal
import socket
import subprocess
import sys
import textwrap
import time
import types
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from unittest.mock import Mock, NonCallableMock

import pykka
import zmq

from hub import protocol
from hub.bench.relay import CountingRelay
from hub.config import Config, load_config
from hub.identity import SigningIdentity
from hub.pb import synchub_pb2 as pb
from hub.protocol import (
    ClientHandshake,
    DiffSelection,
    HubPin,
    OperationKind,
    deleted_item,
    diff_item,
    encode_item,
    operations_item,
)

HUB = SigningIdentity.from_seed(bytes(range(32)))
CLIENT = SigningIdentity.from_seed(bytes(range(32, 64)))
OTHER_CLIENT = SigningIdentity.from_seed(bytes(range(64, 96)))
UNVERIFIED = SigningIdentity.from_seed(bytes(range(96, 128)))
STRANGER = SigningIdentity.from_seed(bytes(range(128, 160)))
HUB_INSTANCE = "hub-1"


def answered(value: Any) -> pykka.Future[Any]:
    future: pykka.Future[Any] = pykka.ThreadingFuture()
    future.set(value)
    return future


def failed(exc: BaseException) -> pykka.Future[Any]:
    future: pykka.Future[Any] = pykka.ThreadingFuture()
    try:
        raise exc
    except BaseException:
        future.set_exception(sys.exc_info())
    return future


class _ProxyMock(NonCallableMock):
    """What ``autospec_proxy`` returns: each method is made when first used."""

    def _get_child_mock(self, /, **kw: Any) -> Any:
        name = kw.get("name")
        method = (inspect.getattr_static(self._spec_class, name, None)
                  if isinstance(name, str) else None)
        if not inspect.isfunction(method):
            return super()._get_child_mock(**kw)
        bound = types.MethodType(method, object())  # the actor method as called: no self
        asked = _MethodMock(bound)
        asked.attach_mock(_MethodMock(bound, return_value=None), "defer")
        self.attach_mock(asked, name)  # recorded as "name" and "name.defer"
        return asked


class _MethodMock(Mock):
    """A proxy method: arguments its actor method does not take are a TypeError, as with
    autospec. It returns a plain mock unless the test gives it a future."""

    def __init__(self, method: Callable[..., Any], /, **kwargs: Any) -> None:
        super().__init__(spec=method, **kwargs)
        self.__dict__["_signature"] = inspect.signature(method)

    def __call__(self, /, *args: Any, **kwargs: Any) -> Any:
        self.__dict__["_signature"].bind(*args, **kwargs)
        return super().__call__(*args, **kwargs)

    def _get_child_mock(self, /, **kw: Any) -> Any:
        return Mock(**kw)


def autospec_proxy(proxy_class: type[Any]) -> Any:
    """An autospec mock of a typed actor proxy (``ConfigProxy``, ``OplogProxy``...).

    Each method takes exactly the actor method's arguments (TypeError otherwise; a
    name the proxy lacks is an AttributeError) and returns what the test gives it, a
    future (``answered``, ``failed``). ``method.defer``, which ``actors._calls.tell``
    calls, is specced the same way, returns None and is recorded in the proxy's
    ``method_calls`` as ``method.defer``. The checks are ``create_autospec``'s, but a
    method is made when first used and as a plain Mock: autospeccing whole proxy
    classes (two dozen MagicMocks each, for the few methods a test touches) doubled
    the CPU time of the protocol fuzz, which builds a session per example.
    """
    return _ProxyMock(spec=proxy_class, name=proxy_class.__name__)


def hub_config_text(*, client_scopes: str = '["*", "!repo:secret"]', extra: str = "") -> str:
    return textwrap.dedent(
        f"""\
        instance = "{HUB_INSTANCE}"
        data_dir = "data"

        [hub]
        heartbeat_interval = 10
        handshake_timeout = 5

        [[repos]]
        id = "nas"
        guid = "guid-nas"
        uri = "sftp:backup@nas:/srv/restic"

        [[repos]]
        id = "secret"
        guid = "guid-secret"
        uri = "s3:vault"

        [[plans]]
        id = "nightly"
        repo = "nas"
        paths = ["/home"]

        [[authorized_clients]]
        instance_id = "web1"
        keyid = "{CLIENT.keyid}"
        keyid_verified = true
        permissions = [ {{ type = "read_config", scopes = {client_scopes} }} ]

        [[authorized_clients]]
        instance_id = "db1"
        keyid = "{OTHER_CLIENT.keyid}"
        keyid_verified = true
        permissions = [ {{ type = "read_config", scopes = ["*"] }} ]

        [[authorized_clients]]
        instance_id = "mail1"
        keyid = "{UNVERIFIED.keyid}"
        keyid_verified = false
        """
    ) + extra


def write_config(directory: Path, text: str) -> Config:
    path = directory / "synchub.toml"
    path.write_text(text)
    return load_config(path)


class FakeOutbox:
    """Records what a session sends; stands in for the pipe to the front."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.done = 0
        self.authenticated_as: list[str] = []
        self.closed = False

    def send(self, frames: Sequence[bytes]) -> None:
        assert not self.closed, "a session sent after closing its outbox"
        self.frames.extend(frames)

    def frame_done(self) -> None:
        self.done += 1

    def authenticated(self, keyid: str) -> None:
        self.authenticated_as.append(keyid)

    def close(self) -> None:
        self.closed = True

    @property
    def items(self) -> list[pb.SyncStreamItem]:
        return [protocol.decode_item(frame) for frame in self.frames]

    def take(self) -> list[pb.SyncStreamItem]:
        items = self.items
        self.frames.clear()
        return items


def client_handshake(
    identity: SigningIdentity = CLIENT,
    instance_id: str = "web1",
    nonce: bytes | None = b"\x07" * 32,
    hub_keyid: str = HUB.keyid,
    hub_instance: str = HUB_INSTANCE,
) -> ClientHandshake:
    """A client's side of one handshake with the test hub (a fixed nonce unless None)."""
    return ClientHandshake(identity, instance_id, HubPin(hub_instance, hub_keyid), nonce)


def client_hello(
    identity: SigningIdentity = CLIENT, instance_id: str = "web1", nonce: bytes = b"\x07" * 32
) -> bytes:
    return client_handshake(identity, instance_id, nonce).hello_frame()


def client_proof(
    challenge: pb.SyncStreamItem,
    identity: SigningIdentity = CLIENT,
    instance_id: str = "web1",
    nonce: bytes = b"\x07" * 32,
    hub_keyid: str = HUB.keyid,
) -> bytes:
    return client_handshake(identity, instance_id, nonce, hub_keyid).proof_frame(
        challenge.handshake
    )


def operation(op_id: int, *, modno: int = 1, flow_id: int = 0, repo_guid: str = "guid-nas",
              message: str = "") -> pb.Operation:
    return pb.Operation(
        id=op_id,
        modno=modno,
        flow_id=flow_id or op_id,
        repo_guid=repo_guid,
        plan_id="nightly",
        instance_id="web1",
        status=pb.STATUS_SUCCESS,
        display_message=message or f"op {op_id}",
    )


def send_operations_frame(
    ops: Sequence[pb.Operation], kind: OperationKind = "created_operations"
) -> bytes:
    return encode_item(operations_item(ops, kind))


def deleted_operations_frame(ids: Sequence[int]) -> bytes:
    return encode_item(deleted_item(ids))


def diff_frame(keyid: str, ids: Sequence[int], modnos: Sequence[int],
               repo_guid: str = "guid-nas") -> bytes:
    return encode_item(diff_item(DiffSelection(repo_guid), keyid, ids, modnos))


def heartbeat_frame() -> bytes:
    return protocol.heartbeat_frame()


class QueueOutbox:
    """A thread-safe outbox for sessions running in their own actor thread."""

    def __init__(self) -> None:
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()

    def send(self, frames: Sequence[bytes]) -> None:
        for frame in frames:
            self.events.put(("frame", frame))

    def frame_done(self) -> None:
        self.events.put(("done", None))

    def authenticated(self, keyid: str) -> None:
        self.events.put(("authenticated", keyid))

    def close(self) -> None:
        self.events.put(("closed", None))

    def next_item(self, timeout: float = 5.0) -> pb.SyncStreamItem:
        """The next frame the session sent, skipping bookkeeping events."""
        deadline = time.monotonic() + timeout
        while True:
            kind, value = self.events.get(timeout=max(0.0, deadline - time.monotonic()))
            if kind == "frame":
                return protocol.decode_item(value)

    def wait_for(self, wanted: str, timeout: float = 5.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            kind, value = self.events.get(timeout=max(0.0, deadline - time.monotonic()))
            if kind == wanted:
                return value


def stop_actor(ref: pykka.ActorRef[Any], timeout: float = 10.0) -> None:
    """Stop ``ref`` and wait until it has, also when it is stopping itself meanwhile.

    An actor that stops itself (a session that ended) empties its inbox on its way
    out; a stop message put there just after that is never answered, so a plain
    ``ref.stop()`` can wait forever. Here the stop counts once it is answered, or once
    the actor is stopped and the answer has had a second to come.
    """
    answer = ref.stop(block=False)
    deadline = time.monotonic() + timeout
    stopped_at: float | None = None
    while True:
        try:
            answer.get(timeout=0.05)
            return
        except pykka.Timeout:
            pass
        now = time.monotonic()
        if ref.actor_stopped.is_set():
            stopped_at = now if stopped_at is None else stopped_at
            if now - stopped_at >= 1.0:
                return
        if now >= deadline:
            raise AssertionError(f"{ref} did not stop within {timeout:.0f}s")


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
    """Poll ``predicate`` every 10 ms until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(0.01)


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RawClient:
    """A bare DEALER driven step by step by a test; every receive has a deadline.

    It sends whatever frames the test gives it (well-formed ones come from the
    builders above, hostile ones from the test itself); ``handshake`` runs a
    client's side of the handshake through hub.protocol's ClientHandshake.
    """

    def __init__(self, endpoint: str, hub_curve_public: bytes | None) -> None:
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        if hub_curve_public is not None:
            public, secret = zmq.curve_keypair()
            self.socket.curve_serverkey = hub_curve_public
            self.socket.curve_publickey = public
            self.socket.curve_secretkey = secret
        self.socket.connect(endpoint)

    def send(self, frame: bytes) -> None:
        self.socket.send(frame)

    def recv(self, timeout: float = 5.0) -> pb.SyncStreamItem:
        if not self.socket.poll(int(timeout * 1000)):
            raise AssertionError(f"no frame from the hub within {timeout}s")
        return protocol.decode_item(self.socket.recv())

    def recv_action(self, action: str, timeout: float = 5.0) -> pb.SyncStreamItem:
        """The next item of ``action``, skipping heartbeats."""
        deadline = time.monotonic() + timeout
        while True:
            item = self.recv(max(0.01, deadline - time.monotonic()))
            if item.WhichOneof("action") == action:
                return item
            if item.WhichOneof("action") != "heartbeat":
                raise AssertionError(f"expected {action}, got {item}")

    def handshake(
        self,
        hub_keyid: str,
        identity: SigningIdentity = CLIENT,
        instance_id: str = "web1",
        hub_instance: str = HUB_INSTANCE,
    ) -> None:
        handshake = client_handshake(identity, instance_id, None, hub_keyid, hub_instance)
        self.send(handshake.hello_frame())
        challenge = self.recv_action("handshake")
        self.send(handshake.proof_frame(challenge.handshake))

    def close(self) -> None:
        self.socket.close(linger=0)
        self.context.term()


ROOT = Path(__file__).resolve().parents[1]
LAUNCHER = ROOT / "bin" / "synchub"


class HubProcess:
    """`synchub start` in a real child process, with its stderr collected."""

    def __init__(self, config_path: Path, *extra: str) -> None:
        self.config_path = config_path
        self.stderr = ""
        self.process = subprocess.Popen(
            [sys.executable, str(LAUNCHER), "--config", str(config_path), *extra, "start"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    def wait_for_output(self, fragment: str, timeout: float = 20.0) -> None:
        assert self.process.stderr is not None
        deadline = time.monotonic() + timeout
        while fragment not in self.stderr:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (self.process.poll() is not None and not self._readable(0)):
                raise AssertionError(f"hub never printed {fragment!r}; stderr:\n{self.stderr}")
            if self._readable(min(remaining, 0.5)):
                # Read the pipe itself, not through the text wrapper: what a wrapper
                # buffers is lost to communicate(), which reads the pipe directly.
                chunk = os.read(self.process.stderr.fileno(), 65536)
                if not chunk and self.process.poll() is not None:
                    continue
                self.stderr += chunk.decode("utf-8", "replace")

    def _readable(self, timeout: float) -> bool:
        assert self.process.stderr is not None
        ready, _, _ = select.select([self.process.stderr], [], [], timeout)
        return bool(ready)

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait; returns the exit status (kills and fails if it hangs)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            _, rest = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate()
            raise AssertionError(f"hub did not stop within {timeout}s after SIGTERM") from None
        self.stderr += rest or ""
        return self.process.returncode

    def wait_exit(self, timeout: float = 20.0) -> int:
        """Wait for the process to exit by itself; returns its exit status."""
        _, rest = self.process.communicate(timeout=timeout)
        self.stderr += rest or ""
        return self.process.returncode

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate()


# -- hostile-peer and hub-in-process support --------------------------------------


def hub_text_with(**hub_settings: object) -> str:
    """hub_config_text() whose [hub] table has these settings (bind defaults to a free port)."""
    settings: dict[str, object] = {
        "bind": "tcp://127.0.0.1:0",
        "heartbeat_interval": 10,
        "handshake_timeout": 5,
    }
    settings.update(hub_settings)

    def toml(value: object) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str):
            return f'"{value}"'
        return str(value)

    lines = "\n".join(f"{key} = {toml(value)}" for key, value in settings.items())
    text = hub_config_text()
    old = "[hub]\nheartbeat_interval = 10\nhandshake_timeout = 5\n"
    assert old in text
    return text.replace(old, f"[hub]\n{lines}\n")


@contextlib.contextmanager
def running_hub(config: Config) -> Iterator[Any]:
    """A hub.server.Hub started in this process, stopped on exit."""
    from hub.server import Hub  # noqa: PLC0415  (keeps this module light for unit tiers)

    hub = Hub(config)
    try:
        hub.start()
        yield hub
    finally:
        hub.stop()


def front_of(hub: Any) -> Any:
    """The hub's Front, for its read-only counters."""
    front = hub.front
    assert front is not None, "the hub has no running front"
    return front


def connected_client(
    hub: Any, identity: SigningIdentity = CLIENT, instance_id: str = "web1",
    endpoint: str | None = None, curve: bool = True,
) -> RawClient:
    """A RawClient through the whole handshake, the hub's send_config and list_resources read."""
    client = RawClient(endpoint or hub.endpoint, hub.identity.curve.public if curve else None)
    try:
        client.handshake(hub.identity.signing.keyid, identity, instance_id)
        client.recv_action("send_config")
        client.recv_action("list_resources")
    except BaseException:
        client.close()
        raise
    return client


def stored_operations(hub: Any, keyid: str) -> list[pb.Operation]:
    selector = pb.OpSelector(original_instance_keyid=keyid)
    return list(hub.oplog.query(selector).get(timeout=10))


def process_rss_bytes(pid: int | str = "self") -> int:
    """Resident set size of a process, from /proc/<pid>/status (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS in /proc/{pid}/status")


class DealerSwarm:
    """Many CURVE (or plain) DEALERs on one context; every receive is bounded."""

    def __init__(
        self, endpoint: str, hub_curve_public: bytes | None, count: int,
        *, routing_ids: Sequence[bytes] | None = None,
    ) -> None:
        self.context = zmq.Context()
        self.context.set(zmq.MAX_SOCKETS, max(1024, 4 * count))
        self.sockets: list[zmq.Socket[Any]] = []
        try:
            for index in range(count):
                sock = self.context.socket(zmq.DEALER)
                sock.setsockopt(zmq.LINGER, 0)
                if hub_curve_public is not None:
                    public, secret = zmq.curve_keypair()
                    sock.curve_serverkey = hub_curve_public
                    sock.curve_publickey = public
                    sock.curve_secretkey = secret
                if routing_ids is not None:
                    sock.setsockopt(zmq.ROUTING_ID, routing_ids[index])
                sock.connect(endpoint)
                self.sockets.append(sock)
        except BaseException:
            self.close()
            raise

    def send(self, index: int, frames: bytes | Sequence[bytes]) -> bool:
        """Send without blocking; False if that socket's queue is full."""
        parts = [frames] if isinstance(frames, bytes) else list(frames)
        try:
            self.sockets[index].send_multipart(parts, zmq.NOBLOCK)
        except zmq.Again:
            return False
        return True

    def drain(self, index: int, limit: int = 10_000) -> list[bytes]:
        """Every frame already waiting on one socket, without blocking."""
        frames: list[bytes] = []
        for _ in range(limit):
            try:
                frames.append(self.sockets[index].recv(zmq.NOBLOCK))
            except zmq.Again:
                break
        return frames

    def collect(self, wanted: int, timeout: float) -> dict[int, list[bytes]]:
        """Receive until ``wanted`` frames in total arrived or ``timeout`` passed."""
        poller = zmq.Poller()
        for sock in self.sockets:
            poller.register(sock, zmq.POLLIN)
        index_of = {sock: i for i, sock in enumerate(self.sockets)}
        received: dict[int, list[bytes]] = {}
        total = 0
        deadline = time.monotonic() + timeout
        while total < wanted:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            for sock, _ in poller.poll(int(min(remaining, 0.1) * 1000) + 1):
                frames = self.drain(index_of[sock])
                received.setdefault(index_of[sock], []).extend(frames)
                total += len(frames)
        return received

    def close(self) -> None:
        for sock in self.sockets:
            sock.close(linger=0)
        self.context.term()


def TcpRelay(target_port: int) -> CountingRelay:
    """A man in the middle on loopback that records every byte crossing it."""
    return CountingRelay(target_port, record=True)


# The SQLite oplog's schema exactly as version 1 created it, to check upgrades of such files.
SQLITE_SCHEMA_V1 = """
CREATE TABLE operations (
    id INTEGER PRIMARY KEY, flow_id INTEGER NOT NULL, modno INTEGER NOT NULL,
    original_instance_keyid TEXT NOT NULL, original_id INTEGER, original_flow_id INTEGER,
    repo_guid TEXT NOT NULL, plan_id TEXT NOT NULL, instance_id TEXT NOT NULL,
    snapshot_id TEXT NOT NULL, unix_time_start_ms INTEGER NOT NULL, status INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE UNIQUE INDEX operations_by_original_id ON operations (original_instance_keyid, original_id);
CREATE INDEX operations_by_original_flow ON operations (original_instance_keyid, original_flow_id);
CREATE INDEX operations_by_repo_plan ON operations (repo_guid, plan_id);
CREATE INDEX operations_by_instance ON operations (instance_id);
CREATE INDEX operations_local_changes ON operations (original_instance_keyid, modno);
CREATE TABLE local_deletions (id INTEGER PRIMARY KEY, modno INTEGER NOT NULL);
CREATE INDEX local_deletions_by_modno ON local_deletions (modno);
CREATE TABLE counters (singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
                       last_id INTEGER NOT NULL, last_modno INTEGER NOT NULL);
INSERT INTO counters (singleton, last_id, last_modno) VALUES (1, 2, 1);
"""
