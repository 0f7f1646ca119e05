"""Logs on demand without sockets (docs/protocol.md §6.7 (Logs on demand)): the hub's
open requests, the client's answers, the files a client serves, and a ClientSession
answering a hub's request_log ahead of its other data."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from test_client_session import (
    ONCE,
    RUNNING,
    SHARED,
    T0,
    MemoryOplog,
    connect,
    drain,
    make_session,
    oplog_with,
)

from hub.agent import LocalOplog
from hub.errors import LogFetchError, LogUnavailable, ProtocolError
from hub.pb import synchub_pb2 as pb
from hub.protocol import (
    LOG_ANSWERS_AT_ONCE,
    LOG_CHUNK_BYTES,
    LOG_REPLIES_QUEUED,
    LOG_REQUEST_MAX_BYTES,
    ClientHandshake,
    ClientSession,
    DiffSelection,
    HubPin,
    LocalLog,
    LogAnswer,
    LogQuery,
    LogRequests,
    LogServer,
    SyncScope,
    decode_item,
    diff_reply_frame,
    encode_item,
    log_data_item,
    request_log_item,
)
from hub.store import LocalLogs, LogSlice, SqliteOplogStore, oplog_path
from synchub_testing import CLIENT, HUB, HUB_INSTANCE

EVERYTHING = SyncScope((DiffSelection("guid-nas"), DiffSelection("")))
NAS_ONLY = SyncScope((DiffSelection("guid-nas"),))
NOTHING = SyncScope(())
log = logging.getLogger("test-logs")


class MemoryLogs:
    """A LogSource in memory: the client's own operations and their logs."""

    def __init__(self) -> None:
        self.ops: dict[int, LocalLog] = {}
        self.files: dict[str, bytes] = {}
        self.reads: list[tuple[int, int]] = []

    def add(self, op_id: int, content: bytes | None, *, repo_guid: str = "",
            finished: bool = True, logref: str | None = None, output_size: int = 0) -> None:
        ref = f"logs/{op_id}.log" if logref is None else logref
        self.ops[op_id] = LocalLog(op_id, repo_guid, "", ref, finished, output_size)
        if content is not None:
            self.files[ref] = content

    def find_log(self, operation_id: int) -> LocalLog | None:
        return self.ops.get(operation_id)

    def read_log(self, found: LocalLog, offset: int, length: int) -> LogSlice:
        self.reads.append((offset, length))
        if found.logref not in self.files:
            raise LogUnavailable(f"its log file {found.logref} no longer exists")
        content = self.files[found.logref]
        # The output's first ``cut`` bytes are gone when the file is shorter than it was.
        cut = found.output_size - len(content) if found.output_size > len(content) else 0
        start = max(offset, cut)
        return LogSlice(content[start - cut : start - cut + length], start, cut,
                        cut + len(content))


def request(op_id: int, *, rid: int = 1, offset: int = 0,
            max_bytes: int = LOG_REQUEST_MAX_BYTES) -> pb.SyncStreamItem.RequestLog:
    return request_log_item(rid, LogQuery(op_id, offset, max_bytes)).request_log


def frames_of(reply: bytes | object) -> list[pb.SyncStreamItem.LogData]:
    frames = [reply] if isinstance(reply, bytes) else list(reply)  # type: ignore[call-overload]
    return [decode_item(frame).log_data for frame in frames]


def server(source: MemoryLogs | None = None, scope: SyncScope = EVERYTHING) -> LogServer:
    return LogServer(source or MemoryLogs(), scope, who="hub hub-1", log=log)


# --- the client's answers -------------------------------------------------------------------


def test_a_log_is_served_in_bounded_chunks_with_its_size_and_end() -> None:
    source = MemoryLogs()
    content = os.urandom(100_000)
    source.add(7, content)
    items = frames_of(server(source).answer(request(7), T0))
    assert [len(i.data) for i in items] == [LOG_CHUNK_BYTES, 100_000 - LOG_CHUNK_BYTES]
    assert [i.offset for i in items] == [0, LOG_CHUNK_BYTES]
    assert b"".join(i.data for i in items) == content
    assert [i.last for i in items] == [False, True]
    assert all(i.request_id == 1 and i.status == pb.LOG_STATUS_OK for i in items)
    assert items[-1].log_size == 100_000 and items[-1].complete


