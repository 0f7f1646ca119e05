"""The wake-up socket: a writer of a node's oplog tells its running agent at once.

A running client agent binds a Unix datagram socket beside the oplog,
``<data_dir>/agent.wake``; whoever writes this node's own operations (``synchub
run``, any tool through ``open_oplog``) sends it one datagram right after each
commit (``wake_agent``), and the agent looks for changes then instead of at its next
poll. The datagram's content is ignored. Sending never blocks and never fails the
writer: no socket file, a stale one left by a killed agent (connection refused), a
full buffer (the agent is awake already) are all ignored, because the agent's
poll (every 0.5 s) still finds the change. What binds and reads the socket is the
agent's (``hub.agent``); the names and decisions both sides share are here.

A path longer than a Unix socket address can hold (107 bytes on Linux) has no
wake-up: ``wake_address`` says None, writers send nothing and the agent polls.
"""

from __future__ import annotations

import os
import socket
import stat
import sys
from pathlib import Path

WAKE_FILENAME = "agent.wake"
"""The socket file in data_dir; deleting it is harmless (the agent binds it again)."""
WAKE_LOCK_FILENAME = "agent.lock"
"""Held (flock) by the agent that binds the socket; never deleted."""

# sun_path is 108 bytes on Linux, 104 on the BSDs and macOS, with room for a NUL.
SUN_PATH_MAX = 107 if sys.platform.startswith("linux") else 103
# The agent binds a temporary name first (``wake_staging_path``), as long as this.
_STAGING_SUFFIX = ".new"


def wake_path(data_dir: Path) -> Path:
    return data_dir / WAKE_FILENAME


def wake_staging_path(data_dir: Path) -> Path:
    """Where the agent binds before the socket is moved into place with its mode set."""
    return data_dir / (WAKE_FILENAME + _STAGING_SUFFIX)


def wake_lock_path(data_dir: Path) -> Path:
    return data_dir / WAKE_LOCK_FILENAME


def fits_unix_address(path: Path) -> bool:
    """A Unix socket can be bound or reached at ``path`` (its bytes fit ``sun_path``)."""
    return len(os.fsencode(path)) <= SUN_PATH_MAX


def wake_address(data_dir: Path) -> str | None:
    """The socket's address for ``data_dir``, or None when the path is too long for one
    (the agent then only polls)."""
    path = wake_path(data_dir)
    return str(path) if fits_unix_address(wake_staging_path(data_dir)) else None


def wake_mode(database_mode: int) -> int:
    """The socket file's mode for an oplog file of mode ``database_mode``.

    Sending to a Unix socket needs write permission on it, so the socket is
    writable by exactly those who may write the database (the owner always): as
    private as the database, never more open.
    """
    mode = stat.S_IRUSR | stat.S_IWUSR
    if database_mode & stat.S_IWGRP:
        mode |= stat.S_IRGRP | stat.S_IWGRP
    if database_mode & stat.S_IWOTH:
        mode |= stat.S_IROTH | stat.S_IWOTH
    return mode


def wake_agent(data_dir: Path) -> None:
    """Tell the agent running on ``data_dir``, if any, that its oplog just changed.

    One datagram, non-blocking; every error is ignored (the agent's poll covers it).
    """
    address = wake_address(data_dir)
    if address is None:
        return
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            sock.sendto(b"\x01", address)
    except OSError:
        pass
