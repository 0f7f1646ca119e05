"""The admin requests' names and bounds, shared by the service and the CLI."""

from __future__ import annotations

from hub.protocol import LOG_REQUEST_TIMEOUT

MAX_OPS_LIMIT = 100_000
ACTOR_TIMEOUT = 10.0
LOG_WAIT = LOG_REQUEST_TIMEOUT + 2.0
"""How long a ``logs`` request waits for the client's answer (the session's own
deadline, and a margin for its ticks)."""

OPS = ("status", "peers", "ops", "authorize", "revoke", "reload", "logs", "pending")
