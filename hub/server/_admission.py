"""Which room a new peer's handshake waits in: the key ids the hub admits, as the front
sees them.

Who owns what: the front's thread reads an ``AdmittedKeys``; the config listener (in
the ConfigActor's thread) publishes each new set through its queue, the one thing
that crosses. The front takes the newest set when it next classifies a first frame.
"""

from __future__ import annotations

import contextlib
import queue

from hub.pb import synchub_pb2 as pb

# A HELLO is small; anything larger is not one, and is not worth decoding here.
HELLO_BYTES_MAX = 4096


class AdmittedKeys:
    def __init__(self, keys: frozenset[str] = frozenset()) -> None:
        self._keys = keys
        self._updates: queue.SimpleQueue[frozenset[str]] = queue.SimpleQueue()

    def publish(self, keys: frozenset[str]) -> None:
        """From any thread: the key ids the hub now admits (listed and verified)."""
        self._updates.put(keys)

    def current(self) -> frozenset[str]:
        """The newest set published (the front's thread only)."""
        with contextlib.suppress(queue.Empty):
            while True:
                self._keys = self._updates.get_nowait()
        return self._keys

    def claimed_by(self, frame: bytes) -> str | None:
        """The key id a first frame's HELLO names, when the hub admits that key.

        Only a claim: the handshake proves it or fails. Nothing is decided on it but
        which room the handshake waits in (docs/security.md §5 (Limits and hostile
        input)).
        """
        admitted = self.current()
        if not admitted or len(frame) > HELLO_BYTES_MAX:
            return None
        try:
            item = pb.SyncStreamItem.FromString(frame)
        except Exception:  # garbage: the session refuses it properly
            return None
        if item.WhichOneof("action") != "handshake":
            return None
        keyid = item.handshake.public_key.keyid
        return keyid if keyid in admitted else None


class RefusalsTold:
    """Which refusals are answered: at most ``per_second`` RETRY_WAIT a second to one
    address, the rest dropped silently, so a peer that retries at once gets nothing
    to retry on (the front's thread only)."""

    def __init__(self, per_second: int) -> None:
        self._per_second = per_second
        self._windows: dict[str, tuple[float, int]] = {}

    def tell(self, source: str, now: float) -> bool:
        started, count = self._windows.get(source, (now, 0))
        if now - started >= 1.0:
            started, count = now, 0
        self._windows[source] = (started, count + 1)
        return count < self._per_second

    def sweep(self, now: float) -> None:
        self._windows = {s: w for s, w in self._windows.items() if now - w[0] < 1.0}
