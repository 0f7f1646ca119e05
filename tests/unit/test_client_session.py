"""ClientSession without sockets: frames and times in, frames and decisions out.

A scripted hub (the real handshake functions, the hub's own frame builders) and
an in-memory oplog implementing ClientOplog drive it; time is passed in.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import pytest

from hub.errors import ClientError, HubRefused, HubUnavailable
from hub.pb import synchub_pb2 as pb
from hub.protocol import (
    CONFIRM_ROUNDS,
    MAX_CHECKS,
    MAX_ONCE_ROUNDS,
    RESYNC_VERSION,
    ClientHandshake,
    ClientOplog,
    ClientSession,
    ClientSessionSettings,
    DiffSelection,
    HubPin,
    LinkEvent,
    SharedConfig,
    SyncScope,
    challenge_item,
    config_frames,
    diff_reply_frame,
    encode_item,
    error_frame,
    heartbeat_frame,
    hub_transcript,
    sign_challenge,
    sync_cursors_frame,
    throttle_frame,
    validate_hello,
    validate_proof,
)
from hub.store import BucketDigest, LocalChanges, SerializedOperation, digest_pairs
from synchub_testing import CLIENT, HUB, HUB_INSTANCE, STRANGER

T0 = 1000.0
HUB_NONCE = b"\x4b" * 32
PIN = HubPin(HUB_INSTANCE, HUB.keyid)
NAS = DiffSelection("guid-nas")
SCOPE = SyncScope((NAS,))
ONCE = ClientSessionSettings(
    heartbeat_interval=10.0, handshake_timeout=5.0, answer_timeout=30.0, once=True
)
RUNNING = ClientSessionSettings(
    heartbeat_interval=10.0, handshake_timeout=5.0, answer_timeout=30.0,
    poll_interval=0.5, rediff_interval=300.0,
)
SHARED = SharedConfig(pb.RemoteConfig(version=1, repos=[pb.Repo(id="nas", guid="guid-nas")]),
                      ("nas",), ())


# --- fakes --------------------------------------------------------------------------------


class MemoryOplog:
    """A ClientOplog in memory: the node's own operations and a modno-ordered change feed."""

    def __init__(self) -> None:
        self.ops: dict[int, pb.Operation] = {}
        self.deleted: dict[int, int] = {}
        self.modno = 0
        self.loads: list[list[int]] = []

    def add(self, *ops: pb.Operation) -> None:
        for op in ops:
            self.modno += 1
            stored = pb.Operation()
            stored.CopyFrom(op)
            stored.modno = self.modno
            self.ops[op.id] = stored
            self.deleted.pop(op.id, None)

    def delete(self, op_id: int) -> None:
        self.modno += 1
        del self.ops[op_id]
        self.deleted[op_id] = self.modno

    def high_water(self) -> int:
        return self.modno

    def changes_since(self, modno: int) -> LocalChanges:
        changed = tuple(op for _, op in sorted(self.ops.items()) if op.modno > modno)
        gone = tuple(i for i, m in sorted(self.deleted.items()) if m > modno)
        return LocalChanges(changed, gone, self.modno)

    def have(self, selection: DiffSelection) -> tuple[list[int], list[int]]:
        mine = [op for _, op in sorted(self.ops.items())
                if selection.contains(op.repo_guid, op.plan_id)]
        return [op.id for op in mine], [op.modno for op in mine]

    def load_serialized_parts(self, ids: Sequence[int]) -> Iterator[list[SerializedOperation]]:
        wanted = sorted(set(ids))
        self.loads.append(wanted)
        yield [
            SerializedOperation(i, self.ops[i].repo_guid, self.ops[i].plan_id,
                                self.ops[i].SerializeToString())
            for i in wanted if i in self.ops
        ]


@dataclass
class Recorder:
    """A SessionListener that writes down what it was told."""

    events: list[str] = field(default_factory=list)
    rounds: list[bool] = field(default_factory=list)
    progress_seen: list[tuple[int, int]] = field(default_factory=list)
    configs: list[pb.RemoteConfig] = field(default_factory=list)

    def connected(self) -> None:
        self.events.append("connected")

    def round_finished(self, in_sync: bool) -> None:
        self.rounds.append(in_sync)

    def progress(self, sent: int, requested: int) -> None:
        self.progress_seen.append((sent, requested))

    def config_received(self, config: pb.RemoteConfig) -> None:
        self.configs.append(config)


