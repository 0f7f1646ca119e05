"""The mutual challenge-response handshake: docs/protocol.md §5 (Handshake), without I/O.

    transcript(label) = SHA-256( label || u64be(protocol_version)
        || LP(hub_instance_id) || LP(hub_keyid) || LP(client_instance_id) || LP(client_keyid)
        || LP(client_nonce) || LP(hub_nonce) )

LP(x) is x's length as 4 bytes big-endian, then x (strings as UTF-8). The hub signs the
transcript under LABEL_HUB in its CHALLENGE, the client signs it under LABEL_CLIENT in its
PROOF; ed25519 signs the 32-byte digest. Both nonces are in both signatures, so neither a
CHALLENGE nor a PROOF can be replayed on another connection.

The functions serve both sides: the hub's session validates HELLO and PROOF and
signs its CHALLENGE; ``ClientHandshake`` is a client's side for one connection
(its nonce, the HELLO, the CHALLENGE checked against the pinned ``HubPin``, the
PROOF), used by the agent's ``ClientSession``, the bench's swarms and the tests.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass

from hub.errors import AuthError, ProtocolError
from hub.identity import (
    ED25519_KEY_BYTES,
    SigningIdentity,
    derive_keyid,
    public_key_from_message,
    verify_signature,
)
from hub.pb import synchub_pb2 as pb
from hub.protocol._codec import encode_item

PROTOCOL_VERSION = 1
NONCE_BYTES = 32
LABEL_HUB = b"synchub-handshake/v1/hub\x00"
LABEL_CLIENT = b"synchub-handshake/v1/client\x00"
MAX_INSTANCE_ID_BYTES = 256


def new_nonce() -> bytes:
    return os.urandom(NONCE_BYTES)


def _lp(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


@dataclass(frozen=True)
class Transcript:
    """Everything both signatures commit to."""

    protocol_version: int
    hub_instance_id: str
    hub_keyid: str
    client_instance_id: str
    client_keyid: str
    client_nonce: bytes
    hub_nonce: bytes

    def digest(self, label: bytes) -> bytes:
        hasher = hashlib.sha256(label)
        hasher.update(struct.pack(">Q", self.protocol_version))
        for text in (
            self.hub_instance_id,
            self.hub_keyid,
            self.client_instance_id,
            self.client_keyid,
        ):
            hasher.update(_lp(text.encode("utf-8")))
        hasher.update(_lp(self.client_nonce))
        hasher.update(_lp(self.hub_nonce))
        return hasher.digest()

    def hub_digest(self) -> bytes:
        return self.digest(LABEL_HUB)

    def client_digest(self) -> bytes:
        return self.digest(LABEL_CLIENT)


def _key_matches(public_key_raw: bytes, keyid: str) -> bool:
    return len(public_key_raw) == ED25519_KEY_BYTES and derive_keyid(public_key_raw) == keyid


def sign_challenge(identity: SigningIdentity, t: Transcript) -> bytes:
    """The hub's CHALLENGE signature."""
    return identity.sign(t.hub_digest())


def verify_challenge(hub_public_key_raw: bytes, t: Transcript, signature: bytes) -> bool:
    """Whether ``signature`` is the hub's signature of ``t``, made by the key ``t`` names."""
    return _key_matches(hub_public_key_raw, t.hub_keyid) and verify_signature(
        hub_public_key_raw, signature, t.hub_digest()
    )


def sign_proof(identity: SigningIdentity, t: Transcript) -> bytes:
    """The client's PROOF signature."""
    return identity.sign(t.client_digest())


def verify_proof(client_public_key_raw: bytes, t: Transcript, signature: bytes) -> bool:
    """Whether ``signature`` is the client's signature of ``t``, made by the key ``t`` names."""
    return _key_matches(client_public_key_raw, t.client_keyid) and verify_signature(
        client_public_key_raw, signature, t.client_digest()
    )


# --- building the three handshake items ------------------------------------------


