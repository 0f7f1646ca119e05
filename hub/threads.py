"""One base for the hub's threaded services: start, wait until ready, re-raise a startup
error, stop with a timeout.

A ``ThreadService`` owns one thread and whatever that thread opens (its sockets): the
subclass opens them in ``_open`` (in the thread), serves until ``stopping`` is set in
``_serve``, and closes them in ``_close``, which runs whether ``_open`` got all the way
or not. The caller's thread only ever starts and stops it. The front (hub.server) and
the admin socket (hub.admin) are the two services; this module imports neither.
"""

from __future__ import annotations

import abc
import logging
import threading

from hub.errors import ServiceError, SynchubError

log = logging.getLogger(__name__)


class ThreadService(abc.ABC):
    """A service thread: ``start()`` it, and ``stop()`` it in a ``finally``.

    ``start`` returns once the thread has opened what it serves, with the address
    ``_open`` returned, or raises the subclass's startup error (``from`` the cause).
    A service is started once.
    """

    def __init__(self, *, thread_name: str, what: str, failure_note: str) -> None:
        """``what`` names the service in messages ("the front"); ``failure_note`` is
        logged when serving fails, and says what that means for the operator."""
        self._thread_name = thread_name
        self._what = what
        self._failure_note = failure_note
        self._stopping = threading.Event()
        self._ready = threading.Event()
        self._startup_error: Exception | None = None
        self._address = ""
        self._thread: threading.Thread | None = None

    @property
    def stopping(self) -> threading.Event:
        """Set once ``stop()`` has been called; ``_serve`` returns soon after."""
        return self._stopping

    @property
    def running(self) -> bool:
        """True while the service's thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self, timeout: float = 10.0) -> str:
        """Open and serve in a new thread; return what ``_open`` returned."""
        if self._thread is not None:
            raise RuntimeError(f"{self._what} was already started")
        self._thread = threading.Thread(target=self._run, name=self._thread_name, daemon=False)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise self._startup_timeout(timeout)
        if self._startup_error is not None:
            self._thread.join()
            raise self._startup_failed(self._startup_error) from self._startup_error
        return self._address

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the thread to finish and wait for it; safe to call more than once."""
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is None:
            return
        thread.join(timeout)
        if thread.is_alive():
            log.error("%s did not stop within %.0fs", self._what, timeout)

    # -- what a service provides ------------------------------------------------------

    @abc.abstractmethod
    def _open(self) -> str:
        """In the service thread: open what it serves; return its address."""

    @abc.abstractmethod
    def _serve(self) -> None:
        """In the service thread: serve until ``stopping`` is set."""

    @abc.abstractmethod
    def _close(self) -> None:
        """In the service thread: close whatever ``_open`` opened (some of it may be missing)."""

    def _startup_timeout(self, timeout: float) -> SynchubError:
        return ServiceError(f"{self._what} was not ready within {timeout}s; see the log")

    def _startup_failed(self, error: Exception) -> SynchubError:
        return ServiceError(f"{self._what} did not start: {error}")

    # -- the thread ---------------------------------------------------------------------

    def _run(self) -> None:
        try:
            try:
                self._address = self._open()
            except Exception as exc:
                self._startup_error = exc
                return
            finally:
                self._ready.set()
            self._serve()
        except Exception:
            log.exception("%s failed; %s", self._what, self._failure_note)
        finally:
            self._close()
