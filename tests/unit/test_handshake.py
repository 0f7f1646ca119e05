"""Handshake crypto: pinned transcript vectors, signatures, item builders and validators."""

from __future__ import annotations

import dataclasses
import hashlib
import struct
from typing import Any

import pytest

from hub.errors import AuthError, ProtocolError
from hub.identity import SigningIdentity, verify_signature
from hub.pb import synchub_pb2 as pb
from hub.protocol import (
    LABEL_CLIENT,
    LABEL_HUB,
    NONCE_BYTES,
    PROTOCOL_VERSION,
    Challenge,
    ClientHandshake,
    Hello,
    HubPin,
    Transcript,
    challenge_item,
    hello_item,
    hub_transcript,
    new_nonce,
    proof_item,
    sign_challenge,
    sign_proof,
    validate_challenge,
    validate_hello,
    validate_proof,
    verify_challenge,
    verify_proof,
)

HUB = SigningIdentity.from_seed(bytes(range(32)))
CLIENT = SigningIdentity.from_seed(bytes(range(32, 64)))
HUB_KEYID = "ed25519.Vkdap1RjR0wChd9dvyvKtz2mUTWIOem3dIGy6rEHcIw"
CLIENT_KEYID = "ed25519.JPbtasv-EAnAMNfKVnwzykgwkRSYI2tVYabIKr7F3ig"
HUB_INSTANCE = "hub-1"
CLIENT_INSTANCE = "web1"
CLIENT_NONCE = bytes([0xC1]) * 32
HUB_NONCE = bytes([0x4B]) * 32

HUB_DIGEST_HEX = "e26e99c4929a4a8032309b295ef867237d243cee6fafa32cb248368b0bdf29f1"
CLIENT_DIGEST_HEX = "8bc150f9effa9b0946ad453ea29a3d3826f962bf14e5a836781a72bc32fe8a46"
HUB_SIGNATURE_HEX = (
    "610ef7b4513e270dfbd4de380c6a914575f4375b27fe4a85f516f32f67a2e347"
    "ea6ea62a2de715138117a429f46c6753e1e2ee650a9f42686d38173c99cd6409"
)
CLIENT_SIGNATURE_HEX = (
    "c26f7cdaf5e952f0b9635c429c2292db1f0b82b5e59a7bd607526c26f7a4b761"
    "f4854b304891ef919c854119f7a42f3398e66c6116efa9c598bd5eefebbab60d"
)

TRANSCRIPT = Transcript(
    protocol_version=1,
    hub_instance_id=HUB_INSTANCE,
    hub_keyid=HUB_KEYID,
    client_instance_id=CLIENT_INSTANCE,
    client_keyid=CLIENT_KEYID,
    client_nonce=CLIENT_NONCE,
    hub_nonce=HUB_NONCE,
)


def _digest_by_hand(label: bytes) -> bytes:
    """docs/protocol.md §5.1 (The transcript), written out without the code under test."""
    data = label
    data += struct.pack(">Q", 1)
    data += struct.pack(">I", len(b"hub-1")) + b"hub-1"
    data += struct.pack(">I", len(HUB_KEYID.encode())) + HUB_KEYID.encode()
    data += struct.pack(">I", len(b"web1")) + b"web1"
    data += struct.pack(">I", len(CLIENT_KEYID.encode())) + CLIENT_KEYID.encode()
    data += struct.pack(">I", 32) + CLIENT_NONCE
    data += struct.pack(">I", 32) + HUB_NONCE
    return hashlib.sha256(data).digest()


# --- constants and vectors -----------------------------------------------------------


def test_constants() -> None:
    assert PROTOCOL_VERSION == 1
    assert NONCE_BYTES == 32
    assert LABEL_HUB == b"synchub-handshake/v1/hub\x00"
    assert LABEL_CLIENT == b"synchub-handshake/v1/client\x00"


def test_fixed_identities_have_pinned_keyids() -> None:
    assert HUB.keyid == HUB_KEYID
    assert CLIENT.keyid == CLIENT_KEYID


