"""What every listing of the CLI shares: times, durations, cells and the time filters.

Times are ISO 8601 with their zone: local time with its UTC offset by default,
UTC with ``--utc`` (``2026-12-01T21:04:05+01:00``, ``2026-12-01T20:04:05+00:00``).
A cell is one line whatever a field holds (newlines and tabs become spaces, other
control characters ``?``: ``hub.text``) and is cut to its column with an ellipsis,
unless the listing is ``--wide``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

import click

from hub.text import printable

ELLIPSIS = "…"
_RELATIVE = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
TIME_HELP = (
    "a time ago (30m, 2h, 3d, 1w), a date (2026-12-01: its midnight) or a date and "
    "time (2026-12-01T14:30, with an offset or Z for a zone other than the listing's)"
)


@dataclass(frozen=True)
class TimeZoneChoice:
    """How a listing shows and reads times: local with its offset, or UTC."""

    utc: bool = False

    def zone(self) -> dt.tzinfo | None:
        return dt.UTC if self.utc else None

    def show(self, ms: int) -> str:
        """``ms`` since the epoch as ISO 8601 with the zone; ``-`` for no time."""
        if ms <= 0:
            return "-"
        when = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
        shown = when if self.utc else when.astimezone()
        return shown.isoformat(timespec="seconds")

    def parse(self, text: str, now_ms: int, option: str) -> int:
        """``--since`` / ``--until`` as ms since the epoch; click.BadParameter if not a time."""
        relative = _RELATIVE.match(text.lower())
        if relative:
            count, unit = int(relative.group(1)), relative.group(2)
            return now_ms - count * _UNIT_SECONDS[unit] * 1000
        try:
            parsed = dt.datetime.fromisoformat(text.strip().replace(" ", "T", 1))
        except ValueError:
            raise click.BadParameter(
                f"{text!r} is not a time: use {TIME_HELP}", param_hint=option
            ) from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=self.zone()) if self.utc else parsed.astimezone()
        return int(parsed.timestamp() * 1000)


def duration_text(ms: int) -> str:
    """``850ms``, ``12s``, ``1m52s``, ``3h04m``, ``2d03h``: the two largest units."""
    if ms < 0:
        return "-"
    if ms < 1000:
        return f"{ms}ms"
    seconds = ms // 1000
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def cell(text: str, width: int | None) -> str:
    """``text`` as one printable line, cut to ``width`` with an ellipsis (None: uncut):
    peer text inert, its line breaks and control characters shown as ``\\n``, ``\\x1b``."""
    line = printable(text, limit=len(text) + 1)
    if width is None or len(line) <= width:
        return line
    return line[: max(0, width - 1)] + ELLIPSIS


def table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]],
          widths: tuple[int | None, ...], *, wide: bool) -> list[str]:
    """Left-aligned columns two spaces apart; the last column is never padded.

    ``widths`` caps each column (None: as wide as its longest cell); ``wide`` lifts
    every cap. Cells are made with ``cell``, so a field can never break a row.
    """
    caps = [None if wide else w for w in widths]
    cut = [tuple(cell(value, cap) for value, cap in zip(row, caps, strict=True)) for row in rows]
    sizes = [
        max([len(name)] + [len(row[i]) for row in cut]) for i, name in enumerate(header)
    ]
    lines = []
    for row in (header, *cut):
        padded = [value.ljust(sizes[i]) for i, value in enumerate(row[:-1])]
        lines.append("  ".join([*padded, row[-1]]).rstrip())
    return lines


def duration(seconds: int) -> str:
    """``12s``, ``5m``, ``3h``, ``2d``: the largest whole unit."""
    seconds = max(0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def ago(then_ms: int, now_ms: int) -> str:
    """``12s ago``, ``5m ago``...; ``-`` when there is no time."""
    if then_ms <= 0:
        return "-"
    return f"{duration((now_ms - then_ms) // 1000)} ago"
