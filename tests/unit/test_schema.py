"""The generated code matches proto/, and the schema keeps what it does not define."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf.internal import encoder

from hub.pb import regenerate
from hub.pb import synchub_pb2 as pb
from hub.protocol import operations_item


@pytest.mark.parametrize("name", regenerate.GENERATED_FILES)
def test_generated_modules_match_proto(tmp_path: Path, name: str) -> None:
    pytest.importorskip("grpc_tools")
    regenerate.generate(tmp_path)
    committed = (regenerate.PACKAGE_DIR / name).read_bytes()
    fresh = (tmp_path / name).read_bytes()
    assert committed == fresh, (
        f"hub/pb/{name} is stale: run `python -m hub.pb.regenerate` and commit the result"
    )


OPERATION_FIELDS = {
    "id": 1,
    "repo_id": 2,
    "plan_id": 3,
    "status": 4,
    "unix_time_start_ms": 5,
    "unix_time_end_ms": 6,
    "display_message": 7,
    "snapshot_id": 8,
    "logref": 9,
    "flow_id": 10,
    "instance_id": 11,
    "modno": 12,
    "original_id": 13,
    "original_flow_id": 14,
    "repo_guid": 15,
    "original_instance_keyid": 16,
    "operation_run_command": 108,
}

SYNC_ACTIONS = {
    "handshake": 3,
    "heartbeat": 4,
    "diff_operations": 20,
    "send_operations": 21,
    "send_config": 22,
    "set_config": 24,
    "list_resources": 25,
    "error": 50,
    "throttle": 1000,
}


def _numbers(message: type) -> dict[str, int]:
    return {f.name: f.number for f in message.DESCRIPTOR.fields}  # type: ignore[attr-defined]


def test_operation_field_numbers_are_backrest_compatible() -> None:
    assert _numbers(pb.Operation) == OPERATION_FIELDS


def test_sync_stream_item_action_numbers() -> None:
    assert _numbers(pb.SyncStreamItem) == SYNC_ACTIONS
    assert [f.name for f in pb.SyncStreamItem.DESCRIPTOR.oneofs_by_name["action"].fields] == list(
        SYNC_ACTIONS
    )


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (pb.PublicKey, {"keyid": 1, "ed25519pub": 2}),
        (pb.OperationRunCommand, {"command": 1, "output_logref": 2, "output_size_bytes": 3,
                                  "exit_code": 4}),
        (pb.OpSelector, {"ids": 1, "plan_id": 3, "snapshot_id": 4, "flow_id": 5,
                         "instance_id": 6, "repo_guid": 7, "original_instance_keyid": 8}),
        (pb.Repo, {"id": 1, "uri": 2, "guid": 11}),
        (pb.Plan, {"id": 1, "repo": 2, "paths": 4, "excludes": 5}),
        (pb.RemoteConfig, {"modno": 1, "version": 2, "repos": 3, "plans": 4}),
        (pb.PeerState, {"peer_instance_id": 1, "peer_keyid": 2, "state": 3,
                        "status_message": 4, "known_plans": 5, "known_repos": 6,
                        "remote_config": 7, "last_heartbeat_millis": 8}),
        (pb.OperationEvent, {"keep_alive": 1, "created_operations": 2,
                             "updated_operations": 3, "deleted_operations": 4}),
        (pb.SyncStreamItem.Handshake, {"protocol_version": 1, "public_key": 2,
                                       "instance_id": 3, "nonce": 4, "signature": 5}),
        (pb.SyncStreamItem.DiffOperations, {"have_operations_selector": 1,
                                            "have_operation_ids": 2,
                                            "have_operation_modnos": 3,
                                            "request_operations": 4}),
        (pb.SyncStreamItem.SetConfig, {"repos": 1, "plans": 2, "repos_to_delete": 3,
                                       "plans_to_delete": 4}),
        (pb.SyncStreamItem.ListResources, {"repo_ids": 1, "plan_ids": 2}),
        (pb.SyncStreamItem.Error, {"state": 1, "message": 2}),
        (pb.SyncStreamItem.Throttle, {"delay_ms": 1}),
    ],
)
def test_message_field_numbers(message: type, expected: dict[str, int]) -> None:
    assert _numbers(message) == expected


def test_optional_selector_fields_track_presence() -> None:
    selector = pb.OpSelector(repo_guid="")
    assert selector.HasField("repo_guid")
    assert not selector.HasField("plan_id")


def test_enum_values() -> None:
    assert dict(pb.OperationStatus.items()) == {
        "STATUS_UNKNOWN": 0, "STATUS_PENDING": 1, "STATUS_INPROGRESS": 2, "STATUS_SUCCESS": 3,
        "STATUS_ERROR": 4, "STATUS_SYSTEM_CANCELLED": 5, "STATUS_USER_CANCELLED": 6,
        "STATUS_WARNING": 7,
    }
    assert dict(pb.ConnectionState.items()) == {
        "CONNECTION_STATE_UNKNOWN": 0, "CONNECTION_STATE_PENDING": 1,
        "CONNECTION_STATE_CONNECTED": 2, "CONNECTION_STATE_DISCONNECTED": 3,
        "CONNECTION_STATE_RETRY_WAIT": 4, "CONNECTION_STATE_ERROR_AUTH": 10,
        "CONNECTION_STATE_ERROR_PROTOCOL": 11, "CONNECTION_STATE_ERROR_INTERNAL": 12,
    }


def _length_delimited(field_number: int, payload: bytes) -> bytes:
    tag = encoder.TagBytes(field_number, 2)  # wire type 2: length-delimited
    return tag + encoder._VarintBytes(len(payload)) + payload


def test_unknown_payload_field_survives_decode_encode_byte_exact() -> None:
    known = pb.Operation(id=7, repo_id="nas", modno=3, display_message="backup").SerializeToString()
    payload = bytes(range(256)) * 3
    # Field 100 is a backrest payload (operation_backup); synchub does not define it.
    wire = known + _length_delimited(100, payload)

    op = pb.Operation.FromString(wire)
    assert op.id == 7 and op.display_message == "backup"
    assert op.SerializeToString() == wire

    # It also survives being nested in a batch and re-sent.
    item = operations_item([op], "created_operations")
    again = pb.SyncStreamItem.FromString(item.SerializeToString())
    resent = again.send_operations.event.created_operations.operations[0]
    assert resent.SerializeToString() == wire


def test_changing_a_known_field_keeps_the_unknown_payload() -> None:
    wire = pb.Operation(id=1).SerializeToString() + _length_delimited(104, b"\x01\x02")
    op = pb.Operation.FromString(wire)
    op.id = 9
    op.modno = 2
    assert op.SerializeToString().endswith(_length_delimited(104, b"\x01\x02"))