def test_hub_digest_vector() -> None:
    assert _digest_by_hand(LABEL_HUB).hex() == HUB_DIGEST_HEX
    assert TRANSCRIPT.hub_digest().hex() == HUB_DIGEST_HEX
    assert TRANSCRIPT.digest(LABEL_HUB).hex() == HUB_DIGEST_HEX


def test_client_digest_vector() -> None:
    assert _digest_by_hand(LABEL_CLIENT).hex() == CLIENT_DIGEST_HEX
    assert TRANSCRIPT.client_digest().hex() == CLIENT_DIGEST_HEX
    assert TRANSCRIPT.digest(LABEL_CLIENT).hex() == CLIENT_DIGEST_HEX


def test_digest_of_non_ascii_instance_ids_uses_utf8_byte_lengths() -> None:
    t = dataclasses.replace(TRANSCRIPT, hub_instance_id="hüb")
    data = bytearray(LABEL_HUB)
    data += struct.pack(">Q", 1)
    for part in (
        "hüb".encode(),
        HUB_KEYID.encode(),
        b"web1",
        CLIENT_KEYID.encode(),
        CLIENT_NONCE,
        HUB_NONCE,
    ):
        data += struct.pack(">I", len(part)) + part
    assert t.hub_digest() == hashlib.sha256(bytes(data)).digest()


def test_length_prefixes_keep_field_boundaries() -> None:
    shifted = dataclasses.replace(TRANSCRIPT, hub_instance_id="hub-1w", client_instance_id="eb1")
    assert shifted.hub_digest() != TRANSCRIPT.hub_digest()


def test_pinned_signatures() -> None:
    assert sign_challenge(HUB, TRANSCRIPT).hex() == HUB_SIGNATURE_HEX
    assert sign_proof(CLIENT, TRANSCRIPT).hex() == CLIENT_SIGNATURE_HEX
    assert HUB.sign(bytes.fromhex(HUB_DIGEST_HEX)).hex() == HUB_SIGNATURE_HEX
    assert CLIENT.sign(bytes.fromhex(CLIENT_DIGEST_HEX)).hex() == CLIENT_SIGNATURE_HEX


def test_pinned_signatures_verify() -> None:
    assert verify_challenge(HUB.public_key_raw, TRANSCRIPT, bytes.fromhex(HUB_SIGNATURE_HEX))
    assert verify_proof(CLIENT.public_key_raw, TRANSCRIPT, bytes.fromhex(CLIENT_SIGNATURE_HEX))


def test_labels_separate_the_two_signatures() -> None:
    hub_signature = bytes.fromhex(HUB_SIGNATURE_HEX)
    assert not verify_proof(HUB.public_key_raw, TRANSCRIPT, hub_signature)
    # Even a hub that is also a client cannot have its CHALLENGE taken as a PROOF.
    same_key = dataclasses.replace(TRANSCRIPT, client_keyid=HUB_KEYID)
    assert not verify_proof(HUB.public_key_raw, same_key, sign_challenge(HUB, same_key))
    assert not verify_challenge(HUB.public_key_raw, same_key, sign_proof(HUB, same_key))


def test_new_nonce() -> None:
    one, two = new_nonce(), new_nonce()
    assert len(one) == len(two) == 32
    assert one != two


# --- any single change makes verification fail -------------------------------------

FIELD_CHANGES: list[tuple[str, Any]] = [
    ("protocol_version", 2),
    ("hub_instance_id", "hub-2"),
    ("hub_keyid", CLIENT_KEYID),
    ("client_instance_id", "web2"),
    ("client_keyid", HUB_KEYID),
    ("client_nonce", bytes([0xC1]) * 31 + b"\xc0"),
    ("hub_nonce", b"\x4a" + bytes([0x4B]) * 31),
]


