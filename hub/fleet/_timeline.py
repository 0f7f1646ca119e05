"""PeerTimeline: each peer's recent connection-state changes, since the hub started.

Bounded: ``PEER_EVENTS`` changes per peer and ``MAX_PEERS`` peers (the ones heard
from least recently are forgotten first). Not thread-safe: one owner (the FleetActor).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import Final

from hub.fleet._model import PeerEvent
from hub.pb import synchub_pb2 as pb

PEER_EVENTS: Final = 50
MAX_PEERS: Final = 20_000


class PeerTimeline:
    def __init__(self) -> None:
        self._events: OrderedDict[str, deque[PeerEvent]] = OrderedDict()

    def record(self, state: pb.PeerState, now_ms: int) -> bool:
        """Note a peer's state; True when it differs from the last one noted."""
        events = self._events.get(state.peer_keyid)
        if events is None:
            events = deque(maxlen=PEER_EVENTS)
            self._events[state.peer_keyid] = events
            while len(self._events) > MAX_PEERS:
                self._events.popitem(last=False)
        else:
            self._events.move_to_end(state.peer_keyid)
        event = PeerEvent(now_ms, state.state, state.status_message[:300])
        if events and (events[-1].state, events[-1].message) == (event.state, event.message):
            return False
        events.append(event)
        return True

    def history(self, keyid: str) -> tuple[PeerEvent, ...]:
        """Newest first."""
        return tuple(reversed(self._events.get(keyid, ())))
