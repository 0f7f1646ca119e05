"""The operations filters of ``/operations`` and ``/api/operations``, read from a query string.

``instance``: the instance an operation came from (the peer, as ``synchub ops
--instance``); ``producer``: the ``instance_id`` it was written with (``--producer``);
``plan``: an id. ``repo``: a repo guid, or the id of a repo in the hub's
``[[repos]]`` (taken as its guid). ``status``: the lower-case name the CLI prints
(``error``, ``success``, ``inprogress``...). ``since`` / ``until``: RFC 3339
(``2026-01-02T03:04:05Z``), a date and time without zone (UTC), or a date; they bound
the start time, ``since`` inclusive, ``until`` exclusive. ``limit``: 1 to 1000.
``before``: an operation id; only older (lower) ids, for the next page. Anything else
wrong is a 400 saying what was expected.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Final

from hub.config import Config
from hub.fleet import STATUS_BY_NAME
from hub.store import OperationQuery
from hub.web._http import HttpError

MAX_LIMIT: Final = 1000
FILTERS: Final = ("instance", "producer", "repo", "plan", "status", "since", "until")
_MAX_TEXT: Final = 256


@dataclass(frozen=True)
class OperationFilters:
    """The filters as given (for the form and links) and the query they make."""

    given: Mapping[str, str]
    query: OperationQuery

    def link(self, path: str, **changes: str | int | None) -> str:
        """``path`` with these filters (and ``limit``/``before``) in its query string."""
        params = {name: value for name, value in self.given.items() if value}
        for name, value in changes.items():
            if value is None or value == "":
                params.pop(name, None)
            else:
                params[name] = str(value)
        return f"{path}?{urllib.parse.urlencode(params)}" if params else path

    def next_page(self, last_id: int) -> OperationFilters:
        return replace(self, query=replace(self.query, before_id=last_id))


def parse_time(name: str, text: str) -> int:
    """Milliseconds since the epoch for an RFC 3339 time, a zone-less one (UTC), or a date."""
    value = text.strip()
    try:
        if len(value) == 10:
            moment = dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC)
        else:
            moment = dt.datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=dt.UTC)
    except ValueError as exc:
        raise HttpError(
            400, f"{name}: expected a time like 2026-01-02T03:04:05Z or a date like "
            f"2026-01-02, got {text[:40]!r}",
        ) from exc
    return int(moment.timestamp() * 1000)


def _whole(name: str, text: str, low: int, high: int) -> int:
    if not text.isdigit() or not low <= int(text) <= high:
        raise HttpError(400, f"{name}: expected a whole number from {low} to {high}")
    return int(text)


def parse_filters(
    params: Mapping[str, str], config: Config, *, default_limit: int = 100
) -> OperationFilters:
    given = {name: params.get(name, "").strip()[:_MAX_TEXT] for name in FILTERS}
    status = None
    if given["status"]:
        status = STATUS_BY_NAME.get(given["status"].lower())
        if status is None:
            raise HttpError(
                400, f"status: expected one of {', '.join(STATUS_BY_NAME)}, "
                f"got {given['status']!r}",
            )
    repo_guid = None
    if given["repo"]:
        configured = config.repo(given["repo"])
        repo_guid = configured.guid if configured is not None else given["repo"]
    limit = default_limit
    if params.get("limit"):
        limit = _whole("limit", params["limit"], 1, MAX_LIMIT)
    before = _whole("before", params["before"], 1, 2**63 - 1) if params.get("before") else None
    query = OperationQuery(
        instance=given["instance"] or None,
        producer=given["producer"] or None,
        repo_guid=repo_guid,
        plan_id=given["plan"] or None,
        status=status,
        since_ms=parse_time("since", given["since"]) if given["since"] else None,
        until_ms=parse_time("until", given["until"]) if given["until"] else None,
        before_id=before,
        limit=limit,
    )
    if params.get("limit"):
        given["limit"] = str(limit)
    return OperationFilters(given, query)