def op(op_id: int, *, repo_guid: str = "guid-nas", plan_id: str = "nightly") -> pb.Operation:
    return pb.Operation(id=op_id, flow_id=op_id, repo_guid=repo_guid, plan_id=plan_id,
                        display_message=f"op {op_id}")


def oplog_with(*ids: int) -> MemoryOplog:
    oplog = MemoryOplog()
    oplog.add(*(op(i) for i in ids))
    return oplog


def make_session(
    oplog: ClientOplog,
    settings: ClientSessionSettings = ONCE,
    *,
    pin: HubPin = PIN,
    scope: SyncScope = SCOPE,
    listener: Recorder | None = None,
) -> ClientSession:
    handshake = ClientHandshake(CLIENT, "web1", pin, b"\xc1" * 32)
    return ClientSession(handshake, oplog, scope, SHARED, settings=settings, listener=listener)


def drain(session: ClientSession, now: float) -> list[pb.SyncStreamItem]:
    """Everything the session sends at ``now``, as a link that always takes it would."""
    sent = []
    while (frame := session.next_frame(now)) is not None:
        sent.append(pb.SyncStreamItem.FromString(frame))
        session.frame_sent(now)
    return sent


def kind(item: pb.SyncStreamItem) -> str:
    """A short name for an item the client sent."""
    action = item.WhichOneof("action")
    if action == "diff_operations":
        return "ack" if list(item.diff_operations.have_operations_selector.ids) == [0] else "diff"
    if action == "send_operations":
        return str(item.send_operations.event.WhichOneof("event"))
    return str(action)


def challenge_frame(hello: pb.SyncStreamItem, *, instance: str = HUB_INSTANCE,
                    flip: bool = False) -> bytes:
    """The hub's CHALLENGE to ``hello``, signed by the hub key (or with one bit flipped)."""
    checked = validate_hello(hello.handshake)
    signature = sign_challenge(HUB, hub_transcript(checked, HUB, instance, HUB_NONCE))
    if flip:
        signature = bytes([signature[0] ^ 1]) + signature[1:]
    return encode_item(challenge_item(HUB, instance, HUB_NONCE, signature))


def hub_config() -> list[bytes]:
    return config_frames(pb.RemoteConfig(version=1), [], [])


def connect(session: ClientSession, now: float = T0) -> list[pb.SyncStreamItem]:
    """Run the handshake; what the session sends once connected."""
    session.start(now)
    [hello] = drain(session, now)
    session.receive([challenge_frame(hello)], now)
    [proof] = drain(session, now)
    assert kind(proof) == "handshake"
    for frame in hub_config():
        session.receive([frame], now)
    return drain(session, now)


def reply(session: ClientSession, requested: Iterable[int], now: float = T0) -> None:
    session.receive([diff_reply_frame(list(requested))], now)


# --- handshake ----------------------------------------------------------------------------


def test_a_good_handshake_connects_and_the_sync_begins_in_order() -> None:
    listener = Recorder()
    session = make_session(oplog_with(1, 2), listener=listener)
    session.start(T0)
    [hello] = drain(session, T0)
    checked = validate_hello(hello.handshake)
    assert (checked.instance_id, checked.keyid, checked.nonce) == ("web1", CLIENT.keyid,
                                                                   b"\xc1" * 32)
    assert session.next_frame(T0) is None
    session.receive([challenge_frame(hello)], T0)
    [proof] = drain(session, T0)
    transcript = hub_transcript(checked, HUB, HUB_INSTANCE, HUB_NONCE)
    validate_proof(proof.handshake, checked, transcript)
    assert not session.connected and session.closing_frame() is None

    session.receive([hub_config()[0]], T0)
    assert session.connected and listener.events == ["connected"]
    sent = drain(session, T0)
    assert [kind(item) for item in sent] == ["send_config", "list_resources", "diff"]
    assert sent[0].send_config.config == SHARED.config
    assert list(sent[1].list_resources.repo_ids) == ["nas"]
    diff = sent[2].diff_operations
    assert diff.have_operations_selector.original_instance_keyid == CLIENT.keyid
    assert diff.have_operations_selector.repo_guid == "guid-nas"
    assert list(diff.have_operation_ids) == [1, 2]
    closing = pb.SyncStreamItem.FromString(session.closing_frame() or b"")
    assert closing.error.state == pb.CONNECTION_STATE_DISCONNECTED


