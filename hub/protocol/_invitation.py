"""Invitations: a token that lets one new client in, proven inside the handshake.

docs/protocol.md §5.7 (Joining with an invitation) is the specification. A token
carries the hub's instance id, key id, CURVE key and endpoints (what a client pins)
and a fresh 32-byte secret. From the secret both sides derive

    invitation_id = base64url_nopad( SHA-256(LABEL_ID || secret)[:12] )
    invitation key = the ed25519 key whose seed is SHA-256(LABEL_KEY || secret)

The hub keeps only the id and the invitation key's public half (a one-way function
of the secret: reading the hub's files does not let anyone join). A joining client
adds ``join { invitation_id, signature }`` to its PROOF, the signature being the
invitation key's over ``transcript(LABEL_JOIN)``: both nonces and the client's key id
are in it, so a recorded proof is worth nothing on another connection or for
another key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass

from hub.errors import AuthError, RequestError
from hub.identity import SigningIdentity, is_valid_curve_public_key, is_valid_keyid
from hub.identity import verify_signature as ed25519_verify
from hub.pb import synchub_pb2 as pb
from hub.protocol._handshake import Transcript

SECRET_BYTES = 32
LABEL_ID = b"synchub-invite/v1/id\x00"
LABEL_KEY = b"synchub-invite/v1/key\x00"
LABEL_JOIN = b"synchub-handshake/v1/join\x00"
TOKEN_PREFIX = "synchub-invite-1."  # noqa: S105 - a format marker, not a secret
MAX_TOKEN_CHARS = 4096


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_secret() -> bytes:
    return os.urandom(SECRET_BYTES)


def invitation_id(secret: bytes) -> str:
    """The id both sides name an invitation by: 16 base64url characters."""
    return _b64url(hashlib.sha256(LABEL_ID + secret).digest()[:12])


def invitation_key(secret: bytes) -> SigningIdentity:
    """The ed25519 key a joining client signs with; the hub keeps only its public half."""
    return SigningIdentity.from_seed(hashlib.sha256(LABEL_KEY + secret).digest())


def join_digest(t: Transcript) -> bytes:
    return t.digest(LABEL_JOIN)


def join_item(secret: bytes, t: Transcript) -> pb.SyncStreamItem.Join:
    """The ``join`` a PROOF carries for this handshake."""
    return pb.SyncStreamItem.Join(
        invitation_id=invitation_id(secret),
        signature=invitation_key(secret).sign(join_digest(t)),
    )


def verify_join(verifier: bytes, t: Transcript, signature: bytes) -> bool:
    """Whether ``signature`` is the invitation key's (public half ``verifier``) over ``t``."""
    return ed25519_verify(verifier, signature, join_digest(t))


@dataclass(frozen=True)
class JoinClaim:
    """A PROOF's join, with what it must be checked against (immutable, crosses mailboxes)."""

    invitation_id: str
    signature: bytes
    client_keyid: str
    client_instance_id: str
    transcript: Transcript

    def verified_by(self, verifier: bytes) -> bool:
        return verify_join(verifier, self.transcript, self.signature)

    def refused(self, why: str, reason: str) -> AuthError:
        return AuthError(
            f"client {self.client_instance_id} ({self.client_keyid}): invitation "
            f"{self.invitation_id} {why}; nothing was authorized",
            reason=reason,
        )


# --- the token ---------------------------------------------------------------------


@dataclass(frozen=True)
class InvitationToken:
    """What ``synchub invite`` prints and ``synchub join`` reads."""

    hub_instance_id: str
    hub_keyid: str
    curve_public_key: str
    endpoints: tuple[str, ...]
    instance_id: str
    """The instance the invited client joins as."""
    secret: bytes

    @property
    def invitation_id(self) -> str:
        return invitation_id(self.secret)

    def encode(self) -> str:
        body = {
            "hub": self.hub_instance_id,
            "keyid": self.hub_keyid,
            "curve": self.curve_public_key,
            "endpoints": list(self.endpoints),
            "instance": self.instance_id,
            "secret": _b64url(self.secret),
        }
        text = json.dumps(body, separators=(",", ":"), sort_keys=True)
        return TOKEN_PREFIX + _b64url(text.encode("utf-8"))

    @classmethod
    def decode(cls, token: str) -> InvitationToken:
        """RequestError saying what is wrong with a pasted token."""
        text = "".join(token.split())
        if not text.startswith(TOKEN_PREFIX):
            raise RequestError(
                f"not an invitation token: it should start with {TOKEN_PREFIX!r} "
                "(paste the whole line `synchub invite` printed)"
            )
        if len(text) > MAX_TOKEN_CHARS:
            raise RequestError(f"not an invitation token: longer than {MAX_TOKEN_CHARS} characters")
        try:
            body = json.loads(_unb64url(text[len(TOKEN_PREFIX) :]))
            token_fields = cls(
                hub_instance_id=str(body["hub"]),
                hub_keyid=str(body["keyid"]),
                curve_public_key=str(body["curve"]),
                endpoints=tuple(str(e) for e in body["endpoints"]),
                instance_id=str(body["instance"]),
                secret=_unb64url(str(body["secret"])),
            )
        except (binascii.Error, ValueError, KeyError, TypeError) as exc:
            raise RequestError(
                "the invitation token is damaged (cut short or mistyped?): paste the "
                "whole line `synchub invite` printed"
            ) from exc
        token_fields.check()
        return token_fields

    def check(self) -> None:
        problems = []
        if not is_valid_keyid(self.hub_keyid):
            problems.append("the hub's key id is malformed")
        if not is_valid_curve_public_key(self.curve_public_key):
            problems.append("the hub's CURVE key is malformed")
        if len(self.secret) != SECRET_BYTES:
            problems.append("the secret is not 32 bytes")
        if not self.endpoints:
            problems.append("it names no endpoint")
        if problems:
            raise RequestError(
                f"the invitation token is damaged: {'; '.join(problems)}; ask for a new one"
            )
