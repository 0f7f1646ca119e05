"""Flow control on a client's outgoing data: throttle and the send window.

``Outflow`` is the queue of data frames waiting to go to one hub, held back while
the hub's ``throttle`` lasts (docs/protocol.md §7.2 (Throttle)). ``SendWindow``
counts the data frames sent ahead of the hub's last acknowledgement and pairs the
hub's diff replies with the diffs they answer (§6.1 (Model) and §6.3 (The hub's
answer to `diff_operations`)). ``Sender`` decides which frame goes next, and
when a heartbeat is due (§7.1 (Heartbeats)). All belong to one ``ClientSession``
and are used by one thread only; none reads a clock (times are passed in).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hub.protocol._codec import heartbeat_frame
from hub.protocol._scope import DiffSelection

if TYPE_CHECKING:
    from hub.protocol._resync import DigestAsk

_HEARTBEAT = heartbeat_frame()

FrameSource = Iterator[bytes]
"""Frames produced lazily (a big diff answer is read from the store batch by batch)."""


class Outflow:
    """The data frames waiting to go to one hub, in order, honouring throttle.

    Entries are frames or lazy frame sources, in two lanes: replies (the answers
    to the hub's log requests) go before everything else queued, operations and
    diffs keep their order. While throttled nothing is taken, so no
    send_operations (and nothing queued behind one, to keep the order) leaves
    before the delay ends; heartbeats do not go through this queue. Used by one
    thread only.
    """

    def __init__(self) -> None:
        self._replies: deque[bytes | FrameSource] = deque()
        self._entries: deque[bytes | FrameSource] = deque()
        self._held: bytes | None = None
        self._throttled_until = 0.0

    def push(self, entry: bytes | FrameSource) -> None:
        self._entries.append(entry)

    def push_reply(self, entry: bytes | FrameSource) -> None:
        """Queue an answer to the hub ahead of the other data."""
        self._replies.append(entry)

    def replies_waiting(self) -> int:
        """Answers queued and not yet fully taken."""
        return len(self._replies)

    def throttle(self, delay_ms: int, now: float) -> None:
        self._throttled_until = max(self._throttled_until, now + max(delay_ms, 0) / 1000)

    def throttled_until(self) -> float:
        return self._throttled_until

    def is_throttled(self, now: float) -> bool:
        return now < self._throttled_until

    def empty(self) -> bool:
        """Nothing left to send (lazy sources included, once drained)."""
        return self._next() is None

    def peek(self, now: float) -> bytes | None:
        """The next frame to send now, or None (empty or throttled). Call taken() once sent."""
        if self.is_throttled(now):
            return None
        return self._next()

    def taken(self) -> None:
        self._held = None

    def _next(self) -> bytes | None:
        """The frame that goes next (held until taken), drawing lazy sources as needed."""
        if self._held is not None:
            return self._held
        for lane in (self._replies, self._entries):
            while lane:
                head = lane[0]
                if isinstance(head, bytes):
                    lane.popleft()
                    self._held = head
                    return head
                frame = next(head, None)
                if frame is not None:
                    self._held = frame
                    return frame
                lane.popleft()
        return None


@dataclass(frozen=True, slots=True)
class _Ack:
    """An acknowledgement diff in flight: its reply confirms the first ``frames`` data frames."""

    frames: int


class SendWindow:
    """Data frames in flight towards one hub and the diffs waiting for their replies.

    The hub handles one session's items in order, so the reply to a diff reflects
    every frame sent before it. An acknowledgement diff is due every ``ack_every``
    data frames, and no more than ``window`` data frames go out past the last
    acknowledged one. Replies come in the order the diffs went out; a queued diff
    joins the line when it is sent, since acknowledgements may overtake it.
    """

    def __init__(self, window: int, ack_every: int) -> None:
        if not 1 <= ack_every <= window:
            raise ValueError("need 1 <= ack_every <= send_window")
        self._window = window
        self._ack_every = ack_every
        self._outstanding: deque[DiffSelection | DigestAsk | _Ack] = deque()
        self._queued_diffs: deque[tuple[bytes, DiffSelection | DigestAsk]] = deque()
        self._frames_sent = 0
        self._frames_acked = 0
        self.ack_due = False

    @property
    def frames_sent(self) -> int:
        return self._frames_sent

    def is_open(self) -> bool:
        return self._frames_sent - self._frames_acked < self._window

    def expect_reply(self, frame: bytes, selection: DiffSelection | DigestAsk) -> None:
        """``frame``, queued to be sent, is the diff of ``selection`` (or a check_digest):
        a reply to it is due."""
        self._queued_diffs.append((frame, selection))

    def data_sent(self, frame: bytes) -> None:
        """A data frame (this very object, as queued) has been sent."""
        self._frames_sent += 1
        if self._queued_diffs and self._queued_diffs[0][0] is frame:
            self._outstanding.append(self._queued_diffs.popleft()[1])
        if self._frames_sent % self._ack_every == 0:
            self.ack_due = True

    def ack_sent(self) -> None:
        """An acknowledgement diff for every data frame sent so far has been sent."""
        self._outstanding.append(_Ack(self._frames_sent))
        self.ack_due = False

    def acknowledged(self) -> bool:
        """Take a reply that answers an acknowledgement diff; False if it answers no such diff."""
        if not self._outstanding or not isinstance(self._outstanding[0], _Ack):
            return False
        ack = self._outstanding.popleft()
        assert isinstance(ack, _Ack)
        self._frames_acked = max(self._frames_acked, ack.frames)
        return True

    def answered(self) -> DiffSelection | DigestAsk | None:
        """Take a reply to a selection's diff (or check): what it answers, or None if no
        diff awaits one."""
        if not self._outstanding or isinstance(self._outstanding[0], _Ack):
            return None
        selection = self._outstanding.popleft()
        assert not isinstance(selection, _Ack)
        return selection


class Sender:
    """The order a session's frames leave in, and when it last sent anything.

    A handshake frame (HELLO, then PROOF) goes alone. Once the session syncs: an
    acknowledgement diff when one is due, else the next data frame while the
    window is open and no throttle holds the outflow, else a heartbeat when
    nothing went out for ``heartbeat_interval``. Acknowledgements and heartbeats
    go out while throttled; data does not.
    """

    def __init__(self, ack_frame: bytes, heartbeat_interval: float, window: SendWindow) -> None:
        self.outflow = Outflow()
        self.window = window
        self.syncing = False
        self.last_sent = 0.0
        self._ack_frame = ack_frame
        self._heartbeat_interval = heartbeat_interval
        self._handshake: bytes | None = None
        self._offered = b""
        self._on_sent: Callable[[], None] | None = None

    def handshake(self, frame: bytes) -> None:
        """Send ``frame`` (a HELLO or a PROOF) next."""
        self._handshake = frame

    def next_frame(self, now: float, *, heartbeat: bool = True) -> bytes | None:
        """The frame to send now, if any; the same one until ``frame_sent``.

        ``heartbeat=False`` holds back a heartbeat that is due.
        """
        if self._handshake is not None:
            return self._offer(self._handshake, self._handshake_sent)
        if not self.syncing:
            return None
        if self.window.ack_due:
            return self._offer(self._ack_frame, self.window.ack_sent)
        if self.window.is_open():
            frame = self.outflow.peek(now)
            if frame is not None:
                return self._offer(frame, self._data_sent)
        if heartbeat and now - self.last_sent >= self._heartbeat_interval:
            return self._offer(_HEARTBEAT, None)
        return None

    def frame_sent(self, now: float) -> None:
        """The frame last offered went out at ``now``."""
        on_sent, self._on_sent = self._on_sent, None
        self.last_sent = now
        if on_sent is not None:
            on_sent()

    def wants_to_send(self, now: float) -> bool:
        """A handshake frame, an acknowledgement or data is waiting (heartbeats aside)."""
        if self._handshake is not None:
            return True
        if not self.syncing:
            return False
        window = self.window
        return (window.is_open() and self.outflow.peek(now) is not None) or window.ack_due

    def heartbeat_due(self) -> float:
        return self.last_sent + self._heartbeat_interval

    def _offer(self, frame: bytes, on_sent: Callable[[], None] | None) -> bytes:
        self._offered = frame
        self._on_sent = on_sent
        return frame

    def _handshake_sent(self) -> None:
        self._handshake = None

    def _data_sent(self) -> None:
        self.outflow.taken()
        self.window.data_sent(self._offered)
