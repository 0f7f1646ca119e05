"""A client's rounds of resumed sync: docs/protocol.md §6.8 (Resumed sync), without I/O.

Used by ``ClientSession`` instead of ``DiffRounds`` when the hub agreed resync in
its CHALLENGE. A round covers every selection of the ``SyncScope``:

- a selection whose cursor (from the hub's ``sync_cursors``) has this store's epoch
  and a sequence the store has reached is *resumed*: its changes past the cursor
  are sent (deletions past the lowest such cursor, once), then a ``check_digest``
  of its root range with the new cursor;
- any other selection gets the full diff of §6.2 (The client's order of work), whose
  reply is answered as there, then the same ``check_digest``.

Each ``check_digest`` answer that is not in sync turns into repairs (the requested
operations, sent or deleted as after a diff reply) and narrower checks; when a
selection has no check in flight, its root is checked again with the cursor. A
selection is in sync when that check is answered in sync (the hub recorded the
cursor); after ``MAX_CHECKS`` checks it is given up for this round, and the next
round does a full diff of it. Later rounds of a running session (every
``rediff_interval``) only check: the changes were streamed meanwhile.

The *withdrawals* of a narrowed grant (``SyncScope.withdrawn``, §6.2 (The client's
order of work)) have no cursor and no digest: the first round of a session sends
each as the full diff it is in version 1, after the selections, and answers its
reply as there (the ids the hub holds beyond the list, answered as deleted). A
withdrawal whose reply requested ids is diffed again once the answer is queued, so
the round ends only when the hub confirms it holds nothing more there (or after
``MAX_CHECKS`` diffs: given up, and the next round sends the withdrawals again). The
scope of a session does not change and what it streams is filtered by it, so once
confirmed, later rounds of the same session leave the withdrawals out.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from hub.errors import ClientError, HubUnavailable, ProtocolError
from hub.pb import synchub_pb2 as pb
from hub.protocol._codec import encode_item
from hub.protocol._digest import check_digest_frame, client_followup, root_range
from hub.protocol._items import deleted_item
from hub.protocol._outgoing import ClientOplog, OperationFrames, SyncCounts
from hub.protocol._rounds import MAX_ONCE_ROUNDS, RoundEnd, full_diff_frame
from hub.protocol._scope import DiffSelection, SyncScope
from hub.store import BucketDigest, Digests, SyncCursor

MAX_CHECKS = 10
"""check_digest items one selection may take in one round before it is given up."""


@runtime_checkable
class ResyncOplog(ClientOplog, Protocol):
    """What resumed sync reads besides a ClientOplog (the agent's LocalOplog offers it)."""

    def epoch(self) -> bytes:
        """The local store's epoch."""
        ...

    def digest(self, selection: DiffSelection) -> Mapping[int, BucketDigest] | Digests:
        """The bucket digests of the local operations in ``selection``."""
        ...

    def pairs(self, selection: DiffSelection, first_id: int, last_id: int
              ) -> tuple[list[int], list[int]]:
        """The (id, modno) pairs of ``selection`` between two ids, by id."""
        ...


def selection_name(selection: DiffSelection) -> str:
    """The name a cursor of ``selection`` is recorded under (§6.8 (Resumed sync))."""
    return json.dumps([selection.repo_guid, selection.plan_id, sorted(selection.excluded_plans)])


@dataclass(frozen=True, slots=True)
class DigestAsk:
    """A check_digest in flight: its selection, the bucket ranges asked, with a cursor?"""

    selection: DiffSelection
    ranges: tuple[tuple[int, int], ...]
    cursor: SyncCursor | None


@dataclass
class _Selection:
    in_flight: int = 0
    checks: int = 0
    done: bool = False
    given_up: bool = False


@dataclass
class _Round:
    cursor_of: dict[DiffSelection, SyncCursor]
    states: dict[DiffSelection, _Selection] = field(default_factory=dict)
    requested: int = 0

    @property
    def pending(self) -> int:
        return sum(1 for s in self.states.values() if not s.done)


Outgoing = tuple[bytes | Iterator[bytes], DiffSelection | DigestAsk | None]
"""A frame or lazy frames to queue, and the reply it awaits (None: none)."""


class ResyncRounds:
    """The rounds of resumed sync of one session."""

    def __init__(
        self,
        oplog: ResyncOplog,
        scope: SyncScope,
        keyid: str,
        frames: OperationFrames,
        *,
        once: bool,
        rediff_interval: float,
        max_frame_bytes: int,
        counts: SyncCounts,
        who: str,
    ) -> None:
        self._max_frame_bytes = max_frame_bytes
        self._oplog = oplog
        self._scope = scope
        self._keyid = keyid
        self._frames = frames
        self._once = once
        self._rediff_interval = rediff_interval
        self._counts = counts
        self._who = who
        self._hub_cursors: dict[str, SyncCursor] = {}
        self._round: _Round | None = None
        self._full_next: set[DiffSelection] = set()
        self._replaced: set[DiffSelection] = set()
        self._withdraw = bool(scope.withdrawn)
        self._rounds_done = 0
        self.next_rediff = math.inf

    @property
    def active(self) -> bool:
        return self._round is not None

    def complete(self) -> bool:
        return self._round is not None and self._round.pending == 0

    def hub_cursors(self, cursors: Sequence[pb.SyncCursor]) -> None:
        """The hub's sync_cursors: where each selection resumes."""
        self._hub_cursors = {c.selection: SyncCursor.from_pb(c) for c in cursors}

    def begin(self, mark: int, *, resend: bool) -> tuple[list[Outgoing], int]:
        """Start a round at the stream's ``mark``: what to queue, and the new stream mark.

        ``resend``: send the changes past each cursor (a new connection); otherwise
        they were streamed, and the round only checks.
        """
        epoch = self._oplog.epoch()
        high = self._oplog.high_water()
        resumed: dict[DiffSelection, int] = {}
        self._replaced = set()
        for selection in self._scope.selections:
            cursor = self._hub_cursors.get(selection_name(selection))
            if cursor is None:
                continue
            if cursor.epoch != epoch or cursor.sequence > high:
                # Another store, or this one restored: equal (id, modno) pairs no
                # longer mean equal operations, so the full diff's answer sends all.
                self._replaced.add(selection)
            elif selection not in self._full_next:
                resumed[selection] = cursor.sequence
        self._full_next.clear()
        out: list[Outgoing] = []
        if resend and resumed:
            changes, mark = self._changes_past(min(resumed.values()), resumed)
            out.extend(changes)
        else:
            mark = max(mark, high) if resend else mark
        cursor_of = {
            s: SyncCursor(selection_name(s), epoch, mark) for s in self._scope.selections
        }
        withdrawals = self._scope.withdrawn if self._withdraw else ()
        self._round = _Round(cursor_of, {
            s: _Selection() for s in (*self._scope.selections, *withdrawals)
        })
        self.next_rediff = math.inf
        for selection in self._scope.selections:
            if selection in resumed:
                out.append(self._root_check(selection))
            else:
                out.append(self._full_diff(selection))
        out.extend(self._full_diff(w) for w in withdrawals)
        return out, mark

    def _full_diff(self, selection: DiffSelection) -> Outgoing:
        """The version 1 diff of ``selection`` (a selection or a withdrawal)."""
        assert self._round is not None
        state = self._round.states[selection]
        state.in_flight += 1
        if selection.only_plans is not None:
            state.checks += 1  # a selection's checks count its check_digest items only
        frame = full_diff_frame(self._oplog, selection, self._keyid, self._max_frame_bytes)
        return frame, selection

    def _changes_past(
        self, low: int, resumed: dict[DiffSelection, int]
    ) -> tuple[list[Outgoing], int]:
        operations: list[pb.Operation] = []
        deleted: list[int] = []
        mark = low
        while True:
            page = self._oplog.changes_since(mark)
            operations.extend(page.operations)
            deleted.extend(page.deleted_ids)
            if page.mark == mark:
                break
            mark = page.mark
        latest = {op.id: op for op in operations}
        chosen = [
            op for op in latest.values()
            if any(s.contains(op.repo_guid, op.plan_id) and op.modno > seq
                   for s, seq in resumed.items())
        ]
        out: list[Outgoing] = [(self._frames.unasked(chosen), None)] if chosen else []
        if deleted:
            out.append((encode_item(deleted_item(sorted(set(deleted)))), None))
            self._counts.deleted += len(set(deleted))
        return out, mark

    def _root_check(self, selection: DiffSelection) -> Outgoing:
        assert self._round is not None
        state = self._round.states[selection]
        state.in_flight += 1
        state.checks += 1
        root = root_range(self._oplog.digest(selection))
        cursor = self._round.cursor_of[selection]
        ask = DigestAsk(selection, ((root.first_bucket, root.last_bucket),), cursor)
        return check_digest_frame(selection.selector(self._keyid), [root], cursor), ask

    def diff_answered(self, selection: DiffSelection, requested: Sequence[int]) -> list[Outgoing]:
        """A full diff's reply: its answer, then the selection's check (a withdrawal:
        its diff again, until it is answered with nothing)."""
        assert self._round is not None
        state = self._round.states[selection]
        state.in_flight -= 1
        if selection in self._replaced:
            requested = sorted({*requested, *self._oplog.have(selection)[0]})
        self._note_requested(len(requested))
        out: list[Outgoing] = []
        if requested:
            out.append((self._frames.answer(requested), None))
        if selection.only_plans is None:
            out.append(self._root_check(selection))
        elif not requested:
            state.done = True
        elif state.checks >= MAX_CHECKS:
            state.done = state.given_up = True
        else:
            out.append(self._full_diff(selection))
        return out

    def check_answered(
        self, ask: DigestAsk, answer: pb.SyncStreamItem.CheckDigest
    ) -> list[Outgoing]:
        """A check_digest answer: repairs and further checks of its selection."""
        assert self._round is not None
        state = self._round.states[ask.selection]
        state.in_flight -= 1
        out: list[Outgoing] = []
        if answer.in_sync and ask.cursor is not None:
            state.done = True
            self._hub_cursors[ask.cursor.selection] = ask.cursor
            return out
        if not answer.in_sync:
            selection = ask.selection
            try:
                followup = client_followup(
                    answer, self._oplog.digest(selection),
                    lambda a, b: self._oplog.pairs(selection, a, b), ask.ranges,
                )
            except ProtocolError as exc:
                raise HubUnavailable(f"{self._who} sent a malformed check_digest answer: "
                                     f"{exc}") from exc
            self._note_requested(len(followup.requested))
            if followup.requested:
                out.append((self._frames.answer(followup.requested), None))
            if followup.narrower:
                state.in_flight += 1
                state.checks += 1
                narrower = DigestAsk(selection, tuple(
                    (r.first_bucket, r.last_bucket) for r in followup.narrower), None)
                out.append((check_digest_frame(
                    selection.selector(self._keyid), followup.narrower, None), narrower))
        if state.in_flight == 0:
            if state.checks >= MAX_CHECKS:
                state.done = state.given_up = True
                self._full_next.add(ask.selection)
            else:
                out.append(self._root_check(ask.selection))
        return out

    def _note_requested(self, count: int) -> None:
        assert self._round is not None
        self._round.requested += count
        self._counts.requested += count

    def finish(self, now: float) -> tuple[bool, int]:
        """End the complete round: whether every selection is confirmed, what was requested."""
        done_round = self._round
        assert done_round is not None and done_round.pending == 0
        self._round = None
        in_sync = not any(s.given_up for s in done_round.states.values())
        self._withdraw = self._withdraw and any(
            s.given_up for w, s in done_round.states.items() if w.only_plans is not None
        )
        self._counts.rounds.append(done_round.requested)
        self._rounds_done += 1
        if not self._once:
            del self._counts.rounds[:-3]
            self.next_rediff = now + (self._rediff_interval if in_sync else 0.0)
        return in_sync, done_round.requested

    def after(self, in_sync: bool, requested: int) -> RoundEnd:
        """What follows a finished round; ClientError when a one-shot sync tried enough."""
        if not self._once:
            return RoundEnd.LATER
        if in_sync:
            return RoundEnd.DONE
        if self._rounds_done >= MAX_ONCE_ROUNDS:
            raise ClientError(
                f"{self._who} still differs after {self._rounds_done} rounds of resumed "
                f"sync ({requested} operations requested in the last)"
            )
        return RoundEnd.AGAIN
