"""Refusals after a valid PROOF, logged at warning level, at most once a window per key.

A peer holding a real key the hub does not admit (unknown, unverified, another
instance) can retry as fast as it likes; each retry costs a handshake, and must not
cost a log line. The first refusal of a key in a window is logged at once; the next
ones are counted, and the first after the window says how many there were. Used by
the PeerStateActor, in its thread only; time is passed in.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final

from hub.text import printable

log = logging.getLogger("actors._session")

REFUSAL_LOG_WINDOW: Final = 60.0
MAX_TRACKED_KEYS: Final = 4096


@dataclass
class _Seen:
    logged_at: float
    suppressed: int = 0


class RefusalLog:
    def __init__(
        self, window: float = REFUSAL_LOG_WINDOW, max_keys: int = MAX_TRACKED_KEYS
    ) -> None:
        self._window = window
        self._max_keys = max_keys
        self._seen: dict[str, _Seen] = {}

    def refused(self, keyid: str, instance_id: str, message: str, now: float) -> bool:
        """Note a refusal; True when it was logged (else counted for the next line)."""
        seen = self._seen.get(keyid)
        if seen is not None and now - seen.logged_at < self._window:
            seen.suppressed += 1
            return False
        more = "" if seen is None or not seen.suppressed else (
            f" ({seen.suppressed} more refusals of this key in the last "
            f"{self._window:.0f}s not logged)"
        )
        log.warning(
            "refused %s (%s) after a valid PROOF: %s%s",
            printable(instance_id), keyid, printable(message, 500), more,
        )
        if seen is None and len(self._seen) >= self._max_keys:
            self._forget_old(now)
        self._seen[keyid] = _Seen(now)
        return True

    def _forget_old(self, now: float) -> None:
        for keyid, seen in list(self._seen.items()):
            if now - seen.logged_at >= self._window:
                del self._seen[keyid]
        if len(self._seen) >= self._max_keys:
            # Still full of keys refused within the window: forget the oldest half.
            by_age = sorted(self._seen, key=lambda k: self._seen[k].logged_at)
            for keyid in by_age[: len(by_age) // 2]:
                del self._seen[keyid]