@pytest.mark.parametrize(
    ("pin", "flip", "match"),
    [
        (HubPin(HUB_INSTANCE, STRANGER.keyid), False,
         f"does not match known_hosts: hub presented keyid {HUB.keyid} but known_hosts pins"),
        (HubPin("hub-2", HUB.keyid), False, "calls itself 'hub-1' but known_hosts expects 'hub-2'"),
        (HubPin(HUB_INSTANCE, HUB.keyid), True, "sent a bad CHALLENGE signature"),
    ],
    ids=["wrong pinned keyid", "wrong instance", "bad signature"],
)
def test_a_challenge_that_does_not_match_the_pin_is_refused_and_no_proof_goes(
    pin: HubPin, flip: bool, match: str
) -> None:
    session = make_session(oplog_with(), pin=pin)
    session.start(T0)
    [hello] = drain(session, T0)
    with pytest.raises(HubRefused, match=match):
        session.receive([challenge_frame(hello, flip=flip)], T0)
    assert session.next_frame(T0) is None
    assert not session.connected


def test_a_malformed_challenge_is_the_hub_unavailable() -> None:
    session = make_session(oplog_with())
    session.start(T0)
    drain(session, T0)
    bad = pb.SyncStreamItem(handshake=pb.SyncStreamItem.Handshake(protocol_version=1))
    # Built raw on purpose: no builder makes a CHALLENGE without a key.
    with pytest.raises(HubUnavailable, match="sent a malformed CHALLENGE: CHALLENGE has no"):
        session.receive([bad.SerializeToString()], T0)


@pytest.mark.parametrize("after_proof", [False, True], ids=["to the HELLO", "to the PROOF"])
@pytest.mark.parametrize(
    ("state", "raised", "match"),
    [
        (pb.CONNECTION_STATE_ERROR_AUTH, HubRefused, "refused this client: not authorized"),
        (pb.CONNECTION_STATE_RETRY_WAIT, HubUnavailable,
         r"ended the session \(CONNECTION_STATE_RETRY_WAIT\): not authorized"),
        (pb.CONNECTION_STATE_ERROR_PROTOCOL, HubUnavailable, "CONNECTION_STATE_ERROR_PROTOCOL"),
    ],
)
def test_hub_error_replies_become_refused_or_unavailable(
    after_proof: bool, state: pb.ConnectionState, raised: type[Exception], match: str
) -> None:
    session = make_session(oplog_with())
    session.start(T0)
    [hello] = drain(session, T0)
    if after_proof:
        session.receive([challenge_frame(hello)], T0)
        drain(session, T0)
    with pytest.raises(raised, match=match):
        session.receive([error_frame(state, "not authorized")], T0)


def test_answers_that_are_not_the_next_handshake_step_end_the_session() -> None:
    session = make_session(oplog_with())
    session.start(T0)
    drain(session, T0)
    with pytest.raises(HubUnavailable, match="answered the HELLO with heartbeat, not a CHALLENGE"):
        session.receive([heartbeat_frame()], T0)

    session = make_session(oplog_with())
    session.start(T0)
    [hello] = drain(session, T0)
    session.receive([challenge_frame(hello)], T0)
    drain(session, T0)
    with pytest.raises(HubUnavailable, match="answered the PROOF with list_resources, not its"):
        session.receive([hub_config()[1]], T0)