@pytest.mark.parametrize(("name", "value"), FIELD_CHANGES, ids=[n for n, _ in FIELD_CHANGES])
def test_changed_field_fails_challenge(name: str, value: Any) -> None:
    changed = dataclasses.replace(TRANSCRIPT, **{name: value})
    assert changed.hub_digest() != TRANSCRIPT.hub_digest()
    assert not verify_challenge(HUB.public_key_raw, changed, bytes.fromhex(HUB_SIGNATURE_HEX))


@pytest.mark.parametrize(("name", "value"), FIELD_CHANGES, ids=[n for n, _ in FIELD_CHANGES])
def test_changed_field_fails_proof(name: str, value: Any) -> None:
    changed = dataclasses.replace(TRANSCRIPT, **{name: value})
    assert changed.client_digest() != TRANSCRIPT.client_digest()
    assert not verify_proof(CLIENT.public_key_raw, changed, bytes.fromhex(CLIENT_SIGNATURE_HEX))


@pytest.mark.parametrize(
    "label",
    [
        LABEL_CLIENT,
        b"synchub-handshake/v1/hub",
        b"synchub-handshake/v2/hub\x00",
        b"",
    ],
)
def test_changed_label_fails_verification(label: bytes) -> None:
    assert TRANSCRIPT.digest(label) != TRANSCRIPT.hub_digest()
    pinned = bytes.fromhex(HUB_SIGNATURE_HEX)
    assert not verify_signature(HUB.public_key_raw, pinned, TRANSCRIPT.digest(label))
    assert verify_signature(HUB.public_key_raw, pinned, TRANSCRIPT.digest(LABEL_HUB))


