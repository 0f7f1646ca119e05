"""How times, durations and statuses read on the pages.

Times are the hub's local time with its zone (``2026-01-02 03:04:05 CET``), each in a
``<time datetime=...>`` element carrying RFC 3339 UTC; ages and durations are short
(``12s``, ``5m``, ``3h``, ``2d``).
"""

from __future__ import annotations

import datetime as dt
from typing import Final

from hub.fleet import CONNECTION_STATE_NAMES, status_name

STATUS_CLASSES: Final = {
    "success": "ok", "warning": "warn", "error": "err", "inprogress": "run", "pending": "run",
    "user_cancelled": "cancel", "system_cancelled": "cancel", "unknown": "unknown",
}
STATE_CLASSES: Final = {
    "connected": "ok", "pending": "run", "disconnected": "warn", "retry_wait": "warn",
    "error_auth": "err", "error_protocol": "err", "error_internal": "err", "unknown": "unknown",
}


def when(ms: int) -> str:
    if ms <= 0:
        return "-"
    return dt.datetime.fromtimestamp(ms / 1000).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def iso(ms: int) -> str:
    if ms <= 0:
        return ""
    moment = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def span(seconds: float) -> str:
    """``850ms``, ``12s``, ``5m``, ``3h``, ``2d``: the largest whole unit."""
    if seconds < 1:
        return f"{max(0, int(seconds * 1000))}ms"
    whole = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if whole >= size:
            return f"{whole // size}{unit}"
    return f"{whole}s"


def duration(ms: int | None) -> str:
    return "-" if ms is None else span(ms / 1000)


def ago(then_ms: int, now_ms: int) -> str:
    if then_ms <= 0:
        return "never"
    return f"{span(max(0, now_ms - then_ms) / 1000)} ago"


def status_class(status: int) -> str:
    return STATUS_CLASSES.get(status_name(status), "unknown")


def state_name(state: int) -> str:
    return CONNECTION_STATE_NAMES.get(state, str(state))


def state_class(state: int) -> str:
    return STATE_CLASSES.get(state_name(state), "unknown")
