"""The generated code matches proto/, and the schema keeps what it does not define."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf.descriptor import FieldDescriptor
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
    "operation_backup": 100,
    "operation_index_snapshot": 101,
    "operation_forget": 102,
    "operation_prune": 103,
    "operation_restore": 104,
    "operation_stats": 105,
    "operation_run_hook": 106,
    "operation_check": 107,
    "operation_run_command": 108,
    # synchub's own, far from backrest's ranges
    "error_output": 1000,
    "peer_instance_id": 1001,
    "output_size_bytes": 1002,
}

SYNC_ACTIONS = {
    "handshake": 3,
    "heartbeat": 4,
    "diff_operations": 20,
    "send_operations": 21,
    "send_config": 22,
    "set_config": 24,
    "list_resources": 25,
    "request_log": 40,
    "log_data": 41,
    "error": 50,
    "sync_cursors": 60,
    "check_digest": 61,
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
                         "instance_id": 6, "repo_guid": 7, "original_instance_keyid": 8,
                         "peer_instance_id": 1000}),
        (pb.Repo, {"id": 1, "uri": 2, "guid": 11}),
        (pb.Plan, {"id": 1, "repo": 2, "paths": 4, "excludes": 5}),
        (pb.RemoteConfig, {"modno": 1, "version": 2, "repos": 3, "plans": 4}),
        (pb.PeerState, {"peer_instance_id": 1, "peer_keyid": 2, "state": 3,
                        "status_message": 4, "known_plans": 5, "known_repos": 6,
                        "remote_config": 7, "last_heartbeat_millis": 8,
                        "last_disconnect_millis": 9, "last_error": 10,
                        "last_error_millis": 11}),
        (pb.OperationEvent, {"keep_alive": 1, "created_operations": 2,
                             "updated_operations": 3, "deleted_operations": 4}),
        (pb.SyncStreamItem.Handshake, {"protocol_version": 1, "public_key": 2,
                                       "instance_id": 3, "nonce": 4, "signature": 5,
                                       "join": 6, "resync": 1000}),
        (pb.SyncStreamItem.Join, {"invitation_id": 1, "signature": 2}),
        (pb.SyncStreamItem.DiffOperations, {"have_operations_selector": 1,
                                            "have_operation_ids": 2,
                                            "have_operation_modnos": 3,
                                            "request_operations": 4}),
        (pb.SyncStreamItem.SetConfig, {"repos": 1, "plans": 2, "repos_to_delete": 3,
                                       "plans_to_delete": 4}),
        (pb.SyncStreamItem.ListResources, {"repo_ids": 1, "plan_ids": 2}),
        (pb.SyncStreamItem.Error, {"state": 1, "message": 2}),
        (pb.SyncStreamItem.Throttle, {"delay_ms": 1}),
        (pb.SyncStreamItem.SyncCursors, {"cursors": 1}),
        (pb.SyncStreamItem.CheckDigest, {"selector": 1, "ranges": 2, "cursor": 3,
                                         "in_sync": 4, "hub_ranges": 5, "hub_ids": 6,
                                         "hub_modnos": 7}),
        (pb.SyncCursor, {"selection": 1, "epoch": 2, "sequence": 3}),
        (pb.DigestRange, {"first_bucket": 1, "last_bucket": 2, "count": 3, "digest": 4}),
        (pb.SyncStreamItem.RequestLog, {"request_id": 1, "operation_id": 2, "offset": 3,
                                        "max_bytes": 4}),
        (pb.SyncStreamItem.LogData, {"request_id": 1, "status": 2, "offset": 3, "data": 4,
                                     "last": 5, "log_size": 6, "complete": 7, "message": 8,
                                     "log_start": 9}),
    ],
)
def test_message_field_numbers(message: type, expected: dict[str, int]) -> None:
    assert _numbers(message) == expected


# backrest's payload messages, with the numbers and wire types of backrest's
# proto/v1 (operations.proto, restic.proto, config.proto): the interface a
# backrest-encoded operation is read by.
_I64, _I32, _DBL, _STR = "int64", "int32", "double", "string"
_BOOL, _MSG, _ENUM = "bool", "msg", "enum"

BACKREST_PAYLOADS: dict[type, dict[str, tuple[int, str]]] = {
    pb.OperationBackup: {"last_status": (3, _MSG), "errors": (4, _MSG)},
    pb.OperationIndexSnapshot: {"snapshot": (2, _MSG), "forgot": (3, _BOOL)},
    pb.OperationForget: {"forget": (1, _MSG), "policy": (2, _MSG)},
    pb.OperationPrune: {"output": (1, _STR), "output_logref": (2, _STR)},
    pb.OperationCheck: {"output": (1, _STR), "output_logref": (2, _STR)},
    pb.OperationRestore: {"path": (1, _STR), "target": (2, _STR), "last_status": (3, _MSG)},
    pb.OperationStats: {"stats": (1, _MSG)},
    pb.OperationRunHook: {"name": (1, _STR), "output_logref": (2, _STR),
                          "condition": (3, _ENUM), "parent_op": (4, _I64)},
    pb.ResticSnapshot: {"id": (1, _STR), "unix_time_ms": (2, _I64), "hostname": (3, _STR),
                        "username": (4, _STR), "tree": (5, _STR), "parent": (6, _STR),
                        "paths": (7, _STR), "tags": (8, _STR), "summary": (9, _MSG)},
    pb.SnapshotSummary: {
        "files_new": (1, _I64), "files_changed": (2, _I64), "files_unmodified": (3, _I64),
        "dirs_new": (4, _I64), "dirs_changed": (5, _I64), "dirs_unmodified": (6, _I64),
        "data_blobs": (7, _I64), "tree_blobs": (8, _I64), "data_added": (9, _I64),
        "total_files_processed": (10, _I64), "total_bytes_processed": (11, _I64),
        "total_duration": (12, _DBL),
    },
    pb.BackupProgressEntry: {"status": (1, _MSG), "summary": (2, _MSG)},
    pb.BackupProgressStatusEntry: {
        "percent_done": (1, _DBL), "total_files": (2, _I64), "total_bytes": (3, _I64),
        "files_done": (4, _I64), "bytes_done": (5, _I64), "current_file": (6, _STR),
    },
    pb.BackupProgressSummary: {
        "files_new": (1, _I64), "files_changed": (2, _I64), "files_unmodified": (3, _I64),
        "dirs_new": (4, _I64), "dirs_changed": (5, _I64), "dirs_unmodified": (6, _I64),
        "data_blobs": (7, _I64), "tree_blobs": (8, _I64), "data_added": (9, _I64),
        "total_files_processed": (10, _I64), "total_bytes_processed": (11, _I64),
        "total_duration": (12, _DBL), "snapshot_id": (13, _STR),
    },
    pb.BackupProgressError: {"item": (1, _STR), "during": (2, _STR), "message": (3, _STR)},
    pb.RestoreProgressEntry: {
        "message_type": (1, _STR), "seconds_elapsed": (2, _DBL), "total_bytes": (3, _I64),
        "bytes_restored": (4, _I64), "total_files": (5, _I64), "files_restored": (6, _I64),
        "percent_done": (7, _DBL),
    },
    pb.RepoStats: {"total_size": (1, _I64), "total_uncompressed_size": (2, _I64),
                   "compression_ratio": (3, _DBL), "total_blob_count": (5, _I64),
                   "snapshot_count": (6, _I64)},
    pb.RetentionPolicy: {"policy_keep_last_n": (10, _I32), "policy_time_bucketed": (11, _MSG),
                         "policy_keep_all": (12, _BOOL)},
    pb.RetentionPolicy.TimeBucketedCounts: {
        "hourly": (1, _I32), "daily": (2, _I32), "weekly": (3, _I32), "monthly": (4, _I32),
        "yearly": (5, _I32), "keep_last_n": (6, _I32),
    },
}

_KIND = {
    FieldDescriptor.TYPE_INT64: _I64, FieldDescriptor.TYPE_INT32: _I32,
    FieldDescriptor.TYPE_DOUBLE: _DBL, FieldDescriptor.TYPE_STRING: _STR,
    FieldDescriptor.TYPE_BOOL: _BOOL, FieldDescriptor.TYPE_MESSAGE: _MSG,
    FieldDescriptor.TYPE_ENUM: _ENUM,
}


@pytest.mark.parametrize("message", list(BACKREST_PAYLOADS), ids=lambda m: m.__name__)
def test_backrest_payloads_have_backrest_numbers_and_types(message: type) -> None:
    fields = message.DESCRIPTOR.fields  # type: ignore[attr-defined]
    found = {f.name: (f.number, _KIND[f.type]) for f in fields}
    assert found == BACKREST_PAYLOADS[message]


def test_backrest_hook_conditions() -> None:
    assert dict(pb.HookCondition.items()) == {
        "CONDITION_UNKNOWN": 0, "CONDITION_ANY_ERROR": 1, "CONDITION_SNAPSHOT_START": 2,
        "CONDITION_SNAPSHOT_END": 3, "CONDITION_SNAPSHOT_ERROR": 4,
        "CONDITION_SNAPSHOT_WARNING": 5, "CONDITION_SNAPSHOT_SUCCESS": 6,
        "CONDITION_SNAPSHOT_SKIPPED": 7, "CONDITION_PRUNE_START": 100,
        "CONDITION_PRUNE_ERROR": 101, "CONDITION_PRUNE_SUCCESS": 102,
        "CONDITION_CHECK_START": 200, "CONDITION_CHECK_ERROR": 201,
        "CONDITION_CHECK_SUCCESS": 202, "CONDITION_FORGET_START": 300,
        "CONDITION_FORGET_ERROR": 301, "CONDITION_FORGET_SUCCESS": 302,
    }


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
    # Field 150 is a payload no version of this schema defines (backrest's next ones,
    # say): it is kept byte-exact.
    wire = known + _length_delimited(150, payload)

    op = pb.Operation.FromString(wire)
    assert op.id == 7 and op.display_message == "backup"
    assert op.SerializeToString() == wire

    # It also survives being nested in a batch and re-sent.
    item = operations_item([op], "created_operations")
    again = pb.SyncStreamItem.FromString(item.SerializeToString())
    resent = again.send_operations.event.created_operations.operations[0]
    assert resent.SerializeToString() == wire


def test_changing_a_known_field_keeps_the_unknown_payload() -> None:
    wire = pb.Operation(id=1).SerializeToString() + _length_delimited(154, b"\x01\x02")
    op = pb.Operation.FromString(wire)
    op.id = 9
    op.modno = 2
    assert op.SerializeToString().endswith(_length_delimited(154, b"\x01\x02"))


def test_an_unknown_field_inside_a_declared_payload_survives_byte_exact() -> None:
    """A newer backrest field deep in a backup summary is kept where it was."""
    summary = pb.BackupProgressSummary(files_new=3, data_added=1024, snapshot_id="ab" * 32)
    summary_wire = summary.SerializeToString() + _length_delimited(40, b"future")
    entry_wire = _length_delimited(2, summary_wire)
    backup_wire = _length_delimited(3, entry_wire)
    wire = pb.Operation(id=4, modno=1).SerializeToString() + _length_delimited(100, backup_wire)

    op = pb.Operation.FromString(wire)
    assert op.operation_backup.last_status.summary.files_new == 3
    assert op.SerializeToString() == wire