@pytest.mark.parametrize("bit", [0, 7, 255, 256, 511])
def test_flipped_signature_bit_fails(bit: int) -> None:
    for signature_hex, verify, key in (
        (HUB_SIGNATURE_HEX, verify_challenge, HUB.public_key_raw),
        (CLIENT_SIGNATURE_HEX, verify_proof, CLIENT.public_key_raw),
    ):
        signature = bytearray(bytes.fromhex(signature_hex))
        signature[bit // 8] ^= 1 << (bit % 8)
        assert not verify(key, TRANSCRIPT, bytes(signature))


def test_wrong_public_key_fails() -> None:
    stranger = SigningIdentity.from_seed(b"\x07" * 32)
    assert not verify_challenge(CLIENT.public_key_raw, TRANSCRIPT, bytes.fromhex(HUB_SIGNATURE_HEX))
    assert not verify_challenge(
        stranger.public_key_raw, TRANSCRIPT, bytes.fromhex(HUB_SIGNATURE_HEX)
    )
    assert not verify_proof(HUB.public_key_raw, TRANSCRIPT, bytes.fromhex(CLIENT_SIGNATURE_HEX))
    assert not verify_proof(
        stranger.public_key_raw, TRANSCRIPT, bytes.fromhex(CLIENT_SIGNATURE_HEX)
    )


def test_a_valid_signature_by_a_key_the_transcript_does_not_name_fails() -> None:
    stranger = SigningIdentity.from_seed(b"\x07" * 32)
    assert not verify_challenge(
        stranger.public_key_raw, TRANSCRIPT, sign_challenge(stranger, TRANSCRIPT)
    )
    assert not verify_proof(stranger.public_key_raw, TRANSCRIPT, sign_proof(stranger, TRANSCRIPT))


@pytest.mark.parametrize("signature", [b"", b"\x00" * 64, b"\x01" * 63, b"\xff" * 65])
def test_garbage_signatures_fail_without_raising(signature: bytes) -> None:
    assert not verify_challenge(HUB.public_key_raw, TRANSCRIPT, signature)
    assert not verify_proof(CLIENT.public_key_raw, TRANSCRIPT, signature)


# --- item builders ----------------------------------------------------------------------


def test_hello_item() -> None:
    item = hello_item(CLIENT, CLIENT_INSTANCE, CLIENT_NONCE)
    assert item.WhichOneof("action") == "handshake"
    hs = item.handshake
    assert hs.protocol_version == 1
    assert hs.public_key.keyid == CLIENT_KEYID
    assert hs.public_key.ed25519pub == CLIENT.ed25519pub
    assert hs.instance_id == CLIENT_INSTANCE
    assert hs.nonce == CLIENT_NONCE
    assert hs.signature == b""
    assert pb.SyncStreamItem.FromString(item.SerializeToString()) == item


def test_challenge_item() -> None:
    signature = bytes.fromhex(HUB_SIGNATURE_HEX)
    item = challenge_item(HUB, HUB_INSTANCE, HUB_NONCE, signature)
    hs = item.handshake
    assert hs.protocol_version == 1
    assert hs.public_key.keyid == HUB_KEYID
    assert hs.instance_id == HUB_INSTANCE
    assert hs.nonce == HUB_NONCE
    assert hs.signature == signature


def test_proof_item() -> None:
    signature = bytes.fromhex(CLIENT_SIGNATURE_HEX)
    item = proof_item(signature)
    hs = item.handshake
    assert hs.protocol_version == 1
    assert hs.signature == signature
    assert not hs.HasField("public_key")
    assert hs.instance_id == ""
    assert hs.nonce == b""


def test_builders_return_fresh_objects() -> None:
    one = hello_item(CLIENT, CLIENT_INSTANCE, CLIENT_NONCE)
    two = hello_item(CLIENT, CLIENT_INSTANCE, CLIENT_NONCE)
    assert one == two
    assert one is not two
    one.handshake.instance_id = "changed"
    assert two.handshake.instance_id == CLIENT_INSTANCE


# --- the whole exchange -------------------------------------------------------------------


def test_full_exchange_with_pinned_values() -> None:
    hello_wire = hello_item(CLIENT, CLIENT_INSTANCE, CLIENT_NONCE).SerializeToString()

    hello = validate_hello(pb.SyncStreamItem.FromString(hello_wire).handshake)
    assert hello == Hello(CLIENT_INSTANCE, CLIENT_KEYID, CLIENT.public_key_raw, CLIENT_NONCE)
    hub_t = hub_transcript(hello, HUB, HUB_INSTANCE, HUB_NONCE)
    assert hub_t == TRANSCRIPT
    challenge_wire = challenge_item(
        HUB, HUB_INSTANCE, HUB_NONCE, sign_challenge(HUB, hub_t)
    ).SerializeToString()

    challenge = validate_challenge(
        pb.SyncStreamItem.FromString(challenge_wire).handshake,
        pinned_keyid=HUB_KEYID,
        pinned_instance_id=HUB_INSTANCE,
        client_instance_id=CLIENT_INSTANCE,
        client_keyid=CLIENT_KEYID,
        client_nonce=CLIENT_NONCE,
    )
    assert isinstance(challenge, Challenge)
    assert challenge.transcript == TRANSCRIPT
    assert challenge.keyid == HUB_KEYID
    assert challenge.public_key_raw == HUB.public_key_raw
    assert challenge.nonce == HUB_NONCE
    proof_wire = proof_item(sign_proof(CLIENT, challenge.transcript)).SerializeToString()
    assert pb.SyncStreamItem.FromString(proof_wire).handshake.signature.hex() == (
        CLIENT_SIGNATURE_HEX
    )

    validate_proof(pb.SyncStreamItem.FromString(proof_wire).handshake, hello, hub_t)


def test_client_handshake_sends_the_pinned_frames() -> None:
    client = ClientHandshake(CLIENT, CLIENT_INSTANCE, HubPin(HUB_INSTANCE, HUB_KEYID), CLIENT_NONCE)
    hello = hello_item(CLIENT, CLIENT_INSTANCE, CLIENT_NONCE)
    assert client.hello_frame() == hello.SerializeToString()
    challenge = challenge_item(HUB, HUB_INSTANCE, HUB_NONCE, sign_challenge(HUB, TRANSCRIPT))
    assert client.check_challenge(challenge.handshake).transcript == TRANSCRIPT
    proof = pb.SyncStreamItem.FromString(client.proof_frame(challenge.handshake))
    assert proof.handshake.signature.hex() == CLIENT_SIGNATURE_HEX
    assert proof == proof_item(bytes.fromhex(CLIENT_SIGNATURE_HEX))


def test_client_handshake_refuses_a_hub_it_does_not_pin_and_uses_fresh_nonces() -> None:
    challenge = challenge_item(HUB, HUB_INSTANCE, HUB_NONCE, sign_challenge(HUB, TRANSCRIPT))
    other = ClientHandshake(CLIENT, CLIENT_INSTANCE, HubPin(HUB_INSTANCE, CLIENT_KEYID),
                            CLIENT_NONCE)
    with pytest.raises(AuthError, match="known_hosts pins"):
        other.proof_frame(challenge.handshake)
    fresh = [ClientHandshake(CLIENT, CLIENT_INSTANCE, HubPin(HUB_INSTANCE, HUB_KEYID)).nonce
             for _ in range(2)]
    assert fresh[0] != fresh[1] and all(len(n) == NONCE_BYTES for n in fresh)


# --- validate_hello -------------------------------------------------------------------------


def _hello() -> pb.SyncStreamItem.Handshake:
    return hello_item(CLIENT, CLIENT_INSTANCE, CLIENT_NONCE).handshake


def test_validate_hello_accepts_a_good_hello() -> None:
    hello = validate_hello(_hello())
    assert hello.keyid == CLIENT_KEYID
    assert hello.public_key_raw == CLIENT.public_key_raw
    assert hello.instance_id == CLIENT_INSTANCE
    assert hello.nonce == CLIENT_NONCE


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda h: setattr(h, "protocol_version", 2), "protocol_version 2"),
        (lambda h: setattr(h, "protocol_version", 0), "protocol_version 0"),
        (lambda h: h.ClearField("public_key"), "no public_key"),
        (lambda h: setattr(h, "instance_id", ""), "no instance_id"),
        (lambda h: setattr(h, "instance_id", "x" * 257), "longer than"),
        (lambda h: setattr(h, "nonce", b""), "nonce must be 32 bytes"),
        (lambda h: setattr(h, "nonce", b"\x00" * 31), "nonce must be 32 bytes"),
        (lambda h: setattr(h, "nonce", b"\x00" * 33), "nonce must be 32 bytes"),
        (lambda h: setattr(h, "signature", b"\x00" * 64), "signature"),
    ],
)
def test_validate_hello_rejects_malformed(change: Any, match: str) -> None:
    hello = _hello()
    change(hello)
    with pytest.raises(ProtocolError, match=match):
        validate_hello(hello)