def test_handshake_waits_are_bounded_and_say_why() -> None:
    session = make_session(oplog_with())
    session.start(T0)
    drain(session, T0)
    assert session.next_deadline(T0) == T0 + 30
    session.advance(T0 + 29.9)
    # Nothing but the handshake goes before the hub's config, heartbeats included.
    assert session.next_frame(T0 + 29.9) is None
    with pytest.raises(HubUnavailable, match=r"unreachable: no connection within 30s"):
        session.advance(T0 + 30)

    session = make_session(oplog_with())
    session.start(T0)
    [hello] = drain(session, T0)
    session.link_event(LinkEvent.CONNECTED)
    with pytest.raises(HubUnavailable, match=r"did not answer the HELLO within 30s"):
        session.advance(T0 + 30)

    session = make_session(oplog_with())
    session.start(T0)
    [hello] = drain(session, T0)
    session.link_event(LinkEvent.CONNECTED)
    session.receive([challenge_frame(hello)], T0 + 1)
    drain(session, T0 + 1)
    session.advance(T0 + 5.9)
    with pytest.raises(HubUnavailable, match=r"did not answer this client's PROOF within 5s"):
        session.advance(T0 + 6)


def test_link_events_a_wrong_curve_key_and_a_dropped_link() -> None:
    session = make_session(oplog_with())
    session.start(T0)
    session.link_event(LinkEvent.DISCONNECTED)  # before the link was secured: libzmq retries
    session.link_event(LinkEvent.SECURING_FAILED)
    with pytest.raises(HubRefused, match="check that known_hosts curve_public_key is the hub's"):
        session.link_event(LinkEvent.SECURING_FAILED)

    session = make_session(oplog_with())
    session.start(T0)
    session.link_event(LinkEvent.CONNECTED)
    session.link_event(LinkEvent.SECURED)
    with pytest.raises(HubUnavailable, match="connection lost"):
        session.link_event(LinkEvent.DISCONNECTED)


def test_frames_that_are_not_one_known_item() -> None:
    session = make_session(oplog_with())
    session.start(T0)
    drain(session, T0)
    session.receive([b""], T0)  # no action this client knows: ignored
    with pytest.raises(HubUnavailable, match="sent a 2-frame message"):
        session.receive([heartbeat_frame(), heartbeat_frame()], T0)
    with pytest.raises(HubUnavailable, match="not a SyncStreamItem"):
        session.receive([b"\xff\xff\xff"], T0)


# --- rounds and confirmations -------------------------------------------------------------


def test_once_answers_requests_then_confirms_and_is_done() -> None:
    listener = Recorder()
    oplog = oplog_with(1, 2, 3)
    session = make_session(oplog, listener=listener)
    connect(session)
    reply(session, [1, 3, 9])
    sent = drain(session, T0)
    assert [kind(item) for item in sent] == ["created_operations", "deleted_operations"]
    assert [o.id for o in sent[0].send_operations.event.created_operations.operations] == [1, 3]
    assert list(sent[1].send_operations.event.deleted_operations.values) == [9]
    assert oplog.loads == [[1, 3, 9]]

    session.advance(T0)
    assert not session.done and listener.rounds == [False]
    [confirm] = drain(session, T0)
    assert kind(confirm) == "diff"
    reply(session, [])
    session.advance(T0)
    assert session.done and session.in_sync and listener.rounds == [False, True]
    assert session.totals.rounds == (3, 0)
    assert (session.totals.sent, session.totals.deleted) == (2, 1)
    assert listener.progress_seen == [(2, 3)]


def test_a_round_waits_for_its_answers_to_be_sent() -> None:
    session = make_session(oplog_with(1))
    connect(session)
    reply(session, [1])
    session.advance(T0)  # every reply is in, but the requested operation is not sent yet
    assert session.next_frame(T0) is not None
    assert [kind(item) for item in drain(session, T0)] == ["created_operations"]
    session.advance(T0)
    assert [kind(item) for item in drain(session, T0)] == ["diff"]


def test_once_gives_up_after_the_most_rounds() -> None:
    no_acks = ClientSessionSettings(send_window=1000, ack_every=1000, once=True)
    session = make_session(oplog_with(1), no_acks)
    connect(session)
    for _ in range(MAX_ONCE_ROUNDS - 1):
        reply(session, [1])
        drain(session, T0)
        session.advance(T0)
        assert [kind(item) for item in drain(session, T0)] == ["diff"]
    reply(session, [1])
    drain(session, T0)
    with pytest.raises(ClientError, match=rf"still requested 1 operations after "
                                          rf"{MAX_ONCE_ROUNDS} rounds of diffs"):
        session.advance(T0)


