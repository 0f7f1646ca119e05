"""What crosses between the front and a SessionActor.

Into the session: immutable messages told to its ActorRef (``ref.tell(Tick(now))``);
the session maps each message type to its handler. Telling a ref costs a queue put,
while a proxy would cost an introspection of the actor per connection. Out of the
session: its ``Outbox``, created in the session's own thread, through which frames and
bookkeeping go back to the front (the only thread that touches the ROUTER).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from hub.config import Config


class Cancellation(Protocol):
    """Whether a queued frame is to be skipped rather than handled."""

    def is_set(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class InboundFrame:
    """One frame from the session's peer, received at ``now``.

    ``cancelled`` is set when the hub is stopping, or when the front ended the
    session for going past a bound (its backlog, its unread replies): a frame still
    queued then is skipped, not applied (the client resends it after its next diff).
    """

    frame: bytes
    now: float
    cancelled: Cancellation | None = None


@dataclass(frozen=True, slots=True)
class Tick:
    """Time has passed: heartbeats, the handshake timeout and the silence limit are due by it."""

    now: float


@dataclass(frozen=True, slots=True)
class ProtocolViolation:
    """The front saw something only it can see (a multi-frame message, a flood before
    the handshake); the session ends with ERROR_PROTOCOL and this message."""

    message: str


@dataclass(frozen=True, slots=True)
class PeerVanished:
    """A send to the peer failed, or its connection was replaced: nothing more is sent."""


@dataclass(frozen=True, slots=True)
class Displace:
    """A newer session for the same keyid completed its PROOF."""


@dataclass(frozen=True, slots=True)
class ExpireHandshake:
    """The front gives this pending session's room to a newer handshake: it ends as a
    timed-out handshake would (ERROR_AUTH, "handshake timed out")."""


@dataclass(frozen=True, slots=True)
class ConfigChanged:
    """The hub's config changed (sent by the ConfigActor to subscribed sessions)."""

    config: Config


FrontMessage = (
    InboundFrame | Tick | ProtocolViolation | PeerVanished | Displace | ExpireHandshake
    | ConfigChanged
)


class Outbox(Protocol):
    """The session's one way out, owned by the session's thread."""

    def send(self, frames: Sequence[bytes]) -> None:
        """Queue frames for this peer, in order."""

    def frame_done(self) -> None:
        """Tell the front one inbound frame is fully handled (its backlog credit)."""

    def authenticated(self, keyid: str) -> None:
        """Tell the front this session now speaks for ``keyid`` (for displacement)."""

    def close(self) -> None:
        """The session has ended: the front forgets this peer after the queued frames."""
