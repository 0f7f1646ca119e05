"""Logs on demand (docs/protocol.md §6.7 (Logs on demand)), both sides, without I/O.

A hub asks a connected client for part of the log of one of the client's own
operations with ``request_log { request_id, operation_id, offset, max_bytes }``;
the client answers with one or more ``log_data`` items carrying that request id,
the last one marked ``last``. Each item holds at most ``LOG_CHUNK_BYTES`` of the
log and one answer at most ``LOG_REQUEST_MAX_BYTES``, whatever was asked. An
answer that does not serve the log is one item with a status other than OK.

- The hub's side, ``LogRequests``: the requests one session has open (at most
  ``LOG_REQUESTS_PER_SESSION``), their deadlines, and the chunks of each answer,
  checked and put together. A chunk larger than the limit, more data than was
  asked, or a gap is a ProtocolError; an answer to no open request (a late one)
  is ignored.
- The client's side, ``LogServer``: whether to serve a request (its own
  operations only, those a ``read_logs`` permission covers, at most
  ``LOG_ANSWERS_AT_ONCE`` at a time) and the lazy source of the answer's frames,
  each chunk read from the ``LogSource`` only when the frame is about to go out.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from hub.errors import LogFetchError, LogUnavailable, ProtocolError
from hub.pb import synchub_pb2 as pb
from hub.protocol._codec import encode_item
from hub.protocol._scope import SyncScope
from hub.store import LogSlice

LOG_CHUNK_BYTES = 64 * 1024
"""The most log data one ``log_data`` item carries."""
LOG_REQUEST_MAX_BYTES = 1024 * 1024
"""The most log data one answer carries; a larger ``max_bytes`` is served up to this."""
LOG_REQUESTS_PER_SESSION = 4
"""The requests a hub keeps open with one client at once."""
LOG_ANSWERS_AT_ONCE = 4
"""The requests a client answers at once; more are answered BUSY."""
LOG_REPLIES_QUEUED = 64
"""Answers a client lets wait to be sent; requests beyond are dropped unanswered."""
LOG_REQUEST_TIMEOUT = 10.0
"""Seconds a hub waits for the last item of an answer."""

OK = pb.LOG_STATUS_OK
NOT_FOUND = pb.LOG_STATUS_NOT_FOUND
NOT_AVAILABLE = pb.LOG_STATUS_NOT_AVAILABLE
DENIED = pb.LOG_STATUS_DENIED
BUSY = pb.LOG_STATUS_BUSY
BAD_REQUEST = pb.LOG_STATUS_BAD_REQUEST

W = TypeVar("W")


@dataclass(frozen=True, slots=True)
class LogQuery:
    """What a hub asks for: part of the log of the client's operation ``operation_id``
    (the client's own id), from ``offset``, at most ``max_bytes``."""

    operation_id: int
    offset: int = 0
    max_bytes: int = LOG_REQUEST_MAX_BYTES


@dataclass(frozen=True, slots=True)
class LogAnswer:
    """A whole answer: the log from ``offset`` (``data``), its size when read, the first
    offset still kept (``log_start``), and ``complete`` once the operation has ended;
    or a status saying why not. Offsets are positions in the job's whole output."""

    status: int = OK
    offset: int = 0
    data: bytes = b""
    log_size: int = 0
    complete: bool = False
    message: str = ""
    log_start: int = 0

    @property
    def ok(self) -> bool:
        return self.status == OK

    @property
    def status_name(self) -> str:
        return (
            pb.LogStatus.Name(self.status)
            if self.status in pb.LogStatus.values()
            else str(self.status)
        )


def request_log_item(request_id: int, query: LogQuery) -> pb.SyncStreamItem:
    return pb.SyncStreamItem(request_log=pb.SyncStreamItem.RequestLog(
        request_id=request_id, operation_id=query.operation_id, offset=query.offset,
        max_bytes=query.max_bytes,
    ))


def log_data_item(request_id: int, answer: LogAnswer, *, last: bool) -> pb.SyncStreamItem:
    return pb.SyncStreamItem(log_data=pb.SyncStreamItem.LogData(
        request_id=request_id, status=answer.status,  # type: ignore[arg-type]
        offset=answer.offset, data=answer.data, last=last, log_size=answer.log_size,
        complete=answer.complete, message=answer.message, log_start=answer.log_start,
    ))


# --- the hub's side -----------------------------------------------------------------------


@dataclass
class _Open(Generic[W]):
    waiter: W
    query: LogQuery
    deadline: float
    next_offset: int | None = None
    """Where the next chunk must start; None before the first."""
    parts: list[bytes] = field(default_factory=list)
    received: int = 0
    first_offset: int = 0


class LogRequests(Generic[W]):
    """The log requests one hub session has open. Pure bookkeeping; time is passed in.

    ``W`` is whatever waits for an answer (the session's reply slot): ``receive``,
    ``expire`` and ``close`` hand it back with the outcome.
    """

    def __init__(
        self, *, limit: int = LOG_REQUESTS_PER_SESSION, timeout: float = LOG_REQUEST_TIMEOUT
    ) -> None:
        self._limit = limit
        self._timeout = timeout
        self._open: dict[int, _Open[W]] = {}
        self._last_id = 0

    def __len__(self) -> int:
        return len(self._open)

    def open(self, query: LogQuery, waiter: W, now: float) -> bytes:
        """The ``request_log`` frame asking for ``query``; LogFetchError when too many
        requests are open or the query is out of bounds."""
        if query.operation_id <= 0 or query.offset < 0:
            raise LogFetchError(
                f"bad log request: operation {query.operation_id}, offset {query.offset}"
            )
        if not 0 < query.max_bytes <= LOG_REQUEST_MAX_BYTES:
            raise LogFetchError(
                f"bad log request: max_bytes must be 1-{LOG_REQUEST_MAX_BYTES}, "
                f"got {query.max_bytes}"
            )
        if len(self._open) >= self._limit:
            raise LogFetchError(
                f"{self._limit} log requests are already waiting for this client; "
                "try again when they are answered"
            )
        self._last_id += 1
        self._open[self._last_id] = _Open(waiter, query, now + self._timeout)
        return encode_item(request_log_item(self._last_id, query))

    def receive(self, chunk: pb.SyncStreamItem.LogData) -> tuple[W, LogAnswer] | None:
        """Take one ``log_data``: the waiter and the whole answer once its last item came,
        None before that or for a request that is not open (any more)."""
        pending = self._open.get(chunk.request_id)
        if pending is None:
            return None
        if chunk.status != OK:
            if chunk.data:
                raise ProtocolError("a log_data with a status other than OK must carry no data")
            del self._open[chunk.request_id]
            answer = LogAnswer(status=chunk.status, offset=chunk.offset, message=chunk.message)
            return pending.waiter, answer
        self._check_chunk(pending, chunk)
        if pending.next_offset is None:
            pending.first_offset = chunk.offset
        pending.parts.append(chunk.data)
        pending.received += len(chunk.data)
        pending.next_offset = chunk.offset + len(chunk.data)
        if not chunk.last:
            return None
        del self._open[chunk.request_id]
        answer = LogAnswer(
            status=OK, offset=pending.first_offset, data=b"".join(pending.parts),
            log_size=chunk.log_size, complete=chunk.complete, log_start=chunk.log_start,
        )
        return pending.waiter, answer

    def expire(self, now: float) -> list[W]:
        """The waiters of requests past their deadline (no longer open)."""
        due = [rid for rid, pending in self._open.items() if now >= pending.deadline]
        return [self._open.pop(rid).waiter for rid in due]

    def close(self) -> list[W]:
        """Every open request's waiter: the session is ending."""
        waiters = [pending.waiter for pending in self._open.values()]
        self._open.clear()
        return waiters

    @staticmethod
    def _check_chunk(pending: _Open[W], chunk: pb.SyncStreamItem.LogData) -> None:
        if len(chunk.data) > LOG_CHUNK_BYTES:
            raise ProtocolError(
                f"a log_data item carries {len(chunk.data)} bytes; at most {LOG_CHUNK_BYTES}"
            )
        # The first chunk starts where asked, or where the kept part of the log starts
        # when that is later; each next one where the previous one ended.
        expected = pending.next_offset
        if expected is None:
            expected = max(pending.query.offset, chunk.log_start)
        if chunk.offset != expected:
            raise ProtocolError(
                f"log_data for request {chunk.request_id} starts at offset {chunk.offset}; "
                f"expected {expected}"
            )
        if pending.received + len(chunk.data) > pending.query.max_bytes:
            raise ProtocolError(
                f"the answer to log request {chunk.request_id} carries more than the "
                f"{pending.query.max_bytes} bytes asked for"
            )


# --- the client's side --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LocalLog:
    """One of the client's own operations, as far as serving its log goes."""

    operation_id: int
    repo_guid: str
    plan_id: str
    logref: str
    finished: bool
    """The operation has ended: its log will not grow."""
    output_size: int = 0
    """The size of the job's whole output once it ended (0: unknown)."""


class LogSource(Protocol):
    """Where a client finds its own operations' logs (the agent's local oplog and files)."""

    def find_log(self, operation_id: int) -> LocalLog | None:
        """This node's own operation ``operation_id``; None when it has none by that id."""
        ...

    def read_log(self, log: LocalLog, offset: int, length: int) -> LogSlice:
        """Up to ``length`` bytes of the job's output from ``offset`` (the first byte kept
        when that is later); LogUnavailable when it cannot be read."""
        ...


class LogServer:
    """A client's side of logs on demand, for one session with one hub.

    ``scope`` is what that hub's ``read_logs`` permissions cover. Used by the
    thread that drives the session only.
    """

    def __init__(
        self, source: LogSource | None, scope: SyncScope, *, who: str, log: logging.Logger,
        warn_every: float = 60.0,
    ) -> None:
        self._source = source
        self._scope = scope
        self._who = who
        self._log = log
        self._warn_every = warn_every
        self._next_warning = 0.0
        self._answering = 0
        self.dropped = 0

    @classmethod
    def refusing(cls, *, who: str, log: logging.Logger) -> LogServer:
        """A server for a client that serves no logs: it answers every request DENIED."""
        return cls(None, SyncScope(()), who=who, log=log)

    @property
    def answering(self) -> int:
        """Answers started and not yet fully sent."""
        return self._answering

    def respond(
        self, request: pb.SyncStreamItem.RequestLog, now: float, *, queued: int
    ) -> bytes | Iterator[bytes] | None:
        """What to queue for ``request`` while ``queued`` answers wait to be sent: its
        answer, or None when so many wait that the request is dropped unanswered (a hub
        flooding requests then sees its own timeouts, and this client's memory stays
        bounded)."""
        if queued >= LOG_REPLIES_QUEUED:
            self.dropped += 1
            level = logging.WARNING if self.dropped == 1 else logging.DEBUG
            self._log.log(level, "%s floods log requests: %d dropped unanswered so far",
                          self._who, self.dropped)
            return None
        return self.answer(request, now)

    def answer(self, request: pb.SyncStreamItem.RequestLog, now: float) -> bytes | Iterator[bytes]:
        """The frames answering ``request``: one status frame, or the log's chunks, read as
        they are taken."""
        rid = request.request_id
        found = self._check(request, now)
        if isinstance(found, LogAnswer):
            return encode_item(log_data_item(rid, found, last=True))
        budget = min(request.max_bytes, LOG_REQUEST_MAX_BYTES)
        self._answering += 1
        return _Chunks(self, found, rid, request.offset, budget)

    def _check(self, request: pb.SyncStreamItem.RequestLog, now: float) -> LocalLog | LogAnswer:
        """The operation whose log to serve, or the answer refusing it."""
        op_id = request.operation_id
        if request.request_id <= 0 or op_id <= 0 or request.offset < 0 or request.max_bytes <= 0:
            return LogAnswer(BAD_REQUEST, message="request_id, operation_id and max_bytes "
                             "must be > 0 and offset >= 0")
        if self._answering >= LOG_ANSWERS_AT_ONCE:
            return LogAnswer(BUSY, message=f"already answering {self._answering} log requests")
        if self._source is None or not self._scope.selections:
            self._warn(now, "%s asked for the log of operation %d; refused: this node grants "
                       "it no read_logs permission", op_id)
            return LogAnswer(DENIED, message="this client grants this hub no read_logs "
                             "permission")
        found = self._source.find_log(op_id)
        if found is None:
            return LogAnswer(NOT_FOUND, message=f"this client has no operation {op_id} of its own")
        if not self._scope.covers(found.repo_guid, found.plan_id):
            self._warn(now, "%s asked for the log of operation %d; refused: no read_logs "
                       "permission for it covers it", op_id)
            return LogAnswer(DENIED, message=f"no read_logs permission covers operation {op_id}")
        if not found.logref:
            return LogAnswer(NOT_AVAILABLE, message=f"operation {op_id} has no log")
        return found

    def _warn(self, now: float, message: str, op_id: int) -> None:
        # Refusals are logged for the operator, but a hub that floods them is not
        # allowed to flood the log: one warning a minute, the rest at debug level.
        level = logging.DEBUG
        if now >= self._next_warning:
            level, self._next_warning = logging.WARNING, now + self._warn_every
        self._log.log(level, message, self._who, op_id)

    def answer_sent(self) -> None:
        """One answer's last frame was taken."""
        self._answering -= 1

    def read(self, log: LocalLog, offset: int, length: int) -> LogSlice:
        if self._source is None:
            raise LogUnavailable("this client serves no logs")
        return self._source.read_log(log, offset, length)


class _Chunks:
    """The frames of one answer, each chunk read when the frame is taken."""

    def __init__(self, server: LogServer, log: LocalLog, rid: int, offset: int, budget: int):
        self._server = server
        self._log = log
        self._rid = rid
        self._offset = offset
        self._budget = budget
        self._started = False
        self._done = False

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._done:
            raise StopIteration
        want = min(LOG_CHUNK_BYTES, self._budget)
        try:
            part = self._server.read(self._log, self._offset, want)
        except LogUnavailable as exc:
            if not self._started:
                why = f"operation {self._log.operation_id}: {exc}"
                failed = LogAnswer(NOT_AVAILABLE, message=why)
                return self._finish(encode_item(log_data_item(self._rid, failed, last=True)))
            return self._finish(self._frame(b"", last=True))
        if self._started and part.offset != self._offset:
            # What came next was cut from the log meanwhile: this answer ends here, and
            # the next request learns where the kept part starts.
            return self._finish(self._frame(b"", last=True, start=part.start, size=part.size))
        self._started = True
        self._offset = part.offset
        data = part.data[:want]
        self._budget -= len(data)
        end = part.offset + len(data)
        last = len(data) < want or self._budget <= 0 or end >= part.size
        frame = self._frame(data, last=last, start=part.start, size=part.size,
                            complete=self._log.finished and end >= part.size)
        self._offset = end
        return self._finish(frame) if last else frame

    def _frame(self, data: bytes, *, last: bool, start: int = 0, size: int = 0,
               complete: bool = False) -> bytes:
        answer = LogAnswer(OK, offset=self._offset, data=data, log_size=size or self._offset,
                           complete=complete, log_start=start)
        return encode_item(log_data_item(self._rid, answer, last=last))

    def _finish(self, frame: bytes) -> bytes:
        self._done = True
        self._server.answer_sent()
        return frame
