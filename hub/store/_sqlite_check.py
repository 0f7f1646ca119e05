"""Checks that refuse a damaged SQLite store when it is opened, each failure one line.

``check_file`` runs before SQLite opens a file (cheap: the file's kind, its size and
its 100-byte header), so a zero-length or overwritten file is never silently taken
for an empty database. ``check_pages`` runs ``PRAGMA quick_check`` on an open
connection: every page's b-tree structure, which a corrupt page fails; the hub runs
it on each of its stores when it starts. The messages name the file, the damage, and
what to do.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import time
from pathlib import Path
from typing import Final

from hub.errors import StoreError
from hub.text import one_line

SQLITE_MAGIC: Final = b"SQLite format 3\x00"
HEADER_BYTES: Final = 100
QUICK_CHECK_PROBLEMS: Final = 3
"""quick_check stops after this many problems: one is enough to refuse the file."""


def _what_to_do(what: str) -> str:
    return (
        f"restore it from a backup, or move it aside (with its -wal and -shm files) to "
        f"start with an empty {what}"
    )


FRESH_FILE_SECONDS = 10.0


def check_file(path: Path | str, what: str) -> None:
    """StoreError unless ``path`` is absent, in memory, or looks like an intact database.

    A file of zero bytes is refused unless its write-ahead log holds the database (a
    store that was never checkpointed): SQLite would take it for a new, empty store.
    """
    name = str(path)
    if name == ":memory:" or name.startswith("file:"):
        return
    try:
        st = os.stat(name)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StoreError(f"{what} {name}: cannot read it: {exc.strerror}") from exc
    if not stat.S_ISREG(st.st_mode):
        raise StoreError(f"{what} {name} is not a regular file: move it out of the way")
    if st.st_size == 0:
        # Another process that has just created the file writes its header at its first
        # write: a zero-length file changed in the last seconds is being made, not damaged.
        if _size(name + "-wal") > 0 or time.time() - st.st_mtime < FRESH_FILE_SECONDS:
            return
        raise StoreError(
            f"{what} {name} is damaged: it is empty (0 bytes), so it holds no database; "
            + _what_to_do(what)
        )
    header = _read_header(name, what)
    if not header.startswith(SQLITE_MAGIC):
        raise StoreError(
            f"{what} {name} is damaged: its header is not an SQLite database's; "
            + _what_to_do(what)
        )
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if len(header) < HEADER_BYTES or page_size < 512 or page_size & (page_size - 1):
        raise StoreError(
            f"{what} {name} is damaged: its header is cut short or names no valid page "
            "size; " + _what_to_do(what)
        )


def check_pages(db: sqlite3.Connection, path: Path | str, what: str) -> None:
    """StoreError when ``PRAGMA quick_check`` finds a damaged page, index or record."""
    try:
        rows = db.execute(f"PRAGMA quick_check({QUICK_CHECK_PROBLEMS})").fetchall()
    except sqlite3.DatabaseError as exc:
        raise StoreError(
            f"{what} {path} is damaged: {one_line(str(exc))}; " + _what_to_do(what)
        ) from exc
    problems = [one_line(str(row[0])) for row in rows]
    if problems != ["ok"]:
        shown = "; ".join(problems)
        raise StoreError(
            f"{what} {path} is damaged (quick_check: {shown}); " + _what_to_do(what)
        )


def opening_failure(what: str, path: Path | str, exc: BaseException) -> StoreError:
    """One line for an open that failed: the file, why, and what to do."""
    if isinstance(exc, PermissionError):
        return StoreError(
            f"{what} {path}: permission denied: the user running synchub must be able "
            f"to read and write {Path(path).parent} and the files in it"
        )
    if isinstance(exc, OSError):
        return StoreError(f"{what} {path}: cannot open it: {exc.strerror or exc}")
    return StoreError(f"{what} {path}: cannot open it: {one_line(str(exc))}")


_DAMAGE_CODES: Final = frozenset({11, 26})  # SQLITE_CORRUPT, SQLITE_NOTADB


def failed(what: str, path: Path | str, action: str, exc: sqlite3.Error) -> StoreError:
    """One line for an SQLite error while ``action``: damage says so and what to do."""
    if getattr(exc, "sqlite_errorcode", None) in _DAMAGE_CODES:
        return StoreError(
            f"{what} {path} is damaged ({action}: {one_line(str(exc))}); " + _what_to_do(what)
        )
    return StoreError(f"{what} {path}: {action} failed: {one_line(str(exc))}")


def _size(name: str) -> int:
    try:
        return os.stat(name).st_size
    except OSError:
        return 0


def _read_header(name: str, what: str) -> bytes:
    try:
        with open(name, "rb") as file:
            return file.read(HEADER_BYTES)
    except OSError as exc:
        raise opening_failure(what, name, exc) from exc
