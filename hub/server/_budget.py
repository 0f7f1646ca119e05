"""What the hub has sent each key and its client may not have read yet: a leaky bucket.

libzmq queues a client's replies without saying how much of them the client has read,
so the front keeps, per key id (across that key's sessions, displaced ones included),
the bytes it relayed, drained at ``drain_per_second``: a client that reads its replies
keeps its bucket near empty. Past ``high`` bytes the client is sent a throttle; past
``limit`` its session ends with ERROR_PROTOCOL (docs/security.md §5 (Limits and
hostile input)). Owned by the front's thread.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from hub.server._settings import FrontSettings


class Outbound(enum.Enum):
    OK = "ok"
    THROTTLE = "throttle"
    OVER = "over"


@dataclass
class _Bucket:
    level: float
    at: float
    throttled_until: float = float("-inf")


class OutboundBudget:
    def __init__(self, settings: FrontSettings) -> None:
        self._high = settings.outbound_bytes_high
        self._limit = settings.outbound_bytes_max
        self._drain = settings.outbound_drain_per_second
        self._throttle_seconds = settings.throttle_delay_ms / 1000
        self._buckets: dict[str, _Bucket] = {}
        self.over_message = (
            f"more than {self._limit >> 20} MiB of the hub's replies left unread: a client "
            "must keep reading its socket"
        )

    def level(self, keyid: str, now: float) -> float:
        bucket = self._buckets.get(keyid)
        if bucket is None:
            return 0.0
        return max(0.0, bucket.level - (now - bucket.at) * self._drain)

    def sent(self, keyid: str, size: int, now: float) -> Outbound:
        """``size`` bytes go to ``keyid``'s client now: what to do about it (THROTTLE at
        most once per throttle delay)."""
        bucket = self._buckets.get(keyid)
        level = self.level(keyid, now) + size
        throttled_until = bucket.throttled_until if bucket is not None else float("-inf")
        bucket = self._buckets[keyid] = _Bucket(level, now, throttled_until)
        if level > self._limit:
            return Outbound.OVER
        if level > self._high and now >= bucket.throttled_until:
            bucket.throttled_until = now + self._throttle_seconds
            return Outbound.THROTTLE
        return Outbound.OK

    def sweep(self, now: float) -> None:
        """Forget the keys whose buckets have drained."""
        for keyid in [k for k in self._buckets if self.level(k, now) == 0.0]:
            del self._buckets[keyid]
