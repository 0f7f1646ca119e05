"""backrest's operations through a real hub: every payload kind, with fields this
schema's older version did not know (backrest's payloads, 100-107) and fields no
version of it knows (newer backrest or restic ones), arrive with identical bytes
outside what the hub rewrites, are decoded by `synchub ops --json`, and keep the
instance_id their producer wrote."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from google.protobuf.internal import decoder, encoder

from hub.admin import ask_hub
from hub.cli.main import cli
from hub.pb import synchub_pb2 as pb
from hub.protocol import DiffSelection, diff_item, serialized_operations_frame
from hub.store import SerializedOperation
from synchub_testing import (
    CLIENT,
    RawClient,
    connected_client,
    hub_text_with,
    running_hub,
    write_config,
)

pytestmark = pytest.mark.integration

SNAPSHOT = "5e" * 32
# What the hub sets or rewrites on an operation: id, flow_id, original_id,
# original_flow_id, original_instance_keyid, peer_instance_id.
REWRITTEN = frozenset({1, 10, 13, 14, 16, 1001})


def unknown(number: int, payload: bytes) -> bytes:
    """A length-delimited field the schema does not declare."""
    return encoder.TagBytes(number, 2) + encoder._VarintBytes(len(payload)) + payload


def unknown_varint(number: int, value: int) -> bytes:
    return encoder.TagBytes(number, 0) + encoder._VarintBytes(value)


def with_unknown(message: Any, extra: bytes) -> Any:
    """``message`` carrying ``extra`` as fields it does not know, as a newer producer's."""
    message.MergeFromString(extra)
    return message


def snapshot(n: int) -> pb.ResticSnapshot:
    return with_unknown(
        pb.ResticSnapshot(
            id=f"{n:02x}" * 32, unix_time_ms=1_700_000_000_000 + n, hostname="laptop",
            username="root", tree="7" * 64, parent="6" * 64, paths=["/home", "/etc"],
            tags=["nightly"],
            summary=pb.SnapshotSummary(files_new=n, data_added=1024 * n, total_duration=1.5),
        ),
        unknown(10, b"restic 0.18.0"),  # newer restic: program_version
    )


def payloads() -> list[tuple[str, Any]]:
    summary = with_unknown(
        pb.BackupProgressSummary(
            files_new=345, files_changed=2, files_unmodified=1000, dirs_new=3,
            dirs_changed=1, dirs_unmodified=40, data_blobs=90, tree_blobs=5,
            data_added=1288490189, total_files_processed=1347,
            total_bytes_processed=5 * 2**30, total_duration=61.25, snapshot_id=SNAPSHOT,
        ),
        unknown(14, b"2025-03-02T10:14:07Z") + unknown(15, b"2025-03-02T10:15:08Z"),
    )
    return [
        ("operation_backup", pb.OperationBackup(
            last_status=pb.BackupProgressEntry(summary=summary),
            errors=[pb.BackupProgressError(item="/home/x", during="archival",
                                           message="permission denied")],
        )),
        ("operation_backup", pb.OperationBackup(last_status=pb.BackupProgressEntry(
            status=pb.BackupProgressStatusEntry(percent_done=0.42, total_files=10,
                                                total_bytes=4096, files_done=4,
                                                bytes_done=1720, current_file=["/a", "/b"])))),
        ("operation_index_snapshot", pb.OperationIndexSnapshot(snapshot=snapshot(1),
                                                                forgot=True)),
        ("operation_forget", pb.OperationForget(
            forget=[snapshot(2), snapshot(3)],
            policy=pb.RetentionPolicy(policy_time_bucketed=with_unknown(
                pb.RetentionPolicy.TimeBucketedCounts(hourly=24, daily=7, weekly=4,
                                                      monthly=12, yearly=3, keep_last_n=2),
                unknown_varint(7, 9),
            )),
        )),
        ("operation_forget", pb.OperationForget(policy=pb.RetentionPolicy(policy_keep_last_n=5))),
        ("operation_prune", pb.OperationPrune(output="removed 3 packs",
                                              output_logref="prune-7")),
        ("operation_restore", pb.OperationRestore(
            path="/home", target="/restore",
            last_status=pb.RestoreProgressEntry(message_type="summary", seconds_elapsed=3.5,
                                                total_bytes=2048, bytes_restored=2048,
                                                total_files=4, files_restored=4,
                                                percent_done=1.0),
        )),
        ("operation_stats", pb.OperationStats(stats=with_unknown(
            pb.RepoStats(total_size=3 * 2**30, total_uncompressed_size=5 * 2**30,
                         compression_ratio=1.66, total_blob_count=1200, snapshot_count=12),
            unknown_varint(4, 77),  # a number backrest's RepoStats skips
        ))),
        ("operation_run_hook", pb.OperationRunHook(
            name="plan/0", output_logref="hook-3", condition=pb.CONDITION_SNAPSHOT_END,
            parent_op=3,
        )),
        ("operation_check", pb.OperationCheck(output="no errors were found",
                                              output_logref="check-9")),
        ("operation_run_command", pb.OperationRunCommand(
            command="restic snapshots", output_logref="logs/11.log", output_size_bytes=99,
            exit_code=0,
        )),
    ]


def backrest_operations() -> list[bytes]:
    """One operation per payload (as a backrest producer sends them), encoded."""
    encoded = []
    for n, (member, payload) in enumerate(payloads(), start=1):
        op = pb.Operation(
            id=n, flow_id=1 if n > 1 else 0, modno=7, repo_id="nas", repo_guid="guid-nas",
            plan_id="nightly", instance_id="laptop" if n % 2 else "web1",
            status=pb.STATUS_SUCCESS, unix_time_start_ms=1_700_000_000_000 + n,
            unix_time_end_ms=1_700_000_001_000 + n, display_message=f"{member} {n}",
            snapshot_id=SNAPSHOT, logref=f"backrest-log-{n}",
        )
        getattr(op, member).CopyFrom(payload)
        # A field no version of this schema knows, after everything it does.
        encoded.append(op.SerializeToString() + unknown(5000, b"newer backrest field"))
    return encoded