def test_validate_hello_rejects_bad_keys_as_auth_errors() -> None:
    mismatched = _hello()
    mismatched.public_key.keyid = HUB_KEYID
    with pytest.raises(AuthError, match="does not match"):
        validate_hello(mismatched)
    malformed = _hello()
    malformed.public_key.ed25519pub = "AAAA"
    with pytest.raises(AuthError, match="malformed public key"):
        validate_hello(malformed)


# --- validate_challenge ---------------------------------------------------------------------


def _challenge() -> pb.SyncStreamItem.Handshake:
    return challenge_item(HUB, HUB_INSTANCE, HUB_NONCE, bytes.fromhex(HUB_SIGNATURE_HEX)).handshake


def _custom_challenge(
    identity: SigningIdentity = HUB,
    instance_id: str = HUB_INSTANCE,
    nonce: bytes = HUB_NONCE,
    signature: bytes | None = None,
) -> pb.SyncStreamItem.Handshake:
    t = dataclasses.replace(
        TRANSCRIPT, hub_instance_id=instance_id, hub_keyid=identity.keyid, hub_nonce=nonce
    )
    if signature is None:
        signature = sign_challenge(identity, t)
    return challenge_item(identity, instance_id, nonce, signature).handshake


def _validate(item: pb.SyncStreamItem.Handshake, **overrides: Any) -> Challenge:
    kwargs: dict[str, Any] = {
        "pinned_keyid": HUB_KEYID,
        "pinned_instance_id": HUB_INSTANCE,
        "client_instance_id": CLIENT_INSTANCE,
        "client_keyid": CLIENT_KEYID,
        "client_nonce": CLIENT_NONCE,
    }
    kwargs.update(overrides)
    return validate_challenge(item, **kwargs)


