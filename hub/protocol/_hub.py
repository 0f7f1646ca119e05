"""The hub's side of the protocol as decisions without I/O.

A hub session (actors.SessionActor) feeds these the items it decoded and acts on what
comes back; nothing here touches a socket, an actor or a clock:

- ``HubHandshake``: check a HELLO and answer it with a signed CHALLENGE, then verify
  the PROOF (docs/protocol.md §5.2 (The three steps), §5.3 (What each side checks));
- ``join_claim``: the invitation a PROOF carries (§5.7 (Joining with an invitation));
- ``authorize_client``: the authorization decision, made only after the PROOF
  verified, and again on every config change (§6.6 (Configuration and resources));
- ``ConfigView``: what of the hub's config one client may read, and the
  ``send_config`` + ``list_resources`` pair that carries it (§6.6);
- ``check_diff``: what a ``diff_operations`` must satisfy before it is answered
  (§6.3 (The hub's answer to `diff_operations`));
- ``sent_operations``: what a ``send_operations`` asks the oplog to apply (§6.4
  (`send_operations`)).

Every refusal is a ProtocolError or AuthError whose message is the ``error`` item's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from hub.config import AuthorizedClient, Config
from hub.errors import AuthError, ProtocolError
from hub.identity import ED25519_SIGNATURE_BYTES, SigningIdentity
from hub.pb import synchub_pb2 as pb
from hub.protocol._codec import config_frames
from hub.protocol._handshake import (
    Hello,
    Transcript,
    challenge_item,
    hub_transcript,
    new_nonce,
    sign_challenge,
    validate_hello,
    validate_proof,
)
from hub.protocol._invitation import JoinClaim
from hub.scopes import Permissions

MAX_INVITATION_ID_CHARS = 64


@dataclass(frozen=True)
class HubHandshake:
    """A HELLO the hub answered: what its PROOF must be checked against."""

    hello: Hello
    transcript: Transcript
    challenge: pb.SyncStreamItem = field(compare=False)
    """The CHALLENGE item to send back."""

    @classmethod
    def answer(
        cls,
        hello: pb.SyncStreamItem.Handshake,
        signing: SigningIdentity,
        instance_id: str,
        nonce: bytes | None = None,
    ) -> HubHandshake:
        """Check a HELLO and sign the CHALLENGE (with a fresh nonce unless one is given).

        ProtocolError if the HELLO is malformed, AuthError if its key does not match
        its keyid. Nothing is authorized yet.
        """
        checked = validate_hello(hello)
        hub_nonce = new_nonce() if nonce is None else nonce
        transcript = hub_transcript(checked, signing, instance_id, hub_nonce)
        signature = sign_challenge(signing, transcript)
        challenge = challenge_item(signing, instance_id, hub_nonce, signature)
        return cls(checked, transcript, challenge)

    def verify(self, proof: pb.SyncStreamItem.Handshake) -> Hello:
        """The HELLO, once ``proof`` is its client's signature of this transcript.

        ProtocolError if malformed, AuthError unless the signature verifies.
        """
        validate_proof(proof, self.hello, self.transcript)
        return self.hello


def join_claim(handshake: HubHandshake, proof: pb.SyncStreamItem.Handshake) -> JoinClaim | None:
    """The invitation a verified PROOF claims (§5.7 (Joining with an invitation)), if any.

    ProtocolError when its ``join`` is malformed; checking it against the hub's
    invitations is the config owner's work (it must also use the invitation up).
    """
    if not proof.HasField("join"):
        return None
    join = proof.join
    if not join.invitation_id or len(join.invitation_id) > MAX_INVITATION_ID_CHARS:
        raise ProtocolError("PROOF join has no invitation_id, or one over 64 characters")
    if len(join.signature) != ED25519_SIGNATURE_BYTES:
        raise ProtocolError(
            f"PROOF join signature must be {ED25519_SIGNATURE_BYTES} bytes, "
            f"got {len(join.signature)}"
        )
    hello = handshake.hello
    return JoinClaim(
        invitation_id=join.invitation_id,
        signature=bytes(join.signature),
        client_keyid=hello.keyid,
        client_instance_id=hello.instance_id,
        transcript=handshake.transcript,
    )


def authorize_client(config: Config, hello: Hello) -> AuthorizedClient:
    """The ``[[authorized_clients]]`` entry that lets this verified peer in; AuthError
    saying what the operator should do when there is none."""
    client = config.authorized_client(hello.keyid)
    who = f"client {hello.instance_id} ({hello.keyid})"
    fix = f"run `synchub authorize {hello.keyid} --instance {hello.instance_id}` on the hub"
    if client is None:
        raise AuthError(f"{who} is not authorized: {fix}", reason="unknown_key")
    if not client.keyid_verified:
        raise AuthError(
            f"{who} is not verified: {fix} after checking its key", reason="unverified"
        )
    if client.instance_id != hello.instance_id:
        raise AuthError(
            f"{who} is authorized as instance {client.instance_id!r}, not "
            f"{hello.instance_id!r}: fix the client's instance or re-authorize it",
            reason="instance_mismatch",
        )
    return client


@dataclass(frozen=True)
class ConfigView:
    """What one client may read of the hub's config. Two views are equal when the
    client would receive the same items."""

    remote: pb.RemoteConfig = field(compare=False)
    encoded: bytes
    """``remote`` in its deterministic encoding, which views are compared by."""
    repo_ids: tuple[str, ...]
    plan_ids: tuple[str, ...]

    @classmethod
    def of(cls, config: Config, client: AuthorizedClient) -> ConfigView:
        """The view of ``client``'s permissions, made once per config and permissions:
        every session of a fleet asks at its handshake, most with the same grants."""
        held = _VIEWS.get(id(config))
        if held is None or held[0] is not config:
            if len(_VIEWS) >= _VIEW_CONFIGS:
                _VIEWS.clear()
            held = _VIEWS[id(config)] = (config, {})
        view = held[1].get(client.permissions)
        if view is None:
            view = held[1][client.permissions] = cls._made(config, client.permissions)
        return view

    @classmethod
    def _made(cls, config: Config, permissions: Permissions) -> ConfigView:
        remote = config.remote_config_for(permissions)
        repo_ids, plan_ids = config.resource_ids_for(permissions)
        return cls(
            remote=remote,
            encoded=remote.SerializeToString(deterministic=True),
            repo_ids=tuple(repo_ids),
            plan_ids=tuple(plan_ids),
        )

    def frames(self) -> list[bytes]:
        """``send_config`` then ``list_resources`` (read-only: views are shared)."""
        return config_frames(self.remote, list(self.repo_ids), list(self.plan_ids))


# The views of the last few configs (a config is immutable, and held here so its id is
# not reused while cached): one per distinct set of permissions. A session reads it in
# its own thread; two sessions making the same view at once both make an equal one.
_VIEW_CONFIGS = 4
_VIEWS: dict[int, tuple[Config, dict[Permissions, ConfigView]]] = {}


MAX_DIFF_IDS = 1_000_000
"""The most (id, modno) pairs one diff may list, and the most ids one answer may request
(docs/protocol.md §6.5 (Batch and frame sizes))."""


def check_diff(diff: pb.SyncStreamItem.DiffOperations, keyid: str) -> None:
    """ProtocolError unless a connected client's diff may be answered."""
    if len(diff.have_operation_ids) > MAX_DIFF_IDS:
        raise ProtocolError(
            f"diff_operations lists {len(diff.have_operation_ids):,} operations, more than "
            f"the {MAX_DIFF_IDS:,} one diff may: split it by plan"
        )
    selector = diff.have_operations_selector
    if selector.original_instance_keyid != keyid:
        raise ProtocolError(
            "diff_operations selector must name this client's own keyid "
            f"({keyid}) in original_instance_keyid"
        )
    if len(diff.have_operation_ids) != len(diff.have_operation_modnos):
        raise ProtocolError(
            f"diff_operations has {len(diff.have_operation_ids)} ids but "
            f"{len(diff.have_operation_modnos)} modnos"
        )


