"""Hostile and careless peers against a real hub on loopback: encryption, authentication,
replay, what an unauthenticated peer can learn, revocation, displacement, routing ids.

Every hub here runs in this process (hub.server.Hub) with real sockets; every receive has
a deadline and every socket is closed with linger 0.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from hub.config import Config
from hub.pb import synchub_pb2 as pb
from hub.protocol import error_frame, hello_item, proof_item, sign_proof, validate_challenge
from synchub_testing import (
    CLIENT,
    HUB_INSTANCE,
    OTHER_CLIENT,
    STRANGER,
    UNVERIFIED,
    RawClient,
    TcpRelay,
    connected_client,
    diff_frame,
    hub_text_with,
    operation,
    running_hub,
    send_operations_frame,
    stored_operations,
    wait_until,
    write_config,
)

pytestmark = pytest.mark.integration

ERROR_AUTH = pb.CONNECTION_STATE_ERROR_AUTH
ERROR_PROTOCOL = pb.CONNECTION_STATE_ERROR_PROTOCOL


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Any]:
    with running_hub(write_config(tmp_path, hub_text_with())) as running:
        yield running


def port_of(endpoint: str) -> int:
    return int(endpoint.rsplit(":", 1)[1])


def assert_silent(client: RawClient, seconds: float) -> None:
    """Nothing at all arrives for ``seconds``."""
    assert not client.socket.poll(int(seconds * 1000)), "the hub answered"


def in_sync(client: RawClient, ids: list[int], keyid: str = CLIENT.keyid) -> bool:
    client.send(diff_frame(keyid, ids, [1] * len(ids)))
    reply = client.recv_action("diff_operations")
    return list(reply.diff_operations.request_operations) == []


def hello_and_challenge(
    client: RawClient, identity: Any, instance_id: str, nonce: bytes
) -> pb.SyncStreamItem:
    client.send(hello_item(identity, instance_id, nonce).SerializeToString())
    return client.recv_action("handshake")


# -- CurveZMQ on the wire -------------------------------------------------------------------

MARKER = "synchub-wire-marker-7f3a9c"


@pytest.mark.parametrize("curve", [True, False], ids=["curve-on", "curve-off"])
def test_operation_content_is_readable_on_the_wire_only_without_curve(
    tmp_path: Path, curve: bool
) -> None:
    config = write_config(tmp_path, hub_text_with(curve=curve))
    with running_hub(config) as hub:
        with TcpRelay(port_of(hub.endpoint)) as relay:
            client = connected_client(hub, endpoint=relay.endpoint, curve=curve)
            try:
                client.send(send_operations_frame([operation(1, message=MARKER)]))
                assert in_sync(client, [1])
            finally:
                client.close()
        stored = stored_operations(hub, CLIENT.keyid)
        captured = relay.captured()
    assert [op.display_message for op in stored] == [MARKER]
    assert len(captured) > 600  # the whole conversation went through the relay
    on_the_wire = {
        "operation text": MARKER.encode(),
        "client keyid": CLIENT.keyid.encode(),
        "hub instance": HUB_INSTANCE.encode() + b"\x22",  # handshake field, then its key
    }
    seen = {name: needle in captured for name, needle in on_the_wire.items()}
    if curve:
        assert not any(seen.values()), f"readable with CURVE on: {seen}"
    else:
        assert seen["operation text"] and seen["client keyid"], seen


@pytest.mark.parametrize("how", ["no-curve", "wrong-server-key"])
def test_a_client_that_does_not_speak_curve_to_the_hub_gets_nothing_through(
    hub: Any, how: str
) -> None:
    server_key = None if how == "no-curve" else zmq.curve_keypair()[0]
    client = RawClient(hub.endpoint, server_key)
    try:
        client.send(hello_item(CLIENT, "web1", os.urandom(32)).SerializeToString())
        client.send(send_operations_frame([operation(1)]))
        assert_silent(client, 1.0)
    finally:
        client.close()
    assert hub.status().front.sessions_started == 0
    assert hub.peers.get(CLIENT.keyid).get(timeout=5) is None
    assert hub.oplog.count().get(timeout=5) == 0
    # The hub is still there for a client that does speak CURVE to it.
    connected_client(hub).close()


# -- authentication: replay, and what a peer learns before its PROOF verifies -------------


def test_a_proof_recorded_on_one_connection_is_refused_on_another(hub: Any) -> None:
    hub_keyid = hub.identity.signing.keyid
    nonce = os.urandom(32)
    recorded_hello = hello_item(CLIENT, "web1", nonce).SerializeToString()
    first = RawClient(hub.endpoint, hub.identity.curve.public)
    second = RawClient(hub.endpoint, hub.identity.curve.public)
    try:
        first.send(recorded_hello)
        challenge = first.recv_action("handshake")
        checked = validate_challenge(
            challenge.handshake, pinned_keyid=hub_keyid, pinned_instance_id=HUB_INSTANCE,
            client_instance_id="web1", client_keyid=CLIENT.keyid, client_nonce=nonce,
        )
        recorded_proof = proof_item(sign_proof(CLIENT, checked.transcript)).SerializeToString()
        first.send(recorded_proof)
        first.recv_action("send_config")
        first.recv_action("list_resources")

        second.send(recorded_hello)  # the very same HELLO, nonce included
        other_challenge = second.recv_action("handshake")
        assert other_challenge.handshake.nonce != challenge.handshake.nonce
        second.send(recorded_proof)
        error = second.recv_action("error").error
        assert error.state == ERROR_AUTH
        assert "bad PROOF signature" in error.message

        # The genuine session was not disturbed (not displaced, still serving).
        first.send(send_operations_frame([operation(1)]))
        assert in_sync(first, [1])
        assert hub.status().front.sessions == 1
        state = hub.peers.get(CLIENT.keyid).get(timeout=5)
        assert state.state == pb.CONNECTION_STATE_CONNECTED
    finally:
        first.close()
        second.close()


CANDIDATES = [(CLIENT, "web1"), (UNVERIFIED, "mail1"), (STRANGER, "web9"), (CLIENT, "nope")]


def test_the_challenge_is_the_same_for_known_unverified_and_unknown_keys(hub: Any) -> None:
    shapes = []
    for identity, instance_id in CANDIDATES:
        client = RawClient(hub.endpoint, hub.identity.curve.public)
        try:
            challenge = hello_and_challenge(client, identity, instance_id, os.urandom(32))
        finally:
            client.close()
        handshake = challenge.handshake
        assert len(handshake.nonce) == 32
        assert len(handshake.signature) == 64
        assert handshake.public_key.keyid == hub.identity.signing.keyid
        size = len(challenge.SerializeToString())
        handshake.ClearField("nonce")
        handshake.ClearField("signature")
        shapes.append((size, challenge.SerializeToString()))
    assert len(set(shapes)) == 1, "the CHALLENGE depends on who asked"
    assert hub.config_actor.get().get(timeout=5).authorized_client(STRANGER.keyid) is None


def refusal_for(hub: Any, identity: Any, instance_id: str, *, good_proof: bool) -> str:
    client = RawClient(hub.endpoint, hub.identity.curve.public)
    try:
        nonce = os.urandom(32)
        challenge = hello_and_challenge(client, identity, instance_id, nonce)
        checked = validate_challenge(
            challenge.handshake, pinned_keyid=hub.identity.signing.keyid,
            pinned_instance_id=HUB_INSTANCE, client_instance_id=instance_id,
            client_keyid=identity.keyid, client_nonce=nonce,
        )
        signature = sign_proof(identity, checked.transcript)
        if not good_proof:
            signature = bytes([signature[0] ^ 0x01]) + signature[1:]
        client.send(proof_item(signature).SerializeToString())
        error = client.recv_action("error").error
        assert error.state == ERROR_AUTH
        assert_silent(client, 0.2)
        return str(error.message).replace(identity.keyid, "<keyid>").replace(instance_id, "<id>")
    finally:
        client.close()


def test_a_bad_proof_reveals_nothing_about_authorization(hub: Any) -> None:
    messages = {
        (identity.keyid, instance): refusal_for(hub, identity, instance, good_proof=False)
        for identity, instance in CANDIDATES
    }
    assert len(set(messages.values())) == 1, messages
    [message] = set(messages.values())
    for word in ("authorized", "verified", "instance", "authorize"):
        assert word not in message
    assert hub.peers.list().get(timeout=5) == []
    wait_until(lambda: hub.status().front.sessions == 0, 2.0, "refused sessions to close")


def test_after_a_valid_proof_the_refusal_says_what_to_do(hub: Any) -> None:
    unknown = refusal_for(hub, STRANGER, "web9", good_proof=True)
    unverified = refusal_for(hub, UNVERIFIED, "mail1", good_proof=True)
    wrong_instance = refusal_for(hub, CLIENT, "web2", good_proof=True)
    assert "not authorized" in unknown and "synchub authorize" in unknown
    assert "not verified" in unverified and "synchub authorize" in unverified
    assert "authorized as instance 'web1'" in wrong_instance
    assert len({unknown, unverified, wrong_instance}) == 3
    # Refused clients leave no peer state behind and store nothing.
    assert hub.peers.list().get(timeout=5) == []
    assert hub.oplog.count().get(timeout=5) == 0


# -- revocation -------------------------------------------------------------------------------


def revoke_by_config_actor(hub: Any, _path: Path) -> None:
    hub.config_actor.revoke(CLIENT.keyid).get(timeout=5)


def unverify_by_config_actor(hub: Any, _path: Path) -> None:
    hub.config_actor.set_verified(CLIENT.keyid, False).get(timeout=5)


def remove_from_file_and_reload(hub: Any, path: Path) -> None:
    path.write_text(path.read_text().replace(CLIENT.keyid, "ed25519." + "A" * 43))
    hub.reload()


@pytest.mark.alone
@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (revoke_by_config_actor, "revoked by the operator"),
        (unverify_by_config_actor, "not verified"),
        (remove_from_file_and_reload, "revoked by the operator"),
    ],
    ids=["revoke", "unverify", "file-and-reload"],
)
def test_revocation_ends_the_live_session_within_a_second(
    tmp_path: Path, change: Any, fragment: str
) -> None:
    config: Config = write_config(tmp_path, hub_text_with())
    assert config.path is not None
    with running_hub(config) as hub:
        client = connected_client(hub)
        try:
            client.send(send_operations_frame([operation(1)]))
            assert in_sync(client, [1])

            started = time.monotonic()
            change(hub, config.path)
            error = client.recv_action("error", timeout=1.0).error
            elapsed = time.monotonic() - started
            assert elapsed < 1.0
            assert error.state == ERROR_AUTH
            assert fragment in error.message
            wait_until(lambda: hub.status().front.sessions == 0, 2.0, "the session to close")
            state = hub.peers.get(CLIENT.keyid).get(timeout=5)
            assert state.state == ERROR_AUTH

            # The same connection is now a stranger: anything but a HELLO is refused.
            client.send(send_operations_frame([operation(2), operation(3)]))
            refused = client.recv_action("error").error
            assert refused.state == ERROR_PROTOCOL
            assert "HELLO" in refused.message
            assert [op.original_id for op in stored_operations(hub, CLIENT.keyid)] == [1]

            # And a fresh handshake with the revoked key is refused too.
            again = RawClient(hub.endpoint, hub.identity.curve.public)
            try:
                again.handshake(hub.identity.signing.keyid)
                assert again.recv_action("error").error.state == ERROR_AUTH
            finally:
                again.close()
        finally:
            client.close()


# -- displacement -------------------------------------------------------------------------------


def test_a_second_connection_of_the_same_key_displaces_the_first(hub: Any) -> None:
    first = connected_client(hub)
    second = None
    try:
        second = connected_client(hub)
        goodbye = first.recv_action("error").error
        assert goodbye.state == pb.CONNECTION_STATE_DISCONNECTED
        assert goodbye.message == "displaced by a newer connection"
        wait_until(
            lambda: hub.status().front.sessions == 1, 2.0, "the displaced session to close"
        )
        assert hub.status().front.pending_handshakes == 0

        hub.peers.flush().get(timeout=5)
        assert hub.peers.get(CLIENT.keyid).get(timeout=5).state == (
            pb.CONNECTION_STATE_CONNECTED
        )
        second.send(send_operations_frame([operation(1)]))
        assert in_sync(second, [1])

        # The displaced connection speaks for nobody now.
        first.send(send_operations_frame([operation(2)]))
        assert first.recv_action("error").error.state == ERROR_PROTOCOL
        assert [op.original_id for op in stored_operations(hub, CLIENT.keyid)] == [1]
        hub.peers.flush().get(timeout=5)
        assert hub.peers.get(CLIENT.keyid).get(timeout=5).state == (
            pb.CONNECTION_STATE_CONNECTED
        )
    finally:
        first.close()
        if second is not None:
            second.close()


# -- routing ids chosen by the peer ----------------------------------------------------------


class PinnedDealer(RawClient):
    """A CURVE DEALER that chooses its own routing id (libzmq lets any peer do this)."""

    def __init__(self, endpoint: str, hub_curve_public: bytes, routing_id: bytes) -> None:
        # Not RawClient.__init__: the id must be set before connecting.
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.ROUTING_ID, routing_id)
        public, secret = zmq.curve_keypair()
        self.socket.curve_serverkey = hub_curve_public
        self.socket.curve_publickey = public
        self.socket.curve_secretkey = secret
        self.socket.connect(endpoint)


def test_a_routing_id_taken_over_by_another_connection_is_not_the_old_session(
    hub: Any,
) -> None:
    """A new connection that claims a gone peer's routing id must not inherit its session."""
    routing_id = b"\x00\x11\x22\x33\x44"  # shaped like the ids libzmq assigns
    victim = PinnedDealer(hub.endpoint, hub.identity.curve.public, routing_id)
    try:
        victim.handshake(hub.identity.signing.keyid)
        victim.recv_action("send_config")
        victim.recv_action("list_resources")
    finally:
        victim.close()  # the victim's connection is gone; its session is still CONNECTED
    assert hub.peers.get(CLIENT.keyid).get(timeout=5).state == pb.CONNECTION_STATE_CONNECTED

    evil = send_operations_frame([operation(1, message="injected")])
    reply = None
    deadline = time.monotonic() + 10
    # libzmq ignores a duplicate routing id until it has dropped the old connection.
    while reply is None and time.monotonic() < deadline:
        attacker = PinnedDealer(hub.endpoint, hub.identity.curve.public, routing_id)
        try:
            attacker.socket.send(evil)
            attacker.socket.send(diff_frame(CLIENT.keyid, [1], [1]))
            if attacker.socket.poll(300):
                reply = pb.SyncStreamItem.FromString(attacker.socket.recv())
        finally:
            attacker.close()
    assert reply is not None, "the attacker's connection was never served"
    assert reply.WhichOneof("action") == "error", f"served as the old session: {reply}"
    assert reply.error.state == ERROR_PROTOCOL
    assert stored_operations(hub, CLIENT.keyid) == []
    # The old session ended as a lost connection.
    wait_until(
        lambda: hub.peers.get(CLIENT.keyid).get(timeout=5).state
        == pb.CONNECTION_STATE_DISCONNECTED,
        3.0, "the old session to end",
    )


