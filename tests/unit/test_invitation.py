"""Invitations without I/O: the token, the id and key a secret derives, the PROOF's join."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json

import pytest

from hub.errors import ProtocolError, RequestError
from hub.identity import SigningIdentity
from hub.pb import synchub_pb2 as pb
from hub.protocol import (
    LABEL_JOIN,
    ClientHandshake,
    HubHandshake,
    HubPin,
    InvitationToken,
    Transcript,
    decode_item,
    invitation_id,
    invitation_key,
    join_claim,
    join_digest,
    join_item,
    verify_join,
)

HUB = SigningIdentity.from_seed(bytes(range(32)))
CLIENT = SigningIdentity.from_seed(bytes(range(32, 64)))
SECRET = bytes(range(200, 232))
CURVE = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"


def token(**changes: object) -> InvitationToken:
    base = InvitationToken(
        hub_instance_id="hub-1", hub_keyid=HUB.keyid, curve_public_key=CURVE,
        endpoints=("tcp://hub.example.org:7470",), instance_id="web1", secret=SECRET,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def transcript(client_nonce: bytes = b"\x07" * 32, hub_nonce: bytes = b"\x09" * 32,
               client_keyid: str = CLIENT.keyid) -> Transcript:
    return Transcript(1, "hub-1", HUB.keyid, "web1", client_keyid, client_nonce, hub_nonce)


def test_the_id_and_key_derive_from_the_secret_as_documented() -> None:
    digest = hashlib.sha256(b"synchub-invite/v1/id\x00" + SECRET).digest()[:12]
    assert invitation_id(SECRET) == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert len(invitation_id(SECRET)) == 16
    seed = hashlib.sha256(b"synchub-invite/v1/key\x00" + SECRET).digest()
    assert invitation_key(SECRET).keyid == SigningIdentity.from_seed(seed).keyid
    assert invitation_id(bytes(32)) != invitation_id(SECRET)


def test_a_token_round_trips_and_survives_pasting_with_line_breaks() -> None:
    text = token().encode()
    assert text.startswith("synchub-invite-1.") and "\n" not in text
    assert InvitationToken.decode(text) == token()
    wrapped = "  " + text[:40] + "\n" + text[40:] + "\n"
    assert InvitationToken.decode(wrapped).invitation_id == invitation_id(SECRET)


@pytest.mark.parametrize(("mangle", "fragment"), [
    (lambda t: t.replace("synchub-invite-1.", "synchub-invite-9."), "should start with"),
    (lambda t: t[:60], "damaged"),
    (lambda t: t + "!!", "damaged"),
    (lambda t: "synchub-invite-1." + base64.urlsafe_b64encode(
        json.dumps({"hub": "h"}).encode()).decode().rstrip("="), "damaged"),
])
def test_a_damaged_token_says_what_to_do(mangle: object, fragment: str) -> None:
    with pytest.raises(RequestError, match=fragment):
        InvitationToken.decode(mangle(token().encode()))  # type: ignore[operator]


def test_a_token_with_bad_fields_is_refused_before_dialing() -> None:
    for bad in (token(hub_keyid="ed25519.x"), token(secret=b"short"), token(endpoints=())):
        with pytest.raises(RequestError, match="ask for a new one"):
            InvitationToken.decode(bad.encode())


def test_the_join_signature_is_bound_to_the_transcript() -> None:
    verifier = invitation_key(SECRET).public_key_raw
    join = join_item(SECRET, transcript())
    assert join.invitation_id == invitation_id(SECRET)
    assert verify_join(verifier, transcript(), join.signature)
    # Another connection (other nonces) or another client key: the proof is worthless.
    assert not verify_join(verifier, transcript(hub_nonce=b"\x0a" * 32), join.signature)
    assert not verify_join(verifier, transcript(client_nonce=b"\x08" * 32), join.signature)
    assert not verify_join(verifier, transcript(client_keyid=HUB.keyid), join.signature)
    # Another secret's key does not verify it either.
    assert not verify_join(invitation_key(bytes(32)).public_key_raw, transcript(),
                           join.signature)
    assert join_digest(transcript()) == transcript().digest(LABEL_JOIN)


def test_a_client_handshake_with_a_join_puts_it_in_the_proof_the_hub_reads() -> None:
    client = ClientHandshake(CLIENT, "web1", HubPin("hub-1", HUB.keyid), b"\x07" * 32,
                             join=lambda t: join_item(SECRET, t))
    hello = decode_item(client.hello_frame()).handshake
    assert not hello.HasField("join")
    hub = HubHandshake.answer(hello, HUB, "hub-1", nonce=b"\x09" * 32)
    proof = decode_item(client.proof_frame(hub.challenge.handshake)).handshake
    assert hub.verify(proof).keyid == CLIENT.keyid
    claim = join_claim(hub, proof)
    assert claim is not None
    assert claim.invitation_id == invitation_id(SECRET)
    assert claim.client_keyid == CLIENT.keyid and claim.client_instance_id == "web1"
    assert claim.verified_by(invitation_key(SECRET).public_key_raw)
    assert claim.transcript == transcript()


def test_a_proof_without_join_claims_nothing_and_a_malformed_join_is_a_protocol_error() -> None:
    plain = ClientHandshake(CLIENT, "web1", HubPin("hub-1", HUB.keyid), b"\x07" * 32)
    hub = HubHandshake.answer(decode_item(plain.hello_frame()).handshake, HUB, "hub-1")
    proof = decode_item(plain.proof_frame(hub.challenge.handshake)).handshake
    assert join_claim(hub, proof) is None
    for join in (pb.SyncStreamItem.Join(invitation_id="", signature=bytes(64)),
                 pb.SyncStreamItem.Join(invitation_id="x" * 65, signature=bytes(64)),
                 pb.SyncStreamItem.Join(invitation_id="abc", signature=bytes(10))):
        bad = pb.SyncStreamItem.Handshake()
        bad.CopyFrom(proof)
        bad.join.CopyFrom(join)
        with pytest.raises(ProtocolError, match="PROOF join"):
            join_claim(hub, bad)