def test_running_confirms_at_once_a_few_times_then_waits_for_the_rediff() -> None:
    session = make_session(oplog_with(1), RUNNING)
    connect(session)
    now = T0
    for _ in range(CONFIRM_ROUNDS):
        reply(session, [1], now)
        drain(session, now)
        session.advance(now)  # the round ends
        session.advance(now)  # and the confirming one starts at once
        sent = [kind(item) for item in drain(session, now)]
        if sent != ["diff"]:
            break
    # Three rounds in a row requested something: the next diff waits for the interval.
    assert sent == []
    session.receive([heartbeat_frame()], now + 20)
    session.advance(now + 20)
    assert [kind(item) for item in drain(session, now + 20)] == ["heartbeat"]
    now += 299.9
    session.receive([heartbeat_frame()], now)
    session.advance(now)
    assert "diff" not in [kind(item) for item in drain(session, now)]
    session.receive([heartbeat_frame()], now + 0.1)
    session.advance(now + 0.1)
    assert [kind(item) for item in drain(session, now + 0.1)] == ["diff"]


def test_running_streams_live_changes_past_the_mark_read_before_the_first_diff() -> None:
    oplog = oplog_with(1)
    session = make_session(oplog, RUNNING)
    connect(session)
    reply(session, [])
    session.advance(T0)
    assert session.in_sync
    oplog.add(op(2), op(3, repo_guid="guid-elsewhere"))
    oplog.delete(1)
    session.advance(T0 + 0.4)
    assert drain(session, T0 + 0.4) == []
    session.advance(T0 + 0.5)
    sent = drain(session, T0 + 0.5)
    assert [kind(item) for item in sent] == ["updated_operations", "deleted_operations"]
    assert [o.id for o in sent[0].send_operations.event.updated_operations.operations] == [2]
    assert list(sent[1].send_operations.event.deleted_operations.values) == [1]
    session.advance(T0 + 1.0)
    assert drain(session, T0 + 1.0) == []


def test_answers_go_in_batches_of_one_frame_each() -> None:
    listener = Recorder()
    session = make_session(oplog_with(*range(1, 601)), listener=listener)
    connect(session)
    reply(session, range(1, 601))
    sent = drain(session, T0)
    sizes = [len(item.send_operations.event.created_operations.operations)
             for item in sent if kind(item) == "created_operations"]
    assert sizes == [256, 256, 88]
    assert listener.progress_seen == [(256, 600), (512, 600), (600, 600)]


def test_a_diff_too_large_for_one_frame_is_an_error_not_a_frame() -> None:
    session = make_session(oplog_with(*range(1, 101)),
                           ClientSessionSettings(max_frame_bytes=250, once=True))
    session.start(T0)
    [hello] = drain(session, T0)
    session.receive([challenge_frame(hello)], T0)
    drain(session, T0)
    with pytest.raises(ClientError, match=r"lists 100 operations.*more than one frame"):
        session.receive([hub_config()[0]], T0)


def test_a_reply_to_a_diff_never_sent_ends_the_session() -> None:
    session = make_session(oplog_with(1))
    session.start(T0)
    [hello] = drain(session, T0)
    session.receive([challenge_frame(hello)], T0)
    drain(session, T0)
    session.receive([hub_config()[0]], T0)
    # The diff is queued but has not gone out: a reply cannot be to it.
    with pytest.raises(HubUnavailable, match="answered a diff this client did not send"):
        reply(session, [])

    session = make_session(oplog_with(1))
    connect(session)
    reply(session, [])
    with pytest.raises(HubUnavailable, match="answered a diff this client did not send"):
        reply(session, [])


# --- acknowledgements and the send window -------------------------------------------------


