"""What a running hub reports about itself: one immutable snapshot for every reader.

``HubStatus`` is built by ``hub.server`` (from the actors and the front's counters)
and read by the admin socket's ``status`` op, and by anything else that shows the
hub (a web page): they take a ``StatusSource`` and never reach into the server.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class HubInfo:
    """What does not change while the hub runs."""

    instance: str
    endpoint: str
    keyid: str
    curve_public_key: str | None
    config_path: str | None
    data_dir: str
    pid: int
    started_ms: int


@dataclass(frozen=True)
class FrontCounters:
    """The front's view of its sessions at one moment."""

    sessions: int
    """Sessions the front knows, in any phase (closing ones included)."""
    sessions_started: int
    pending_handshakes: int
    """Sessions started and not yet authenticated (nor closed)."""
    pending_high_water: int
    """The most sessions ever pending at once."""
    backlog_frames: int
    """Inbound frames handed to sessions and not yet handled."""
    backlog_bytes: int
    refused: int
    """New peers turned away with RETRY_WAIT (too many handshakes in progress)."""
    dropped: int
    """Inbound frames discarded because their session was closing or refused."""

    @property
    def backlog(self) -> tuple[int, int]:
        """(frames, bytes) handed to sessions and not yet handled."""
        return self.backlog_frames, self.backlog_bytes


@dataclass(frozen=True)
class HubStatus:
    """The hub's identity, counts and front counters at one moment."""

    info: HubInfo
    uptime_seconds: int
    operations: int
    peers_known: int
    peers_connected: int
    authorized_clients: int
    front: FrontCounters


StatusSource = Callable[[], HubStatus]
"""Builds a fresh snapshot each call; may raise pykka.Timeout or ActorDeadError."""
