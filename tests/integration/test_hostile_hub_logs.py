"""A real client agent against a hub that floods it with log requests: the agent's
answers stay bounded (a few served at once, the rest BUSY or dropped), every item is
within the chunk limit, the client stays connected, and it still serves a request
once the flood is over. The hub here is a bare ROUTER speaking the protocol through
hub.protocol's own handshake and codec."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq

from hub.agent import Agent, AgentSettings
from hub.config import load_config
from hub.identity import NodeIdentity, create_identity
from hub.pb import synchub_pb2 as pb
from hub.protocol import (
    LOG_CHUNK_BYTES,
    LOG_REQUEST_MAX_BYTES,
    HubHandshake,
    LogQuery,
    config_frames,
    decode_item,
    diff_reply_frame,
    encode_item,
    heartbeat_frame,
    request_log_item,
)
from hub.store import SqliteOplogStore, oplog_path
from synchub_testing import free_tcp_port

pytestmark = [pytest.mark.integration, pytest.mark.alone]

FLOOD = 3000


class BareHub:
    """A ROUTER with the hub's CURVE key that answers one client the way a hub does."""

    def __init__(self, identity: NodeIdentity, port: int) -> None:
        self.identity = identity
        self.context = zmq.Context()
        self.router = self.context.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.LINGER, 0)
        self.router.setsockopt(zmq.CURVE_SERVER, 1)
        self.router.setsockopt(zmq.CURVE_SECRETKEY, identity.curve.secret)
        self.router.setsockopt(zmq.SNDHWM, 100_000)
        self.router.bind(f"tcp://127.0.0.1:{port}")
        self.rid = b""

    def recv(self, timeout: float = 10.0) -> pb.SyncStreamItem:
        if not self.router.poll(int(timeout * 1000)):
            raise AssertionError(f"the client sent nothing within {timeout}s")
        rid, frame = self.router.recv_multipart()
        self.rid = rid
        return decode_item(frame)

    def send(self, frame: bytes) -> None:
        self.router.send_multipart([self.rid, frame])

    def accept(self) -> None:
        """The handshake, then this hub's (empty) config, as a hub sends them."""
        hello = self.recv(30)
        answer = HubHandshake.answer(hello.handshake, self.identity.signing, "hub-1")
        self.send(encode_item(answer.challenge))
        answer.verify(self.recv().handshake)
        for frame in config_frames(pb.RemoteConfig(version=1), [], []):
            self.send(frame)

    def serve(self, item: pb.SyncStreamItem) -> None:
        """Answer a diff (acknowledgements included) with nothing requested."""
        if item.WhichOneof("action") == "diff_operations":
            self.send(diff_reply_frame([]))

    def close(self) -> None:
        self.router.close(linger=0)
        self.context.term()


@pytest.fixture
def client_with_a_log(tmp_path: Path) -> Iterator[tuple[Agent, BareHub, int]]:
    hub_identity = create_identity(tmp_path / "hub")
    port = free_tcp_port()
    (tmp_path / "client.toml").write_text(f"""\
instance = "web1"
data_dir = "data"

[[known_hosts]]
instance_id = "hub-1"
endpoint = "tcp://127.0.0.1:{port}"
keyid = "{hub_identity.signing.keyid}"
curve_public_key = "{hub_identity.curve.public_text}"
permissions = [ {{ type = "read_logs", scopes = ["*"] }} ]
""")
    config = load_config(tmp_path / "client.toml")
    config.data_dir.mkdir()
    store = SqliteOplogStore(oplog_path(config.data_dir))
    try:
        [op] = store.add_local([pb.Operation(instance_id="web1", logref="logs/1.log",
                                             status=pb.STATUS_SUCCESS)])
    finally:
        store.close()
    (config.data_dir / "logs").mkdir()
    (config.data_dir / "logs" / "1.log").write_bytes(b"L" * (3 * LOG_CHUNK_BYTES))
    hub = BareHub(hub_identity, port)
    agent = Agent(config, settings=AgentSettings(heartbeat_interval=5.0))
    agent.start()
    try:
        yield agent, hub, op.id
    finally:
        agent.stop()
        hub.close()


def test_a_flood_of_log_requests_is_answered_within_bounds(
    client_with_a_log: tuple[Agent, BareHub, int], caplog: pytest.LogCaptureFixture,
) -> None:
    agent, hub, op_id = client_with_a_log
    caplog.set_level(logging.WARNING, logger="hub.agent")
    hub.accept()
    for rid in range(1, FLOOD + 1):
        hub.send(encode_item(request_log_item(rid, LogQuery(op_id, 0, 2**40))))

    # Then small requests, one every half second, until one is served: a client
    # answers in the order it accepted requests, so by then every request it
    # accepted from the flood has been answered in full.
    answers: dict[int, list[pb.SyncStreamItem.LogData]] = {}
    marker, next_marker = FLOOD, 0.0
    deadline = time.monotonic() + 60
    while True:
        assert time.monotonic() < deadline, "the client never served again"
        if time.monotonic() >= next_marker:
            marker += 1
            hub.send(encode_item(request_log_item(marker, LogQuery(op_id, 0, 10))))
            next_marker = time.monotonic() + 0.5
        if not hub.router.poll(100):
            continue
        item = hub.recv()
        hub.serve(item)
        if item.WhichOneof("action") == "heartbeat":
            hub.send(heartbeat_frame())
        if item.WhichOneof("action") != "log_data":
            continue
        data = item.log_data
        assert len(data.data) <= LOG_CHUNK_BYTES
        answers.setdefault(data.request_id, []).append(data)
        if data.request_id > FLOOD and data.status == pb.LOG_STATUS_OK and data.last:
            break

    assert agent.status()["hub-1"].state == "connected"
    flood = {rid: items for rid, items in answers.items() if rid <= FLOOD}
    assert all(items[-1].last for items in flood.values())
    served = [items for items in flood.values() if items[0].status == pb.LOG_STATUS_OK]
    busy = [items for items in flood.values() if items[0].status == pb.LOG_STATUS_BUSY]
    assert served and busy
    for items in served:
        assert b"".join(i.data for i in items) == b"L" * (3 * LOG_CHUNK_BYTES)
        assert sum(len(i.data) for i in items) <= LOG_REQUEST_MAX_BYTES
    for items in busy:
        assert len(items) == 1 and not items[0].data
    # Accepted answers wait in a bounded queue; the rest were dropped, and logged.
    assert len(flood) < FLOOD
    assert any("floods log requests" in r.getMessage() for r in caplog.records)
    [last] = answers[max(answers)]
    assert last.data == b"L" * 10