def test_the_window_holds_data_until_acknowledgement_diffs_come_back() -> None:
    settings = ClientSessionSettings(send_window=4, ack_every=2, batch_operations=1, once=True)
    session = make_session(oplog_with(*range(1, 7)), settings)
    assert [kind(i) for i in connect(session)] == ["send_config", "list_resources", "ack", "diff"]
    reply(session, [])  # the first acknowledgement: frames 1-2
    reply(session, range(1, 7))
    sent = drain(session, T0)
    assert [kind(i) for i in sent] == [
        "created_operations", "ack", "created_operations", "created_operations", "ack",
    ]
    ack = sent[1].diff_operations
    assert ack.have_operations_selector == pb.OpSelector(
        original_instance_keyid=CLIENT.keyid, ids=[0]
    )
    assert list(ack.have_operation_ids) == [] == list(ack.have_operation_modnos)
    # Six data frames sent, two acknowledged: the window of four is full.
    assert not session.wants_to_send(T0) and session.next_frame(T0) is None
    reply(session, [])  # acknowledges frames 1-4
    assert [kind(i) for i in drain(session, T0)] == [
        "created_operations", "created_operations", "ack",
    ]
    reply(session, [5])  # an acknowledgement that asks for something is ignored
    reply(session, [])
    assert [kind(i) for i in drain(session, T0)] == ["created_operations"]
    session.advance(T0)
    # The confirming diff is the tenth data frame: an acknowledgement follows it.
    assert [kind(i) for i in drain(session, T0)] == ["diff", "ack"]
    assert session.totals.sent == 6


def test_data_frames_are_everything_but_heartbeats_errors_and_acknowledgements() -> None:
    """docs/protocol.md §6.1 (Model): send_config, list_resources, diffs, send_operations
    and log_data count in the window; heartbeats and acknowledgement diffs do not."""
    settings = ClientSessionSettings(send_window=3, ack_every=3, batch_operations=1,
                                     heartbeat_interval=10.0, poll_interval=100.0, once=True)
    session = make_session(oplog_with(1, 2, 3), settings)
    # send_config, list_resources and the diff are data frames 1-3: the window is full.
    assert [kind(i) for i in connect(session)] == ["send_config", "list_resources", "diff",
                                                   "ack"]
    reply(session, [1, 2, 3])  # the diff's reply: data to send, but no room for it
    assert drain(session, T0) == []
    # A heartbeat is not data: it goes out with the window full.
    assert [kind(i) for i in drain(session, T0 + 10)] == ["heartbeat"]
    reply(session, [], now=T0 + 10)  # the acknowledgement confirms frames 1-3
    sent = drain(session, T0 + 10)
    # Three operation batches fill the window again, and then the ack is due.
    assert [kind(i) for i in sent] == ["created_operations"] * 3 + ["ack"]
    assert drain(session, T0 + 10) == []


def test_throttle_holds_data_but_not_heartbeats_or_acknowledgements() -> None:
    settings = ClientSessionSettings(heartbeat_interval=10.0, send_window=32, ack_every=2,
                               batch_operations=1, once=True)
    session = make_session(oplog_with(1, 2, 3), settings)
    assert [kind(i) for i in connect(session)] == ["send_config", "list_resources", "ack", "diff"]
    reply(session, [])
    session.receive([throttle_frame(500)], T0 + 1)
    reply(session, [1, 2, 3], T0 + 1)
    assert session.next_deadline(T0 + 1) == pytest.approx(T0 + 1.5)
    assert session.next_frame(T0 + 1.4) is None
    assert not session.wants_to_send(T0 + 1.4)

    first = session.next_frame(T0 + 1.5)
    assert first is not None and kind(pb.SyncStreamItem.FromString(first)) == (
        "created_operations"
    )
    session.frame_sent(T0 + 1.5)
    session.receive([throttle_frame(1000)], T0 + 1.5)
    # The acknowledgement that came due goes out; the operations behind it wait.
    assert [kind(i) for i in drain(session, T0 + 1.5)] == ["ack"]
    assert drain(session, T0 + 2.4) == []
    assert [kind(i) for i in drain(session, T0 + 2.5)] == [
        "created_operations", "created_operations", "ack",
    ]

    reply(session, [], T0 + 3)
    reply(session, [], T0 + 3)
    session.receive([throttle_frame(20_000)], T0 + 3)
    session.advance(T0 + 3)  # the round is complete: its confirming diff waits
    assert drain(session, T0 + 3) == []
    assert [kind(i) for i in drain(session, T0 + 12.5)] == ["heartbeat"]
    # A shorter throttle does not cut the longer one short.
    session.receive([throttle_frame(100)], T0 + 13)
    assert drain(session, T0 + 13.2) == []
    assert [kind(i) for i in drain(session, T0 + 23)] == ["diff"]


# --- liveness -----------------------------------------------------------------------------


