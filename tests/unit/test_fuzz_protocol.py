"""Property-based fuzzing of the frame codec and the session state machine.

Frames are built from protobuf-aware strategies (every action, random fields, forged
handshakes) and then mangled (truncation, bit flips, spliced bytes, unknown field and
oneof numbers). The SessionActor is driven directly, as the front would, with mocked
collaborators: whatever arrives, nothing escapes it but one ``error`` item, after which
it is ENDED and sends nothing more.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from actors import (
    ConfigProxy,
    DiffStepResult,
    HubIdentity,
    OplogProxy,
    PeerStateProxy,
    Phase,
    SessionActor,
    SessionSettings,
)
from hub import protocol
from hub.config import Config
from hub.errors import ProtocolError, StoreError
from hub.identity import SigningIdentity
from hub.pb import synchub_pb2 as pb
from hub.protocol import hello_item, proof_item, sign_proof, validate_challenge
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
    failed,
    hub_config_text,
    write_config,
)

# How many examples, and whether they are fixed, is the profile's (tests/conftest.py).
FUZZ = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- strategies: well-formed items of every action ------------------------------------------

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
SMALL_IDS = st.integers(min_value=-3, max_value=40)
IDS = st.one_of(SMALL_IDS, INT64)
TEXT = st.text(max_size=30)
BLOBS = st.binary(max_size=80)
KEYIDS = st.sampled_from([CLIENT.keyid, OTHER_CLIENT.keyid, STRANGER.keyid, "", "ed25519.x"])
STATES = st.one_of(st.integers(min_value=0, max_value=12), st.integers(-5, 1 << 20))

IDENTITIES = [CLIENT, OTHER_CLIENT, UNVERIFIED, STRANGER]


@st.composite
def public_keys(draw: st.DrawFn) -> pb.PublicKey:
    identity = draw(st.sampled_from(IDENTITIES))
    key = identity.public_key_message()
    if draw(st.booleans()):
        key.keyid = draw(st.one_of(KEYIDS, TEXT))
    if draw(st.booleans()):
        key.ed25519pub = draw(st.one_of(TEXT, st.just(OTHER_CLIENT.ed25519pub)))
    return key


@st.composite
def handshakes(draw: st.DrawFn) -> pb.SyncStreamItem.Handshake:
    shake = pb.SyncStreamItem.Handshake(
        protocol_version=draw(st.one_of(st.sampled_from([0, 1, 1, 1, 2]), INT64)),
        instance_id=draw(st.one_of(st.sampled_from(["web1", "db1", "mail1"]), TEXT)),
        nonce=draw(st.one_of(st.binary(min_size=32, max_size=32), BLOBS)),
        signature=draw(st.one_of(st.just(b""), st.binary(min_size=64, max_size=64), BLOBS)),
    )
    if draw(st.booleans()):
        shake.public_key.CopyFrom(draw(public_keys()))
    return shake


@st.composite
def operations(draw: st.DrawFn) -> pb.Operation:
    op = pb.Operation(
        id=draw(IDS),
        flow_id=draw(IDS),
        modno=draw(IDS),
        status=draw(st.integers(min_value=-2, max_value=12)),
        repo_guid=draw(st.sampled_from(["guid-nas", "guid-secret", ""])),
        plan_id=draw(TEXT),
        instance_id=draw(TEXT),
        display_message=draw(TEXT),
        original_id=draw(IDS),
        original_flow_id=draw(IDS),
        original_instance_keyid=draw(KEYIDS),
    )
    if draw(st.booleans()):
        op.operation_run_command.command = draw(TEXT)
        op.operation_run_command.output_size_bytes = draw(INT64)
    return op


@st.composite
def selectors(draw: st.DrawFn) -> pb.OpSelector:
    selector = pb.OpSelector(ids=draw(st.lists(IDS, max_size=4)))
    for name, values in (
        ("original_instance_keyid", KEYIDS),
        ("repo_guid", st.sampled_from(["guid-nas", "guid-secret", "", "x"])),
        ("plan_id", TEXT),
        ("instance_id", TEXT),
        ("snapshot_id", TEXT),
        ("flow_id", IDS),
    ):
        if draw(st.booleans()):
            setattr(selector, name, draw(values))
    return selector


@st.composite
def diffs(draw: st.DrawFn) -> pb.SyncStreamItem.DiffOperations:
    ids = draw(st.lists(IDS, max_size=6))
    modnos = draw(st.one_of(st.just([1] * len(ids)), st.lists(IDS, max_size=6)))
    diff = pb.SyncStreamItem.DiffOperations(
        have_operation_ids=ids,
        have_operation_modnos=modnos,
        request_operations=draw(st.lists(IDS, max_size=3)),
    )
    if draw(st.booleans()):
        diff.have_operations_selector.CopyFrom(draw(selectors()))
    return diff


@st.composite
def operation_events(draw: st.DrawFn) -> pb.OperationEvent:
    kind = draw(st.sampled_from(
        ["none", "keep_alive", "created_operations", "updated_operations", "deleted_operations"]
    ))
    event = pb.OperationEvent()
    if kind == "keep_alive":
        event.keep_alive.SetInParent()
    elif kind == "deleted_operations":
        event.deleted_operations.values.extend(draw(st.lists(IDS, max_size=5)))
    elif kind != "none":
        getattr(event, kind).operations.extend(draw(st.lists(operations(), max_size=4)))
    return event


@st.composite
def remote_configs(draw: st.DrawFn) -> pb.RemoteConfig:
    return pb.RemoteConfig(
        modno=draw(st.integers(-(2**31), 2**31 - 1)),
        version=draw(st.integers(-(2**31), 2**31 - 1)),
        repos=[pb.Repo(id=draw(TEXT), uri=draw(TEXT), guid=draw(TEXT))
               for _ in range(draw(st.integers(0, 2)))],
        plans=[pb.Plan(id=draw(TEXT), repo=draw(TEXT), paths=draw(st.lists(TEXT, max_size=2)))
               for _ in range(draw(st.integers(0, 2)))],
    )


@st.composite
def items(draw: st.DrawFn) -> pb.SyncStreamItem:
    """A SyncStreamItem with exactly one action set, its fields random."""
    action = draw(st.sampled_from(sorted(protocol.KNOWN_ACTIONS)))
    item = pb.SyncStreamItem()
    if action == "handshake":
        item.handshake.CopyFrom(draw(handshakes()))
    elif action == "heartbeat":
        item.heartbeat.SetInParent()
    elif action == "diff_operations":
        item.diff_operations.CopyFrom(draw(diffs()))
    elif action == "send_operations":
        item.send_operations.event.CopyFrom(draw(operation_events()))
    elif action == "send_config":
        item.send_config.config.CopyFrom(draw(remote_configs()))
    elif action == "set_config":
        item.set_config.repos_to_delete.extend(draw(st.lists(TEXT, max_size=2)))
        item.set_config.plans.extend([pb.Plan(id=draw(TEXT))])
    elif action == "list_resources":
        item.list_resources.repo_ids.extend(draw(st.lists(TEXT, max_size=3)))
        item.list_resources.plan_ids.extend(draw(st.lists(TEXT, max_size=3)))
    elif action == "error":
        item.error.state = draw(STATES)  # type: ignore[assignment]
        item.error.message = draw(TEXT)
    elif action == "throttle":
        item.throttle.delay_ms = draw(INT64)
    else:  # a new action in the schema: set it, empty
        getattr(item, action).SetInParent()
    assert item.WhichOneof("action") == action
    return item


# -- strategies: mangled frames ----------------------------------------------------------------


def varint(value: int) -> bytes:
    out = bytearray()
    value &= (1 << 64) - 1
    while True:
        byte = value & 0x7F
        value >>= 7
        if not value:
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


@st.composite
def unknown_fields(draw: st.DrawFn) -> bytes:
    """A field the schema does not have (or a known number with a wrong wire type)."""
    number = draw(st.one_of(
        st.sampled_from([1, 2, 5, 19, 23, 26, 49, 51, 999, 1001]),
        st.integers(min_value=1, max_value=(1 << 29) - 1),
    ))
    wire_type = draw(st.sampled_from([0, 1, 2, 3, 4, 5, 6, 7]))
    tag = varint(number << 3 | wire_type)
    if wire_type == 0:
        return tag + varint(draw(INT64))
    if wire_type == 1:
        return tag + draw(st.binary(min_size=8, max_size=8))
    if wire_type == 5:
        return tag + draw(st.binary(min_size=4, max_size=4))
    if wire_type == 2:
        payload = draw(BLOBS)
        length = draw(st.one_of(st.just(len(payload)), st.integers(0, 1 << 40)))
        return tag + varint(length) + payload
    return tag + draw(BLOBS)


@st.composite
def mangled(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(items()).SerializeToString())
    how = draw(st.sampled_from(["truncate", "flip", "splice", "append", "prepend", "nest"]))
    if how == "truncate" and data:
        return bytes(data[: draw(st.integers(0, len(data) - 1))])
    if how == "flip" and data:
        for _ in range(draw(st.integers(1, 4))):
            position = draw(st.integers(0, len(data) - 1))
            data[position] ^= 1 << draw(st.integers(0, 7))
        return bytes(data)
    if how == "splice":
        position = draw(st.integers(0, len(data)))
        return bytes(data[:position]) + draw(BLOBS) + bytes(data[position:])
    if how == "append":
        return bytes(data) + draw(unknown_fields())
    if how == "prepend":
        return draw(unknown_fields()) + bytes(data)
    # Deep nesting: groups inside groups, or a message inside a message.
    depth = draw(st.integers(1, 200))
    return varint(3 << 3 | 3) * depth + varint(3 << 3 | 4) * draw(st.integers(0, depth))


FRAMES = st.one_of(
    items().map(lambda item: item.SerializeToString()),
    mangled(),
    unknown_fields(),
    st.binary(max_size=200),
)


# -- the codec ---------------------------------------------------------------------------------


@FUZZ
@given(FRAMES)
def test_decode_returns_one_known_action_or_raises_protocol_error(frame: bytes) -> None:
    try:
        item = protocol.decode_item(frame)
    except ProtocolError:
        return
    assert item.WhichOneof("action") in protocol.KNOWN_ACTIONS
    assert protocol.decode_item(protocol.encode_item(item)) == item


@FUZZ
@given(items())
def test_every_well_formed_item_survives_the_codec(item: pb.SyncStreamItem) -> None:
    assert protocol.decode_item(protocol.encode_item(item)) == item


@FUZZ
@given(st.lists(unknown_fields(), min_size=1, max_size=3))
def test_a_frame_of_unknown_fields_only_is_refused_or_has_an_action(fields: list[bytes]) -> None:
    frame = b"".join(fields)
    try:
        item = protocol.decode_item(frame)
    except ProtocolError as exc:
        assert "SyncStreamItem" in str(exc) or "no known action" in str(exc)
        return
    # A field numbered like an action, with a valid wire type, is that action.
    assert item.WhichOneof("action") in protocol.KNOWN_ACTIONS


# -- the session state machine -----------------------------------------------------------------

SETTINGS = SessionSettings(heartbeat_interval=10.0, handshake_timeout=5.0, ask_timeout=0.05)


@pytest.fixture(scope="module")
def configs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Config]:
    base = hub_config_text()
    variants = {
        "same": base,
        "revoked": base.replace(f'keyid = "{CLIENT.keyid}"', f'keyid = "{STRANGER.keyid}"'),
        "unverified": base.replace("keyid_verified = true", "keyid_verified = false", 1),
        "wider": hub_config_text(client_scopes='["*"]'),
    }
    loaded = {}
    for name, text in variants.items():
        directory = tmp_path_factory.mktemp(name)
        loaded[name] = write_config(Path(directory), text)
    return loaded


class Rig:
    """One session, its outbox and its collaborators (autospecs of their proxies), with the
    invariants checked."""

    def __init__(self, config: Config, oplog_outcomes: list[str]) -> None:
        self.outbox = FakeOutbox()
        self.config = autospec_proxy(ConfigProxy)
        self.config.get.return_value = answered(config)
        self.config.subscribe.return_value = answered(41)
        self.oplog = autospec_proxy(OplogProxy)
        self.oplog.claim.return_value = answered(True)
        outcomes = itertools.cycle(oplog_outcomes)
        self.oplog.apply_remote.side_effect = lambda *_a: self._outcome(next(outcomes))
        self.oplog.diff_step.side_effect = lambda *_a: self._outcome(
            next(outcomes), DiffStepResult((), None, 0))
        self.peers = autospec_proxy(PeerStateProxy)
        self.now = 0.0
        self.hellos = 0
        self.last_hello: tuple[SigningIdentity, str, bytes] | None = None
        self.valid_proof_sent = False
        self.connected_seen = False
        self.session = SessionActor(
            session_id="fuzz",
            hub=HubIdentity(HUB_INSTANCE, HUB),
            settings=SETTINGS,
            config=self.config,
            oplog=self.oplog,
            peers=self.peers,
            outbox_factory=lambda: self.outbox,
            now=0.0,
        )
        self.session.on_start()

    @staticmethod
    def _outcome(kind: str, value: Any = None) -> Any:
        if kind == "protocol":
            return failed(ProtocolError("operation id must be > 0 (batch rejected)"))
        if kind == "store":
            return failed(StoreError("disk full"))
        return answered(value)

    def challenge(self) -> pb.SyncStreamItem | None:
        shakes = [item for item in self.outbox.items if item.HasField("handshake")]
        return shakes[-1] if shakes else None

    def check(self) -> None:
        items = self.outbox.items  # every frame the session sent decodes
        errors = [i for i, item in enumerate(items) if item.HasField("error")]
        assert len(errors) <= 1, f"more than one error item: {items}"
        if errors:
            assert errors[0] == len(items) - 1, "something was sent after the error"
            assert self.session.phase is Phase.ENDED
        assert (self.session.phase is Phase.ENDED) == self.outbox.closed
        if self.outbox.authenticated_as:
            assert self.valid_proof_sent
            assert self.outbox.authenticated_as == [CLIENT.keyid] or (
                self.outbox.authenticated_as == [OTHER_CLIENT.keyid]
            )
        if not self.valid_proof_sent:
            self.config.get.assert_not_called()  # no authorization decision before PROOF
        if not self.connected_seen:
            self.oplog.apply_remote.assert_not_called()
            self.oplog.diff_step.assert_not_called()
            # At most the report of a refusal after a valid PROOF (a rate-limited warning).
            assert [c[0] for c in self.peers.method_calls] in ([], ["refused.defer"])


Step = tuple[str, Any]

STEPS: st.SearchStrategy[Step] = st.one_of(
    FRAMES.map(lambda frame: ("frame", frame)),
    st.tuples(
        st.just("hello"),
        st.sampled_from([(CLIENT, "web1"), (OTHER_CLIENT, "db1"), (UNVERIFIED, "mail1"),
                         (STRANGER, "web9"), (CLIENT, "web2")]),
    ),
    st.tuples(st.just("proof"), st.sampled_from(["good", "tampered", "other-key", "stale"])),
    st.tuples(st.just("connected-item"), items()),
    st.tuples(st.just("tick"), st.floats(min_value=0, max_value=60)),
    st.tuples(st.just("config"), st.sampled_from(["same", "revoked", "unverified", "wider"])),
    st.tuples(st.just("violation"), st.just("a message must be exactly one frame, got 2")),
    st.tuples(st.just("vanished"), st.none()),
    st.tuples(st.just("displace"), st.none()),
)


def apply(rig: Rig, step: Step, configs: dict[str, Config]) -> None:
    kind, value = step
    session = rig.session
    rig.connected_seen |= session.phase is Phase.CONNECTED
    if kind == "frame":
        session.handle_frame(value, rig.now)
    elif kind == "hello":
        identity, instance_id = value
        rig.hellos += 1
        nonce = bytes([rig.hellos % 256]) * 32
        rig.last_hello = (identity, instance_id, nonce)
        session.handle_frame(hello_item(identity, instance_id, nonce).SerializeToString(), rig.now)
    elif kind == "proof":
        session.handle_frame(proof_for(rig, value), rig.now)
    elif kind == "connected-item":
        item: pb.SyncStreamItem = value
        if item.HasField("diff_operations") and rig.last_hello is not None:
            item.diff_operations.have_operations_selector.original_instance_keyid = (
                rig.last_hello[0].keyid
            )
        session.handle_frame(item.SerializeToString(), rig.now)
    elif kind == "tick":
        rig.now += value
        session.tick(rig.now)
    elif kind == "config":
        session.on_config_changed(configs[value])
    elif kind == "violation":
        session.protocol_violation(value)
    elif kind == "vanished":
        session.peer_vanished()
    else:
        session.displace()
    rig.connected_seen |= session.phase is Phase.CONNECTED


def proof_for(rig: Rig, how: str) -> bytes:
    challenge = rig.challenge()
    if challenge is None or rig.last_hello is None or how == "stale":
        return proof_item(b"\x01" * 64).SerializeToString()
    identity, instance_id, nonce = rig.last_hello
    try:
        checked = validate_challenge(
            challenge.handshake, pinned_keyid=HUB.keyid, pinned_instance_id=HUB_INSTANCE,
            client_instance_id=instance_id, client_keyid=identity.keyid, client_nonce=nonce,
        )
    except Exception:  # the CHALLENGE answered an earlier HELLO: sign garbage
        return proof_item(b"\x02" * 64).SerializeToString()
    signer = OTHER_CLIENT if how == "other-key" and identity != OTHER_CLIENT else identity
    signature = sign_proof(signer, checked.transcript)
    if how == "tampered":
        signature = bytes([signature[0] ^ 0x80]) + signature[1:]
    if signer == identity and how != "tampered":
        # "other-key" after a HELLO of that other key is a valid proof too.
        rig.valid_proof_sent = True
    return proof_item(signature).SerializeToString()


OUTCOMES = st.lists(st.sampled_from(["ok", "ok", "ok", "protocol", "store"]), min_size=1,
                    max_size=4)


@FUZZ
@given(steps=st.lists(STEPS, max_size=12), outcomes=OUTCOMES)
def test_a_session_ends_with_at_most_one_error_whatever_arrives(
    configs: dict[str, Config], steps: list[Step], outcomes: list[str]
) -> None:
    rig = Rig(configs["same"], outcomes)
    for step in steps:
        apply(rig, step, configs)  # nothing may raise out of the session
        rig.check()
    event(f"connected at some point: {rig.connected_seen}")
    event(f"ended: {rig.session.phase is Phase.ENDED}")


@FUZZ
@given(
    identity=st.sampled_from([(CLIENT, "web1"), (OTHER_CLIENT, "db1")]),
    steps=st.lists(STEPS, max_size=10),
    outcomes=OUTCOMES,
)
def test_a_connected_session_ends_with_at_most_one_error_whatever_arrives(
    configs: dict[str, Config], identity: tuple[SigningIdentity, str], steps: list[Step],
    outcomes: list[str],
) -> None:
    rig = Rig(configs["same"], outcomes)
    apply(rig, ("hello", identity), configs)
    apply(rig, ("proof", "good"), configs)
    rig.check()
    assert rig.session.phase is Phase.CONNECTED
    for step in steps:
        apply(rig, step, configs)
        rig.check()
    errors = [item.error for item in rig.outbox.items if item.HasField("error")]
    event(f"ended by: {errors[0].state if errors else rig.session.phase.value}")


def _raise(exc: BaseException) -> Callable[..., Any]:
    def raiser(*_args: Any) -> Any:
        raise exc
    return raiser


@pytest.mark.parametrize("exc", [RuntimeError("boom"), KeyError("x"), ValueError("v")])
def test_an_unexpected_failure_in_a_handler_is_one_internal_error(
    configs: dict[str, Config], exc: Exception
) -> None:
    rig = Rig(configs["same"], ["ok"])
    apply(rig, ("hello", (CLIENT, "web1")), configs)
    apply(rig, ("proof", "good"), configs)
    rig.oplog.apply_remote.side_effect = _raise(exc)
    op = pb.Operation(id=1, modno=1)
    frame = protocol.encode_item(protocol.operations_item([op], "created_operations"))
    rig.session.handle_frame(frame, 1.0)
    rig.check()
    last = rig.outbox.items[-1]
    assert last.error.state == pb.CONNECTION_STATE_ERROR_INTERNAL
    assert str(exc) not in last.error.message  # internals stay in the hub's log
    rig.session.handle_frame(frame, 2.0)
    rig.session.tick(100.0)
    rig.check()
