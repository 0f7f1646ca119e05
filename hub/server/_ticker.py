"""Ticker: the clock of the actors that judge time (the fleet and the alerts).

One thread tells each target ``tick(now)`` (wall-clock seconds) every ``interval``;
the targets do their time-driven work in their own threads (the fleet reads the
local change feed, the alerts fire what is overdue). Time stays a message: tests
tell ``tick`` themselves instead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import pykka

from hub.threads import ThreadService

log = logging.getLogger(__name__)

TICK_INTERVAL = 1.0


class Ticker(ThreadService):
    def __init__(
        self,
        targets: Sequence[Callable[[float], object]],
        *,
        interval: float = TICK_INTERVAL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            thread_name="synchub-ticker", what="the ticker",
            failure_note="stale plans and lost peers are no longer judged until the hub restarts",
        )
        self._targets = tuple(targets)
        self._interval = interval
        self._clock = clock

    def _open(self) -> str:
        return "ticker"

    def _serve(self) -> None:
        while not self.stopping.wait(self._interval):
            now = self._clock()
            for target in self._targets:
                try:
                    target(now)
                except pykka.ActorDeadError:
                    log.debug("ticker: a target has stopped")

    def _close(self) -> None:
        pass