def test_a_heartbeat_goes_after_an_interval_of_sending_nothing() -> None:
    rare_polls = ClientSessionSettings(heartbeat_interval=10.0, poll_interval=100.0)
    session = make_session(oplog_with(), rare_polls)
    connect(session)
    reply(session, [])
    session.advance(T0)
    assert session.next_frame(T0 + 9.9) is None
    assert session.next_deadline(T0 + 9.9) == pytest.approx(T0 + 10)
    assert [kind(i) for i in drain(session, T0 + 10)] == ["heartbeat"]
    assert session.next_frame(T0 + 19.9) is None
    assert [kind(i) for i in drain(session, T0 + 20)] == ["heartbeat"]


def test_a_hub_silent_for_three_intervals_is_lost_and_any_frame_counts() -> None:
    session = make_session(oplog_with(), RUNNING)
    connect(session)
    session.advance(T0 + 29.9)
    session.receive([heartbeat_frame()], T0 + 20)
    session.advance(T0 + 49.9)
    assert session.next_frame(T0 + 50) is None  # no heartbeat to a hub that is gone
    with pytest.raises(HubUnavailable, match=r"was silent for 30s \(3 heartbeat intervals\)"):
        session.advance(T0 + 50)


def test_hub_items_a_client_does_not_use_are_ignored() -> None:
    session = make_session(oplog_with(), RUNNING)
    connect(session)
    for frame in hub_config():
        session.receive([frame], T0)
    session.receive([challenge_frame(pb.SyncStreamItem.FromString(
        ClientHandshake(CLIENT, "web1", PIN).hello_frame()
    ))], T0)
    assert session.connected
    assert [kind(i) for i in drain(session, T0)] == []


# --- resumed sync: the withdrawals of a narrowed grant --------------------------------------


class ResyncMemoryOplog(MemoryOplog):
    """A MemoryOplog that also answers what resumed sync reads (``ResyncOplog``)."""

    def epoch(self) -> bytes:
        return b"\x01" * 16

    def digest(self, selection: DiffSelection) -> dict[int, BucketDigest]:
        ids, modnos = self.have(selection)
        return digest_pairs(zip(ids, modnos, strict=True))

    def pairs(self, selection: DiffSelection, first_id: int, last_id: int
              ) -> tuple[list[int], list[int]]:
        ids, modnos = self.have(selection)
        kept = [(i, m) for i, m in zip(ids, modnos, strict=True) if first_id <= i <= last_id]
        return [i for i, _ in kept], [m for _, m in kept]


NO_REPO_WITHDRAWN = DiffSelection("", only_plans=frozenset())


def serve(session: ClientSession, withdrawal_asks: list[list[int]], now: float
          ) -> list[str]:
    """Play a hub in sync for NAS that asks, at each withdrawal diff, for the next ids of
    ``withdrawal_asks`` (nothing once they run out); what the client sent, in order."""
    seen: list[str] = []
    session.receive([heartbeat_frame()], now)  # the hub is alive at ``now``
    session.advance(now)
    while sent := drain(session, now):
        for item in sent:
            name = kind(item)
            seen.append(name)
            if name == "ack" or (name == "diff" and item.diff_operations
                                 .have_operations_selector.repo_guid == "guid-nas"):
                reply(session, [], now)
            elif name == "diff":
                seen[-1] = "withdrawal"
                reply(session, withdrawal_asks.pop(0) if withdrawal_asks else [], now)
            elif name == "check_digest":
                session.receive([encode_item(pb.SyncStreamItem(
                    check_digest=pb.SyncStreamItem.CheckDigest(in_sync=True)))], now)
        session.advance(now)
    return seen


