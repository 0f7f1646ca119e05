"""Files that hold operation content or peer state: readable by their owner only."""

from __future__ import annotations

import os
from pathlib import Path


def ensure_private_database(path: Path | str) -> None:
    """Create an empty file with mode 0600 unless ``path`` exists or is in-memory.

    SQLite then opens the existing file and creates its -wal and -shm files
    with the same mode, so the whole database stays private.
    """
    name = str(path)
    if name == ":memory:" or name.startswith("file:"):
        return
    try:
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)