def test_an_oversized_request_is_served_up_to_the_limit() -> None:
    source = MemoryLogs()
    source.add(7, b"x" * (3 * LOG_REQUEST_MAX_BYTES))
    items = frames_of(server(source).answer(request(7, max_bytes=2**40), T0))
    assert sum(len(i.data) for i in items) == LOG_REQUEST_MAX_BYTES
    assert max(len(i.data) for i in items) <= LOG_CHUNK_BYTES
    assert items[-1].last and not items[-1].complete
    assert items[-1].log_size == 3 * LOG_REQUEST_MAX_BYTES


def test_the_chunks_are_read_as_they_are_taken() -> None:
    source = MemoryLogs()
    source.add(7, b"y" * (4 * LOG_CHUNK_BYTES))
    answer = server(source).answer(request(7), T0)
    assert not isinstance(answer, bytes)
    assert source.reads == []
    next(answer)
    assert source.reads == [(0, LOG_CHUNK_BYTES)]


def test_a_running_jobs_log_is_not_complete_and_past_the_end_is_empty() -> None:
    source = MemoryLogs()
    source.add(3, b"so far", finished=False)
    [part] = frames_of(server(source).answer(request(3, offset=2), T0))
    assert (part.offset, part.data, part.log_size, part.last, part.complete) == (
        2, b" far", 6, True, False
    )
    source.add(4, b"done")
    [past] = frames_of(server(source).answer(request(4, offset=10), T0))
    assert (past.offset, past.data, past.log_size, past.last, past.complete) == (
        10, b"", 4, True, True
    )


@pytest.mark.parametrize(
    ("rid", "op_id", "offset", "max_bytes"),
    [(0, 1, 0, 10), (1, 0, 0, 10), (1, 1, -1, 10), (1, 1, 0, 0), (-5, 1, 0, 10)],
)
def test_a_malformed_request_is_a_bad_request(rid: int, op_id: int, offset: int,
                                               max_bytes: int) -> None:
    bad = pb.SyncStreamItem.RequestLog(request_id=rid, operation_id=op_id, offset=offset,
                                       max_bytes=max_bytes)
    [item] = frames_of(server().answer(bad, T0))
    assert item.status == pb.LOG_STATUS_BAD_REQUEST and item.last and not item.data


def test_refusals_say_why(caplog: pytest.LogCaptureFixture) -> None:
    source = MemoryLogs()
    source.add(1, b"secret plan output", repo_guid="guid-vault")
    source.add(2, None, logref="")
    source.add(3, None)
    source.add(4, b"ok", repo_guid="guid-nas")
    scoped = server(source, NAS_ONLY)
    caplog.set_level(logging.WARNING, logger="test-logs")

    def status(op_id: int, srv: LogServer = scoped) -> tuple[int, str]:
        [item] = frames_of(srv.answer(request(op_id), T0))
        assert item.last and not item.data
        return item.status, item.message

    assert status(1)[0] == pb.LOG_STATUS_DENIED
    assert status(99)[0] == pb.LOG_STATUS_NOT_FOUND
    assert status(2, server(source))[0] == pb.LOG_STATUS_NOT_AVAILABLE
    code, message = status(3, server(source))
    assert code == pb.LOG_STATUS_NOT_AVAILABLE and "no longer exists" in message
    # Without any read_logs grant, nothing about existence leaks: everything is denied.
    assert status(99, server(source, NOTHING))[0] == pb.LOG_STATUS_DENIED
    assert status(4, server(source, NOTHING))[0] == pb.LOG_STATUS_DENIED
    assert frames_of(scoped.answer(request(4), T0))[-1].data == b"ok"
    warned = [r for r in caplog.records if "refused" in r.getMessage()]
    assert warned and "hub hub-1 asked for the log of operation 1" in warned[0].getMessage()


def test_refusal_warnings_are_rate_limited(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="test-logs")
    refusing = server(MemoryLogs(), NOTHING)
    for n in range(50):
        refusing.answer(request(1, rid=n + 1), T0 + n * 0.1)
    refusing.answer(request(1, rid=99), T0 + 61)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2


