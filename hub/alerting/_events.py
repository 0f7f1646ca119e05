"""The event JSON every delivery carries, and its time format.

Fields (always present, ``null`` where they do not apply): ``alert``, ``event``
(``firing`` | ``resolved``), ``when``, ``instance``, ``repo``, ``plan``,
``operation_id``, ``status``, ``message``, ``hub``, ``time`` (RFC 3339, UTC), plus
``incident`` (what the incident is about), ``since`` (when it started firing) and
``test`` (true only for ``synchub alerts test``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from hub.config import AlertRule

EventKind = Literal["firing", "resolved"]


def rfc3339(ms: int) -> str:
    """``2026-01-02T03:04:05Z``: UTC, whole seconds."""
    moment = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Subject:
    """What an incident is about, as its events name it."""

    key: str
    instance: str | None = None
    repo: str | None = None
    plan: str | None = None


def alert_event(
    rule: AlertRule,
    kind: EventKind,
    subject: Subject,
    *,
    hub: str,
    now_ms: int,
    since_ms: int,
    message: str,
    operation_id: int | None = None,
    status: str | None = None,
    test: bool = False,
) -> dict[str, Any]:
    return {
        "alert": rule.name,
        "event": kind,
        "when": rule.when,
        "instance": subject.instance,
        "repo": subject.repo,
        "plan": subject.plan,
        "operation_id": operation_id,
        "status": status,
        "message": message,
        "hub": hub,
        "time": rfc3339(now_ms),
        "incident": subject.key,
        "since": rfc3339(since_ms),
        "test": test,
    }


def encode_event(event: Mapping[str, Any]) -> str:
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"))


def subject_of(event_json: str, key: str) -> Subject:
    """The subject a stored firing event names (for resolving it after a restart)."""
    try:
        event = json.loads(event_json)
    except ValueError:
        return Subject(key)
    if not isinstance(event, dict):
        return Subject(key)

    def text(name: str) -> str | None:
        value = event.get(name)
        return value if isinstance(value, str) else None

    return Subject(key, text("instance"), text("repo"), text("plan"))


def test_event(rule: AlertRule, *, hub: str, now_ms: int) -> dict[str, Any]:
    """What ``synchub alerts test NAME`` sends: a firing event marked ``test``."""
    return alert_event(
        rule, "firing", Subject("test", instance=hub), hub=hub, now_ms=now_ms, since_ms=now_ms,
        message=f"test event of alert {rule.name}: the deliveries work", test=True,
    )
