"""Connections that have not said anything yet: bounded per address, and closed when
they stay silent.

Who owns what: the front's thread owns a ``SilentConnections`` and the ROUTER's
monitor socket that feeds it. libzmq reports each accepted TCP connection (with its
file descriptor) and each disconnection; the front reports the descriptor of every
connection whose first frame started a session (``zmq.SRCFD``). A connection
accepted but silent for ``timeout`` seconds, or for over ``GRACE`` seconds beyond
``per_source`` silent ones from one address, is shut down: ``shutdown(2)`` on
libzmq's own descriptor, which makes libzmq see the end of the stream and close the
connection itself. The descriptor is only touched while it still names the same
connection (the same peer address and port as at accept), so a descriptor number
reused by a later connection is never cut by mistake.
"""

from __future__ import annotations

import logging
import os
import socket
from collections import Counter
from dataclasses import dataclass

import zmq
from zmq.utils.monitor import recv_monitor_message

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Silent:
    peer: tuple[object, ...]
    accepted_at: float


def _peer_of(fd: int) -> tuple[object, ...] | None:
    """The (address, port, ...) a TCP descriptor is connected to, or None."""
    try:
        with socket.socket(fileno=os.dup(fd)) as duplicate:  # closes the duplicate only
            peer = duplicate.getpeername()
    except OSError:
        return None
    return tuple(peer) if isinstance(peer, tuple) else None


def _shut(fd: int, peer: tuple[object, ...]) -> bool:
    """Shut the connection ``fd`` down if it is still the one to ``peer``."""
    try:
        with socket.socket(fileno=os.dup(fd)) as duplicate:  # closes the duplicate only
            if tuple(duplicate.getpeername()) != peer:
                return False
            duplicate.shutdown(socket.SHUT_RDWR)
    except OSError:  # gone, or the number now names something else
        return False
    return True


GRACE = 5.0
"""A client sends its HELLO within milliseconds of connecting; a busy hub may take a
while to read it. Longer than this is silence."""


class SilentConnections:
    """Accepted connections that have not sent a frame yet (see the module docstring)."""

    def __init__(self, *, timeout: float, per_source: int) -> None:
        self._timeout = timeout
        self._per_source = per_source
        self._silent: dict[int, _Silent] = {}
        self._by_source: Counter[object] = Counter()
        # Descriptors whose first frame came before their accept was reported (the
        # two travel apart): such a connection has spoken already.
        self._spoke_early: set[int] = set()
        self.closed = 0

    def __len__(self) -> int:
        return len(self._silent)

    def take_events(self, monitor: zmq.Socket[bytes], now: float, budget: int = 256) -> None:
        """Read what the ROUTER's monitor socket reports (accepts and disconnections)."""
        for _ in range(budget):
            try:
                event = recv_monitor_message(monitor, zmq.NOBLOCK)
            except zmq.Again:
                return
            if event["event"] == zmq.EVENT_ACCEPTED:
                self.accepted(int(event["value"]), now)
            elif event["event"] == zmq.EVENT_DISCONNECTED:
                self.disconnected(int(event["value"]))

    def accepted(self, fd: int, now: float) -> None:
        peer = _peer_of(fd)
        if peer is None:
            return  # not TCP (ipc://), or already gone
        self._forget(fd)
        if fd in self._spoke_early:
            self._spoke_early.discard(fd)
            return
        self._silent[fd] = _Silent(peer, now)
        self._by_source[peer[0]] += 1

    def spoke(self, fd: int) -> None:
        """The connection on ``fd`` sent a frame: it is no longer silent."""
        if fd not in self._silent:
            self._spoke_early.add(fd)
        self._forget(fd)

    def disconnected(self, fd: int) -> None:
        self._spoke_early.discard(fd)
        self._forget(fd)

    def sweep(self, now: float) -> None:
        """Shut down the connections silent for longer than the timeout, and from each
        address those beyond ``per_source`` silent for longer than ``GRACE``."""
        overdue = [fd for fd, s in self._silent.items() if now - s.accepted_at >= self._timeout]
        crowded = [source for source, n in self._by_source.items() if n > self._per_source]
        for source in crowded:
            quiet = sorted(
                (s.accepted_at, fd) for fd, s in self._silent.items()
                if s.peer[0] == source and now - s.accepted_at >= GRACE
            )
            overdue.extend(fd for _, fd in quiet[: self._by_source[source] - self._per_source])
        for fd in dict.fromkeys(overdue):
            silent = self._silent[fd]
            self._forget(fd)
            if _shut(fd, silent.peer):
                self.closed += 1
        if overdue:
            log.debug("closed %d connections that sent nothing", len(overdue))

    def _forget(self, fd: int) -> None:
        silent = self._silent.pop(fd, None)
        if silent is None:
            return
        source = silent.peer[0]
        self._by_source[source] -= 1
        if self._by_source[source] <= 0:
            del self._by_source[source]
