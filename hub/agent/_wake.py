"""The agent's end of the wake-up socket (``hub.store._wake`` is the writers' end).

Who owns what: ``WakeListener`` owns the Unix datagram socket
``<data_dir>/agent.wake``, the lock ``<data_dir>/agent.lock`` and one thread that
reads the socket; each connection thread owns the read end of its ``WakeSignal``
(a pipe, in that thread's poller). When datagrams arrive the thread reads them
all (a burst is one wake-up) and sets every signal; a connection thread that
finds its signal set clears it and tells its session (``local_change``).

Binding: the listener takes the lock first (``flock``, released by the kernel
when a process dies), so only one agent per data_dir binds the socket; a second
agent on the same data_dir logs that and only polls. Holding the lock, whatever
socket file is there is a dead agent's: the new socket is bound under a staging
name, given the database's privacy (``wake_mode``), and renamed over it. Every
``CHECK_SECONDS`` the thread checks that the file is still its socket and binds
it again if it was deleted or replaced. A path too long for a socket address, or
any error binding, leaves the agent polling, logged once.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import select
import socket
import threading
from pathlib import Path

from hub.store import (
    SUN_PATH_MAX,
    fits_unix_address,
    oplog_path,
    wake_lock_path,
    wake_mode,
    wake_path,
    wake_staging_path,
)

log = logging.getLogger(__name__)

CHECK_SECONDS = 5.0
"""How often the listener checks that its socket file is still in place."""
_READ_BYTES = 64


class WakeSignal:
    """One connection thread's flag, set by the listener's thread: a non-blocking pipe
    whose read end goes in that thread's poller."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)

    def fileno(self) -> int:
        return self._read

    def set(self) -> None:
        """Safe from any thread; a full pipe is a signal already set."""
        with contextlib.suppress(OSError):
            os.write(self._write, b"\x01")

    def clear(self) -> bool:
        """Empty the pipe; True when the signal was set."""
        was_set = False
        while True:
            try:
                chunk = os.read(self._read, 4096)
            except BlockingIOError:
                return was_set
            if not chunk:
                return was_set
            was_set = True

    def close(self) -> None:
        os.close(self._read)
        os.close(self._write)


class WakeListener:
    """Binds the wake-up socket of ``data_dir`` and sets its signals when a writer sends.

    ``signal()`` for each connection before ``start()``; ``stop()`` in a finally.
    ``listening`` says whether the socket is bound (else the agent only polls).
    """

    def __init__(self, data_dir: Path, *, check_seconds: float = CHECK_SECONDS) -> None:
        self._data_dir = data_dir
        self._path = wake_path(data_dir)
        self._check_seconds = check_seconds
        self._signals: list[WakeSignal] = []
        self._sock: socket.socket | None = None
        self._inode: tuple[int, int] | None = None
        self._lock_fd: int | None = None
        self._stop_read, self._stop_write = os.pipe()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.wakes = 0
        """Wake-ups read so far (each may stand for a burst of datagrams)."""

    @property
    def path(self) -> Path:
        return self._path

    @property
    def listening(self) -> bool:
        return self._sock is not None

    def signal(self) -> WakeSignal:
        if self._thread is not None:
            raise RuntimeError("signals are made before the listener starts")
        made = WakeSignal()
        self._signals.append(made)
        return made

    def start(self) -> bool:
        """Bind the socket and start reading it; False (logged) when the agent must poll."""
        if not self._claim():
            return False
        self._thread = threading.Thread(target=self._run, name="synchub-agent-wake", daemon=False)
        self._thread.start()
        return True

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread, remove the socket file if it is still ours, free the lock."""
        if self._closed:
            return
        try:
            if self._thread is not None:
                os.write(self._stop_write, b"\x01")
                self._thread.join(timeout)
                if self._thread.is_alive():
                    log.error("the agent's wake-up thread did not stop within %.0fs", timeout)
                    return
                self._thread = None
            self._unbind()
        finally:
            if self._thread is None:
                self._closed = True
                self._release()
                os.close(self._stop_read)
                os.close(self._stop_write)
                for made in self._signals:
                    made.close()
                self._signals.clear()

    # -- binding -----------------------------------------------------------------------

    def _claim(self) -> bool:
        if not fits_unix_address(wake_staging_path(self._data_dir)):
            log.warning(
                "%s is too long for a local socket (%d bytes, at most %d): the agent finds "
                "new jobs by polling its oplog only; a shorter data_dir path delivers them "
                "at once", self._path, len(os.fsencode(wake_staging_path(self._data_dir))),
                SUN_PATH_MAX,
            )
            return False
        try:
            if not self._lock():
                return False
            self._bind()
        except OSError as exc:
            log.warning("cannot bind %s (%s): the agent finds new jobs by polling its "
                        "oplog only", self._path, exc)
            self._unbind()
            self._release()
            return False
        return True

    def _lock(self) -> bool:
        lock_path = wake_lock_path(self._data_dir)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            os.close(fd)
            log.warning(
                "another agent (pid %s) runs on %s and holds its wake-up socket: this one "
                "finds new jobs by polling only; run one agent per data_dir",
                holder, self._data_dir,
            )
            return False
        except OSError:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self._lock_fd = fd
        return True

    def _release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # frees the flock
            self._lock_fd = None

    def _bind(self) -> None:
        """Bind under the staging name, set the mode, move it into place (the lock is held)."""
        staging = wake_staging_path(self._data_dir)
        with contextlib.suppress(FileNotFoundError):
            staging.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.bind(str(staging))
            os.chmod(staging, wake_mode(self._database_mode()))
            os.replace(staging, self._path)
            info = self._path.stat()
        except OSError:
            sock.close()
            with contextlib.suppress(OSError):
                staging.unlink()
            raise
        old, self._sock = self._sock, sock
        if old is not None:
            old.close()
        self._inode = (info.st_dev, info.st_ino)

    def _database_mode(self) -> int:
        try:
            return oplog_path(self._data_dir).stat().st_mode
        except OSError:
            return 0o600

    def _in_place(self) -> bool:
        try:
            info = self._path.stat()
        except OSError:
            return False
        return (info.st_dev, info.st_ino) == self._inode

    def _unbind(self) -> None:
        sock, self._sock = self._sock, None
        if sock is None:
            return
        if self._in_place():
            with contextlib.suppress(OSError):
                self._path.unlink()
        sock.close()
        self._inode = None

    # -- the thread --------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            sock = self._sock
            if sock is None:
                return
            try:
                ready, _, _ = select.select(
                    [sock.fileno(), self._stop_read], [], [], self._check_seconds
                )
            except OSError:
                log.exception("the agent's wake-up socket failed: polling only from now")
                return
            if self._stop_read in ready:
                return
            if sock.fileno() in ready:
                self._drain(sock)
                continue
            self._check_in_place()

    def _drain(self, sock: socket.socket) -> None:
        got = False
        while True:
            try:
                sock.recv(_READ_BYTES)
            except BlockingIOError:
                break
            except OSError:
                log.debug("reading the wake-up socket failed", exc_info=True)
                break
            got = True
        if got:
            self.wakes += 1
            for made in self._signals:
                made.set()

    def _check_in_place(self) -> None:
        if self._in_place():
            return
        try:
            self._bind()
        except OSError as exc:
            log.warning("%s was removed and cannot be bound again (%s): the agent finds "
                        "new jobs by polling only", self._path, exc)
            self._unbind()
            return
        log.info("%s was removed or replaced: bound again", self._path)
