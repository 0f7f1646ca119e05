"""How `synchub agent` shows a long sync: a bar per hub on a terminal, log lines without.

The agent's connection threads report ``(hub, operations sent, operations requested
so far)`` (``hub.agent.Progress``). A sync counts as large once a hub has requested
``PROGRESS_MIN_OPERATIONS``; smaller ones show nothing.

- ``BarProgress``, on a terminal: one line per hub with a bar, sent/total, the rate
  and the time left, drawn by rich's ``Progress`` (it redraws several lines in
  place from its own refresh thread, takes updates from any thread, and computes
  speed and ETA over a sliding window; click's progress bar draws one bar, for
  one loop in the calling thread). ``close()`` draws the final state, ends the
  refresh thread and leaves the bars on screen.
- ``LoggedProgress``, without one: at most one INFO line per hub every
  ``interval`` seconds (``synchub -v agent``), and one when a hub has everything
  it asked for.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

from hub.text import printable

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

PROGRESS_MIN_OPERATIONS = 1000
LOG_INTERVAL_SECONDS = 5.0


def _bars(stream: TextIO) -> Progress:
    """rich's Progress with our columns; rich is imported only here, when a terminal
    shows bars, so no other command pays for importing it."""
    from rich.console import Console  # noqa: PLC0415 - see the docstring
    from rich.progress import (  # noqa: PLC0415
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        Task,
        TextColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text  # noqa: PLC0415

    class RateColumn(ProgressColumn):
        """Operations a second, as rich measured them over its window."""

        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            return Text("-" if speed is None else f"{speed:,.0f} ops/s")

    return Progress(
        TextColumn("{task.fields[host]}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeRemainingColumn(),
        console=Console(file=stream, highlight=False),
        refresh_per_second=4,
        transient=False,
    )


class BarProgress:
    """One bar per hub, for a terminal; thread-safe; ``close()`` in a finally."""

    def __init__(self, stream: TextIO) -> None:
        self._lock = threading.Lock()
        self._tasks: dict[str, TaskID] = {}
        self._progress = _bars(stream)
        self._started = False

    def __call__(self, host: str, sent: int, requested: int) -> None:
        if requested < PROGRESS_MIN_OPERATIONS:
            return
        with self._lock:
            if not self._started:
                self._progress.start()
                self._started = True
            task = self._tasks.get(host)
            if task is None:
                task = self._progress.add_task("", host=printable(host, 40), total=requested)
                self._tasks[host] = task
        self._progress.update(task, total=requested, completed=min(sent, requested))

    def close(self) -> None:
        with self._lock:
            if self._started:
                self._progress.stop()
                self._started = False


@dataclass
class _HostRate:
    first_at: float
    first_sent: int
    logged_at: float
    done: bool = False


class LoggedProgress:
    """A log line per hub every ``interval`` seconds during a large sync, and at its end."""

    def __init__(
        self,
        log: logging.Logger,
        *,
        interval: float = LOG_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = log
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._hosts: dict[str, _HostRate] = {}

    def __call__(self, host: str, sent: int, requested: int) -> None:
        if requested < PROGRESS_MIN_OPERATIONS:
            return
        now = self._clock()
        with self._lock:
            rate = self._hosts.get(host)
            if rate is None or (rate.done and sent < requested):
                rate = self._hosts[host] = _HostRate(now, sent, now)
            finished = sent >= requested
            if rate.done or (not finished and now - rate.logged_at < self._interval):
                return
            rate.logged_at, rate.done = now, finished
            elapsed = now - rate.first_at
        per_second = (sent - rate.first_sent) / elapsed if elapsed > 0 else 0.0
        if finished:
            self._log.info("syncing to %s: %d/%d operations sent in %.0fs",
                           host, sent, requested, elapsed)
            return
        left = f", about {(requested - sent) / per_second:.0f}s left" if per_second > 0 else ""
        self._log.info("syncing to %s: %d/%d operations sent, %.0f/s%s",
                       host, sent, requested, per_second, left)

    def close(self) -> None:
        """Nothing to release; for symmetry with ``BarProgress``."""