def hello_item(identity: SigningIdentity, instance_id: str, nonce: bytes) -> pb.SyncStreamItem:
    """HELLO, client -> hub."""
    return pb.SyncStreamItem(
        handshake=pb.SyncStreamItem.Handshake(
            protocol_version=PROTOCOL_VERSION,
            public_key=identity.public_key_message(),
            instance_id=instance_id,
            nonce=nonce,
        )
    )


def challenge_item(
    identity: SigningIdentity, instance_id: str, nonce: bytes, signature: bytes
) -> pb.SyncStreamItem:
    """CHALLENGE, hub -> client."""
    return pb.SyncStreamItem(
        handshake=pb.SyncStreamItem.Handshake(
            protocol_version=PROTOCOL_VERSION,
            public_key=identity.public_key_message(),
            instance_id=instance_id,
            nonce=nonce,
            signature=signature,
        )
    )


def proof_item(signature: bytes) -> pb.SyncStreamItem:
    """PROOF, client -> hub."""
    return pb.SyncStreamItem(
        handshake=pb.SyncStreamItem.Handshake(
            protocol_version=PROTOCOL_VERSION,
            signature=signature,
        )
    )


# --- checking received handshake items ---------------------------------------------


@dataclass(frozen=True)
class Hello:
    """A structurally valid HELLO whose key matches its keyid (not yet authenticated)."""

    instance_id: str
    keyid: str
    public_key_raw: bytes
    nonce: bytes


@dataclass(frozen=True)
class Challenge:
    """A CHALLENGE from the pinned hub whose signature verified."""

    instance_id: str
    keyid: str
    public_key_raw: bytes
    nonce: bytes
    transcript: Transcript


def _check_version(item: pb.SyncStreamItem.Handshake, step: str) -> None:
    if item.protocol_version != PROTOCOL_VERSION:
        raise ProtocolError(
            f"{step} has protocol_version {item.protocol_version}; "
            f"only version {PROTOCOL_VERSION} is supported"
        )


def _check_peer_fields(item: pb.SyncStreamItem.Handshake, step: str) -> None:
    _check_version(item, step)
    if not item.HasField("public_key"):
        raise ProtocolError(f"{step} has no public_key")
    if not item.instance_id:
        raise ProtocolError(f"{step} has no instance_id")
    if len(item.instance_id.encode("utf-8")) > MAX_INSTANCE_ID_BYTES:
        raise ProtocolError(f"{step} instance_id is longer than {MAX_INSTANCE_ID_BYTES} bytes")
    if len(item.nonce) != NONCE_BYTES:
        raise ProtocolError(f"{step} nonce must be {NONCE_BYTES} bytes, got {len(item.nonce)}")


def validate_hello(item: pb.SyncStreamItem.Handshake) -> Hello:
    """Check a HELLO: ProtocolError if malformed, AuthError if its key does not match its keyid."""
    _check_peer_fields(item, "HELLO")
    if item.signature:
        raise ProtocolError("HELLO must not carry a signature")
    raw = public_key_from_message(item.public_key)
    return Hello(
        instance_id=item.instance_id,
        keyid=item.public_key.keyid,
        public_key_raw=raw,
        nonce=bytes(item.nonce),
    )


def hub_transcript(
    hello: Hello, hub_identity: SigningIdentity, hub_instance_id: str, hub_nonce: bytes
) -> Transcript:
    """The transcript a hub signs in answer to ``hello``."""
    return Transcript(
        protocol_version=PROTOCOL_VERSION,
        hub_instance_id=hub_instance_id,
        hub_keyid=hub_identity.keyid,
        client_instance_id=hello.instance_id,
        client_keyid=hello.keyid,
        client_nonce=hello.nonce,
        hub_nonce=hub_nonce,
    )


