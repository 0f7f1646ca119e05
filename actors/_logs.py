"""Fetching a job's log from a client through its live session (docs/protocol.md §6.7
(Logs on demand)).

The path, without blocking any actor:

1. A reader (the admin socket's thread; a web handler) asks the OplogActor for the
   operation and the PeerStateActor for the live session of the operation's owner
   (``PeerStateProxy.live_session``), both asks with timeouts.
2. It tells that SessionActor a ``FetchLog``: the query in the client's ids and a
   ``LogReply``, a one-shot slot the reader then waits on (with a timeout).
3. The session, in its own thread, opens the request (``SessionLogs.fetch``: at
   most ``LOG_REQUESTS_PER_SESSION`` at once) and sends ``request_log`` through its
   outbox; it goes on handling its peer's frames meanwhile.
4. The client's ``log_data`` items arrive as frames of that session; the session
   checks them and, with the last one, fills the reply. A request not answered in
   ``LOG_REQUEST_TIMEOUT`` (its ticks tell), or open when the session ends, is
   failed with a message saying so.

A ``LogReply`` is the one thing in these messages that is not immutable: it is a
thread-safe slot (a pykka future) that only the session fills, once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pykka

from hub.errors import LogFetchError
from hub.pb import synchub_pb2 as pb
from hub.protocol import LOG_REQUEST_TIMEOUT, LogAnswer, LogQuery, LogRequests

log = logging.getLogger(__name__)


class LogReply:
    """Where a session delivers the outcome of one ``FetchLog``; filled once, read once."""

    def __init__(self) -> None:
        self._future: pykka.Future[LogAnswer] = pykka.ThreadingFuture()
        self._filled = False

    def answer(self, answer: LogAnswer) -> None:
        if not self._filled:
            self._filled = True
            self._future.set(answer)

    def fail(self, message: str) -> None:
        if not self._filled:
            self._filled = True
            error = LogFetchError(message)
            self._future.set_exception((LogFetchError, error, None))

    def wait(self, timeout: float) -> LogAnswer:
        """The client's answer; LogFetchError when it failed or did not come in time."""
        try:
            return self._future.get(timeout=timeout)
        except pykka.Timeout as exc:
            raise LogFetchError(
                f"no answer from the client's session within {timeout:g}s"
            ) from exc


@dataclass(frozen=True, slots=True)
class FetchLog:
    """Told to a SessionActor: ask its client for ``query``; the outcome goes to ``reply``."""

    query: LogQuery
    reply: LogReply


class SessionLogs:
    """The log requests one session has open; used by that session's thread only.

    ``send`` queues frames to the session's peer, ``clock`` is the session's time
    (the last it was told). Until ``connected`` names the client every fetch fails.
    """

    def __init__(
        self,
        session_id: str,
        *,
        send: Callable[[Sequence[bytes]], None],
        clock: Callable[[], float],
        timeout: float = LOG_REQUEST_TIMEOUT,
    ) -> None:
        self._session_id = session_id
        self._send = send
        self._clock = clock
        self._timeout = timeout
        self._requests: LogRequests[LogReply] = LogRequests(timeout=timeout)
        self._who: str | None = None

    def connected(self, who: str) -> None:
        """The session is connected to the client ``who`` (its instance id)."""
        self._who = who

    def fetch(self, message: FetchLog) -> None:
        """Send ``message``'s request to the client, or fail it when that cannot be."""
        if self._who is None:
            message.reply.fail("the client's session is not connected (any more)")
            return
        try:
            frame = self._requests.open(message.query, message.reply, self._clock())
        except LogFetchError as exc:
            message.reply.fail(f"client {self._who}: {exc}")
            return
        self._send([frame])

    def received(self, chunk: pb.SyncStreamItem.LogData) -> None:
        """One ``log_data`` from the client; ProtocolError when it breaks the rules."""
        done = self._requests.receive(chunk)
        if done is None:
            if chunk.last:
                log.debug("session %s: %s answered log request %d, which is no longer open",
                          self._session_id, self._who, chunk.request_id)
            return
        reply, answer = done
        reply.answer(answer)

    def expire(self, now: float) -> None:
        if not len(self._requests):
            return
        for reply in self._requests.expire(now):
            reply.fail(
                f"client {self._who} did not answer the log request within "
                f"{self._timeout:g}s (an agent older than this hub does not serve logs)"
            )

    def close(self, reason: str) -> None:
        """The session ended: every open request fails, and so does every later fetch."""
        who, self._who = self._who, None
        for reply in self._requests.close():
            reply.fail(f"client {who}'s session ended before it answered: {reason}")
