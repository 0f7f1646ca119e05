"""The agent's own lookup of a hub's host name, off the connection's thread.

libzmq resolves a ``tcp://`` endpoint's name inside its I/O thread and, when that
fails, only schedules another try (``ZMQ_EVENT_CONNECT_RETRIED``, nothing else).
To say that the name does not resolve, and in the resolver's words, the agent looks
the name up itself once per connection, in a short-lived thread of its own, so a
slow resolver never holds the connection's loop. The connection polls ``result``.
"""

from __future__ import annotations

import queue
import socket
import threading


class HostLookup:
    """One ``getaddrinfo`` of ``host``:``port`` in a daemon thread; ``result`` polls it."""

    def __init__(self, host: str, port: str) -> None:
        self._answer: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._done = False
        self._thread = threading.Thread(
            target=self._run, args=(host, port), name=f"synchub-lookup-{host}", daemon=True
        )
        self._thread.start()

    def _run(self, host: str, port: str) -> None:
        try:
            socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            self._answer.put(exc.strerror or str(exc))
        except (OSError, UnicodeError) as exc:
            self._answer.put(str(exc) or type(exc).__name__)
        else:
            self._answer.put(None)

    def result(self) -> tuple[bool, str | None]:
        """(finished, the resolver's error or None); asked once it finished, (False, None)."""
        if self._done:
            return False, None
        try:
            error = self._answer.get_nowait()
        except queue.Empty:
            return False, None
        self._done = True
        return True, error

    def join(self, timeout: float) -> None:
        """Wait a little for the lookup to end (it is a daemon: it never holds an exit)."""
        self._thread.join(timeout)
