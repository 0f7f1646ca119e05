"""How `synchub start` takes its signals: the handlers only wake the main loop.

A handler does nothing but note the signal: Python's C-level handler writes the
signal's number into a non-blocking self-pipe (``signal.set_wakeup_fd``), and the
Python-level handler only sets a flag. Nothing in a handler takes a lock, logs,
or starts work, so a storm of signals cannot recurse, deadlock, or wedge the hub.
The main loop (``SignalWaiter.wait``) reads the pipe and turns whatever arrived
into one ``Wakeup``: stop (SIGTERM, SIGINT) and reload (SIGHUP), coalesced.

SIGHUP is held (blocked) from the first line of the program until the handlers are
in place (``hold_sighup`` / ``release_sighup``): a SIGHUP sent while the program is
still importing is delivered to the handler afterwards instead of killing it.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _is_synchub_program() -> bool:
    return os.path.basename(sys.argv[0] if sys.argv else "") == "synchub"


def hold_sighup() -> None:
    """Block SIGHUP in the synchub program until ``release_sighup`` (nothing elsewhere)."""
    if _is_synchub_program() and threading.current_thread() is threading.main_thread():
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})


def release_sighup() -> None:
    """Deliver a held SIGHUP now: to its handler, or by its default action."""
    if threading.current_thread() is threading.main_thread():
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})


@dataclass(frozen=True)
class Wakeup:
    stop: bool = False
    reload: bool = False


class SignalWaiter:
    """Installs the hub's handlers on ``__enter__`` and restores them on ``__exit__``.

    Only for the main thread. After ``__exit__`` SIGHUP stays ignored: the process is
    on its way out, and a late SIGHUP must not end it with a signal status.
    """

    def __init__(self) -> None:
        self._reader, self._writer = socket.socketpair()
        for end in (self._reader, self._writer):
            end.setblocking(False)
        self._stop_flag = False
        self._previous: dict[int, Callable[[int, FrameType | None], object] | int | None] = {}
        self._previous_fd = -1

    def __enter__(self) -> SignalWaiter:
        self._previous_fd = signal.set_wakeup_fd(
            self._writer.fileno(), warn_on_full_buffer=False
        )
        for sig in STOP_SIGNALS:
            self._previous[sig] = signal.signal(sig, self._on_stop)
        self._previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, _noted)
        release_sighup()
        return self

    def __exit__(self, *_exc: object) -> None:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        for sig in STOP_SIGNALS:
            previous = self._previous.get(sig)
            signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
        signal.set_wakeup_fd(self._previous_fd)
        self._reader.close()
        self._writer.close()

    def _on_stop(self, _signum: int, _frame: FrameType | None) -> None:
        # A plain assignment: the pipe may be full, the flag is not.
        self._stop_flag = True

    def wait(self, timeout: float) -> Wakeup:
        """What arrived within ``timeout`` seconds (returns at once if something has)."""
        with contextlib.suppress(InterruptedError):
            select.select([self._reader], [], [], max(0.0, timeout))
        received = self._drain()
        stop = self._stop_flag or any(sig in received for sig in STOP_SIGNALS)
        return Wakeup(stop=stop, reload=signal.SIGHUP in received)

    def _drain(self) -> set[int]:
        received: set[int] = set()
        while True:
            try:
                data = self._reader.recv(65536)
            except (BlockingIOError, InterruptedError):
                return received
            if not data:
                return received
            received.update(data)


def _noted(_signum: int, _frame: FrameType | None) -> None:
    """SIGHUP's handler: the wakeup pipe already has it; nothing else to do here."""
