"""Text helpers shared by every layer: suggestions for typos, peer text made safe to show."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["closest_match", "printable"]


def closest_match(word: str, choices: Iterable[str]) -> str | None:
    """The choice ``word`` most likely misspells, or None when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return close[0] if close else None


def printable(text: str, limit: int = 200) -> str:
    """Peer-supplied text made safe for a log line or a status: clipped, one line."""
    shown = "".join(ch if ch.isprintable() else "?" for ch in text[:limit])
    return shown + ("..." if len(text) > limit else "")
