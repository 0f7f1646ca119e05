"""SessionActor driven directly; its config, oplog and peer-state mailboxes are autospec
mocks of the real proxies (``autospec_proxy``).

The actor object is used without starting its thread: each test calls the
handlers the front's messages map to (or ``on_receive`` with the messages
themselves), with explicit times, and inspects the frames the session put in its
outbox and the messages it sent its collaborators. A call the real proxy does not
offer, or with arguments its actor method does not take, fails the test.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pykka
import pytest

from actors import (
    ConfigChanged,
    ConfigProxy,
    DiffStepResult,
    Displace,
    FetchLog,
    HubIdentity,
    InboundFrame,
    LogReply,
    OplogProxy,
    PeerStateProxy,
    PeerVanished,
    Phase,
    ProtocolViolation,
    RemoteBatch,
    SessionActor,
    SessionSettings,
    Tick,
)
from hub.config import Config
from hub.errors import AuthError, LogFetchError, ProtocolError, SessionDisplaced, StoreError
from hub.pb import synchub_pb2 as pb
from hub.protocol import (
    LOG_CHUNK_BYTES,
    LOG_REQUEST_TIMEOUT,
    LOG_REQUESTS_PER_SESSION,
    RESYNC_VERSION,
    LogAnswer,
    LogQuery,
    config_frames,
    encode_item,
    error_frame,
    hello_item,
    log_data_item,
    proof_item,
    request_log_item,
    sign_proof,
    validate_challenge,
)
from hub.store import SyncCursor
from synchub_testing import (
    CLIENT,
    HUB,
    HUB_INSTANCE,
    OTHER_CLIENT,
    STRANGER,
    UNVERIFIED,
    FakeOutbox,
    answered,
    autospec_proxy,
    client_hello,
    client_proof,
    deleted_operations_frame,
    diff_frame,
    failed,
    heartbeat_frame,
    hub_config_text,
    operation,
    send_operations_frame,
    write_config,
)

SETTINGS = SessionSettings(heartbeat_interval=10.0, handshake_timeout=5.0, ask_timeout=0.05)
ERROR_AUTH = pb.CONNECTION_STATE_ERROR_AUTH
ERROR_PROTOCOL = pb.CONNECTION_STATE_ERROR_PROTOCOL


@dataclass
class Rig:
    session: SessionActor
    outbox: FakeOutbox
    config: Any  # autospec_proxy(ConfigProxy)
    oplog: Any  # autospec_proxy(OplogProxy)
    peers: Any  # autospec_proxy(PeerStateProxy)

    def frame(self, data: bytes, now: float = 0.0) -> None:
        self.session.handle_frame(data, now)

    def connect(self, identity=CLIENT, instance_id: str = "web1", now: float = 0.0) -> None:
        self.frame(client_hello(identity, instance_id), now)
        challenge = self.outbox.take()[-1]
        self.frame(client_proof(challenge, identity, instance_id), now)

    def only_error(self) -> pb.SyncStreamItem.Error:
        items = self.outbox.items
        errors = [i for i in items if i.WhichOneof("action") == "error"]
        assert len(errors) == 1, f"expected exactly one error item, got {items}"
        assert items[-1].WhichOneof("action") == "error", "the error must be the last item"
        assert self.outbox.closed
        assert self.session.phase is Phase.ENDED
        return errors[0].error


@pytest.fixture
def hub_config(tmp_path: Path) -> Config:
    return write_config(tmp_path, hub_config_text())


@pytest.fixture
def rig(hub_config: Config) -> Rig:
    return make_rig(hub_config)


def make_rig(config: Config, now: float = 0.0, settings: SessionSettings = SETTINGS) -> Rig:
    outbox = FakeOutbox()
    config_actor = autospec_proxy(ConfigProxy)
    config_actor.get.return_value = answered(config)
    config_actor.subscribe.return_value = answered(41)
    oplog = autospec_proxy(OplogProxy)
    oplog.claim.return_value = answered(True)
    peers = autospec_proxy(PeerStateProxy)
    session = SessionActor(
        session_id="s-1",
        hub=HubIdentity(HUB_INSTANCE, HUB),
        settings=settings,
        config=config_actor,
        oplog=oplog,
        peers=peers,
        outbox_factory=lambda: outbox,
        now=now,
    )
    session.on_start()
    return Rig(session, outbox, config_actor, oplog, peers)


# -- the handshake ---------------------------------------------------------------


def test_successful_handshake_connects_and_sends_the_filtered_config(rig: Rig) -> None:
    rig.frame(client_hello())
    [challenge] = rig.outbox.take()
    assert challenge.handshake.public_key.keyid == HUB.keyid
    assert challenge.handshake.instance_id == HUB_INSTANCE
    assert len(challenge.handshake.nonce) == 32
    assert rig.session.phase is Phase.AWAIT_PROOF
    rig.config.get.assert_not_called()  # no authorization decision before the PROOF

    rig.frame(client_proof(challenge))

    assert rig.session.phase is Phase.CONNECTED
    assert rig.outbox.authenticated_as == [CLIENT.keyid]
    rig.peers.connected.defer.assert_called_once_with(
        CLIENT.keyid, "web1", session_id="s-1", session=rig.session.actor_ref, message=""
    )
    send_config, list_resources = rig.outbox.items
    assert [r.id for r in send_config.send_config.config.repos] == ["nas"]  # !repo:secret
    assert [p.id for p in send_config.send_config.config.plans] == ["nightly"]
    assert list(list_resources.list_resources.repo_ids) == ["nas"]
    assert list(list_resources.list_resources.plan_ids) == ["nightly"]
    assert rig.outbox.done == 2
    assert not rig.outbox.closed


@pytest.mark.parametrize("hub_resync", [True, False], ids=["resync-on", "resync-off"])
def test_resumed_sync_is_answered_unless_the_hub_turns_it_off(
    hub_config: Config, hub_resync: bool
) -> None:
    """docs/protocol.md §6.8 (Resumed sync): a HELLO offering it gets it in the CHALLENGE
    and a sync_cursors after the config; with ``[hub] resync = false`` the session is a
    version 1 one, and a check_digest in it is a protocol error."""
    rig = make_rig(hub_config, settings=dataclasses.replace(SETTINGS, resync=hub_resync))
    cursor = SyncCursor('["guid-nas",null,[]]', bytes(16), 42)
    rig.oplog.sync_cursors.return_value = answered((cursor,))
    hello = pb.SyncStreamItem.FromString(client_hello())
    hello.handshake.resync = RESYNC_VERSION
    rig.frame(hello.SerializeToString())
    [challenge] = rig.outbox.take()
    assert challenge.handshake.resync == (RESYNC_VERSION if hub_resync else 0)
    rig.frame(client_proof(challenge))
    actions = [item.WhichOneof("action") for item in rig.outbox.take()]
    if not hub_resync:
        assert actions == ["send_config", "list_resources"]
        rig.oplog.sync_cursors.assert_not_called()
        check = pb.SyncStreamItem(check_digest=pb.SyncStreamItem.CheckDigest(
            selector=pb.OpSelector(original_instance_keyid=CLIENT.keyid, repo_guid="guid-nas")))
        rig.frame(check.SerializeToString())
        assert rig.only_error().state == ERROR_PROTOCOL
        return
    assert actions == ["send_config", "list_resources", "sync_cursors"]
    rig.oplog.sync_cursors.assert_called_once_with(CLIENT.keyid)


@pytest.mark.parametrize(
    ("mutate", "state", "fragment"),
    [
        (lambda h: setattr(h, "protocol_version", 2), ERROR_PROTOCOL, "protocol_version 2"),
        (lambda h: setattr(h, "nonce", b"short"), ERROR_PROTOCOL, "nonce"),
        (lambda h: h.ClearField("public_key"), ERROR_PROTOCOL, "public_key"),
        (lambda h: setattr(h, "instance_id", ""), ERROR_PROTOCOL, "instance_id"),
        (lambda h: setattr(h.public_key, "ed25519pub", "not base64!"), ERROR_AUTH, ""),
        (lambda h: setattr(h.public_key, "keyid", OTHER_CLIENT.keyid), ERROR_AUTH, "keyid"),
    ],
    ids=["bad-version", "short-nonce", "no-key", "no-instance", "malformed-key",
         "keyid-mismatch"],
)
def test_bad_hello_is_refused_with_one_error(rig: Rig, mutate, state: int, fragment: str) -> None:
    item = hello_item(CLIENT, "web1", b"\x07" * 32)
    mutate(item.handshake)
    rig.frame(item.SerializeToString())
    error = rig.only_error()
    assert error.state == state
    assert fragment in error.message
    rig.peers.assert_not_called()
    assert rig.peers.method_calls == []
    rig.config.get.assert_not_called()


def test_bad_proof_signature_is_auth_error_without_authorization(rig: Rig) -> None:
    rig.frame(client_hello())
    [challenge] = rig.outbox.take()
    proof = pb.SyncStreamItem.FromString(client_proof(challenge))
    proof.handshake.signature = bytes([proof.handshake.signature[0] ^ 1]) + (
        proof.handshake.signature[1:]
    )
    rig.frame(proof.SerializeToString())
    assert rig.only_error().state == ERROR_AUTH
    rig.config.get.assert_not_called()
    assert rig.peers.method_calls == []


def test_proof_signed_by_another_key_is_refused(rig: Rig) -> None:
    rig.frame(client_hello())
    [challenge] = rig.outbox.take()
    checked = validate_challenge(
        challenge.handshake, pinned_keyid=HUB.keyid, pinned_instance_id=HUB_INSTANCE,
        client_instance_id="web1", client_keyid=CLIENT.keyid, client_nonce=b"\x07" * 32,
    )
    # The right transcript, signed by a different key than the HELLO presented.
    forged = sign_proof(OTHER_CLIENT, checked.transcript)
    rig.frame(proof_item(forged).SerializeToString())
    assert rig.only_error().state == ERROR_AUTH


def test_proof_replayed_from_another_connection_is_refused(hub_config: Config) -> None:
    first = make_rig(hub_config)
    first.frame(client_hello())
    recorded_proof = client_proof(first.outbox.take()[-1])

    second = make_rig(hub_config)
    second.frame(client_hello())
    second.outbox.take()
    second.frame(recorded_proof)  # the hub nonce differs, so the signature cannot verify
    assert second.only_error().state == ERROR_AUTH


@pytest.mark.parametrize(
    ("identity", "instance", "fragment"),
    [
        (STRANGER, "web9", "is not authorized"),
        (UNVERIFIED, "mail1", "is not verified"),
        (CLIENT, "web2", "authorized as instance 'web1'"),
    ],
    ids=["unknown", "unverified", "wrong-instance"],
)
def test_authorization_failures_after_a_valid_proof(
    rig: Rig, identity, instance: str, fragment: str
) -> None:
    rig.connect(identity, instance)
    error = rig.only_error()
    assert error.state == ERROR_AUTH
    assert fragment in error.message
    assert "synchub authorize" in error.message or "re-authorize" in error.message
    assert rig.outbox.authenticated_as == []
    # No peer state changes: the refusal is only reported, for its rate-limited warning.
    [(name, args, _)] = rig.peers.method_calls
    assert (name, args[:2]) == ("refused.defer", (identity.keyid, instance))
    rig.oplog.claim.assert_not_called()
    rig.config.unsubscribe.defer.assert_called_once_with(41)


def test_handshake_times_out_on_tick(rig: Rig) -> None:
    rig.session.tick(4.9)
    assert rig.outbox.frames == []
    rig.session.tick(5.0)
    error = rig.only_error()
    assert error.state == ERROR_AUTH
    assert "timed out" in error.message


def test_handshake_timeout_also_applies_while_awaiting_proof(rig: Rig) -> None:
    rig.frame(client_hello(), now=1.0)
    rig.outbox.take()
    rig.session.tick(5.0)
    assert rig.only_error().state == ERROR_AUTH


@pytest.mark.parametrize(
    "frame",
    [heartbeat_frame(), diff_frame(CLIENT.keyid, [], []), send_operations_frame([operation(1)])],
    ids=["heartbeat", "diff", "send-operations"],
)
def test_items_before_connected_are_protocol_errors(rig: Rig, frame: bytes) -> None:
    rig.frame(frame)
    assert rig.only_error().state == ERROR_PROTOCOL
    rig.oplog.apply_remote.assert_not_called()


def test_item_between_hello_and_proof_is_protocol_error(rig: Rig) -> None:
    rig.frame(client_hello())
    rig.outbox.take()
    rig.frame(diff_frame(CLIENT.keyid, [], []))
    assert rig.only_error().state == ERROR_PROTOCOL
    rig.config.get.assert_not_called()


@pytest.mark.parametrize("garbage", [b"\xff\xff\xff", b"", b"\x0a\x05abc"], ids=repr)
def test_undecodable_frames_are_protocol_errors(rig: Rig, garbage: bytes) -> None:
    rig.frame(garbage)
    assert rig.only_error().state == ERROR_PROTOCOL


def test_second_hello_after_connected_is_protocol_error(rig: Rig) -> None:
    rig.connect()
    rig.outbox.take()
    rig.frame(client_hello())
    assert rig.only_error().state == ERROR_PROTOCOL
    rig.peers.disconnected.defer.assert_called_once()


def test_multi_frame_message_reported_by_the_front(rig: Rig) -> None:
    rig.session.protocol_violation("a message must be exactly one frame, got 2")
    error = rig.only_error()
    assert error.state == ERROR_PROTOCOL
    assert "exactly one frame" in error.message


# -- after CONNECTED ------------------------------------------------------------


@pytest.fixture
def connected(rig: Rig) -> Rig:
    rig.connect()
    rig.outbox.take()
    rig.peers.reset_mock()
    return rig


def test_diff_is_answered_with_the_oplog_request_list(connected: Rig) -> None:
    connected.oplog.diff_step.return_value = answered(DiffStepResult((2, 5), None, 3))
    connected.frame(diff_frame(CLIENT.keyid, [3, 1, 2, 1], [1, 9, 1, 1]))
    [reply] = connected.outbox.items
    assert list(reply.diff_operations.request_operations) == [2, 5]
    keyid, step = connected.oplog.diff_step.call_args.args
    assert keyid == CLIENT.keyid
    assert step.selector.repo_guid == "guid-nas"
    # Ascending and unique, the last modno of a repeated id counting.
    assert (step.ids, step.modnos) == ((1, 2, 3), (1, 1, 1))
    assert (step.session_id, step.peer_instance_id, step.start, step.after) == (
        "s-1", "web1", 0, None)


def test_a_diff_is_asked_in_steps_until_the_oplog_reaches_its_end(connected: Rig) -> None:
    connected.oplog.diff_step.side_effect = [
        answered(DiffStepResult((1,), 10, 2)),
        answered(DiffStepResult((), 20, 3)),
        answered(DiffStepResult((25, 30), None, 4)),
    ]
    connected.frame(diff_frame(CLIENT.keyid, [1, 5, 15, 30], [1, 1, 1, 1]))
    [reply] = connected.outbox.items
    assert list(reply.diff_operations.request_operations) == [1, 25, 30]
    steps = [call.args[1] for call in connected.oplog.diff_step.call_args_list]
    assert [(step.start, step.after) for step in steps] == [(0, None), (2, 10), (3, 20)]


def test_a_session_revoked_between_two_diff_steps_ends_without_a_reply(connected: Rig) -> None:
    notice = connected.oplog.claim.call_args.args[3]

    def revoke_then_answer(_keyid: str, _step: object) -> pykka.Future[DiffStepResult]:
        notice.set(ERROR_AUTH, "client web1 is not authorized (any more)")
        return answered(DiffStepResult((1,), 10, 1))

    connected.oplog.diff_step.side_effect = revoke_then_answer
    connected.frame(diff_frame(CLIENT.keyid, [1, 20], [1, 1]))
    assert connected.oplog.diff_step.call_count == 1
    assert connected.outbox.items == []
    connected.frame(heartbeat_frame())  # the next frame ends it
    error = connected.only_error()
    assert (error.state, error.message) == (ERROR_AUTH, "client web1 is not authorized (any more)")


def test_empty_diff_reply_when_in_sync(connected: Rig) -> None:
    connected.oplog.diff_step.return_value = answered(DiffStepResult((), None, 1))
    connected.frame(diff_frame(CLIENT.keyid, [1], [1]))
    [reply] = connected.outbox.items
    assert reply.WhichOneof("action") == "diff_operations"
    assert list(reply.diff_operations.request_operations) == []


def test_diff_selector_of_another_keyid_is_protocol_error(connected: Rig) -> None:
    connected.frame(diff_frame(OTHER_CLIENT.keyid, [1], [1]))
    error = connected.only_error()
    assert error.state == ERROR_PROTOCOL
    assert "own keyid" in error.message
    connected.oplog.diff_step.assert_not_called()


def test_diff_ids_and_modnos_of_different_length_is_protocol_error(connected: Rig) -> None:
    connected.frame(diff_frame(CLIENT.keyid, [1, 2], [1]))
    error = connected.only_error()
    assert error.state == ERROR_PROTOCOL
    assert "2 ids but 1 modnos" in error.message
    connected.oplog.diff_step.assert_not_called()


@pytest.mark.parametrize("kind", ["created_operations", "updated_operations"])
def test_send_operations_is_applied_as_one_batch_of_this_keyid(connected: Rig, kind: str) -> None:
    connected.oplog.apply_remote.return_value = answered(None)
    ops = [operation(1), operation(2, flow_id=1)]
    connected.frame(send_operations_frame(ops, kind))
    keyid, batch = connected.oplog.apply_remote.call_args.args
    assert keyid == CLIENT.keyid
    assert isinstance(batch, RemoteBatch)
    assert list(batch.operations) == ops
    assert batch.deleted_ids == ()
    assert connected.outbox.frames == []
    assert connected.outbox.done == 3  # HELLO, PROOF, this batch


def test_deleted_operations_become_a_delete_batch(connected: Rig) -> None:
    connected.oplog.apply_remote.return_value = answered(None)
    connected.frame(deleted_operations_frame([4, 9]))
    _, batch = connected.oplog.apply_remote.call_args.args
    assert batch == RemoteBatch(deleted_ids=(4, 9), peer_instance_id="web1", session_id="s-1")


def test_operation_with_id_zero_ends_the_session_and_nothing_is_stored(connected: Rig) -> None:
    connected.oplog.apply_remote.return_value = failed(
        ProtocolError("operation id must be > 0, got 0: nothing of this batch was stored")
    )
    connected.frame(send_operations_frame([operation(1), operation(0)]))
    error = connected.only_error()
    assert error.state == ERROR_PROTOCOL
    assert "id must be > 0" in error.message
    connected.peers.disconnected.defer.assert_called_once_with(
        CLIENT.keyid, state=ERROR_PROTOCOL, message=error.message, session_id="s-1"
    )


def test_store_failure_is_an_internal_error(connected: Rig) -> None:
    connected.oplog.apply_remote.return_value = failed(StoreError("disk full"))
    connected.frame(send_operations_frame([operation(1)]))
    error = connected.only_error()
    assert error.state == pb.CONNECTION_STATE_ERROR_INTERNAL
    assert "disk full" in error.message


def test_an_internal_error_says_what_failed_not_where(connected: Rig) -> None:
    connected.oplog.apply_remote.return_value = failed(StoreError(
        "cannot write /srv/synchub/data/oplog.sqlite: database or disk is full; "
        "free space in /srv/synchub/data/"))
    connected.frame(send_operations_frame([operation(1)]))
    error = connected.only_error()
    assert error.state == pb.CONNECTION_STATE_ERROR_INTERNAL
    assert error.message == (
        "hub error: cannot write oplog.sqlite: database or disk is full; free space in a folder")
    assert "/srv" not in error.message


@pytest.mark.parametrize(
    ("state", "message", "marks_peer"),
    [
        (ERROR_AUTH, "client web1 (k) is not authorized (any more): ask the hub's operator", True),
        (pb.CONNECTION_STATE_DISCONNECTED, "displaced by a newer connection", False),
    ],
    ids=["revoked", "displaced"],
)
def test_a_raised_notice_ends_the_session_before_its_next_message(
    connected: Rig, state: int, message: str, marks_peer: bool
) -> None:
    keyid, instance, session_id, notice = connected.oplog.claim.call_args.args
    assert (keyid, instance, session_id) == (CLIENT.keyid, "web1", "s-1")
    notice.set(state, message)
    connected.session.on_receive(InboundFrame(send_operations_frame([operation(1)]), 1.0))
    error = connected.only_error()
    assert (error.state, error.message) == (state, message)
    connected.oplog.apply_remote.assert_not_called()
    connected.oplog.release.defer.assert_called_once_with(CLIENT.keyid, "s-1")
    assert connected.peers.disconnected.defer.called is marks_peer


@pytest.mark.parametrize(
    ("refusal", "state", "marks_peer"),
    [
        (AuthError("client web1 is not authorized (any more)", reason="revoked"), ERROR_AUTH,
         True),
        (SessionDisplaced("displaced by a newer connection"), pb.CONNECTION_STATE_DISCONNECTED,
         False),
    ],
    ids=["revoked", "displaced"],
)
def test_a_batch_the_write_gate_refuses_ends_the_session(
    connected: Rig, refusal: Exception, state: int, marks_peer: bool
) -> None:
    connected.oplog.apply_remote.return_value = failed(refusal)
    connected.frame(send_operations_frame([operation(1)]))
    error = connected.only_error()
    assert (error.state, error.message) == (state, str(refusal))
    assert connected.peers.disconnected.defer.called is marks_peer


def test_oplog_that_does_not_answer_ends_the_session(connected: Rig) -> None:
    connected.oplog.apply_remote.return_value = pykka.ThreadingFuture()  # never set
    connected.frame(send_operations_frame([operation(1)]))
    error = connected.only_error()
    assert error.state == pb.CONNECTION_STATE_ERROR_INTERNAL
    assert "did not answer" in error.message


def test_send_config_and_list_resources_update_the_peer_state(connected: Rig) -> None:
    # Asked, and waited for (docs/protocol.md §7.2 (Throttle): they count as backlog).
    connected.peers.set_remote_config.return_value = answered(None)
    connected.peers.set_resources.return_value = answered(None)
    config = pb.RemoteConfig(version=1, repos=[pb.Repo(id="laptop", guid="g")])
    for frame in config_frames(config, ["laptop"], ["hourly"]):
        connected.frame(frame)
    keyid, sent = connected.peers.set_remote_config.call_args.args
    assert (keyid, sent) == (CLIENT.keyid, config)
    assert connected.peers.set_remote_config.call_args.kwargs == {"session_id": "s-1"}
    connected.peers.set_resources.assert_called_once_with(
        CLIENT.keyid, ("laptop",), ("hourly",), session_id="s-1"
    )
    assert connected.outbox.frames == []


def test_a_peer_state_actor_that_does_not_answer_ends_the_session(connected: Rig) -> None:
    connected.peers.set_remote_config.return_value = pykka.ThreadingFuture()  # never answered
    config = pb.RemoteConfig(version=1)
    connected.frame(config_frames(config, [], [])[0])
    assert connected.only_error().state == pb.CONNECTION_STATE_ERROR_INTERNAL


def test_heartbeat_is_reported_to_peer_state(connected: Rig) -> None:
    connected.frame(heartbeat_frame(), now=3.0)
    connected.peers.heartbeat.defer.assert_called_once_with(CLIENT.keyid)
    assert connected.outbox.frames == []


def test_last_heard_is_never_an_interval_behind_a_streaming_client(connected: Rig) -> None:
    """docs/protocol.md §7.1 (Heartbeats), "Last heard": a heartbeat is reported at
    once; other items keep the record within one heartbeat interval of the last one."""
    connected.oplog.diff_step.return_value = answered(DiffStepResult((), None, 0))
    reported = [0.0]  # the handshake's end sets it

    def report_count() -> int:
        return connected.peers.heartbeat.defer.call_count

    interval = SETTINGS.heartbeat_interval
    now = 0.0
    while now < 4 * interval:
        now += 0.7
        before = report_count()
        connected.frame(diff_frame(CLIENT.keyid, [], []), now=now)
        if report_count() > before:
            reported.append(now)
        assert now - reported[-1] < interval, f"last heard {now - reported[-1]:.1f}s behind"
    assert len(reported) >= 4
    before = report_count()
    connected.frame(heartbeat_frame(), now=now + 0.1)
    assert report_count() == before + 1
    connected.peers.heartbeat.defer.assert_called_with(CLIENT.keyid)


def test_any_item_is_heard_from_within_a_second(connected: Rig) -> None:
    connected.oplog.diff_step.return_value = answered(DiffStepResult((), None, 0))
    reported = []
    now = 0.0
    while now < 3 * SETTINGS.heartbeat_interval:
        now = round(now + 0.3, 1)
        before = connected.peers.heartbeat.defer.call_count
        connected.frame(diff_frame(CLIENT.keyid, [], []), now=now)
        if connected.peers.heartbeat.defer.call_count > before:
            reported.append(now)
    gaps = [b - a for a, b in itertools.pairwise(reported)]
    assert len(reported) >= 24  # about one a second over 30 s of streaming
    assert max(gaps) < 1.25  # the first item at least a second after the last report


def test_error_from_the_client_ends_the_session_without_a_reply(connected: Rig) -> None:
    connected.frame(error_frame(pb.CONNECTION_STATE_ERROR_INTERNAL, "disk full"))
    assert connected.outbox.frames == []
    assert connected.outbox.closed
    _, kwargs = connected.peers.disconnected.defer.call_args
    assert "disk full" in kwargs["message"]


# -- time, liveness, displacement, config changes ---------------------------------


def test_hub_heartbeats_when_it_has_sent_nothing_for_an_interval(connected: Rig) -> None:
    connected.frame(heartbeat_frame(), now=9.0)
    connected.session.tick(9.9)
    assert connected.outbox.frames == []
    connected.session.tick(10.0)
    [heartbeat] = connected.outbox.take()
    assert heartbeat.WhichOneof("action") == "heartbeat"
    connected.session.tick(15.0)
    assert connected.outbox.frames == []


def test_silent_peer_is_disconnected_after_three_intervals(connected: Rig) -> None:
    connected.frame(heartbeat_frame(), now=10.0)
    connected.session.tick(39.9)
    assert connected.session.phase is Phase.CONNECTED
    connected.session.tick(40.0)
    assert connected.session.phase is Phase.ENDED
    assert all(i.WhichOneof("action") != "error" for i in connected.outbox.items)
    _, kwargs = connected.peers.disconnected.defer.call_args
    assert kwargs["state"] == pb.CONNECTION_STATE_DISCONNECTED
    assert kwargs["session_id"] == "s-1"


def test_displaced_session_ends_without_marking_the_peer(connected: Rig) -> None:
    connected.session.displace()
    error = connected.only_error()
    assert error.state == pb.CONNECTION_STATE_DISCONNECTED
    assert error.message == "displaced by a newer connection"
    connected.peers.disconnected.defer.assert_not_called()


def test_vanished_peer_gets_no_error_frame(connected: Rig) -> None:
    connected.session.peer_vanished()
    assert connected.outbox.frames == []
    assert connected.outbox.closed
    connected.peers.disconnected.defer.assert_called_once()


def test_revocation_mid_session_ends_it_with_auth_error(connected: Rig, tmp_path: Path) -> None:
    text = hub_config_text().replace(f'keyid = "{CLIENT.keyid}"', f'keyid = "{STRANGER.keyid}"')
    revoked = write_config(tmp_path, text)
    connected.session.on_config_changed(revoked)
    error = connected.only_error()
    assert error.state == ERROR_AUTH
    assert error.message == "revoked by the operator"
    _, kwargs = connected.peers.disconnected.defer.call_args
    assert kwargs["state"] == ERROR_AUTH
    assert kwargs["message"] == "revoked by the operator"


def test_unverifying_mid_session_ends_it(connected: Rig, tmp_path: Path) -> None:
    text = hub_config_text().replace("keyid_verified = true", "keyid_verified = false", 1)
    connected.session.on_config_changed(write_config(tmp_path, text))
    assert "not verified" in connected.only_error().message


def test_config_change_resends_only_a_changed_view(connected: Rig, tmp_path: Path) -> None:
    connected.session.on_config_changed(write_config(tmp_path, hub_config_text()))
    assert connected.outbox.frames == []

    wider = write_config(tmp_path, hub_config_text(client_scopes='["*"]'))
    connected.session.on_config_changed(wider)
    send_config, list_resources = connected.outbox.take()
    assert [r.id for r in send_config.send_config.config.repos] == ["nas", "secret"]
    assert list(list_resources.list_resources.repo_ids) == ["nas", "secret"]


def test_hub_shutdown_says_goodbye_and_marks_the_peer(connected: Rig) -> None:
    connected.session.on_stop()
    error = connected.only_error()
    assert error.state == pb.CONNECTION_STATE_DISCONNECTED
    assert "shutting down" in error.message
    connected.peers.disconnected.defer.assert_called_once()


def test_frames_after_the_end_are_ignored(connected: Rig) -> None:
    connected.session.displace()
    connected.outbox.take()
    connected.frame(heartbeat_frame())
    connected.session.tick(100.0)
    assert connected.outbox.frames == []


def test_operations_keep_the_producers_instance_and_the_batch_names_the_peer(
    connected: Rig,
) -> None:
    connected.oplog.apply_remote.return_value = answered(None)
    produced = operation(1)
    produced.instance_id = "laptop"
    connected.frame(send_operations_frame([produced]))
    keyid, batch = connected.oplog.apply_remote.call_args.args
    assert keyid == CLIENT.keyid
    assert [op.instance_id for op in batch.operations] == ["laptop"]
    assert batch.peer_instance_id == "web1"


# -- the front's messages, as the front tells them ----------------------------------------


def test_told_frames_run_the_handshake_as_handle_frame_does(rig: Rig) -> None:
    rig.session.on_receive(InboundFrame(client_hello(), 0.0))
    [challenge] = rig.outbox.take()
    rig.session.on_receive(InboundFrame(client_proof(challenge), 0.0))
    assert rig.session.phase is Phase.CONNECTED
    assert [i.WhichOneof("action") for i in rig.outbox.items] == ["send_config", "list_resources"]
    assert rig.outbox.done == 2


def test_a_told_frame_is_skipped_once_the_hub_is_stopping(rig: Rig) -> None:
    stopping = threading.Event()
    stopping.set()
    rig.session.on_receive(InboundFrame(client_hello(), 0.0, stopping))
    assert rig.outbox.frames == []
    assert rig.outbox.done == 0
    assert rig.session.phase is Phase.AWAIT_HELLO


def test_a_told_tick_times_the_handshake_out(rig: Rig) -> None:
    rig.session.on_receive(Tick(4.9))
    assert rig.outbox.frames == []
    rig.session.on_receive(Tick(5.0))
    assert rig.only_error().state == ERROR_AUTH


@pytest.mark.parametrize(
    ("message", "state", "error_sent", "peer_marked"),
    [
        (ProtocolViolation("a message must be exactly one frame, got 3"), ERROR_PROTOCOL, True,
         True),
        (PeerVanished(), pb.CONNECTION_STATE_DISCONNECTED, False, True),
        (Displace(), pb.CONNECTION_STATE_DISCONNECTED, True, False),
    ],
    ids=["violation", "vanished", "displaced"],
)
def test_told_endings(
    connected: Rig, message: object, state: int, error_sent: bool, peer_marked: bool
) -> None:
    connected.session.on_receive(message)
    assert connected.session.phase is Phase.ENDED
    assert connected.outbox.closed
    if error_sent:
        assert connected.only_error().state == state
    else:
        assert connected.outbox.frames == []
    assert connected.peers.disconnected.defer.called is peer_marked


def test_a_told_config_change_is_checked_like_on_config_changed(
    connected: Rig, tmp_path: Path
) -> None:
    text = hub_config_text().replace("keyid_verified = true", "keyid_verified = false", 1)
    connected.session.on_receive(ConfigChanged(write_config(tmp_path, text)))
    assert "not verified" in connected.only_error().message


def test_a_told_message_whose_handling_fails_ends_the_session_with_one_error(
    connected: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(now: float) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(connected.session, "tick", broken)
    connected.session.on_receive(Tick(1.0))
    error = connected.only_error()
    assert error.state == pb.CONNECTION_STATE_ERROR_INTERNAL
    assert "internal error" in error.message


def test_an_unknown_message_is_ignored(connected: Rig) -> None:
    connected.session.on_receive({"command": "stop"})
    assert connected.session.phase is Phase.CONNECTED
    assert connected.outbox.frames == []


# -- logs on demand (docs/protocol.md §6.7 (Logs on demand)) ------------------------------


def log_data_frame(rid: int, offset: int, data: bytes, *, last: bool, size: int = 0,
                   status: int = pb.LOG_STATUS_OK, message: str = "") -> bytes:
    answer = LogAnswer(status, offset, data, size, complete=last, message=message)
    return encode_item(log_data_item(rid, answer, last=last))


def fetch(rig: Rig, query: LogQuery) -> LogReply:
    reply = LogReply()
    rig.session.on_receive(FetchLog(query, reply))
    return reply


def test_a_fetch_asks_the_client_and_its_chunks_answer_it(connected: Rig) -> None:
    reply = fetch(connected, LogQuery(7, offset=0, max_bytes=100))
    [item] = connected.outbox.take()
    assert item.request_log.operation_id == 7 and item.request_log.max_bytes == 100
    rid = item.request_log.request_id
    connected.frame(log_data_frame(rid, 0, b"boom\n", last=False))
    connected.frame(log_data_frame(rid, 5, b"more", last=True, size=9))
    assert reply.wait(0) == LogAnswer(offset=0, data=b"boom\nmore", log_size=9, complete=True)
    assert connected.session.phase is Phase.CONNECTED


def test_a_refusal_reaches_the_reader(connected: Rig) -> None:
    reply = fetch(connected, LogQuery(7))
    [item] = connected.outbox.take()
    connected.frame(log_data_frame(item.request_log.request_id, 0, b"", last=True,
                                   status=pb.LOG_STATUS_DENIED, message="no read_logs"))
    answer = reply.wait(0)
    assert (answer.status, answer.message) == (pb.LOG_STATUS_DENIED, "no read_logs")


def test_an_oversized_chunk_ends_the_session(connected: Rig) -> None:
    reply = fetch(connected, LogQuery(7))
    [item] = connected.outbox.take()
    connected.frame(log_data_frame(item.request_log.request_id, 0,
                                   b"x" * (LOG_CHUNK_BYTES + 1), last=True))
    error = connected.only_error()
    assert error.state == ERROR_PROTOCOL and "at most" in error.message
    with pytest.raises(LogFetchError, match="session ended"):
        reply.wait(0)


def test_unsolicited_log_data_is_ignored(connected: Rig) -> None:
    connected.frame(log_data_frame(99, 0, b"hello", last=True))
    assert connected.outbox.take() == []
    assert connected.session.phase is Phase.CONNECTED


def test_requests_beyond_the_limit_fail_at_once(connected: Rig) -> None:
    replies = [fetch(connected, LogQuery(1)) for _ in range(LOG_REQUESTS_PER_SESSION + 3)]
    assert len(connected.outbox.take()) == LOG_REQUESTS_PER_SESSION
    for extra in replies[LOG_REQUESTS_PER_SESSION:]:
        with pytest.raises(LogFetchError, match="already waiting"):
            extra.wait(0)


def test_an_unanswered_request_times_out_on_a_tick(connected: Rig) -> None:
    reply = fetch(connected, LogQuery(1))
    connected.outbox.take()
    connected.frame(heartbeat_frame(), now=LOG_REQUEST_TIMEOUT - 1)
    connected.session.tick(LOG_REQUEST_TIMEOUT - 0.5)
    with pytest.raises(LogFetchError, match="no answer"):
        reply.wait(0)
    connected.session.tick(LOG_REQUEST_TIMEOUT + 0.1)
    with pytest.raises(LogFetchError, match="did not answer the log request within 10s"):
        reply.wait(0)


def test_a_fetch_before_the_handshake_or_after_the_end_fails(rig: Rig) -> None:
    with pytest.raises(LogFetchError, match="not connected"):
        fetch(rig, LogQuery(1)).wait(0)
    rig.connect()
    pending = fetch(rig, LogQuery(1))
    rig.session.displace()
    with pytest.raises(LogFetchError, match="displaced by a newer connection"):
        pending.wait(0)
    with pytest.raises(LogFetchError, match="not connected"):
        fetch(rig, LogQuery(1)).wait(0)


def test_a_client_cannot_send_request_log(connected: Rig) -> None:
    connected.frame(encode_item(request_log_item(1, LogQuery(1))))
    assert connected.only_error().state == ERROR_PROTOCOL
