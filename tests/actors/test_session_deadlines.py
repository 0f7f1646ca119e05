"""A SessionActor's pre-authentication deadlines, driven directly (its collaborators
autospec mocks of their proxies): the PROOF deadline from the CHALLENGE, and the front
taking a pending session's room (ExpireHandshake)."""

from __future__ import annotations

from pathlib import Path

from actors import (
    ConfigProxy,
    ExpireHandshake,
    HubIdentity,
    OplogProxy,
    PeerStateProxy,
    Phase,
    SessionActor,
    SessionSettings,
)
from hub.pb import synchub_pb2 as pb
from synchub_testing import (
    HUB,
    HUB_INSTANCE,
    FakeOutbox,
    answered,
    autospec_proxy,
    client_hello,
    client_proof,
    hub_config_text,
    write_config,
)

SETTINGS = SessionSettings(
    heartbeat_interval=10.0, handshake_timeout=10.0, ask_timeout=0.5, proof_timeout=2.0
)


def session_with(tmp_path: Path) -> tuple[SessionActor, FakeOutbox]:
    outbox = FakeOutbox()
    config = autospec_proxy(ConfigProxy)
    config.get.return_value = answered(write_config(tmp_path, hub_config_text()))
    config.subscribe.return_value = answered(7)
    oplog = autospec_proxy(OplogProxy)
    oplog.claim.return_value = answered(True)
    session = SessionActor(
        session_id="s-1", hub=HubIdentity(HUB_INSTANCE, HUB), settings=SETTINGS,
        config=config, oplog=oplog, peers=autospec_proxy(PeerStateProxy),
        outbox_factory=lambda: outbox, now=0.0,
    )
    session.on_start()
    return session, outbox


def test_a_proof_later_than_proof_timeout_after_the_challenge_ends_the_handshake(
    tmp_path: Path,
) -> None:
    session, outbox = session_with(tmp_path)
    session.handle_frame(client_hello(), 3.0)  # the CHALLENGE goes out at 3.0
    session.tick(4.9)
    assert session.phase is Phase.AWAIT_PROOF
    session.tick(5.0)
    assert session.phase is Phase.ENDED
    error = outbox.items[-1].error
    assert (error.state, error.message) == (pb.CONNECTION_STATE_ERROR_AUTH, "handshake timed out")


def test_a_prompt_proof_connects(tmp_path: Path) -> None:
    session, outbox = session_with(tmp_path)
    session.handle_frame(client_hello(), 3.0)
    challenge = outbox.take()[-1]
    session.tick(4.5)
    session.handle_frame(client_proof(challenge), 4.6)
    assert session.phase is Phase.CONNECTED
    session.tick(9.0)
    assert session.phase is Phase.CONNECTED


def test_the_front_can_take_a_pending_sessions_room(tmp_path: Path) -> None:
    session, outbox = session_with(tmp_path)
    session.handle_frame(client_hello(), 0.0)
    session.on_receive(ExpireHandshake())
    assert session.phase is Phase.ENDED
    assert outbox.items[-1].error.message == "handshake timed out"
    assert outbox.closed