def test_at_most_a_few_answers_at_once_then_busy() -> None:
    source = MemoryLogs()
    source.add(1, b"z" * (2 * LOG_CHUNK_BYTES))
    srv = server(source)
    answers = [srv.answer(request(1, rid=n), T0) for n in range(1, LOG_ANSWERS_AT_ONCE + 1)]
    assert all(not isinstance(a, bytes) for a in answers)
    [busy] = frames_of(srv.answer(request(1, rid=50), T0))
    assert busy.status == pb.LOG_STATUS_BUSY
    frames_of(answers[0])  # one answer fully sent frees a place
    assert srv.answering == LOG_ANSWERS_AT_ONCE - 1
    assert not isinstance(srv.answer(request(1, rid=51), T0), bytes)


def test_a_flood_of_requests_is_dropped_once_many_answers_wait() -> None:
    srv = server()
    assert srv.respond(request(1), T0, queued=LOG_REPLIES_QUEUED - 1) is not None
    assert srv.respond(request(1), T0, queued=LOG_REPLIES_QUEUED) is None
    assert srv.dropped == 1


def test_a_client_without_logs_denies_everything() -> None:
    [item] = frames_of(LogServer.refusing(who="hub x", log=log).answer(request(1), T0))
    assert item.status == pb.LOG_STATUS_DENIED


def test_offsets_are_in_the_whole_output_when_the_log_keeps_only_its_end() -> None:
    source = MemoryLogs()
    # A finished job printed 1000 bytes; its log file keeps the last 100.
    source.add(5, bytes(range(100)), output_size=1000)
    [part] = frames_of(server(source).answer(request(5, offset=950), T0))
    assert (part.offset, part.data, part.log_start, part.log_size) == (
        950, bytes(range(50, 100)), 900, 1000
    )
    assert part.complete
    [start] = frames_of(server(source).answer(request(5, offset=0), T0))
    assert (start.offset, len(start.data), start.log_start) == (900, 100, 900)


def test_a_log_cut_while_it_is_served_ends_the_answer_where_the_cut_begins() -> None:
    source = MemoryLogs()
    source.add(5, b"a" * (3 * LOG_CHUNK_BYTES), finished=False)
    answer = server(source).answer(request(5), T0)
    assert not isinstance(answer, bytes)
    first = decode_item(next(answer)).log_data
    # The job ends and its log is cut to its last bytes before the next chunk is read.
    source.add(5, b"z" * 100, output_size=3 * LOG_CHUNK_BYTES + 10)
    [rest] = [decode_item(frame).log_data for frame in answer]
    assert first.offset == 0 and len(first.data) == LOG_CHUNK_BYTES and not first.last
    assert (rest.offset, rest.data, rest.last) == (LOG_CHUNK_BYTES, b"", True)
    requests: LogRequests[str] = LogRequests()
    requests.open(LogQuery(5), "w", now=T0)
    assert requests.receive(first) is None
    done = requests.receive(rest)
    assert done is not None and done[1].data == b"a" * LOG_CHUNK_BYTES


# --- the hub's open requests ---------------------------------------------------------------


def chunk(rid: int, offset: int, data: bytes, *, last: bool = False, size: int = 0,
          complete: bool = False, status: int = pb.LOG_STATUS_OK) -> pb.SyncStreamItem.LogData:
    answer = LogAnswer(status, offset, data, size, complete)
    return log_data_item(rid, answer, last=last).log_data


def test_an_answer_may_start_where_the_kept_log_starts() -> None:
    requests: LogRequests[str] = LogRequests()
    requests.open(LogQuery(12, offset=10), "w", now=T0)
    kept = LogAnswer(offset=900, data=b"end", log_size=903, complete=True, log_start=900)
    done = requests.receive(log_data_item(1, kept, last=True).log_data)
    assert done == ("w", kept)
    requests.open(LogQuery(12, offset=10), "w", now=T0)
    early = LogAnswer(offset=500, data=b"x", log_size=903, log_start=900)
    with pytest.raises(ProtocolError, match="expected 900"):
        requests.receive(log_data_item(2, early, last=True).log_data)


