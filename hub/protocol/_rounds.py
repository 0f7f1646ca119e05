"""Rounds of diffs: when a client diffs, and when it knows it is in sync.

A round is one diff per selection of the ``SyncScope``; it is complete when every
diff has its reply and everything the replies asked for has been sent
(docs/protocol.md §6.2 (The client's order of work)). A round whose replies
requested nothing means the hub holds everything this client shares with it.

- One-shot: a round that requested operations is followed at once by another
  that confirms them; after ``MAX_ONCE_ROUNDS`` rounds without an empty one the
  sync fails (something cannot be sent, e.g. an operation too large for a frame).
- Running: the next round comes after ``rediff_interval`` (it finds deletions
  made while the hub was not told); after a round that requested operations it
  comes at once, unless the last ``CONFIRM_ROUNDS`` rounds all requested some.

Owned by one ``ClientSession``; reads the local oplog through ``ClientOplog``.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from hub.errors import ClientError
from hub.protocol._codec import encode_item
from hub.protocol._items import diff_item
from hub.protocol._outgoing import ClientOplog, SyncCounts
from hub.protocol._scope import DiffSelection, SyncScope

MAX_ONCE_ROUNDS = 10
"""Rounds of diffs a one-shot sync tries before it gives up."""
CONFIRM_ROUNDS = 3
"""Rounds a running session repeats at once while the hub keeps requesting operations."""


def full_diff_frame(oplog: ClientOplog, selection: DiffSelection, keyid: str,
                    max_frame_bytes: int) -> bytes:
    """The diff of every (id, modno) the client has in ``selection``, as one frame."""
    ids, modnos = oplog.have(selection)
    frame = encode_item(diff_item(selection, keyid, ids, modnos))
    if len(frame) > max_frame_bytes:
        raise ClientError(
            f"the diff of {selection.describe()} lists {len(ids)} operations, "
            f"{len(frame)} bytes: more than one frame may carry ({max_frame_bytes} bytes)"
        )
    return frame


class RoundEnd(enum.Enum):
    """What follows a finished round."""

    DONE = "done"
    """One-shot and in sync: the session's work is over."""
    AGAIN = "again"
    """One-shot and not in sync: a new round has begun."""
    LATER = "later"
    """Running: the next round is due at ``next_rediff``."""


@dataclass
class _Round:
    """One round of diffs: how many replies are still due and what they requested."""

    pending: int
    requested: int = 0


class DiffRounds:
    """The rounds of diffs of one session, and what their replies decide."""

    def __init__(
        self,
        oplog: ClientOplog,
        scope: SyncScope,
        keyid: str,
        *,
        once: bool,
        rediff_interval: float,
        max_frame_bytes: int,
        counts: SyncCounts,
        who: str,
    ) -> None:
        self._oplog = oplog
        self._scope = scope
        self._keyid = keyid
        self._once = once
        self._rediff_interval = rediff_interval
        self._max_frame_bytes = max_frame_bytes
        self._counts = counts
        self._who = who
        self._round: _Round | None = None
        self.next_rediff = math.inf

    @property
    def active(self) -> bool:
        """A round is waiting for replies or for its answers to be sent."""
        return self._round is not None

    def complete(self) -> bool:
        """Every diff of the current round has its reply."""
        return self._round is not None and self._round.pending == 0

    def begin(self) -> list[tuple[bytes, DiffSelection]]:
        """Start a round: the diff frame of each selection, in order.

        ClientError if a diff does not fit one frame (split the repo by plan).
        """
        selections = self._scope.diffs
        self._round = _Round(pending=len(selections))
        self.next_rediff = math.inf
        diffs: list[tuple[bytes, DiffSelection]] = []
        for selection in selections:
            frame = full_diff_frame(self._oplog, selection, self._keyid,
                                    self._max_frame_bytes)
            diffs.append((frame, selection))
        return diffs

    def answered(self, requested: int) -> bool:
        """Count a reply that requested ``requested`` ids; False if no round awaits one."""
        if self._round is None:
            return False
        self._round.pending -= 1
        self._round.requested += requested
        self._counts.requested += requested
        return True

    def finish(self, now: float) -> tuple[bool, int]:
        """End the complete round: whether the hub is in sync, and what it requested."""
        done_round = self._round
        assert done_round is not None and done_round.pending == 0
        self._round = None
        self._counts.rounds.append(done_round.requested)
        if not self._once:
            del self._counts.rounds[:-CONFIRM_ROUNDS]
            self.next_rediff = now + self._rediff_delay()
        return done_round.requested == 0, done_round.requested

    def after(self, in_sync: bool, requested: int) -> RoundEnd:
        """What follows a finished round; ClientError when a one-shot sync has tried enough."""
        if not self._once:
            return RoundEnd.LATER
        if in_sync:
            return RoundEnd.DONE
        rounds = len(self._counts.rounds)
        if rounds >= MAX_ONCE_ROUNDS:
            raise ClientError(
                f"{self._who} still requested {requested} operations after {rounds} "
                "rounds of diffs "
                "(see the log for operations too large to send)"
            )
        return RoundEnd.AGAIN

    def _rediff_delay(self) -> float:
        recent = self._counts.rounds[-CONFIRM_ROUNDS:]
        if recent[-1] and not (len(recent) == CONFIRM_ROUNDS and all(recent)):
            return 0.0
        return self._rediff_interval
