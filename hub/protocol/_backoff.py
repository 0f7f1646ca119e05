"""How long a client waits before reconnecting: docs/protocol.md §7.3 (Reconnecting)."""

from __future__ import annotations

from collections.abc import Callable


def backoff_delay(
    attempt: int,
    *,
    minimum: float = 1.0,
    maximum: float = 300.0,
    rand: Callable[[], float],
) -> float:
    """Seconds to wait before reconnect attempt number ``attempt`` (0 for the first retry).

    Exponential with jitter: the ceiling doubles from ``minimum`` up to ``maximum``
    and the delay is drawn uniformly from the upper half of it (never below
    ``minimum``), so peers that dropped together do not return together.
    """
    if minimum <= 0 or maximum < minimum:
        raise ValueError("need 0 < minimum <= maximum")
    ceiling = maximum if attempt >= 64 else min(maximum, minimum * 2 ** max(attempt, 0))
    floor = max(minimum, ceiling / 2)
    return floor + rand() * (ceiling - floor)