def without(data: bytes, numbers: frozenset[int]) -> bytes:
    """``data`` (one encoded message) with its top-level fields ``numbers`` left out,
    every other field's bytes kept exactly, in order."""
    kept = bytearray()
    pos = 0
    while pos < len(data):
        start = pos
        tag, pos = decoder._DecodeVarint(data, pos)
        number, wire_type = tag >> 3, tag & 7
        if wire_type == 0:
            _, pos = decoder._DecodeVarint(data, pos)
        elif wire_type == 1:
            pos += 8
        elif wire_type == 2:
            length, pos = decoder._DecodeVarint(data, pos)
            pos += length
        elif wire_type == 5:
            pos += 4
        else:
            raise AssertionError(f"unexpected wire type {wire_type}")
        if number not in numbers:
            kept += data[start:pos]
    return bytes(kept)


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[tuple[Any, Path]]:
    config = write_config(tmp_path, hub_text_with())
    with running_hub(config) as running:
        assert config.path is not None
        yield running, config.path


def sync(client: RawClient, encoded: list[bytes]) -> None:
    ops = [pb.Operation.FromString(data) for data in encoded]
    frame = serialized_operations_frame(
        [SerializedOperation(op.id, op.repo_guid, op.plan_id, data)
         for op, data in zip(ops, encoded, strict=True)],
        "created_operations",
    )
    client.send(frame)
    selection = DiffSelection("guid-nas")
    ids = [op.id for op in ops]
    client.send(diff_item(selection, CLIENT.keyid, ids, [7] * len(ids)).SerializeToString())
    assert list(client.recv_action("diff_operations").diff_operations.request_operations) == []


def test_every_backrest_payload_kind_goes_through_the_hub_intact(
    hub: tuple[Any, Path],
) -> None:
    running, config_path = hub
    sent = backrest_operations()
    client = connected_client(running)
    try:
        sync(client, sent)
    finally:
        client.close()

    answer = ask_hub(Path(running.status().info.data_dir), "ops", limit=100)
    stored = answer["operations"][::-1]  # pages come newest first
    assert len(stored) == len(sent)
    for original, kept in zip(sent, stored, strict=True):
        assert without(kept, REWRITTEN) == without(original, REWRITTEN)
        op = pb.Operation.FromString(kept)
        assert op.original_id == pb.Operation.FromString(original).id
        assert op.original_instance_keyid == CLIENT.keyid
        assert op.peer_instance_id == "web1"

    listed = CliRunner().invoke(cli, ["--config", str(config_path), "ops", "--json"],
                                catch_exceptions=False)
    assert listed.exit_code == 0, listed.output
    shown = {item["original_id"]: item for item in json.loads(listed.stdout)}
    assert shown[1]["operation_backup"]["last_status"]["summary"] == {
        "files_new": 345, "files_changed": 2, "files_unmodified": 1000, "dirs_new": 3,
        "dirs_changed": 1, "dirs_unmodified": 40, "data_blobs": 90, "tree_blobs": 5,
        "data_added": 1288490189, "total_files_processed": 1347,
        "total_bytes_processed": 5 * 2**30, "total_duration": 61.25, "snapshot_id": SNAPSHOT,
    }
    assert shown[1]["operation_backup"]["errors"][0]["message"] == "permission denied"
    assert shown[2]["operation_backup"]["last_status"]["status"]["current_file"] == ["/a", "/b"]
    assert shown[3]["operation_index_snapshot"]["snapshot"]["summary"]["data_added"] == 1024
    assert [s["id"] for s in shown[4]["operation_forget"]["forget"]] == ["02" * 32, "03" * 32]
    assert shown[4]["operation_forget"]["policy"]["policy_time_bucketed"]["daily"] == 7
    assert shown[5]["operation_forget"]["policy"] == {"policy_keep_last_n": 5}
    assert shown[6]["operation_prune"]["output_logref"] == "prune-7"
    assert shown[7]["operation_restore"]["last_status"]["bytes_restored"] == 2048
    assert shown[8]["operation_stats"]["stats"]["snapshot_count"] == 12
    assert shown[9]["operation_run_hook"]["condition"] == "CONDITION_SNAPSHOT_END"
    assert shown[10]["operation_check"]["output"] == "no errors were found"
    assert shown[11]["operation_run_command"]["command"] == "restic snapshots"
    # The producer's instance as it wrote it, the peer that synced it beside it.
    assert {n: item["instance_id"] for n, item in shown.items()} == {
        n: "laptop" if n % 2 else "web1" for n in range(1, 12)
    }
    assert {item["peer_instance_id"] for item in shown.values()} == {"web1"}

    def ids(*flags: str) -> list[int]:
        result = CliRunner().invoke(cli, ["--config", str(config_path), "ops", "--json", *flags],
                                    catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return sorted(item["original_id"] for item in json.loads(result.stdout))

    assert ids("--instance", "web1") == list(range(1, 12))
    assert ids("--producer", "laptop") == [1, 3, 5, 7, 9, 11]
    assert ids("--instance", "laptop") == []
    table = CliRunner().invoke(cli, ["--config", str(config_path), "ops"],
                               catch_exceptions=False).stdout
    assert "laptop@web1" in table
    assert "backup: 1.2 GiB added, 345 new files, 2 changed, snapshot 5e5e5e5e" in table
