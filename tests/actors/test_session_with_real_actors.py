"""SessionActor running in its own thread with the real Config, Oplog and PeerState actors.

Only the front is replaced (by a queue-backed outbox); everything behind the
session is the real thing, with SQLite files in a temp directory.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from actors import (
    ConfigActor,
    HubIdentity,
    InboundFrame,
    OplogActor,
    PeerStateActor,
    PeerVanished,
    SessionActor,
    SessionSettings,
    Tick,
)
from hub.pb import synchub_pb2 as pb
from hub.store import PeerStore, SqliteOplogStore
from synchub_testing import (
    CLIENT,
    HUB,
    HUB_INSTANCE,
    QueueOutbox,
    client_hello,
    client_proof,
    diff_frame,
    hub_config_text,
    operation,
    send_operations_frame,
    stop_actor,
    wait_until,
    write_config,
)

SETTINGS = SessionSettings(heartbeat_interval=10.0, handshake_timeout=5.0, ask_timeout=5.0)


@dataclass
class Hub:
    config: Any
    oplog: Any
    peers: Any
    sessions: list[Any]

    def open_session(self, session_id: str) -> tuple[Any, QueueOutbox]:
        ref, outbox = self.start_session(session_id)
        return ref.proxy(), outbox

    def start_session(self, session_id: str) -> tuple[Any, QueueOutbox]:
        """A session as the front holds it: its ActorRef, told messages."""
        outbox = QueueOutbox()
        ref = SessionActor.start(
            session_id=session_id,
            hub=HubIdentity(HUB_INSTANCE, HUB),
            settings=SETTINGS,
            config=self.config,
            oplog=self.oplog,
            peers=self.peers,
            outbox_factory=lambda: outbox,
            now=0.0,
        )
        self.sessions.append(ref)
        return ref, outbox

    def connect(self, session_id: str = "s-1") -> tuple[Any, QueueOutbox]:
        session, outbox = self.open_session(session_id)
        session.handle_frame.defer(client_hello(), 0.0)
        challenge = outbox.next_item()
        session.handle_frame.defer(client_proof(challenge), 0.0)
        assert outbox.next_item().WhichOneof("action") == "send_config"
        assert outbox.next_item().WhichOneof("action") == "list_resources"
        return session, outbox

    def peer_state(self) -> pb.PeerState:
        state = self.peers.get(CLIENT.keyid).get(timeout=5)
        assert state is not None
        return state


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    config = write_config(tmp_path, hub_config_text())
    refs = [
        ConfigActor.start(config),
        OplogActor.start(lambda: SqliteOplogStore(tmp_path / "oplog.sqlite")),
        PeerStateActor.start(lambda: PeerStore(tmp_path)),
    ]
    rig = Hub(*(ref.proxy() for ref in refs), sessions=[])
    rig.config.attach_gate(rig.oplog.admit).get(timeout=5)
    try:
        yield rig
    finally:
        for ref in [*rig.sessions, *reversed(refs)]:
            stop_actor(ref)


def test_sync_through_real_actors_translates_ids_and_flows(hub: Hub) -> None:
    hub.oplog.add([pb.Operation(display_message="a"), pb.Operation(display_message="b")])
    session, outbox = hub.connect()
    assert hub.peer_state().state == pb.CONNECTION_STATE_CONNECTED

    ops = [operation(1, flow_id=1), operation(2, flow_id=1), operation(3, flow_id=2)]
    session.handle_frame.defer(send_operations_frame(ops), 1.0)
    session.handle_frame.defer(diff_frame(CLIENT.keyid, [1, 2, 3, 4], [1, 1, 1, 1]), 1.0)

    reply = outbox.next_item()
    assert list(reply.diff_operations.request_operations) == [4]
    stored = hub.oplog.query(pb.OpSelector(original_instance_keyid=CLIENT.keyid)).get(timeout=5)
    assert [(op.id, op.flow_id, op.original_id) for op in stored] == [
        (3, 3, 1),
        (4, 3, 2),
        (5, 5, 3),
    ]


def test_batch_with_id_zero_stores_nothing_and_ends_the_session(hub: Hub) -> None:
    session, outbox = hub.connect()
    session.handle_frame.defer(send_operations_frame([operation(1), operation(0)]), 1.0)
    error = outbox.next_item().error
    assert error.state == pb.CONNECTION_STATE_ERROR_PROTOCOL
    assert hub.oplog.count().get(timeout=5) == 0
    wait_until(lambda: hub.peer_state().state == pb.CONNECTION_STATE_ERROR_PROTOCOL)


def test_revocation_through_the_config_actor_ends_the_live_session(hub: Hub) -> None:
    _session, outbox = hub.connect()
    hub.config.revoke(CLIENT.keyid).get(timeout=5)
    error = outbox.next_item().error
    assert error.state == pb.CONNECTION_STATE_ERROR_AUTH
    assert error.message == "revoked by the operator"
    outbox.wait_for("closed")
    wait_until(lambda: hub.peer_state().state == pb.CONNECTION_STATE_ERROR_AUTH)


def test_displaced_session_does_not_mark_the_newer_one_disconnected(hub: Hub) -> None:
    old, old_outbox = hub.connect("old")
    _new, _ = hub.connect("new")
    old.displace.defer()
    assert old_outbox.next_item().error.message == "displaced by a newer connection"
    old_outbox.wait_for("closed")
    hub.peers.flush().get(timeout=5)  # everything the old session sent has been handled
    assert hub.peer_state().state == pb.CONNECTION_STATE_CONNECTED


def test_late_end_of_an_older_session_cannot_mark_the_peer_disconnected(hub: Hub) -> None:
    old, old_outbox = hub.connect("old")
    hub.connect("new")
    old.peer_vanished.defer()  # the old session ends the ordinary way, after the new one
    old_outbox.wait_for("closed")
    hub.peers.flush().get(timeout=5)
    assert hub.peer_state().state == pb.CONNECTION_STATE_CONNECTED


def test_messages_told_to_the_ref_as_the_front_tells_them(hub: Hub) -> None:
    ref, outbox = hub.start_session("s-ref")
    ref.tell(InboundFrame(client_hello(), 0.0))
    challenge = outbox.next_item()
    ref.tell(InboundFrame(client_proof(challenge), 0.0))
    assert outbox.next_item().WhichOneof("action") == "send_config"
    assert outbox.next_item().WhichOneof("action") == "list_resources"
    ref.tell(Tick(10.0))
    assert outbox.next_item().WhichOneof("action") == "heartbeat"
    ref.tell(PeerVanished())
    outbox.wait_for("closed")
    wait_until(lambda: hub.peer_state().state == pb.CONNECTION_STATE_DISCONNECTED)
    assert "connection lost" in hub.peer_state().status_message


# -- revocation and displacement while frames are queued (actors._gate) ------------------------


QUEUED = 2000


def test_a_revocation_applies_nothing_the_session_still_has_queued(hub: Hub) -> None:
    ref, outbox = hub.start_session("s-q")
    ref.tell(InboundFrame(client_hello(), 0.0))
    ref.tell(InboundFrame(client_proof(outbox.next_item()), 0.0))
    assert outbox.next_item().WhichOneof("action") == "send_config"
    for op_id in range(1, QUEUED + 1):
        ref.tell(InboundFrame(send_operations_frame([operation(op_id)]), 1.0))
    wait_until(lambda: hub.oplog.count().get(timeout=5) > 0, 5.0, "the first batches")
    hub.config.revoke(CLIENT.keyid).get(timeout=5)
    applied = hub.oplog.count().get(timeout=5)
    error = outbox.next_item().WhichOneof("action")
    while error != "error":
        error = outbox.next_item().WhichOneof("action")
    outbox.wait_for("closed")
    assert hub.oplog.count().get(timeout=5) == applied < QUEUED
    stored = hub.oplog.query(pb.OpSelector(original_instance_keyid=CLIENT.keyid)).get(timeout=5)
    assert [op.original_id for op in stored] == list(range(1, applied + 1))
    wait_until(lambda: hub.peer_state().state == pb.CONNECTION_STATE_ERROR_AUTH)


def test_nothing_of_a_displaced_session_overwrites_the_newer_ones_writes(hub: Hub) -> None:
    old, old_outbox = hub.start_session("old")
    old.tell(InboundFrame(client_hello(), 0.0))
    old.tell(InboundFrame(client_proof(old_outbox.next_item()), 0.0))
    assert old_outbox.next_item().WhichOneof("action") == "send_config"
    for modno in range(1, QUEUED + 1):  # the old session keeps rewriting operation 1
        old.tell(InboundFrame(send_operations_frame([operation(1, modno=modno)]), 1.0))
    wait_until(lambda: hub.oplog.count().get(timeout=5) > 0, 5.0, "the first batches")
    new, new_outbox = hub.connect("new")
    new.handle_frame.defer(send_operations_frame([operation(1, modno=10**9)]), 2.0)
    new.handle_frame.defer(diff_frame(CLIENT.keyid, [1], [10**9]), 2.0)
    assert list(new_outbox.next_item().diff_operations.request_operations) == []
    old_outbox.wait_for("closed")
    [stored] = hub.oplog.query(pb.OpSelector(original_instance_keyid=CLIENT.keyid)).get(timeout=5)
    assert stored.modno == 10**9
    hub.peers.flush().get(timeout=5)
    assert hub.peer_state().state == pb.CONNECTION_STATE_CONNECTED
