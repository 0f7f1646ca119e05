"""Giving freed memory back to the system.

glibc keeps memory freed by threads in per-thread arenas; after a burst (a flood of
big frames, thousands of short-lived sessions) the hub's RSS would stay at its peak.
``ReturnFreedMemory`` is a ticker target that calls ``malloc_trim(0)`` every
``interval`` seconds, so RSS falls back within a minute of an attack ending.
``bound_malloc_arenas`` caps the arenas (``mallopt(M_ARENA_MAX)``) as the hub
starts: by default glibc gives threads up to eight arenas a core, and what a
thousand session threads freed stays spread over all of them, in pieces no trim
can return. Where the C library has neither function, both do nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

TRIM_INTERVAL = 20.0
M_ARENA_MAX = -8  # glibc's mallopt parameter number
ARENA_MAX = 2


def _libc_function(name: str) -> Callable[..., int] | None:
    path = ctypes.util.find_library("c")
    if path is None:
        return None
    try:
        function: Callable[..., int] = getattr(ctypes.CDLL(path), name)
    except (OSError, AttributeError):
        return None
    return function


def _malloc_trim() -> Callable[[int], int] | None:
    return _libc_function("malloc_trim")


def bound_malloc_arenas(arenas: int = ARENA_MAX) -> bool:
    """Cap glibc's malloc arenas for threads started from now on; False where it cannot.

    The hub's threads take turns on the interpreter anyway, so a few arenas cost
    them little, and memory freed after a burst comes back together where
    ``malloc_trim`` returns it (measured: ``synchub bench hostile --attack memory``,
    docs/security.md)."""
    mallopt = _libc_function("mallopt")
    if mallopt is None:
        return False
    return bool(mallopt(M_ARENA_MAX, arenas))


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