# -- garbage does not take the front down ------------------------------------------------------


def test_frames_for_a_closing_session_do_not_stop_the_front(hub: Any) -> None:
    """A burst of garbage on one connection: one session ends, the rest is dropped."""
    flooder = RawClient(hub.endpoint, hub.identity.curve.public)
    try:
        for index in range(3000):
            flooder.send(b"\xff\xfe not protobuf %d" % index)
        first = flooder.recv()
        assert first.error.state == ERROR_PROTOCOL
        wait_until(
            lambda: hub.status().front.backlog == (0, 0), 10.0,
            "the burst to be handled or dropped",
        )
        # Frames for a closing session are dropped.
        assert hub.status().front.sessions_started < 3000
        good = connected_client(hub)
        try:
            good.send(send_operations_frame([operation(1)]))
            assert in_sync(good, [1])
        finally:
            good.close()
    finally:
        flooder.close()


def test_a_multi_frame_message_is_one_protocol_error(hub: Any) -> None:
    client = connected_client(hub)
    try:
        client.socket.send_multipart([diff_frame(CLIENT.keyid, [], []), b"extra"])
        error = client.recv_action("error").error
        assert error.state == ERROR_PROTOCOL
        assert "exactly one frame" in error.message
        assert_silent(client, 0.3)
    finally:
        client.close()


