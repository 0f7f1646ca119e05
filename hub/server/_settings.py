"""The front's limits and timings, from the ``[hub]`` section (see ``front_settings``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FrontSettings:
    bind: str
    max_frame_bytes: int = 16 * 1024 * 1024
    max_pending_handshakes: int = 1000
    # Pre-authentication limits (docs/security.md §5 (Limits and hostile input)):
    # handshakes of keys the hub does not admit, at most this many from one address;
    # above ``early_drop_from`` of ``max_pending_handshakes`` pending, a new one is
    # refused with a probability rising from ``early_drop_rate`` to 1 (sshd's
    # MaxStartups). Keys the hub admits have their own room: at most
    # ``max_pending_per_key`` handshakes each, the oldest giving way to a newer one.
    max_pending_per_source: int = 64
    early_drop_from: float = 0.5
    early_drop_rate: float = 0.3
    max_pending_per_key: int = 4
    # RETRY_WAIT answers a second per address; further refusals are silent.
    refusals_per_source: int = 10
    # Connections that never send a frame are closed after this long (None: never).
    silent_connection_timeout: float | None = None
    listen_backlog: int = 4096
    tick_interval: float = 1.0
    # A session this many frames behind gets a throttle; the whole front stops
    # reading the ROUTER while all sessions together are this far behind, so
    # TCP pushes back on clients instead of mailboxes growing without bound.
    session_backlog_high: int = 64
    total_backlog_high: int = 4096
    total_backlog_bytes: int = 256 * 1024 * 1024
    # HELLO and PROOF are all a peer may send before the hub's send_config;
    # a peer this many frames ahead before authenticating is refused.
    pending_backlog_high: int = 16
    throttle_delay_ms: int = 500
    # Bytes, not only frames: a session this far behind is throttled as well, and one
    # that is authenticated and keeps sending past the limit (ignoring throttles) ends.
    session_backlog_bytes_high: int = 32 * 1024 * 1024
    session_backlog_bytes_max: int = 128 * 1024 * 1024
    # Replies a key's client may leave unread (see ``_budget``): throttle, then end.
    outbound_bytes_high: int = 16 * 1024 * 1024
    outbound_bytes_max: int = 64 * 1024 * 1024
    outbound_drain_per_second: float = 1024 * 1024
    hwm: int = 1000
    # What libzmq buffers from one connection before TCP pushes back on it. In
    # messages, not bytes: at 1000 a client pipelining 470 KiB items while the front
    # read slower than loopback delivered (a thousand HELLO holders beside it) had
    # 470 MiB waiting inside libzmq, before any of the hub's own bounds saw it.
    recv_hwm: int = 16
    # How long a session that stopped without saying so (its close notice was
    # lost) is kept before the front forgets it.
    closed_grace: float = 2.0
    # The sessions' heartbeat interval. When set, an authenticated session is
    # ticked only once its heartbeat or its silence limit (3 intervals) is due by
    # the traffic the front relayed, instead of every tick_interval: thousands of
    # idle sessions need not all wake every second.
    heartbeat_interval: float | None = None
