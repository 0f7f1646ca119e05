"""Joining with an invitation through a real SessionActor, ConfigActor and stores.

The front is a queue-backed outbox; the config file, the invitation store, the
oplog and the peer states are real files in a temp directory, and the config
actor's clock is injected, so expiry needs no waiting.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from actors import (
    ConfigActor,
    HubIdentity,
    InboundFrame,
    OplogActor,
    PeerStateActor,
    SessionActor,
    SessionSettings,
)
from hub.config import load_config
from hub.identity import SigningIdentity
from hub.pb import synchub_pb2 as pb
from hub.protocol import (
    ClientHandshake,
    HubPin,
    Transcript,
    invitation_id,
    invitation_key,
    join_item,
)
from hub.store import Invitation, PeerStore, SqliteInvitationStore, SqliteOplogStore
from synchub_testing import (
    HUB,
    HUB_INSTANCE,
    STRANGER,
    QueueOutbox,
    hub_config_text,
    stop_actor,
    write_config,
)

SETTINGS = SessionSettings(heartbeat_interval=10.0, handshake_timeout=5.0, ask_timeout=5.0)
SECRET = bytes(range(100, 132))
NOW = 1_800_000_000.0
NEWCOMER = SigningIdentity.from_seed(bytes(range(160, 192)))


@dataclass
class Clock:
    now: float = NOW

    def __call__(self) -> float:
        return self.now


@dataclass
class Rig:
    path: Path
    data_dir: Path
    clock: Clock
    proxies: list[Any]
    sessions: list[Any] = field(default_factory=list)

    def invite(self, secret: bytes = SECRET, *, uses: int = 1, expires_in: float = 3600,
               instance: str = "new1") -> str:
        store = SqliteInvitationStore(self.data_dir)
        try:
            store.add(Invitation(
                id=invitation_id(secret), instance_id=instance,
                permissions=json.dumps([{"type": "read_config", "scopes": ["repo:nas"]}]),
                verifier=invitation_key(secret).public_key_raw,
                created_ms=int(self.clock.now * 1000),
                expires_ms=int((self.clock.now + expires_in) * 1000), uses=uses, uses_left=uses,
            ), int(self.clock.now * 1000))
        finally:
            store.close()
        return invitation_id(secret)

    def stored(self, ident: str) -> Invitation:
        store = SqliteInvitationStore(self.data_dir)
        try:
            found = store.get(ident)
        finally:
            store.close()
        assert found is not None
        return found

    def join(self, identity: SigningIdentity = STRANGER, instance: str = "new1",
             join: Any = None) -> tuple[pb.SyncStreamItem, Transcript | None]:
        """One connection's handshake with a join; the hub's answer to the PROOF."""
        outbox = QueueOutbox()
        ref = SessionActor.start(
            session_id=f"s-{len(self.sessions)}", hub=HubIdentity(HUB_INSTANCE, HUB),
            settings=SETTINGS, config=self.proxies[0], oplog=self.proxies[1],
            peers=self.proxies[2], outbox_factory=lambda: outbox, now=0.0,
        )
        self.sessions.append(ref)
        seen: list[Transcript] = []

        def make_join(t: Transcript) -> pb.SyncStreamItem.Join:
            seen.append(t)
            return join(t) if join is not None else join_item(SECRET, t)

        client = ClientHandshake(identity, instance, HubPin(HUB_INSTANCE, HUB.keyid),
                                 join=make_join)
        ref.tell(InboundFrame(client.hello_frame(), 0.0))
        challenge = outbox.next_item()
        ref.tell(InboundFrame(client.proof_frame(challenge.handshake), 0.0))
        return outbox.next_item(), (seen[0] if seen else None)

    def authorized(self, identity: SigningIdentity = STRANGER) -> bool:
        return load_config(self.path).authorized_client(identity.keyid) is not None


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    config = write_config(tmp_path, hub_config_text())
    clock = Clock()
    refs = [
        ConfigActor.start(config, invitations=lambda: SqliteInvitationStore(config.data_dir),
                          clock=clock),
        OplogActor.start(lambda: SqliteOplogStore(tmp_path / "oplog.sqlite")),
        PeerStateActor.start(lambda: PeerStore(tmp_path)),
    ]
    assert config.path is not None
    built = Rig(config.path, config.data_dir, clock, [ref.proxy() for ref in refs])
    # As the hub wires them: the oplog's write gate takes every config change.
    built.proxies[0].attach_gate(built.proxies[1].admit).get(timeout=5)
    try:
        yield built
    finally:
        for ref in [*built.sessions, *reversed(refs)]:
            stop_actor(ref)


def test_a_valid_invitation_lets_the_client_in_with_its_instance_and_permissions(
    rig: Rig,
) -> None:
    ident = rig.invite()
    answer, _ = rig.join()
    assert answer.WhichOneof("action") == "send_config"
    assert [r.id for r in answer.send_config.config.repos] == ["nas"]
    client = load_config(rig.path).authorized_client(STRANGER.keyid)
    assert client is not None
    assert (client.instance_id, client.keyid_verified) == ("new1", True)
    assert client.permissions.to_toml() == [{"type": "read_config", "scopes": ["repo:nas"]}]
    used = rig.stored(ident)
    assert (used.uses_left, used.joined) == (0, (STRANGER.keyid,))
    state = rig.proxies[2].get(STRANGER.keyid).get(timeout=5)
    assert state.status_message == f"joined with invitation {ident}"


def refused(answer: pb.SyncStreamItem, fragment: str) -> None:
    assert answer.WhichOneof("action") == "error", answer
    assert answer.error.state == pb.CONNECTION_STATE_ERROR_AUTH
    assert fragment in answer.error.message, answer.error.message
    assert "nothing was authorized" in answer.error.message


def test_a_used_up_invitation_is_refused_and_lets_nobody_else_in(rig: Rig) -> None:
    ident = rig.invite(uses=1)
    assert rig.join()[0].WhichOneof("action") == "send_config"
    refused(rig.join(NEWCOMER)[0], "has been used up")
    assert not rig.authorized(NEWCOMER)
    assert rig.stored(ident).joined == (STRANGER.keyid,)


def test_an_expired_invitation_is_refused(rig: Rig) -> None:
    ident = rig.invite(expires_in=60)
    rig.clock.now += 61
    refused(rig.join()[0], "has expired")
    assert not rig.authorized()
    assert rig.stored(ident).uses_left == 1


def test_a_wrong_secret_is_an_unknown_invitation(rig: Rig) -> None:
    rig.invite()
    other = bytes(32)
    refused(rig.join(join=lambda t: join_item(other, t))[0], "is not known to this hub")
    assert not rig.authorized()


def test_a_proof_for_the_right_id_but_another_secret_does_not_verify(rig: Rig) -> None:
    ident = rig.invite()

    def forged(t: Transcript) -> pb.SyncStreamItem.Join:
        return pb.SyncStreamItem.Join(invitation_id=ident,
                                      signature=join_item(bytes(32), t).signature)

    refused(rig.join(join=forged)[0], "was not proven")
    assert not rig.authorized()
    assert rig.stored(ident).uses_left == 1


def test_a_join_recorded_on_one_connection_is_worthless_on_another(rig: Rig) -> None:
    ident = rig.invite(uses=2)
    answer, recorded = rig.join()
    assert answer.WhichOneof("action") == "send_config"
    assert recorded is not None
    replayed = join_item(SECRET, recorded)  # the exact join the first PROOF carried
    refused(rig.join(NEWCOMER, join=lambda _t: replayed)[0], "was not proven")
    assert not rig.authorized(NEWCOMER)
    assert rig.stored(ident).uses_left == 1


def test_an_invitation_for_another_instance_is_refused(rig: Rig) -> None:
    rig.invite(instance="new1")
    refused(rig.join(instance="other1")[0], "is for instance 'new1'")
    assert not rig.authorized()


def test_a_revoked_invitation_is_refused(rig: Rig) -> None:
    ident = rig.invite()
    store = SqliteInvitationStore(rig.data_dir)
    try:
        assert store.revoke(ident, int(NOW * 1000))
        assert not store.revoke(ident, int(NOW * 1000))
    finally:
        store.close()
    refused(rig.join()[0], "was revoked")
    assert not rig.authorized()


def test_an_authorized_client_with_a_join_connects_without_using_it(rig: Rig) -> None:
    ident = rig.invite()
    assert rig.join()[0].WhichOneof("action") == "send_config"
    rig.invite(bytes(range(1, 33)))
    answer, _ = rig.join(join=lambda t: join_item(bytes(range(1, 33)), t))
    assert answer.WhichOneof("action") == "send_config"
    assert rig.stored(invitation_id(bytes(range(1, 33)))).uses_left == 1
    assert rig.stored(ident).uses_left == 0

