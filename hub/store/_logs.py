"""This node's job logs: the files ``synchub run`` writes, read in slices.

A job's log lives in ``<data_dir>/logs/<op id>.log`` (mode 0600, in a 0700
folder), and its operation's ``logref`` names it relative to ``data_dir``
(``logs/<op id>.log``). ``LocalLogs`` reads such files for whoever serves them:
the client agent answering a hub's log request, the hub's admin socket for the
hub's own jobs, ``synchub logs`` on a node with no hub running.

Only files inside ``<data_dir>/logs`` are ever read, whatever a logref says: one
that points elsewhere (``../``, an absolute path, a symlink out of the folder, a
reference in another producer's format) is not a log this node keeps.

Offsets are positions in the job's whole output. Once a job has ended its log
file may keep only the end of that output (``synchub run`` cuts it to its last
64 KiB); given the output's size (the operation's ``output_size_bytes``),
``read_output`` maps output offsets to the file, so a reader that followed the
job while it ran goes on where it was, and one that starts at 0 learns where
the kept part starts.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from hub.errors import LogUnavailable

LOGS_DIRNAME = "logs"


def log_path(data_dir: Path, op_id: int) -> Path:
    """Where the log of this node's operation ``op_id`` is written."""
    return data_dir / LOGS_DIRNAME / f"{op_id}.log"


def logref_for(op_id: int) -> str:
    """The log reference stored in the operation: relative to the node's data_dir."""
    return f"{LOGS_DIRNAME}/{op_id}.log"


@dataclass(frozen=True, slots=True)
class LogSlice:
    """Part of a job's output: ``data`` from output offset ``offset``; the output kept
    runs from ``start`` to ``size`` (its size so far)."""

    data: bytes
    offset: int
    start: int
    size: int


class LocalLogs:
    """Reads the job logs under one ``data_dir``; safe to use from any one thread."""

    def __init__(self, data_dir: Path) -> None:
        self._data_dir = Path(data_dir)

    def path_of(self, logref: str) -> Path | None:
        """The file ``logref`` names, when it is a log this node keeps; else None."""
        if not logref or "\x00" in logref or os.path.isabs(logref):
            return None
        folder = self._data_dir / LOGS_DIRNAME
        candidate = self._data_dir / logref
        try:
            inside = candidate.resolve().parent == folder.resolve()
        except (OSError, RuntimeError):
            return None
        return candidate if inside and candidate.suffix == ".log" else None

    def read(self, logref: str, offset: int, length: int) -> tuple[bytes, int]:
        """Up to ``length`` bytes of the log file from ``offset``, and the file's size.

        LogUnavailable, saying why, when the log is not one this node keeps, is
        gone, or cannot be read. Past the end: no bytes, and the size.
        """
        with self._open(logref) as (file, size):
            if offset >= size or length <= 0:
                return b"", size
            file.seek(offset)
            return file.read(length), size

    def read_output(self, logref: str, offset: int, length: int, *, total: int = 0) -> LogSlice:
        """Up to ``length`` bytes of a job's output from output offset ``offset``.

        ``total`` is the output's whole size once the job ended (0 while it runs or
        when unknown): a file shorter than that holds its last bytes. An offset
        before what is kept is served from the first byte kept. LogUnavailable as
        for ``read``.
        """
        with self._open(logref) as (file, file_size):
            start = total - file_size if total >= file_size else 0
            file_offset = max(offset, start) - start
            data = b""
            if file_offset < file_size and length > 0:
                file.seek(file_offset)
                data = file.read(length)
        return LogSlice(data, start + file_offset, start, start + file_size)

    @contextmanager
    def _open(self, logref: str) -> Iterator[tuple[BinaryIO, int]]:
        """The log file, opened once (a file replaced meanwhile is not mixed in), and its size."""
        path = self.path_of(logref)
        if path is None:
            raise LogUnavailable(f"its logref {logref!r} is not a log synchub keeps")
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except FileNotFoundError as exc:
            raise LogUnavailable(f"its log file {logref} no longer exists") from exc
        except OSError as exc:
            raise LogUnavailable(f"its log file {logref} cannot be read: {exc.strerror}") from exc
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            raise LogUnavailable(f"its log {logref} is not a regular file")
        with os.fdopen(fd, "rb") as file:
            yield file, info.st_size
