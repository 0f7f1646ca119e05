"""Joining a hub with an invitation: one connection, one handshake, then done.

``join_hub`` dials the hub the token names (or the endpoint given), runs the
handshake of docs/protocol.md §5 (Handshake) with the invitation proven in its
PROOF (§5.7 (Joining with an invitation)), and returns once the hub has let this
node in (its ``send_config`` arrived) or refused it (its ``error``). Syncing is the
agent's work afterwards.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import zmq

from hub.errors import AuthError, ProtocolError, SynchubError
from hub.identity import CurveKeyPair, SigningIdentity
from hub.pb import synchub_pb2 as pb
from hub.protocol import (
    ClientHandshake,
    HubPin,
    InvitationToken,
    action_of,
    decode_item,
    join_item,
)

_STATE_NAMES = {v: k.removeprefix("CONNECTION_STATE_") for k, v in pb.ConnectionState.items()}


@dataclass(frozen=True)
class Joined:
    """The hub let this node in: what it shares with it."""

    endpoint: str
    repos: tuple[str, ...]
    plans: tuple[str, ...]


def join_hub(
    identity: SigningIdentity,
    instance_id: str,
    token: InvitationToken,
    endpoint: str,
    timeout: float = 30.0,
) -> Joined:
    """Connect to ``endpoint``, prove the invitation, wait for the hub's answer.

    AuthError when the hub refuses (its message says why) or is not the hub the
    token pins; SynchubError when no answer comes within ``timeout`` seconds.
    """
    handshake = ClientHandshake(
        identity, instance_id, HubPin(token.hub_instance_id, token.hub_keyid),
        join=lambda transcript: join_item(token.secret, transcript),
    )
    context: zmq.Context[Any] = zmq.Context()
    sock: zmq.Socket[Any] = context.socket(zmq.DEALER)
    try:
        sock.setsockopt(zmq.LINGER, 0)
        curve = CurveKeyPair.generate()
        sock.setsockopt(zmq.CURVE_PUBLICKEY, curve.public)
        sock.setsockopt(zmq.CURVE_SECRETKEY, curve.secret)
        sock.setsockopt(zmq.CURVE_SERVERKEY, token.curve_public_key.encode("ascii"))
        sock.connect(endpoint)
        sock.send(handshake.hello_frame())
        deadline = time.monotonic() + timeout
        challenge = _next_item(sock, deadline, endpoint)
        if action_of(challenge) != "handshake":
            raise _refusal(challenge, token)
        sock.send(handshake.proof_frame(challenge.handshake))
        while True:
            item = _next_item(sock, deadline, endpoint)
            action = action_of(item)
            if action == "send_config":
                config = item.send_config.config
                return Joined(
                    endpoint=endpoint,
                    repos=tuple(r.id for r in config.repos),
                    plans=tuple(p.id for p in config.plans),
                )
            if action == "error":
                raise _refusal(item, token)
    finally:
        sock.close(linger=0)
        context.term()


def _next_item(sock: zmq.Socket[Any], deadline: float, endpoint: str) -> pb.SyncStreamItem:
    remaining = deadline - time.monotonic()
    if remaining <= 0 or not sock.poll(int(remaining * 1000)):
        raise SynchubError(
            f"no answer from {endpoint}: check the address (pass --endpoint if this node "
            "reaches the hub another way), that the hub runs, and that its port is open"
        )
    try:
        return decode_item(sock.recv())
    except ProtocolError as exc:
        raise SynchubError(f"{endpoint} sent something that is not synchub: {exc}") from exc


def _refusal(item: pb.SyncStreamItem, token: InvitationToken) -> AuthError:
    if action_of(item) == "error":
        state = _STATE_NAMES.get(item.error.state, str(item.error.state))
        return AuthError(f"hub {token.hub_instance_id} refused to join ({state}): "
                         f"{item.error.message}")
    return AuthError(f"hub {token.hub_instance_id} answered the HELLO with "
                     f"{action_of(item)}, not a CHALLENGE")