def test_requests_get_ids_and_answers_are_put_together() -> None:
    requests: LogRequests[str] = LogRequests()
    frame = requests.open(LogQuery(12, offset=5, max_bytes=100), "waiter", now=T0)
    sent = decode_item(frame).request_log
    assert (sent.request_id, sent.operation_id, sent.offset, sent.max_bytes) == (1, 12, 5, 100)
    assert requests.receive(chunk(1, 5, b"hello ")) is None
    done = requests.receive(chunk(1, 11, b"world", last=True, size=16, complete=True))
    assert done == ("waiter", LogAnswer(offset=5, data=b"hello world", log_size=16,
                                        complete=True))
    assert len(requests) == 0
    # A late or unknown answer is ignored.
    assert requests.receive(chunk(1, 16, b"", last=True)) is None


def test_a_refusal_ends_the_request_with_its_status() -> None:
    requests: LogRequests[str] = LogRequests()
    requests.open(LogQuery(3), "w", now=T0)
    refusal = log_data_item(1, LogAnswer(pb.LOG_STATUS_DENIED, message="no"), last=True)
    assert requests.receive(refusal.log_data) == ("w", LogAnswer(pb.LOG_STATUS_DENIED,
                                                                  message="no"))


@pytest.mark.parametrize(
    ("chunks", "problem"),
    [
        ([chunk(1, 0, b"x" * (LOG_CHUNK_BYTES + 1))], "at most"),
        ([chunk(1, 0, b"abc"), chunk(1, 10, b"def")], "expected 3"),
        ([chunk(1, 4, b"abc")], "expected 0"),
        ([chunk(1, 0, b"x" * 60), chunk(1, 60, b"x" * 41)], "more than the 100 bytes"),
        ([chunk(1, 0, b"data", status=pb.LOG_STATUS_DENIED)], "must carry no data"),
    ],
)
def test_a_chunk_that_breaks_the_rules_is_a_protocol_error(
    chunks: list[pb.SyncStreamItem.LogData], problem: str
) -> None:
    requests: LogRequests[str] = LogRequests()
    requests.open(LogQuery(1, max_bytes=100), "w", now=T0)
    with pytest.raises(ProtocolError, match=problem):
        for item in chunks:
            requests.receive(item)


def test_requests_are_bounded_timed_out_and_given_up_at_the_end() -> None:
    requests: LogRequests[int] = LogRequests(limit=2, timeout=10.0)
    requests.open(LogQuery(1), 1, now=T0)
    requests.open(LogQuery(1), 2, now=T0 + 5)
    with pytest.raises(LogFetchError, match="2 log requests are already waiting"):
        requests.open(LogQuery(1), 3, now=T0 + 5)
    assert requests.expire(T0 + 9.9) == []
    assert requests.expire(T0 + 10) == [1]
    requests.open(LogQuery(1), 4, now=T0 + 11)
    assert sorted(requests.close()) == [2, 4]
    assert len(requests) == 0


@pytest.mark.parametrize("query", [LogQuery(0), LogQuery(1, offset=-1),
                                   LogQuery(1, max_bytes=0),
                                   LogQuery(1, max_bytes=LOG_REQUEST_MAX_BYTES + 1)])
def test_a_hub_never_asks_out_of_bounds(query: LogQuery) -> None:
    with pytest.raises(LogFetchError, match="bad log request"):
        LogRequests[str]().open(query, "w", now=T0)


# --- the files a client serves ------------------------------------------------------------


def test_local_logs_read_only_files_in_the_logs_folder(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "logs").mkdir(parents=True)
    (data / "logs" / "5.log").write_bytes(b"0123456789")
    (tmp_path / "secret.log").write_bytes(b"not yours")
    (data / "logs" / "escape.log").symlink_to(tmp_path / "secret.log")
    (data / "logs" / "dir.log").mkdir()
    logs = LocalLogs(data)
    assert logs.read("logs/5.log", 3, 4) == (b"3456", 10)
    assert logs.read("logs/5.log", 20, 4) == (b"", 10)
    for ref in ("../secret.log", "logs/../../secret.log", str(tmp_path / "secret.log"),
                "logs/escape.log", "oplog.sqlite", "logstore://backrest/abc", ""):
        with pytest.raises(LogUnavailable):
            logs.read(ref, 0, 10)
    with pytest.raises(LogUnavailable, match="no longer exists"):
        logs.read("logs/6.log", 0, 10)
    with pytest.raises(LogUnavailable, match="not a regular file"):
        logs.read("logs/dir.log", 0, 10)


# --- a session answering the hub ------------------------------------------------------------


