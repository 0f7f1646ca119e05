"""Peer text made inert for a terminal: hub.text and the CLI's log formatter."""

from __future__ import annotations

import logging
import sys

from hypothesis import given
from hypothesis import strategies as st

from hub.cli.main import InertFormatter
from hub.text import cell, inert, inert_lines, printable


def test_control_and_format_characters_are_spelled_out() -> None:
    assert inert("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert inert("x\ny\rz\tw") == "x\\ny\\rz\\tw"
    assert inert("\x1b]52;c;AAAA\x07") == "\\x1b]52;c;AAAA\\x07"
    assert inert("\x9b31m") == "\\x9b31m"  # the C1 CSI
    assert inert("abc\u202edef") == "abc\\u202edef"  # a bidirectional override
    assert inert("zero\u200bwidth") == "zero\\u200bwidth"
    assert inert("tag\U000e0041") == "tag\\U000e0041"
    assert inert("plain text, ümlaut, 東京 ok") == "plain text, ümlaut, 東京 ok"


@given(st.text())
def test_inert_text_has_nothing_a_terminal_acts_on(text: str) -> None:
    shown = inert(text)
    assert shown.isprintable()
    assert inert(shown) == shown


def test_printable_clips_after_escaping_safely() -> None:
    assert printable("ok\x1b" * 100, limit=6) == "ok\\x1bok\\x1b..."
    assert printable("short") == "short"


@given(st.text(), st.integers(min_value=2, max_value=40))
def test_a_cell_is_exactly_its_width_and_inert(text: str, width: int) -> None:
    shown = cell(text, width)
    assert len(shown) == width
    assert shown.isprintable()


def test_a_cell_marks_a_cut() -> None:
    assert cell("web1", 6) == "web1  "
    assert cell("web1\n9999 forged", 8) == "web1\\n9…"


def test_inert_lines_keeps_line_breaks_and_tabs_only() -> None:
    assert inert_lines("one\x1b[2J\r\ntwo\tthree\rfour\n") == "one\\x1b[2J\ntwo\tthree\\rfour\n"


def test_log_lines_quoting_peer_text_are_inert_and_arguments_untouched() -> None:
    formatter = InertFormatter("%(levelname)s %(message)s")
    peer = "web1\x1b]0;owned\x07\nINFO forged line"
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "peer %s said hi", (peer,), None)
    assert formatter.format(record) == "INFO peer web1\\x1b]0;owned\\x07\\nINFO forged line said hi"
    assert record.args == (peer,)
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        failing = logging.LogRecord("t", logging.ERROR, __file__, 1, "x\ny", None, sys.exc_info())
    assert formatter.format(failing) == (
        "ERROR x\\ny [ValueError: boom second line; -vv shows the traceback]"
    )
    debug = InertFormatter("%(levelname)s %(message)s", tracebacks=True)
    assert debug.format(failing).startswith("ERROR x\\ny\nTraceback")