def check_diff_answer(requested: Sequence[int]) -> list[int]:
    """The ids a diff's answer requests; ProtocolError when more than MAX_DIFF_IDS."""
    if len(requested) > MAX_DIFF_IDS:
        raise ProtocolError(
            f"the hub would request {len(requested):,} operations for this diff, more than "
            f"the {MAX_DIFF_IDS:,} one answer may: diff a narrower selection (by plan)"
        )
    return list(requested)


class SentOperations(NamedTuple):
    """One ``send_operations`` as a change to apply: operations created or updated, in the
    client's ids, or ids the client deleted."""

    operations: tuple[pb.Operation, ...] = ()
    deleted_ids: tuple[int, ...] = ()


def sent_operations(send: pb.SyncStreamItem.SendOperations) -> SentOperations | None:
    """What to apply for ``send``; None when it carries nothing (``keep_alive``, or no event).

    The operations are taken out of ``send`` uncopied and as sent: their
    ``instance_id`` is the producer's, kept as written, and the instance the client
    authenticated as is recorded beside them by the store (§6.4 (`send_operations`)).
    The caller hands ``send`` over and does not use it again.
    """
    event = send.event
    kind = event.WhichOneof("event")
    if kind == "deleted_operations":
        return SentOperations(deleted_ids=tuple(event.deleted_operations.values))
    if kind == "keep_alive" or kind is None:
        return None
    if kind not in ("created_operations", "updated_operations"):
        raise ProtocolError(f"send_operations carries an unknown event {kind}")
    listed = event.created_operations if kind == "created_operations" else event.updated_operations
    return SentOperations(operations=tuple(listed.operations))
