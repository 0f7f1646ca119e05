"""The agent's end of the wake-up socket (``hub.store._wake`` is the writers' end).

Who owns what: ``WakeListener`` owns the Unix datagram socket
``<data_dir>/agent.wake`` and the lock ``<data_dir>/agent.lock``, and a thread
that only checks, every ``CHECK_SECONDS``, that the socket file is still its own
(binding it again if it was deleted or replaced). Each connection thread has a
``WakeSignal``: the socket and a pipe of its own, both in that thread's poller.
Whichever connection thread finds the socket readable reads every datagram
waiting (a burst is one wake-up), tells its own session, and sets the other
connections' pipes; a connection whose pipe is set tells its session. So with one
hub a wake-up reaches the session with no thread in between.

Binding: the listener takes the lock first (``flock``, released by the kernel
when a process dies), so only one agent per data_dir binds the socket; a second
agent on the same data_dir logs that and only polls. Holding the lock, whatever
socket file is there is a dead agent's: the new socket is bound under a staging
name, given the database's privacy (``wake_mode``), and renamed over it. A socket
replaced by a new binding stays open, unread, until the listener stops, so no
connection thread ever polls a closed descriptor. A path too long for a socket
address, or any error binding, leaves the agent polling, logged once.
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


def _read_all(fd: int) -> bool:
    """Empty a non-blocking pipe; True when it held anything."""
    got = False
    while True:
        try:
            chunk = os.read(fd, 4096)
        except BlockingIOError:
            return got
        if not chunk:
            return got
        got = True


class WakeSignal:
    """One connection thread's end of the wake-up: the descriptors to poll (``fds``)
    and ``take`` once one of them is readable. Used by that thread only, but for
    ``set``, which any thread may call."""

    def __init__(self, listener: WakeListener) -> None:
        self._listener = listener
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self.taken = 0
        """Wake-ups this connection took (written by its thread only)."""

    def fds(self) -> tuple[int, ...]:
        """The pipe and, while the listener has one, the socket."""
        sock = self._listener.socket
        return (self._read,) if sock is None else (self._read, sock.fileno())

    def set(self) -> None:
        """Safe from any thread; a full pipe is a signal already set."""
        with contextlib.suppress(OSError):
            os.write(self._write, b"\x01")

    def take(self) -> bool:
        """Read the pipe and the socket; True when a writer woke this connection
        (each wake-up read from the socket is passed on to the other connections)."""
        woken = _read_all(self._read)
        if self._listener.drain(self):
            woken = True
        if woken:
            self.taken += 1
        return woken

    def close(self) -> None:
        os.close(self._read)
        os.close(self._write)


class WakeListener:
    """Binds the wake-up socket of ``data_dir``; its signals are read by the connections.

    ``signal()`` for each connection before ``start()``; ``stop()`` in a finally.
    ``listening`` says whether the socket is bound (else the agent only polls).
    """

    def __init__(self, data_dir: Path, *, check_seconds: float = CHECK_SECONDS) -> None:
        self._data_dir = data_dir
        self._path = wake_path(data_dir)
        self._check_seconds = check_seconds
        self._signals: list[WakeSignal] = []
        self.socket: socket.socket | None = None
        """The bound socket (replaced by a new binding; None when not listening)."""
        self._retired: list[socket.socket] = []
        self._inode: tuple[int, int] | None = None
        self._lock_fd: int | None = None
        self._stop_read, self._stop_write = os.pipe()
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def path(self) -> Path:
        return self._path

    @property
    def listening(self) -> bool:
        return self.socket is not None

    @property
    def wakes(self) -> int:
        """Wake-ups the connections took so far (each may stand for a burst)."""
        return sum(made.taken for made in self._signals)

    def signal(self) -> WakeSignal:
        if self._thread is not None:
            raise RuntimeError("signals are made before the listener starts")
        made = WakeSignal(self)
        self._signals.append(made)
        return made

    def start(self) -> bool:
        """Bind the socket and start checking it; False (logged) when the agent must poll."""
        if not self._claim():
            return False
        self._thread = threading.Thread(target=self._run, name="synchub-agent-wake", daemon=False)
        self._thread.start()
        return True

    def drain(self, taker: WakeSignal) -> bool:
        """Read every datagram waiting; when there were any, set every signal but
        ``taker``'s and say True. Called by the connection threads."""
        sock = self.socket
        if sock is None:
            return False
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
            for made in self._signals:
                if made is not taker:
                    made.set()
        return got

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread, remove the socket file if it is still ours, free the lock.

        Call once no connection thread uses the signals any more.
        """
        if self._closed:
            return
        if self._thread is not None:
            os.write(self._stop_write, b"\x01")
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("the agent's wake-up thread did not stop within %.0fs", timeout)
                return
            self._thread = None
        self._closed = True
        try:
            self._unbind()
        finally:
            self._release()
            os.close(self._stop_read)
            os.close(self._stop_write)
            for made in self._signals:
                made.close()
            self._signals.clear()

    # -- binding -----------------------------------------------------------------------

    def _claim(self) -> bool:
        staging = wake_staging_path(self._data_dir)
        if not fits_unix_address(staging):
            log.warning(
                "%s is too long for a local socket (%d bytes, at most %d): the agent finds "
                "new jobs by polling its oplog only; a shorter data_dir path delivers them "
                "at once", self._path, len(os.fsencode(staging)), SUN_PATH_MAX,
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
        fd = os.open(wake_lock_path(self._data_dir), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                     0o600)
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
        if self.socket is not None:
            self._retired.append(self.socket)
        self.socket = sock
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
        sock, self.socket = self.socket, None
        if sock is not None:
            if self._in_place():
                with contextlib.suppress(OSError):
                    self._path.unlink()
            self._retired.append(sock)
        self._inode = None
        for old in self._retired:
            old.close()
        self._retired.clear()

    # -- the thread: the socket file stays in place -------------------------------------

    def _run(self) -> None:
        while self.socket is not None:
            ready, _, _ = select.select([self._stop_read], [], [], self._check_seconds)
            if ready:
                return
            if self._in_place():
                continue
            try:
                self._bind()
            except OSError as exc:
                log.warning("%s was removed and cannot be bound again (%s): the agent "
                            "finds new jobs by polling only", self._path, exc)
                return
            log.info("%s was removed or replaced: bound again", self._path)
