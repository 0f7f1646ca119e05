"""The sessions' way back to the front: one queue every session puts into, one reader.

Who owns what: the front's thread owns the ``SessionPipe`` and is its only reader;
each session holds a ``PipeOutbox`` (its serial and the pipe) and is its only user.
Pipe messages are ``(serial, kind, payload)`` with kind ``SEND`` (send the payload
frames to the peer), ``DONE`` (one inbound frame handled), ``AUTH`` (authenticated as
keyid ``payload[0]``) or ``CLOSED`` (the session ended). Serials, not routing ids,
name the session, so nothing a finished session still had queued can reach a later
session that has the same routing id. The payload is bytes, which nobody changes.

A session starting costs no socket: the queue is shared, and a put wakes the front's
poller through an eventfd (Linux; a pipe elsewhere) registered beside its sockets. A
session's messages keep their order (one FIFO queue for all). The descriptor stays
open as long as any outbox holds the pipe, so a late put never writes into a
descriptor number reused by something else.
"""

from __future__ import annotations

import contextlib
import os
import queue
import sys
from collections.abc import Sequence
from typing import NamedTuple

SEND, DONE, AUTH, CLOSED = b"S", b"D", b"A", b"C"
_ONE = (1).to_bytes(8, sys.byteorder)  # an eventfd adds the 8-byte count written


class PipeMessage(NamedTuple):
    serial: int
    kind: bytes
    payload: Sequence[bytes]


class SessionPipe:
    """The queue from every session to the front, and the descriptor that wakes it."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[PipeMessage] = queue.SimpleQueue()
        if hasattr(os, "eventfd"):
            self._read_fd = self._write_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        else:  # pragma: no cover - not Linux
            self._read_fd, self._write_fd = os.pipe()
            os.set_blocking(self._read_fd, False)
            os.set_blocking(self._write_fd, False)
        self._open = True

    def fileno(self) -> int:
        """What the front's poller watches: readable while messages wait."""
        return self._read_fd

    def put(self, message: PipeMessage) -> None:
        """From any session's thread."""
        self._queue.put(message)
        if self._open:
            self._wake()

    def take(self, budget: int) -> list[PipeMessage]:
        """From the front's thread: up to ``budget`` waiting messages, oldest first."""
        with contextlib.suppress(BlockingIOError):
            os.read(self._read_fd, 8 if self._read_fd == self._write_fd else 65536)
        taken: list[PipeMessage] = []
        get = self._queue.get_nowait
        try:
            while len(taken) < budget:
                taken.append(get())
        except queue.Empty:
            return taken
        if not self._queue.empty():
            self._wake()  # more than the budget: poll again at once
        return taken

    def _wake(self) -> None:
        # Full only when the front has a wake-up pending already.
        with contextlib.suppress(BlockingIOError):
            os.write(self._write_fd, _ONE)

    def close(self) -> None:
        """The front stopped reading: later puts only queue (and are never read)."""
        self._open = False

    def __del__(self) -> None:
        # Only once no outbox holds the pipe: no put can reach a reused number.
        for fd in {getattr(self, "_read_fd", -1), getattr(self, "_write_fd", -1)} - {-1}:
            with contextlib.suppress(OSError):
                os.close(fd)


class PipeOutbox:
    """A session's way out: its serial on the shared pipe, used by one thread only."""

    def __init__(self, pipe: SessionPipe, serial: int) -> None:
        self._pipe = pipe
        self._serial = serial
        self._closed = False

    def send(self, frames: Sequence[bytes]) -> None:
        if not self._closed:
            self._pipe.put(PipeMessage(self._serial, SEND, tuple(frames)))

    def frame_done(self) -> None:
        if not self._closed:
            self._pipe.put(PipeMessage(self._serial, DONE, ()))

    def authenticated(self, keyid: str) -> None:
        if not self._closed:
            self._pipe.put(PipeMessage(self._serial, AUTH, (keyid.encode(),)))

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._pipe.put(PipeMessage(self._serial, CLOSED, ()))