def test_peers_do_not_see_each_others_frames(hub: Any) -> None:
    web1 = connected_client(hub)
    db1 = connected_client(hub, OTHER_CLIENT, "db1")
    try:
        web1.send(send_operations_frame([operation(1)]))
        assert in_sync(web1, [1])
        assert_silent(db1, 0.3)
    finally:
        web1.close()
        db1.close()


def test_a_hello_whose_keyid_is_not_its_keys_is_refused_before_any_challenge(hub: Any) -> None:
    client = RawClient(hub.endpoint, hub.identity.curve.public)
    try:
        hello = hello_item(CLIENT, "web1", os.urandom(32))
        hello.handshake.public_key.keyid = OTHER_CLIENT.keyid  # db1's id, web1's key
        client.send(hello.SerializeToString())
        error = client.recv().error  # the very first item: no CHALLENGE was signed
        assert error.state == ERROR_AUTH
        assert "does not match" in error.message
        assert_silent(client, 0.2)
    finally:
        client.close()
    assert hub.peers.list().get(timeout=5) == []


def test_text_a_peer_reports_is_clipped_to_one_line(hub: Any) -> None:
    client = connected_client(hub)
    try:
        forged_log = "disk full\n2099-01-01 CRITICAL hub: fake line\r" + "x" * 100_000
        client.send(error_frame(pb.CONNECTION_STATE_ERROR_INTERNAL, forged_log))
        wait_until(
            lambda: hub.peers.get(CLIENT.keyid).get(timeout=5).state
            == pb.CONNECTION_STATE_DISCONNECTED,
            3.0, "the peer's own error to end its session",
        )
        status = hub.peers.get(CLIENT.keyid).get(timeout=5).status_message
        assert status.startswith("peer reported: disk full\\n2099")
        assert "\n" not in status and "\r" not in status
        assert len(status) < 300
    finally:
        client.close()
