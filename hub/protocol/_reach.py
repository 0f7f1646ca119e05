"""Why a hub is not reached yet: transport events and times in, a reason out; no I/O.

A client's socket library retries a connection by itself and says little about why
it fails; what it does say comes as events (the agent reads them from a ZeroMQ
socket monitor, docs/protocol.md §2.2 (Encryption: CurveZMQ)). ``ReachWatch`` turns
those events, and the result of the client's own name lookup, into one
``Unreached`` verdict an operator can act on:

- ``name-not-resolved``: the client's own lookup of the host failed, or the
  library retries without ever starting a TCP connection;
- ``connection-refused``: TCP connections fail at once, twice in a row (nothing
  listens on that port, or there is no route to the host);
- ``no-answer``: a TCP connection stays pending for ``notice_after`` seconds
  (packets dropped on the way);
- ``no-handshake``: TCP is up, but no ZeroMQ handshake completes within
  ``notice_after`` seconds (not a synchub hub's port);
- ``curve-off``: the other side speaks ZeroMQ without CURVE (``curve = false``);
- ``curve-failed``: the CURVE handshake failed (the pinned ``curve_public_key``
  is probably not the hub's).

Once the link is secured there is no verdict: the hub answers. The watch is fed by
one thread (the connection's); the verdict is recomputed by ``check(now)``.
"""

from __future__ import annotations

import enum
import ipaddress
import math
from dataclasses import dataclass
from urllib.parse import urlsplit

NOTICE_AFTER_SECONDS = 3.0
"""How long a connection may be pending, or a handshake silent, before it counts."""

REFUSALS_BEFORE_VERDICT = 2


class LinkEvent(enum.Enum):
    """What the transport under a session reports (the agent reads a socket monitor)."""

    CONNECT_PENDING = "connect-pending"
    """A TCP connection was started and waits for the other side."""
    CONNECT_FAILED = "connect-failed"
    """A TCP connection failed before it was up (refused, or no route)."""
    RETRY_SCHEDULED = "retry-scheduled"
    """The transport will try to connect again after its reconnect interval."""
    CONNECTED = "connected"
    """The TCP connection is up."""
    SECURED = "secured"
    """The CURVE handshake succeeded."""
    SECURING_FAILED = "securing-failed"
    """A CURVE handshake failed (the transport retries by itself)."""
    PLAINTEXT = "plaintext"
    """The other side speaks ZeroMQ without CURVE (a security mechanism mismatch)."""
    DISCONNECTED = "disconnected"
    """The connection dropped."""


class Reach(enum.Enum):
    """Why a hub is not reached (the ``reason`` of ``agent --status --json``)."""

    UNRESOLVED = "name-not-resolved"
    REFUSED = "connection-refused"
    NO_ANSWER = "no-answer"
    NO_HANDSHAKE = "no-handshake"
    CURVE_OFF = "curve-off"
    CURVE_FAILED = "curve-failed"

    @property
    def definitive(self) -> bool:
        """Waiting longer is unlikely to help: a one-shot sync may give up on it."""
        return self in _DEFINITIVE


_DEFINITIVE = frozenset({Reach.UNRESOLVED, Reach.REFUSED, Reach.CURVE_OFF})


@dataclass(frozen=True)
class Unreached:
    """A verdict: why the hub is not reached, in words that say what to check."""

    reason: Reach
    message: str


@dataclass(frozen=True)
class Endpoint:
    """The host and port of a ``tcp://`` endpoint; ``name`` when the host is not an address."""

    host: str
    port: str
    name: bool


def parse_endpoint(endpoint: str) -> Endpoint | None:
    """``tcp://host:port`` split; None for another transport or a malformed endpoint."""
    parts = urlsplit(endpoint)
    if parts.scheme != "tcp":
        return None
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not host or port is None:
        return None
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return Endpoint(host, str(port), name=True)
    return Endpoint(host, str(port), name=False)


