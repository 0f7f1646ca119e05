"""Giving freed memory back to the system.

glibc keeps memory freed by threads in per-thread arenas; after a burst (a flood of
big frames, thousands of short-lived sessions) the hub's RSS would stay at its peak.
``ReturnFreedMemory`` is a ticker target that calls ``malloc_trim(0)`` every
``interval`` seconds, so RSS falls back within a minute of an attack ending. Where
the C library has no ``malloc_trim`` it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

TRIM_INTERVAL = 20.0


def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


class ReturnFreedMemory:
    def __init__(self, interval: float = TRIM_INTERVAL) -> None:
        self._interval = interval
        self._trim = _malloc_trim()
        self._next = float("-inf")

    def __call__(self, now: float) -> None:
        if self._trim is None or now < self._next:
            return
        self._next = now + self._interval
        self._trim(0)
