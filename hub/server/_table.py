"""SessionTable: who is connected to the front, and what the front should do next.

Pure bookkeeping: no sockets, no actors, no clock. The front's thread owns the table
and is its only user; it passes the time in, does what the answers say (start a
session, tell one, send a throttle, refuse a peer) and reports what happened.

Per session (a ``SessionEntry``): its routing id and serial, the connection it is
pinned to (the CURVE key libzmq stamps on each frame), its keyid once authenticated,
its backlog credit (frames handed to it and not yet handled, with their sizes), when
it was last throttled, when it last received and sent, and since when it is closing.
Across sessions: the current session of each routing id, the session of each keyid
(one per key: a newer one displaces the older), the handshakes pending, the total
backlog and the front's counters.

The limits are docs/protocol.md's: §2.1 (Sockets) one frame per message, §5.5 (One
session per key, and replays), §7.2 (Throttle), §7.4 (Limits on handshakes in
progress), and §9 (Errors) for what a refused peer is told.
"""

from __future__ import annotations

import random
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Generic, NamedTuple, TypeVar

from hub.server._admission import RefusalsTold
from hub.server._settings import FrontSettings
from hub.status import FrontCounters

H = TypeVar("H")


@dataclass(eq=False)
class SessionEntry(Generic[H]):
    """One session as the front knows it; ``handle`` is the front's (the session's ActorRef).

    Only its table changes it.
    """

    rid: bytes
    serial: int
    handle: H
    connection: bytes | None
    keyid: str | None = None
    source: str = ""
    """The peer's address (libzmq's Peer-Address), counted while it is pending."""
    claimed_key: str | None = None
    """While pending: the admitted key id its HELLO named (None: not one the hub admits)."""
    pending: bool = True
    in_flight: int = 0
    in_flight_bytes: int = 0
    sizes: deque[int] = field(default_factory=deque)
    throttled_until: float = 0.0
    closing_since: float | None = None
    cut: bool = False
    """Ended by the front for going past a bound: its queued frames are skipped."""
    last_in: float = 0.0
    last_out: float = 0.0

    @property
    def closing(self) -> bool:
        """Ending: nothing more of its peer's reaches it."""
        return self.closing_since is not None


@dataclass(frozen=True)
class Verdict:
    """What to do with one inbound message for a session."""

    deliver: bool
    violation: str | None = None
    """When set: tell the session it broke the protocol, with this message."""


DELIVER = Verdict(deliver=True)
DROP = Verdict(deliver=False)


@dataclass(frozen=True)
class Admission(Generic[H]):
    """Whether a new peer's first frame starts a session."""

    admit: bool
    refusal: str = ""
    """When refused: the RETRY_WAIT message."""
    supersede: SessionEntry[H] | None = None
    """When admitted: an older pending session of the same key that must end first."""


TOO_MANY = "the hub has too many handshakes in progress; retry later"
TOO_MANY_FROM_SOURCE = "too many handshakes in progress from this address; retry later"


class Sweep(Generic[H], NamedTuple):
    """What a tick finds: sessions to tick, and closing ones past their grace (the front
    forgets those whose actor has stopped)."""

    due: list[SessionEntry[H]]
    overdue: list[SessionEntry[H]]