def serving_session(source: MemoryLogs, oplog: MemoryOplog) -> ClientSession:
    handshake = ClientHandshake(CLIENT, "web1", HubPin(HUB_INSTANCE, HUB.keyid), b"\xc1" * 32)
    return ClientSession(
        handshake, oplog, SyncScope((DiffSelection("guid-nas"),)), SHARED, settings=RUNNING,
        logs=LogServer(source, EVERYTHING, who="hub hub-1", log=log),
    )


def drain_acknowledged(session: ClientSession) -> list[pb.SyncStreamItem]:
    """Everything the session sends, as a hub that answers every diff (acks included)."""
    sent: list[pb.SyncStreamItem] = []
    while batch := drain(session, T0):
        sent.extend(batch)
        for item in batch:
            if item.WhichOneof("action") == "diff_operations":
                session.receive([diff_reply_frame([])], T0)
    return sent


def log_items(sent: list[pb.SyncStreamItem]) -> list[pb.SyncStreamItem.LogData]:
    return [item.log_data for item in sent if item.WhichOneof("action") == "log_data"]


def test_a_session_answers_request_log_ahead_of_its_operations() -> None:
    source = MemoryLogs()
    source.add(9, b"the whole log\n")
    session = serving_session(source, oplog_with(*range(1, 40)))
    connect(session)
    session.receive([diff_reply_frame(list(range(1, 40)))], T0)
    session.receive([encode_item(request_log_item(1, LogQuery(9)))], T0)
    sent = drain(session, T0)
    actions = [item.WhichOneof("action") for item in sent]
    assert actions[0] == "log_data"
    assert sent[0].log_data.data == b"the whole log\n" and sent[0].log_data.last
    assert "send_operations" in actions


def test_a_session_without_logs_denies() -> None:
    session = make_session(oplog_with(1), ONCE)
    connect(session)
    session.receive([encode_item(request_log_item(4, LogQuery(1)))], T0)
    [answer] = log_items(drain(session, T0))
    assert answer.status == pb.LOG_STATUS_DENIED and answer.request_id == 4


def test_a_hub_flooding_requests_gets_bounded_answers() -> None:
    source = MemoryLogs()
    source.add(1, b"q" * LOG_CHUNK_BYTES * 4)
    session = serving_session(source, oplog_with(1))
    connect(session)
    for rid in range(1, 2001):
        session.receive([encode_item(request_log_item(rid, LogQuery(1)))], T0)
    sent = log_items(drain_acknowledged(session))
    answered = {item.request_id for item in sent}
    # Everything past the bounded queue was dropped unanswered; what was queued is
    # either served (at most a few at once) or BUSY.
    assert len(answered) == LOG_REPLIES_QUEUED
    served = {item.request_id for item in sent if item.status == pb.LOG_STATUS_OK}
    busy = [item for item in sent if item.status == pb.LOG_STATUS_BUSY]
    assert len(served) == LOG_ANSWERS_AT_ONCE
    assert len(busy) == LOG_REPLIES_QUEUED - LOG_ANSWERS_AT_ONCE
    assert all(len(item.data) <= LOG_CHUNK_BYTES for item in sent)
    assert sum(len(item.data) for item in sent) == LOG_ANSWERS_AT_ONCE * 4 * LOG_CHUNK_BYTES


def test_the_agent_serves_only_its_own_operations_logs(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    store = SqliteOplogStore(oplog_path(data))
    try:
        [mine] = store.add_local([pb.Operation(instance_id="web1", logref="logs/1.log",
                                               status=pb.STATUS_INPROGRESS)])
        [theirs] = store.apply_remote(
            "ed25519.other", [pb.Operation(id=1, logref="logs/1.log")], [],
            peer_instance_id="db1",
        ).created
    finally:
        store.close()
    (data / "logs").mkdir()
    (data / "logs" / "1.log").write_bytes(b"my job\n")
    local = LocalOplog(oplog_path(data), LocalLogs(data))
    try:
        found = local.find_log(mine.id)
        assert found == LocalLog(mine.id, "", "", "logs/1.log", finished=False)
        assert local.read_log(found, 0, 100) == LogSlice(b"my job\n", 0, 0, 7)
        assert local.find_log(theirs.id) is None
        assert local.find_log(999) is None
    finally:
        local.close()