def test_validate_challenge_accepts_the_pinned_hub() -> None:
    assert _validate(_challenge()).transcript == TRANSCRIPT


def test_validate_challenge_refuses_another_key_even_when_correctly_signed() -> None:
    impostor = SigningIdentity.from_seed(b"\x09" * 32)
    with pytest.raises(AuthError, match="known_hosts pins"):
        _validate(_custom_challenge(identity=impostor))


def test_validate_challenge_refuses_another_instance_id() -> None:
    with pytest.raises(AuthError, match="known_hosts expects 'hub-1'"):
        _validate(_custom_challenge(instance_id="hub-2"))


def test_validate_challenge_refuses_a_bad_signature() -> None:
    signature = bytearray(bytes.fromhex(HUB_SIGNATURE_HEX))
    signature[0] ^= 1
    with pytest.raises(AuthError, match="bad CHALLENGE signature"):
        _validate(_custom_challenge(signature=bytes(signature)))
    with pytest.raises(AuthError, match="bad CHALLENGE signature"):
        _validate(_custom_challenge(signature=b""))


@pytest.mark.parametrize(
    "override",
    [
        {"client_nonce": b"\x00" * 32},
        {"client_keyid": HUB_KEYID},
        {"client_instance_id": "web2"},
    ],
)
def test_validate_challenge_refuses_a_signature_for_another_hello(override: dict[str, Any]) -> None:
    with pytest.raises(AuthError, match="bad CHALLENGE signature"):
        _validate(_challenge(), **override)


def test_validate_challenge_rejects_a_mismatched_key() -> None:
    item = _challenge()
    item.public_key.ed25519pub = CLIENT.ed25519pub
    with pytest.raises(AuthError, match="does not match"):
        _validate(item)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda h: setattr(h, "protocol_version", 3), "protocol_version 3"),
        (lambda h: h.ClearField("public_key"), "no public_key"),
        (lambda h: setattr(h, "instance_id", ""), "no instance_id"),
        (lambda h: setattr(h, "nonce", b"\x00" * 16), "nonce must be 32 bytes"),
    ],
)
def test_validate_challenge_rejects_malformed(change: Any, match: str) -> None:
    item = _challenge()
    change(item)
    with pytest.raises(ProtocolError, match=match):
        _validate(item)


# --- validate_proof -----------------------------------------------------------------------------


def test_validate_proof() -> None:
    hello = validate_hello(_hello())
    good = proof_item(bytes.fromhex(CLIENT_SIGNATURE_HEX)).handshake
    validate_proof(good, hello, TRANSCRIPT)

    ignored_fields = proof_item(bytes.fromhex(CLIENT_SIGNATURE_HEX)).handshake
    ignored_fields.instance_id = "anything"
    ignored_fields.nonce = b"\x01"
    validate_proof(ignored_fields, hello, TRANSCRIPT)

    with pytest.raises(ProtocolError, match="protocol_version"):
        bad_version = proof_item(bytes.fromhex(CLIENT_SIGNATURE_HEX)).handshake
        bad_version.protocol_version = 2
        validate_proof(bad_version, hello, TRANSCRIPT)
    with pytest.raises(ProtocolError, match="no signature"):
        validate_proof(proof_item(b"").handshake, hello, TRANSCRIPT)
    with pytest.raises(AuthError, match="bad PROOF signature"):
        validate_proof(proof_item(b"\x00" * 64).handshake, hello, TRANSCRIPT)
    # A PROOF recorded on one connection is useless on another (different hub nonce).
    other_connection = dataclasses.replace(TRANSCRIPT, hub_nonce=b"\x00" * 32)
    with pytest.raises(AuthError, match="bad PROOF signature"):
        validate_proof(good, hello, other_connection)