class SessionTable(Generic[H]):
    def __init__(self, settings: FrontSettings, rng: random.Random | None = None) -> None:
        self._settings = settings
        self._rng = rng or random.Random()
        self._pending_unknown = 0
        self._pending_by_source: Counter[str] = Counter()
        self._pending_known = 0
        self._told = RefusalsTold(settings.refusals_per_source)
        self._pending_by_key: dict[tuple[str, str], list[SessionEntry[H]]] = {}
        self._sessions: dict[int, SessionEntry[H]] = {}
        self._current: dict[bytes, int] = {}
        self._by_keyid: dict[str, int] = {}
        self._next_serial = 1
        self._pending = 0
        self._pending_high_water = 0
        self._in_flight = 0
        self._in_flight_bytes = 0
        self._sessions_started = 0
        self._refused = 0
        self._dropped = 0

    # -- reading ---------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._sessions)

    def current(self, rid: bytes) -> SessionEntry[H] | None:
        """The session frames from ``rid`` go to, if any."""
        serial = self._current.get(rid)
        return None if serial is None else self._sessions.get(serial)

    def get(self, serial: int) -> SessionEntry[H] | None:
        return self._sessions.get(serial)

    def entries(self) -> list[SessionEntry[H]]:
        return list(self._sessions.values())

    def over_backlog(self) -> bool:
        """Whether all sessions together are so far behind that the ROUTER must not be read."""
        return (
            self._in_flight >= self._settings.total_backlog_high
            or self._in_flight_bytes >= self._settings.total_backlog_bytes
        )

    def counters(self) -> FrontCounters:
        return FrontCounters(
            sessions=len(self._sessions),
            sessions_started=self._sessions_started,
            pending_handshakes=self._pending,
            pending_high_water=self._pending_high_water,
            backlog_frames=self._in_flight,
            backlog_bytes=self._in_flight_bytes,
            refused=self._refused,
            dropped=self._dropped,
        )

    # -- inbound frames ----------------------------------------------------------------

    def pinned_elsewhere(self, rid: bytes, connection: bytes | None) -> SessionEntry[H] | None:
        """The current session of ``rid`` when it belongs to another connection than this
        frame's: that connection is gone and a new one took its routing id."""
        entry = self.current(rid)
        return entry if entry is not None and entry.connection != connection else None

    def detach(self, entry: SessionEntry[H], now: float) -> bool:
        """Take a session off its routing id and keyid: nothing more goes to or comes from
        its peer. True when the session must be told its peer vanished."""
        if self._current.get(entry.rid) == entry.serial:
            del self._current[entry.rid]
        if entry.keyid is not None and self._by_keyid.get(entry.keyid) == entry.serial:
            del self._by_keyid[entry.keyid]
        if entry.closing:
            return False
        self.gone(entry, now)
        return True

    def admit_new(self, source: str, claimed_key: str | None, now: float = 0.0) -> Admission[H]:
        """Whether a new peer from ``source`` may start a session; ``claimed_key`` is the
        key id its HELLO names when that is a key the hub admits.

        An admitted key's handshakes wait in a room of their own: from one address,
        the oldest beyond ``max_pending_per_key`` gives way; refused only when
        ``max_pending_handshakes`` of them are pending. Any other is refused past
        ``max_pending_per_source`` from its address, past ``max_pending_handshakes``,
        and at random above the early-drop mark (RETRY_WAIT told: ``RefusalsTold``).
        """
        settings = self._settings
        if claimed_key is not None:
            waiting = self._pending_by_key.get((claimed_key, source), [])
            if len(waiting) >= settings.max_pending_per_key:
                return Admission(admit=True, supersede=waiting[0])
            if self._pending_known >= settings.max_pending_handshakes:
                return self._refuse(TOO_MANY)
            return Admission(admit=True)
        if self._pending_by_source[source] >= settings.max_pending_per_source:
            return self._refuse(TOO_MANY_FROM_SOURCE, source, now)
        full = settings.max_pending_handshakes
        if self._pending_unknown >= full:
            return self._refuse(TOO_MANY, source, now)
        start = int(full * settings.early_drop_from)
        if self._pending_unknown >= start and full > start:
            rate = settings.early_drop_rate
            chance = rate + (1 - rate) * (self._pending_unknown - start) / (full - start)
            if self._rng.random() < chance:
                return self._refuse(TOO_MANY, source, now)
        return Admission(admit=True)

    def _refuse(self, message: str, source: str = "", now: float = 0.0) -> Admission[H]:
        self._refused += 1
        told = not source or self._told.tell(source, now)
        return Admission(admit=False, refusal=message if told else "")

    def reserve_serial(self) -> int:
        """The serial of the next session, before it starts (its outbox needs it)."""
        serial = self._next_serial
        self._next_serial += 1
        return serial

    def open(
        self, serial: int, rid: bytes, connection: bytes | None, handle: H, now: float,
        *, source: str = "", claimed_key: str | None = None,
    ) -> SessionEntry[H]:
        """A session started for ``rid``: it is pending until it authenticates."""
        entry = SessionEntry(
            rid=rid, serial=serial, handle=handle, connection=connection, last_in=now,
            last_out=now, source=source, claimed_key=claimed_key,
        )
        self._sessions[serial] = entry
        self._current[rid] = serial
        self._sessions_started += 1
        self._pending += 1
        self._pending_high_water = max(self._pending_high_water, self._pending)
        if claimed_key is None:
            self._pending_unknown += 1
            self._pending_by_source[source] += 1
        else:
            self._pending_known += 1
            self._pending_by_key.setdefault((claimed_key, source), []).append(entry)
        return entry

    def _release_pending(self, entry: SessionEntry[H]) -> None:
        """The session is no longer pending: its handshake slot is free."""
        if not entry.pending:
            return
        entry.pending = False
        self._pending -= 1
        if entry.claimed_key is None:
            self._pending_unknown -= 1
            self._pending_by_source[entry.source] -= 1
            if self._pending_by_source[entry.source] <= 0:
                del self._pending_by_source[entry.source]
            return
        self._pending_known -= 1
        bucket = (entry.claimed_key, entry.source)
        waiting = [e for e in self._pending_by_key.pop(bucket, []) if e is not entry]
        if waiting:
            self._pending_by_key[bucket] = waiting

    def check_inbound(self, entry: SessionEntry[H], parts: int, now: float) -> Verdict:
        """Whether a message of ``parts`` frames goes to the session."""
        if entry.closing:
            self._dropped += 1
            return DROP
        if parts != 1:
            return self._violation(entry, now, f"a message must be exactly one frame, got {parts}")
        if entry.keyid is not None and (
            entry.in_flight_bytes >= self._settings.session_backlog_bytes_max
        ):
            return self._violation(
                entry, now,
                f"more than {self._settings.session_backlog_bytes_max >> 20} MiB sent ahead "
                "of the hub: a client must pause on throttle",
            )
        if entry.keyid is None and entry.in_flight >= self._settings.pending_backlog_high:
            return self._violation(
                entry, now,
                f"more than {self._settings.pending_backlog_high} frames before the "
                "handshake completed",
            )
        return DELIVER

    def delivered(self, entry: SessionEntry[H], size: int, now: float) -> int | None:
        """A frame of ``size`` bytes went to the session; the throttle delay (ms) to send
        its peer when it is too far behind, at most one per delay."""
        entry.last_in = now
        entry.in_flight += 1
        entry.sizes.append(size)
        entry.in_flight_bytes += size
        self._in_flight += 1
        self._in_flight_bytes += size
        behind = (
            entry.in_flight > self._settings.session_backlog_high
            or entry.in_flight_bytes > self._settings.session_backlog_bytes_high
        )
        if behind and now >= entry.throttled_until:
            delay = self._settings.throttle_delay_ms
            entry.throttled_until = now + delay / 1000
            return delay
        return None

    def undelivered(self, entry: SessionEntry[H], now: float) -> None:
        """A frame could not be handed over: the session's actor has stopped."""
        self._dropped += 1
        self.gone(entry, now)

    def gone(self, entry: SessionEntry[H], now: float, *, cut: bool = False) -> None:
        """The session is ending (or its actor has stopped): it is closing from now on;
        ``cut`` (past a bound): what it has queued is skipped, not applied. A pending
        session's handshake slot is free at once (``authenticated`` ignores it)."""
        entry.cut = entry.cut or cut
        if entry.closing_since is None:
            entry.closing_since = now
        self._release_pending(entry)

    # -- what sessions report ------------------------------------------------------------

    def outgoing(self, entry: SessionEntry[H], now: float) -> bool:
        """Whether the session's frames may go to its routing id (not once detached)."""
        if self._current.get(entry.rid) != entry.serial:
            return False
        entry.last_out = now
        return True

    def send_failed(self, entry: SessionEntry[H]) -> bool:
        """A send to the session's peer failed; True when the session must be told."""
        return not entry.closing

    def frame_done(self, entry: SessionEntry[H]) -> None:
        self._settle(entry, 1)

    def authenticated(self, entry: SessionEntry[H], keyid: str) -> SessionEntry[H] | None:
        """The session now speaks for ``keyid``; returns the older session of that keyid,
        which the front must displace."""
        if entry.keyid is not None:
            return None
        self._release_pending(entry)
        entry.keyid = keyid
        if entry.closing or self._current.get(entry.rid) != entry.serial:
            return None  # about to end: it must not displace a session that is not
        older = self._by_keyid.get(keyid)
        self._by_keyid[keyid] = entry.serial
        if older is None or older == entry.serial:
            return None
        old_entry = self._sessions.get(older)
        return old_entry if old_entry is not None and not old_entry.closing else None

    def forget(self, entry: SessionEntry[H]) -> None:
        """The session is over; its backlog credit comes back."""
        if self._sessions.pop(entry.serial, None) is None:
            return
        if self._current.get(entry.rid) == entry.serial:
            del self._current[entry.rid]
        self._settle(entry, entry.in_flight)
        self._release_pending(entry)
        if entry.keyid is not None and self._by_keyid.get(entry.keyid) == entry.serial:
            del self._by_keyid[entry.keyid]

    # -- time ------------------------------------------------------------------------------

    def sweep(self, now: float) -> Sweep[H]:
        self._told.sweep(now)
        due: list[SessionEntry[H]] = []
        overdue: list[SessionEntry[H]] = []
        grace = self._settings.closed_grace
        for entry in self._sessions.values():
            if entry.closing_since is None:
                if self._tick_due(entry, now):
                    due.append(entry)
            elif now - entry.closing_since >= grace:
                overdue.append(entry)
        return Sweep(due, overdue)

    def close_all(self, now: float) -> list[SessionEntry[H]]:
        """The front is stopping: every session is closing; returns them to stop."""
        for entry in self._sessions.values():
            self.gone(entry, now)
        return self.entries()

    # -- inside ----------------------------------------------------------------------------

    def _tick_due(self, entry: SessionEntry[H], now: float) -> bool:
        """Pending sessions every tick (their handshake timeout); authenticated ones once
        their heartbeat or silence limit is due by the traffic relayed."""
        interval = self._settings.heartbeat_interval
        if interval is None or entry.keyid is None:
            return True
        return now - entry.last_out >= interval or now - entry.last_in >= 3 * interval

    def _violation(self, entry: SessionEntry[H], now: float, message: str) -> Verdict:
        self._dropped += 1
        self.gone(entry, now, cut=True)
        return Verdict(deliver=False, violation=message)

    def _settle(self, entry: SessionEntry[H], frames: int) -> None:
        for _ in range(min(frames, len(entry.sizes))):
            size = entry.sizes.popleft()
            entry.in_flight -= 1
            entry.in_flight_bytes -= size
            self._in_flight -= 1
            self._in_flight_bytes -= size
