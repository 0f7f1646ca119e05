"""Text helpers shared by every layer: suggestions for typos, peer text made safe to
show, URLs with their passwords hidden."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

__all__ = ["cell", "closest_match", "inert", "inert_lines", "one_line", "printable", "redacted_url"]

_URL_PASSWORD = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/?#@:]*):[^/?#@]*@")
_QUERY_PASSWORD = re.compile(r"(?P<key>[?&]password=)[^&#]*", re.IGNORECASE)


def closest_match(word: str, choices: Iterable[str]) -> str | None:
    """The choice ``word`` most likely misspells, or None when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return close[0] if close else None


_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(ch: str) -> str:
    named = _NAMED_ESCAPES.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def inert(text: str) -> str:
    """``text`` with every character a terminal would act on shown as an escape.

    Control characters (ESC, CR, LF, BEL, the C1 set), format characters
    (bidirectional overrides, zero-width marks), separators other than the space and
    unassigned code points become ``\\x1b``, ``\\n``, ``\\u202e``...: the text can
    neither move the cursor, start an escape sequence nor begin a new line. Anything
    printable is kept as it is: ``inert("a\\x1b[2Jb\\n")`` is ``a\\x1b[2Jb\\n`` with
    each escape spelled out in backslash and letters.
    """
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else _escape(ch) for ch in text)


def inert_lines(text: str) -> str:
    """Like ``inert`` but keeps line breaks and tabs: for a job's log shown on a terminal.

    ``\\r\\n`` counts as a line break; a lone ``\\r`` (which could overwrite a line) is
    shown as ``\\r``.
    """
    lines = text.replace("\r\n", "\n").split("\n")
    return "\n".join("\t".join(inert(part) for part in line.split("\t")) for line in lines)


def printable(text: str, limit: int = 200) -> str:
    """Peer-supplied text made safe for a log line or a status: one line, control
    characters shown as escapes (``inert``), clipped to about ``limit`` characters."""
    shown = inert(text[:limit])
    return shown + ("..." if len(text) > limit else "")


def cell(text: str, width: int) -> str:
    """Peer-supplied text for a table column: ``inert``, then at most ``width``
    characters (``…`` marks a cut), padded to ``width``."""
    shown = inert(text[: width * 4 + 1])
    if len(shown) > width or len(text) > width * 4 + 1:
        shown = shown[: width - 1] + "…"
    return f"{shown:{width}}"


def one_line(text: str) -> str:
    """``text`` (a library's multi-line error, say) as one line, runs of whitespace as one space."""
    return " ".join(text.split())


def redacted_url(url: str) -> str:
    """``url`` safe for a log line or an error: any password in it replaced by ``***``.

    Covers ``scheme://user:password@host`` and a ``password=`` query parameter.
    """
    hidden = _URL_PASSWORD.sub(r"\g<head>:***@", url, count=1)
    return _QUERY_PASSWORD.sub(r"\g<key>***", hidden)
