"""What the hub's actors report as they work, for metrics: handshakes and ingest batches.

``Telemetry`` is the narrow interface the actors call (from their own threads; an
implementation must be safe for that and must not block). ``NO_TELEMETRY`` does
nothing: the default, and what a hub without a web side uses. The web side's
Prometheus metrics implement it. Every label an implementation is handed comes from
a small fixed set or from the hub's own configuration, never from free peer text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Protocol

HANDSHAKE_ACCEPTED: Final = "accepted"
HANDSHAKE_REFUSED: Final = "refused"


class Telemetry(Protocol):
    def handshake(self, outcome: str, reason: str) -> None:
        """A handshake ended: ``accepted`` (reason ""), or ``refused`` with a one-word reason."""
        ...

    def batch_applied(self, received: Mapping[tuple[str, int], int], seconds: float) -> None:
        """A peer's batch was committed in ``seconds``: operations by (instance, status)."""
        ...


class _NoTelemetry:
    def handshake(self, outcome: str, reason: str) -> None:
        pass

    def batch_applied(self, received: Mapping[tuple[str, int], int], seconds: float) -> None:
        pass


NO_TELEMETRY: Final[Telemetry] = _NoTelemetry()

__all__ = ["HANDSHAKE_ACCEPTED", "HANDSHAKE_REFUSED", "NO_TELEMETRY", "Telemetry"]