def validate_challenge(
    item: pb.SyncStreamItem.Handshake,
    *,
    pinned_keyid: str,
    pinned_instance_id: str,
    client_instance_id: str,
    client_keyid: str,
    client_nonce: bytes,
) -> Challenge:
    """Check a hub's CHALLENGE against the pinned known-host entry and the client's HELLO.

    ProtocolError if malformed; AuthError if the hub is not the pinned one or its signature
    does not verify. The returned transcript is the one the client signs in its PROOF.
    """
    _check_peer_fields(item, "CHALLENGE")
    raw = public_key_from_message(item.public_key)
    keyid = item.public_key.keyid
    if keyid != pinned_keyid:
        raise AuthError(
            f"hub presented keyid {keyid} but known_hosts pins {pinned_keyid}: "
            "the hub's key changed or this is not the configured hub"
        )
    if item.instance_id != pinned_instance_id:
        raise AuthError(
            f"hub {keyid} calls itself {item.instance_id!r} but known_hosts expects "
            f"{pinned_instance_id!r}"
        )
    transcript = Transcript(
        protocol_version=PROTOCOL_VERSION,
        hub_instance_id=item.instance_id,
        hub_keyid=keyid,
        client_instance_id=client_instance_id,
        client_keyid=client_keyid,
        client_nonce=client_nonce,
        hub_nonce=bytes(item.nonce),
    )
    if not verify_challenge(raw, transcript, item.signature):
        raise AuthError(f"hub {pinned_instance_id} ({keyid}) sent a bad CHALLENGE signature")
    return Challenge(
        instance_id=item.instance_id,
        keyid=keyid,
        public_key_raw=raw,
        nonce=bytes(item.nonce),
        transcript=transcript,
    )


def validate_proof(item: pb.SyncStreamItem.Handshake, hello: Hello, t: Transcript) -> None:
    """Check a client's PROOF against the key from its HELLO.

    ProtocolError if malformed, AuthError unless the signature verifies. Fields other than
    the version and the signature are ignored, as the protocol says.
    """
    _check_version(item, "PROOF")
    if not item.signature:
        raise ProtocolError("PROOF has no signature")
    if not verify_proof(hello.public_key_raw, t, item.signature):
        raise AuthError(
            f"client {hello.instance_id} ({hello.keyid}) sent a bad PROOF signature",
            reason="bad_signature",
        )


# --- a client's side, for one connection ---------------------------------------------


@dataclass(frozen=True)
class HubPin:
    """What a client pins for one hub (its known_hosts entry): instance id and keyid."""

    instance_id: str
    keyid: str


class ClientHandshake:
    """One connection's handshake as a client: HELLO out, CHALLENGE checked, PROOF out.

    The nonce is fresh for each instance (or given, for fixed test vectors): make
    a new one for every connection.
    """

    def __init__(
        self,
        identity: SigningIdentity,
        instance_id: str,
        pin: HubPin,
        nonce: bytes | None = None,
        join: Callable[[Transcript], pb.SyncStreamItem.Join] | None = None,
    ) -> None:
        """``join``, for a client joining with an invitation, makes the PROOF's ``join``
        for the transcript (``hub.protocol.join_item`` with the token's secret)."""
        self.identity = identity
        self.instance_id = instance_id
        self.pin = pin
        self.nonce = new_nonce() if nonce is None else nonce
        self.join = join

    def hello_frame(self) -> bytes:
        return encode_item(hello_item(self.identity, self.instance_id, self.nonce))

    def check_challenge(self, challenge: pb.SyncStreamItem.Handshake) -> Challenge:
        """The hub's CHALLENGE checked against the pin and this HELLO (see validate_challenge)."""
        return validate_challenge(
            challenge,
            pinned_keyid=self.pin.keyid,
            pinned_instance_id=self.pin.instance_id,
            client_instance_id=self.instance_id,
            client_keyid=self.identity.keyid,
            client_nonce=self.nonce,
        )

    def proof_frame(self, challenge: pb.SyncStreamItem.Handshake) -> bytes:
        """The PROOF answering ``challenge``.

        AuthError if the hub is not the pinned one or its signature does not verify,
        ProtocolError if the CHALLENGE is malformed; either way send no PROOF.
        """
        checked = self.check_challenge(challenge)
        item = proof_item(sign_proof(self.identity, checked.transcript))
        if self.join is not None:
            item.handshake.join.CopyFrom(self.join(checked.transcript))
        return encode_item(item)
