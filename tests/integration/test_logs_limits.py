"""Logs on demand under abuse, against a real hub on loopback: a request goes only to
the client that owns the operation, fetches are bounded while a reader floods them, a
bad chunk ends only that client's session, and oversized requests are refused."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors import FetchLog, LogReply
from hub.admin import ask_hub
from hub.errors import AdminError, LogFetchError
from hub.pb import synchub_pb2 as pb
from hub.protocol import (
    LOG_CHUNK_BYTES,
    LOG_REQUEST_MAX_BYTES,
    LOG_REQUESTS_PER_SESSION,
    LogAnswer,
    LogQuery,
    ack_diff_frame,
    closing_error_frame,
    encode_item,
    log_data_item,
)
from synchub_testing import (
    CLIENT,
    OTHER_CLIENT,
    RawClient,
    connected_client,
    diff_frame,
    hub_text_with,
    operation,
    running_hub,
    send_operations_frame,
    stored_operations,
    wait_until,
    write_config,
)

pytestmark = [pytest.mark.integration, pytest.mark.alone]

ERROR_PROTOCOL = pb.CONNECTION_STATE_ERROR_PROTOCOL


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Any]:
    with running_hub(write_config(tmp_path, hub_text_with())) as running:
        yield running


def sync_one(client: RawClient, keyid: str, op_id: int) -> None:
    client.send(send_operations_frame([operation(op_id)]))
    client.send(diff_frame(keyid, [op_id], [1]))
    assert list(client.recv_action("diff_operations").diff_operations.request_operations) == []


def answer(client: RawClient, request: pb.SyncStreamItem.RequestLog, data: bytes) -> None:
    done = LogAnswer(offset=request.offset, data=data, log_size=len(data), complete=True)
    client.send(encode_item(log_data_item(request.request_id, done, last=True)))


def nothing_asked(client: RawClient, keyid: str) -> None:
    """The hub sent this client no request_log before answering a fresh acknowledgement."""
    client.send(ack_diff_frame(keyid))
    client.recv_action("diff_operations")  # fails on any other action first


class Background:
    """One admin request in a thread, so a test can play the client meanwhile."""

    def __init__(self, data_dir: Path, **fields: Any) -> None:
        self.result: dict[str, Any] | None = None
        self.error: Exception | None = None
        self._thread = threading.Thread(target=self._run, args=(data_dir, fields))
        self._thread.start()

    def _run(self, data_dir: Path, fields: dict[str, Any]) -> None:
        try:
            self.result = ask_hub(data_dir, "logs", timeout=30, **fields)
        except Exception as exc:
            self.error = exc

    def join(self) -> dict[str, Any]:
        self._thread.join(timeout=30)
        assert not self._thread.is_alive(), "the admin request did not end"
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


def test_a_log_request_goes_only_to_the_client_that_owns_the_operation(hub: Any) -> None:
    web1 = connected_client(hub)
    db1 = connected_client(hub, OTHER_CLIENT, "db1")
    try:
        sync_one(web1, CLIENT.keyid, 5)
        sync_one(db1, OTHER_CLIENT.keyid, 5)
        [db1_op] = stored_operations(hub, OTHER_CLIENT.keyid)
        data_dir = Path(hub.status().info.data_dir)

        fetching = Background(data_dir, op_id=db1_op.id)
        request = db1.recv_action("request_log").request_log
        assert request.operation_id == 5  # db1's own id, not the hub's
        answer(db1, request, b"db1's job log\n")
        got = fetching.join()
        assert (got["data"], got["instance"], got["complete"]) == (b"db1's job log\n", "db1",
                                                                   True)
        nothing_asked(web1, CLIENT.keyid)

        db1.send(closing_error_frame())
        wait_until(lambda: hub.peers.live_session(OTHER_CLIENT.keyid).get(timeout=10) is None,
                   what="db1's session to end")
        # Once its session is gone, nobody is asked in its place.
        with pytest.raises(AdminError, match="client db1 is not connected"):
            ask_hub(data_dir, "logs", timeout=30, op_id=db1_op.id)
        nothing_asked(web1, CLIENT.keyid)
    finally:
        web1.close()
        db1.close()


def test_reader_floods_are_bounded_and_a_bad_chunk_ends_only_that_session(hub: Any) -> None:
    web1 = connected_client(hub)
    db1 = connected_client(hub, OTHER_CLIENT, "db1")
    try:
        sync_one(web1, CLIENT.keyid, 1)
        session = hub.peers.live_session(CLIENT.keyid).get(timeout=10)
        assert session is not None
        replies = [LogReply() for _ in range(100)]
        for reply in replies:
            session.tell(FetchLog(LogQuery(1), reply))
        asked = [web1.recv_action("request_log").request_log
                 for _ in range(LOG_REQUESTS_PER_SESSION)]
        nothing_asked(web1, CLIENT.keyid)  # the others never reached the client
        refused = 0
        for reply in replies[LOG_REQUESTS_PER_SESSION:]:
            with pytest.raises(LogFetchError, match="already waiting"):
                reply.wait(10)
            refused += 1
        assert refused == 100 - LOG_REQUESTS_PER_SESSION

        answer(web1, asked[0], b"fine\n")
        assert replies[0].wait(10).data == b"fine\n"
        oversized = LogAnswer(data=b"x" * (LOG_CHUNK_BYTES + 1), log_size=LOG_CHUNK_BYTES + 1)
        web1.send(encode_item(log_data_item(asked[1].request_id, oversized, last=True)))
        error = web1.recv_action("error").error
        assert error.state == ERROR_PROTOCOL
        for reply in replies[1:LOG_REQUESTS_PER_SESSION]:
            with pytest.raises(LogFetchError, match="session ended"):
                reply.wait(10)

        # Meanwhile another client syncs a thousand operations, untouched.
        ids = list(range(1, 1001))
        for start in range(0, 1000, 250):
            db1.send(send_operations_frame([operation(i) for i in ids[start : start + 250]]))
        db1.send(diff_frame(OTHER_CLIENT.keyid, ids, [1] * 1000))
        reply_item = db1.recv_action("diff_operations", timeout=10)
        assert list(reply_item.diff_operations.request_operations) == []
        assert len(stored_operations(hub, OTHER_CLIENT.keyid)) == 1000
    finally:
        web1.close()
        db1.close()


def test_requests_beyond_the_limits_are_refused(hub: Any) -> None:
    web1 = connected_client(hub)
    try:
        sync_one(web1, CLIENT.keyid, 1)
        [op] = stored_operations(hub, CLIENT.keyid)
        data_dir = Path(hub.status().info.data_dir)
        for fields, problem in (
            ({"op_id": op.id, "max_bytes": LOG_REQUEST_MAX_BYTES + 1}, "'max_bytes' must be"),
            ({"op_id": op.id, "offset": -1}, "'offset' must be"),
            ({"op_id": 0}, "'op_id' must be"),
            ({"op_id": "1"}, "'op_id' must be"),
        ):
            with pytest.raises(AdminError, match=problem):
                ask_hub(data_dir, "logs", timeout=10, **fields)
        nothing_asked(web1, CLIENT.keyid)
    finally:
        web1.close()