def test_resumed_sync_sends_the_withdrawals_until_the_hub_holds_nothing_more_there() -> None:
    oplog = ResyncMemoryOplog()
    oplog.add(op(1), op(2), op(3, repo_guid=""))  # op 3 is no longer shared
    listener = Recorder()
    session = make_session(oplog, RUNNING, scope=SyncScope((NAS,), (NO_REPO_WITHDRAWN,)),
                           listener=listener)
    session.start(T0)
    [hello] = drain(session, T0)
    assert hello.handshake.resync == RESYNC_VERSION  # offered by default
    challenge = pb.SyncStreamItem.FromString(challenge_frame(hello))
    challenge.handshake.resync = RESYNC_VERSION
    session.receive([encode_item(challenge)], T0)
    drain(session, T0)
    for frame in hub_config():
        session.receive([frame], T0)
    session.receive([sync_cursors_frame([])], T0)

    # The hub asks for what it holds there: answered as deleted (op 3, and 9 it alone
    # has), then the withdrawal again; MAX_CHECKS times, all answered with ids, and the
    # round gives it up. The next round comes at once, sends it again, and it is
    # answered with nothing: confirmed.
    seen = serve(session, [[3, 9]] * MAX_CHECKS, T0)
    assert seen[:5] == ["send_config", "list_resources", "diff", "withdrawal", "check_digest"]
    first_round, second_round = seen[:-2], seen[-2:]
    assert first_round.count("withdrawal") == MAX_CHECKS
    assert first_round.count("deleted_operations") == MAX_CHECKS
    assert second_round == ["check_digest", "withdrawal"]
    assert listener.rounds == [False, True]
    assert session.totals.deleted == 2 * MAX_CHECKS
    # Confirmed: later rounds of this session only check the selections.
    assert serve(session, [], T0 + 1 + RUNNING.rediff_interval) == ["check_digest"]
    assert listener.rounds == [False, True, True]


# --- wake-ups from the oplog's writers ----------------------------------------------------

RARE_POLLS = ClientSessionSettings(
    heartbeat_interval=10.0, handshake_timeout=5.0, answer_timeout=30.0,
    poll_interval=30.0, rediff_interval=300.0,
)


def in_sync_session(oplog: MemoryOplog, settings: ClientSessionSettings) -> ClientSession:
    session = make_session(oplog, settings)
    connect(session)
    reply(session, [])
    session.advance(T0)
    assert session.in_sync
    return session


def updated_ids(sent: list[pb.SyncStreamItem]) -> list[list[int]]:
    return [[o.id for o in item.send_operations.event.updated_operations.operations]
            for item in sent if kind(item) == "updated_operations"]


def test_a_wake_up_is_one_look_at_the_next_advance_instead_of_at_the_poll() -> None:
    oplog = oplog_with(1)
    session = in_sync_session(oplog, RARE_POLLS)
    oplog.add(op(2))
    session.advance(T0 + 0.01)
    assert drain(session, T0 + 0.01) == []  # the poll is 30 s away
    assert session.next_deadline(T0 + 0.01) == pytest.approx(T0 + 10.0)  # the heartbeat
    session.local_change()
    session.local_change()
    assert session.next_deadline(T0 + 0.02) == T0 + 0.02
    session.advance(T0 + 0.02)
    assert updated_ids(drain(session, T0 + 0.02)) == [[2]]
    # A burst of writes and wake-ups before the next advance: one look reads them all.
    oplog.add(op(3))
    session.local_change()
    oplog.add(op(4))
    session.local_change()
    session.advance(T0 + 0.03)
    assert updated_ids(drain(session, T0 + 0.03)) == [[3, 4]]
    session.advance(T0 + 0.04)
    assert drain(session, T0 + 0.04) == []
    assert session.next_deadline(T0 + 0.04) > T0 + 0.04


def test_a_wake_up_while_data_waits_looks_once_that_data_is_sent() -> None:
    oplog = oplog_with(1)
    session = in_sync_session(oplog, RARE_POLLS)
    oplog.add(op(2))
    session.local_change()
    session.advance(T0 + 0.01)  # the look: op 2 is queued, not sent yet
    oplog.add(op(3))
    session.local_change()
    session.advance(T0 + 0.02)
    # The queued frame goes first; the deadline does not spin on the waiting look.
    assert session.next_deadline(T0 + 0.02) > T0 + 0.02
    assert updated_ids(drain(session, T0 + 0.02)) == [[2]]
    session.advance(T0 + 0.02)
    assert updated_ids(drain(session, T0 + 0.02)) == [[3]]


def test_a_one_shot_sync_takes_no_wake_ups() -> None:
    session = make_session(oplog_with(1), ONCE)
    connect(session)
    before = session.next_deadline(T0)
    session.local_change()
    assert session.next_deadline(T0) == before
