"""A client can never create, change or delete another keyid's operations, whatever it
sends: colliding ids, forged original_* fields, selectors naming another keyid."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.pb import synchub_pb2 as pb
from synchub_testing import (
    CLIENT,
    OTHER_CLIENT,
    RawClient,
    connected_client,
    deleted_operations_frame,
    diff_frame,
    hub_text_with,
    operation,
    running_hub,
    send_operations_frame,
    stored_operations,
    write_config,
)

pytestmark = pytest.mark.integration

ERROR_PROTOCOL = pb.CONNECTION_STATE_ERROR_PROTOCOL


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Any]:
    with running_hub(write_config(tmp_path, hub_text_with())) as running:
        yield running


def diff_reply(client: RawClient, frame: bytes) -> pb.SyncStreamItem:
    client.send(frame)
    item = client.recv_action("diff_operations")
    return item


def snapshot(hub: Any, keyid: str) -> list[bytes]:
    return [op.SerializeToString(deterministic=True) for op in stored_operations(hub, keyid)]


def forged(op_id: int, *, modno: int = 1, flow_id: int = 1) -> pb.Operation:
    """web1's operation dressed up as db1's."""
    op = operation(op_id, modno=modno, flow_id=flow_id, message=f"forged {op_id}")
    op.instance_id = "db1"
    op.original_instance_keyid = OTHER_CLIENT.keyid
    op.original_id = op_id
    op.original_flow_id = flow_id
    return op


def selector_diff(selector: pb.OpSelector, ids: list[int]) -> bytes:
    # Built raw on purpose: these selectors (another key id, flow or instance
    # filters) are attacks no protocol builder produces.
    return pb.SyncStreamItem(
        diff_operations=pb.SyncStreamItem.DiffOperations(
            have_operations_selector=selector,
            have_operation_ids=ids,
            have_operation_modnos=[1] * len(ids),
        )
    ).SerializeToString()


def test_a_client_cannot_touch_another_keyids_operations(hub: Any) -> None:
    db1 = connected_client(hub, OTHER_CLIENT, "db1")
    web1 = connected_client(hub)
    try:
        db1.send(send_operations_frame(
            [operation(1, flow_id=1), operation(2, flow_id=1), operation(3, flow_id=3)]
        ))
        db1_ids = [1, 2, 3]
        reply = diff_reply(db1, diff_frame(OTHER_CLIENT.keyid, db1_ids, [1, 1, 1]))
        assert list(reply.diff_operations.request_operations) == []
        before = snapshot(hub, OTHER_CLIENT.keyid)
        db1_local_flows = {op.flow_id for op in stored_operations(hub, OTHER_CLIENT.keyid)}

        # Colliding ids with forged original_* fields: stored as web1's own, new rows.
        web1.send(send_operations_frame([forged(1), forged(2), forged(3)]))
        web1.send(send_operations_frame(
            [forged(1, modno=7), forged(2, modno=7)], "updated_operations"
        ))
        reply = diff_reply(web1, diff_frame(CLIENT.keyid, [1, 2, 3], [7, 7, 1]))
        assert list(reply.diff_operations.request_operations) == []
        mine = stored_operations(hub, CLIENT.keyid)
        assert {op.original_instance_keyid for op in mine} == {CLIENT.keyid}
        assert sorted(op.original_id for op in mine) == [1, 2, 3]
        assert {op.id for op in mine}.isdisjoint(
            op.id for op in stored_operations(hub, OTHER_CLIENT.keyid)
        )
        assert {op.flow_id for op in mine}.isdisjoint(db1_local_flows)
        assert snapshot(hub, OTHER_CLIENT.keyid) == before

        # Deleting the same ids deletes web1's own rows only; unknown ids are no-ops.
        web1.send(deleted_operations_frame([1, 2, 3, 99]))
        reply = diff_reply(web1, diff_frame(CLIENT.keyid, [], []))
        assert list(reply.diff_operations.request_operations) == []
        assert stored_operations(hub, CLIENT.keyid) == []
        assert snapshot(hub, OTHER_CLIENT.keyid) == before

        # A selector naming db1's operations in every other field still means web1's own.
        sneaky = pb.OpSelector(
            original_instance_keyid=CLIENT.keyid, ids=db1_ids, instance_id="db1",
            repo_guid="guid-nas", plan_id="nightly",
        )
        reply = diff_reply(web1, selector_diff(sneaky, []))
        assert list(reply.diff_operations.request_operations) == []

        # A selector naming db1's keyid, or none, is refused and the session ends.
        for selector in (
            pb.OpSelector(original_instance_keyid=OTHER_CLIENT.keyid, repo_guid="guid-nas"),
            pb.OpSelector(repo_guid="guid-nas"),
        ):
            web1.send(selector_diff(selector, db1_ids))
            error = web1.recv_action("error").error
            assert error.state == ERROR_PROTOCOL
            assert "own keyid" in error.message
            assert "db1 op" not in error.message
            web1.close()
            web1 = connected_client(hub)

        # Invalid ids store nothing of the batch.
        web1.send(send_operations_frame([forged(5), forged(0)]))
        assert web1.recv_action("error").error.state == ERROR_PROTOCOL
        assert stored_operations(hub, CLIENT.keyid) == []
        assert snapshot(hub, OTHER_CLIENT.keyid) == before

        # db1 still sees exactly what it sent.
        reply = diff_reply(db1, diff_frame(OTHER_CLIENT.keyid, db1_ids, [1, 1, 1]))
        assert list(reply.diff_operations.request_operations) == []
        assert [op.display_message for op in stored_operations(hub, OTHER_CLIENT.keyid)] == [
            "op 1", "op 2", "op 3",
        ]
    finally:
        db1.close()
        web1.close()
