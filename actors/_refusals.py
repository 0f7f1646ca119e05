"""Refusals after a valid PROOF: logged at warning level at most once a window per
key, and the keys waiting to be authorized (``synchub pending``).

A peer holding a real key the hub does not admit (unknown, unverified, another
instance) can retry as fast as it likes; each retry costs a handshake, and must not
cost a log line. The first refusal of a key in a window is logged at once; the next
ones are counted, and the first after the window says how many there were.

``PendingKeys`` keeps the keys refused for their authorization (ERROR_AUTH) after a
valid PROOF: who they say they are, where they came from, how often and when. It
holds at most ``MAX_PENDING_KEYS`` keys (a new one evicts the one heard from least
recently) and forgets a key not heard from for ``PENDING_MAX_AGE`` seconds, so a
flood of made-up keys costs a fixed amount of memory. Both are used by the
PeerStateActor, in its thread only; time (wall clock, seconds) is passed in.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Final

from hub.text import printable

log = logging.getLogger("actors._session")

REFUSAL_LOG_WINDOW: Final = 60.0
MAX_TRACKED_KEYS: Final = 4096
MAX_PENDING_KEYS: Final = 200
PENDING_MAX_AGE: Final = 24 * 3600.0


@dataclass(frozen=True)
class PendingKey:
    """A key refused after a valid PROOF. ``instance_id`` is what the peer claimed (made
    inert with ``printable``); ``source`` its address (libzmq's Peer-Address, or "");
    times are wall-clock seconds; ``reason`` the refusal the peer was sent."""

    keyid: str
    instance_id: str
    source: str
    attempts: int
    first_seen: float
    last_seen: float
    reason: str


class PendingKeys:
    """The keys waiting to be authorized, least recently heard from first; bounded."""

    def __init__(
        self, max_keys: int = MAX_PENDING_KEYS, max_age: float = PENDING_MAX_AGE
    ) -> None:
        self._max_keys = max_keys
        self._max_age = max_age
        self._keys: OrderedDict[str, PendingKey] = OrderedDict()

    def knock(self, keyid: str, instance_id: str, source: str, reason: str, now: float) -> None:
        """``keyid`` was refused its authorization at ``now``."""
        seen = self._keys.pop(keyid, None)
        if seen is None:
            seen = PendingKey(keyid, instance_id, source, 0, now, now, reason)
        self._keys[keyid] = replace(
            seen, instance_id=instance_id, source=source or seen.source,
            attempts=seen.attempts + 1, last_seen=now, reason=reason,
        )
        while len(self._keys) > self._max_keys:
            self._keys.popitem(last=False)

    def forget(self, keyid: str) -> None:
        """``keyid`` connected: it waits no longer."""
        self._keys.pop(keyid, None)

    def entries(self, now: float) -> tuple[PendingKey, ...]:
        """Every key heard from within the age limit, most recently heard from first."""
        while self._keys:
            oldest = next(iter(self._keys.values()))
            if now - oldest.last_seen < self._max_age:
                break
            self._keys.popitem(last=False)
        return tuple(reversed(self._keys.values()))


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
        self.pending = PendingKeys()

    def refused(
        self, keyid: str, instance_id: str, message: str, now: float, source: str | None = None
    ) -> bool:
        """Note a refusal; True when it was logged (else counted for the next line).

        ``source`` (the peer's address, "" when unknown) is given for a refused
        authorization: the key then waits in ``pending``."""
        if source is not None:
            self.pending.knock(keyid, instance_id, source, message, now)
        seen = self._seen.get(keyid)
        if seen is not None and now - seen.logged_at < self._window:
            seen.suppressed += 1
            return False
        more = "" if seen is None or not seen.suppressed else (
            f" ({seen.suppressed} more refusals of this key in the last "
            f"{self._window:.0f}s not logged)"
        )
        listed = "" if source is None else "; `synchub pending` lists it"
        log.warning(
            "refused %s (%s) after a valid PROOF: %s%s%s",
            printable(instance_id), keyid, printable(message, 500), more, listed,
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
