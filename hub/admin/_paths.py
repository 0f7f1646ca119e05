"""Where a hub's admin socket lives, and whether a hub serves it."""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path

from hub.errors import AdminSocketError

ADMIN_SOCKET_NAME = "admin.sock"
# sockaddr_un.sun_path holds 108 bytes including the terminating NUL.
MAX_SOCKET_PATH_BYTES = 107


def admin_socket_path(data_dir: Path) -> Path:
    return Path(os.path.abspath(data_dir)) / ADMIN_SOCKET_NAME


def admin_endpoint(data_dir: Path) -> str:
    return f"ipc://{admin_socket_path(data_dir)}"


def path_too_long(path: Path) -> bool:
    return len(os.fsencode(path)) > MAX_SOCKET_PATH_BYTES


def probe(path: Path) -> bool:
    """True if a process accepts connections on the Unix socket at ``path``.

    False when nothing listens there (no file, or a file left by a stopped hub).
    PermissionError when the caller may not connect to it.
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError):
            return False
        except OSError as exc:
            if exc.errno in (errno.ENOTSOCK, errno.ECONNREFUSED, errno.ENOENT):
                return False
            raise
    return True


def hub_answers(data_dir: Path) -> bool:
    """True if a hub accepts connections on ``data_dir``'s admin socket."""
    path = admin_socket_path(data_dir)
    try:
        return not path_too_long(path) and probe(path)
    except OSError:
        return False


def check_no_hub_serving(data_dir: Path) -> None:
    """AdminSocketError if a hub already serves ``data_dir`` (its admin socket answers)."""
    path = admin_socket_path(data_dir)
    if path_too_long(path):
        return
    try:
        live = probe(path)
    except PermissionError as exc:
        raise AdminSocketError(
            f"{path} exists and belongs to another user: stop the hub using it, or remove "
            "the file if none runs"
        ) from exc
    except OSError:
        live = False  # not a socket we can use; binding replaces it or says why not
    if live:
        raise AdminSocketError(
            f"another hub already runs on data_dir {data_dir} (its admin socket {path} "
            "accepts connections): two hubs cannot share a data_dir"
        )


def claim_data_dir(data_dir: Path) -> None:
    """Before a hub starts: create ``data_dir`` private (0700) if it is missing, and
    refuse if another hub already serves it."""
    if not data_dir.exists():
        data_dir.mkdir(mode=0o700, parents=True)
    check_no_hub_serving(data_dir)
