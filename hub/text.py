"""Text helpers shared by every layer: suggestions for typos, peer text made safe to
show, URLs with their passwords hidden."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

__all__ = ["closest_match", "one_line", "printable", "redacted_url"]

_URL_PASSWORD = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/?#@:]*):[^/?#@]*@")
_QUERY_PASSWORD = re.compile(r"(?P<key>[?&]password=)[^&#]*", re.IGNORECASE)


def closest_match(word: str, choices: Iterable[str]) -> str | None:
    """The choice ``word`` most likely misspells, or None when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return close[0] if close else None


def printable(text: str, limit: int = 200) -> str:
    """Peer-supplied text made safe for a log line or a status: clipped, one line."""
    shown = "".join(ch if ch.isprintable() else "?" for ch in text[:limit])
    return shown + ("..." if len(text) > limit else "")


def one_line(text: str) -> str:
    """``text`` (a library's multi-line error, say) as one line, runs of whitespace as one space."""
    return " ".join(text.split())


def redacted_url(url: str) -> str:
    """``url`` safe for a log line or an error: any password in it replaced by ``***``.

    Covers ``scheme://user:password@host`` and a ``password=`` query parameter.
    """
    hidden = _URL_PASSWORD.sub(r"\g<head>:***@", url, count=1)
    return _QUERY_PASSWORD.sub(r"\g<key>***", hidden)