class ReachWatch:
    """What one connection attempt's transport reported, and the verdict it adds up to."""

    def __init__(
        self, who: str, endpoint: str, now: float, *, notice_after: float = NOTICE_AFTER_SECONDS
    ) -> None:
        self._who = who
        self._endpoint = parse_endpoint(endpoint)
        self.started = now
        self._notice_after = notice_after
        self._opened = False  # a TCP connection was ever started
        self._pending_since = math.inf
        self._tcp_since = math.inf
        self._refusals = 0
        self._retries = 0
        self._secured = False
        self._curve_failures = 0
        self._plaintext = False
        self._lookup_error: str | None = None
        self.current: Unreached | None = None

    @property
    def wants_lookup(self) -> bool:
        """The endpoint names a host: the driver should look it up itself."""
        return self._endpoint is not None and self._endpoint.name

    @property
    def endpoint(self) -> Endpoint | None:
        return self._endpoint

    def looked_up(self, error: str | None) -> None:
        """The driver's own lookup of the host ended; ``error`` is the resolver's words."""
        self._lookup_error = error

    def event(self, event: LinkEvent, now: float) -> None:
        _HANDLERS[event](self, now)

    def check(self, now: float) -> Unreached | None:
        """The verdict at ``now`` (also kept in ``current``); None while nothing is wrong."""
        self.current = None if self._secured else self._verdict(now)
        return self.current

    def noticeable(self, now: float) -> bool:
        """The attempt has run long enough for a verdict to be worth telling."""
        return now - self.started >= self._notice_after

    # -- the verdict -------------------------------------------------------------------

    def _verdict(self, now: float) -> Unreached | None:
        who, where = self._who, self._endpoint
        host = where.host if where is not None else "the host"
        port = where.port if where is not None else "?"
        if self._lookup_error is not None or (self._retries >= 2 and not self._opened):
            why = self._lookup_error or "the resolver gave no address"
            return Unreached(Reach.UNRESOLVED, (
                f"{who}: cannot resolve the name {host} ({why}): check the endpoint's "
                "host name (and this machine's DNS), or use the hub's IP address"
            ))
        if self._plaintext:
            return Unreached(Reach.CURVE_OFF, (
                f"{who} speaks ZeroMQ without CURVE encryption: the hub runs with "
                "curve = false, or another service listens on that port"
            ))
        if self._curve_failures:
            return Unreached(Reach.CURVE_FAILED, (
                f"{who}: the encrypted (CURVE) handshake failed: check that known_hosts "
                "curve_public_key is the hub's (`synchub id` on the hub prints it)"
            ))
        if self._refusals >= REFUSALS_BEFORE_VERDICT:
            return Unreached(Reach.REFUSED, (
                f"{who}: connection refused: nothing listens on port {port} of {host}, "
                "or there is no route to it (is the hub running, and is the port right?)"
            ))
        waited = now - self._pending_since
        if waited >= self._notice_after:
            return Unreached(Reach.NO_ANSWER, (
                f"{who} does not answer: a TCP connection has been pending for "
                f"{waited:.0f}s, so packets are dropped on the way (a firewall, a wrong "
                "address, or the host is down)"
            ))
        silent = now - self._tcp_since
        if silent >= self._notice_after:
            return Unreached(Reach.NO_HANDSHAKE, (
                f"{who}: TCP is connected but nothing has answered the ZeroMQ handshake "
                f"for {silent:.0f}s: that port is probably not a synchub hub's (`synchub "
                "id` on the hub prints its endpoint)"
            ))
        return None

    # -- the events --------------------------------------------------------------------

    def _on_pending(self, now: float) -> None:
        self._opened = True
        self._pending_since = min(self._pending_since, now)

    def _on_failed(self, now: float) -> None:
        self._opened = True
        self._pending_since = math.inf
        self._refusals += 1

    def _on_retry(self, now: float) -> None:
        self._retries += 1

    def _on_connected(self, now: float) -> None:
        self._opened = True
        self._pending_since = math.inf
        self._refusals = 0
        self._tcp_since = min(self._tcp_since, now)

    def _on_secured(self, now: float) -> None:
        self._secured = True

    def _on_securing_failed(self, now: float) -> None:
        self._curve_failures += 1

    def _on_plaintext(self, now: float) -> None:
        self._plaintext = True

    def _on_disconnected(self, now: float) -> None:
        self._tcp_since = math.inf


_HANDLERS = {
    LinkEvent.CONNECT_PENDING: ReachWatch._on_pending,
    LinkEvent.CONNECT_FAILED: ReachWatch._on_failed,
    LinkEvent.RETRY_SCHEDULED: ReachWatch._on_retry,
    LinkEvent.CONNECTED: ReachWatch._on_connected,
    LinkEvent.SECURED: ReachWatch._on_secured,
    LinkEvent.SECURING_FAILED: ReachWatch._on_securing_failed,
    LinkEvent.PLAINTEXT: ReachWatch._on_plaintext,
    LinkEvent.DISCONNECTED: ReachWatch._on_disconnected,
}
