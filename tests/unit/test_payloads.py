"""Operations as people read them: one summary line per payload kind, the table of
`synchub ops`, and payloads in `--json`."""

from __future__ import annotations

import doctest
import json

import pytest

import hub.payloads
from hub.cli.ops_cmds import operations_table
from hub.jsonview import message_to_dict
from hub.payloads import human_bytes, kind, summary
from hub.pb import synchub_pb2 as pb

SNAPSHOT = "1a2b3c4d" + "e" * 56


def test_the_module_example_runs() -> None:
    failures, tried = doctest.testmod(hub.payloads)
    assert tried > 0 and failures == 0


@pytest.mark.parametrize(
    ("count", "text"),
    [(0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1288490189, "1.2 GiB"),
     (5 * 2**50, "5.0 PiB"), (2**70, "1024.0 EiB")],
)
def test_human_bytes(count: int, text: str) -> None:
    assert human_bytes(count) == text


def backup_done(**fields: object) -> pb.Operation:
    op = pb.Operation(status=pb.STATUS_SUCCESS, display_message="restic backup /home")
    op.operation_backup.last_status.summary.CopyFrom(pb.BackupProgressSummary(**fields))
    return op


def with_payload(member: str, payload: object, status: int = pb.STATUS_SUCCESS) -> pb.Operation:
    op = pb.Operation(status=status, display_message="the display message")
    getattr(op, member).CopyFrom(payload)
    return op


def forget_of(count: int) -> pb.OperationForget:
    return pb.OperationForget(
        forget=[pb.ResticSnapshot(id=f"{n:08x}" + "0" * 56) for n in range(count)],
        policy=pb.RetentionPolicy(
            policy_time_bucketed=pb.RetentionPolicy.TimeBucketedCounts(daily=7, weekly=4)
        ),
    )


SUMMARIES = [
    ("backup done", backup_done(data_added=1288490189, files_new=345, snapshot_id=SNAPSHOT),
     "backup: 1.2 GiB added, 345 new files, snapshot 1a2b3c4d"),
    ("backup with changes", backup_done(data_added=10, files_new=0, files_changed=2),
     "backup: 10 B added, 0 new files, 2 changed"),
    ("backup running",
     with_payload("operation_backup", pb.OperationBackup(last_status=pb.BackupProgressEntry(
         status=pb.BackupProgressStatusEntry(percent_done=0.5, total_bytes=2048,
                                             files_done=3, total_files=9)))),
     "backup: 50% of 2.0 KiB, 3 of 9 files"),
    ("backup errors only",
     with_payload("operation_backup", pb.OperationBackup(
         errors=[pb.BackupProgressError(item="/a"), pb.BackupProgressError(item="/b")])),
     "backup: no summary, 2 errors"),
    ("snapshot indexed",
     with_payload("operation_index_snapshot", pb.OperationIndexSnapshot(
         snapshot=pb.ResticSnapshot(id=SNAPSHOT, hostname="web1", paths=["/etc", "/srv"]),
         forgot=True)),
     "snapshot 1a2b3c4d of web1:/etc,/srv (forgotten)"),
    ("forget one", with_payload("operation_forget", pb.OperationForget(
        forget=[pb.ResticSnapshot(id=SNAPSHOT)],
        policy=pb.RetentionPolicy(policy_keep_last_n=3))),
     "forget: 1 snapshot removed (1a2b3c4d); keep last 3"),
    ("forget many", with_payload("operation_forget", forget_of(5)),
     "forget: 5 snapshots removed (00000000, 00000001, 00000002, ...); keep 7 daily, 4 weekly"),
    ("forget none", with_payload("operation_forget", pb.OperationForget(
        policy=pb.RetentionPolicy(policy_keep_all=True))),
     "forget: 0 snapshots removed; keep all"),
    ("prune", with_payload("operation_prune", pb.OperationPrune(output="a\nremoved 3 packs\n")),
     "prune: removed 3 packs"),
    ("check", with_payload("operation_check", pb.OperationCheck(output="no errors were found")),
     "check: no errors were found"),
    ("check without output", with_payload("operation_check", pb.OperationCheck()), "check"),
    ("restore", with_payload("operation_restore", pb.OperationRestore(
        target="/restore", last_status=pb.RestoreProgressEntry(
            bytes_restored=1024, total_bytes=2048, files_restored=4))),
     "restore: 1.0 KiB of 2.0 KiB, 4 files to /restore"),
    ("stats", with_payload("operation_stats", pb.OperationStats(
        stats=pb.RepoStats(total_size=3 * 2**30, snapshot_count=12))),
     "stats: 3.0 GiB stored, 12 snapshots"),
    ("hook", with_payload("operation_run_hook", pb.OperationRunHook(
        name="plan/0", condition=pb.CONDITION_SNAPSHOT_END)),
     "hook plan/0 on snapshot_end"),
    ("hook of an unknown condition", with_payload("operation_run_hook", pb.OperationRunHook(
        name="repo/1", condition=999)),  # type: ignore[arg-type]
     "hook repo/1 on 999"),
    ("command", with_payload("operation_run_command", pb.OperationRunCommand(command="true")),
     "the display message"),
    ("failed backup says why",
     with_payload("operation_backup", pb.OperationBackup(), status=pb.STATUS_ERROR),
     "the display message"),
    ("backup with warnings", with_payload(
        "operation_backup",
        pb.OperationBackup(last_status=pb.BackupProgressEntry(
            summary=pb.BackupProgressSummary(files_new=1, snapshot_id=SNAPSHOT))),
        status=pb.STATUS_WARNING),
     "backup: 0 B added, 1 new files, snapshot 1a2b3c4d (warnings)"),
    ("no payload", pb.Operation(display_message="hand-written"), "hand-written"),
]


@pytest.mark.parametrize(
    ("op", "expected"), [pytest.param(op, text, id=name) for name, op, text in SUMMARIES]
)
def test_one_line_per_kind(op: pb.Operation, expected: str) -> None:
    assert summary(op) == expected


def test_every_payload_kind_has_a_summary() -> None:
    members = [f.name for f in pb.Operation.DESCRIPTOR.oneofs_by_name["op"].fields]
    covered = {kind(op) for _, op, _ in SUMMARIES}
    assert {m.removeprefix("operation_") for m in members} <= covered


def test_summaries_are_one_safe_line() -> None:
    op = with_payload("operation_check", pb.OperationCheck(output="ok\x1b[31m\rred" + "x" * 300))
    line = summary(op, limit=40)
    assert "\x1b" not in line and "\r" not in line and "\n" not in line
    assert len(line) <= 43


def test_the_table_shows_the_summary_and_where_an_operation_came_from() -> None:
    produced = backup_done(data_added=2048, files_new=2, snapshot_id=SNAPSHOT)
    produced.id, produced.instance_id, produced.peer_instance_id = 7, "laptop", "web1"
    produced.plan_id = "nightly\x1b[2J"
    direct = pb.Operation(id=8, instance_id="web1", peer_instance_id="web1",
                          display_message="true", status=pb.STATUS_SUCCESS)
    own = pb.Operation(id=9, instance_id="hub-1", display_message="local job")
    header, *rows = operations_table([produced, direct, own])
    assert header.split() == [
        "ID", "STARTED", "DURATION", "STATUS", "INSTANCE", "PLAN", "SUMMARY"]
    assert "laptop@web1" in rows[0]
    assert "backup: 2.0 KiB added, 2 new files, snapshot 1a2b3c4d" in rows[0]
    assert "\x1b" not in rows[0]
    assert rows[1].split()[4] == "web1"
    assert rows[2].split()[4] == "hub-1"


def test_json_shows_payloads_with_the_schemas_names() -> None:
    op = backup_done(data_added=5, files_new=1, snapshot_id=SNAPSHOT, total_duration=1.5)
    op.error_output = "boom\n"
    shown = message_to_dict(op)
    assert shown["operation_backup"]["last_status"]["summary"]["data_added"] == 5
    assert shown["operation_backup"]["last_status"]["summary"]["total_duration"] == 1.5
    assert "status" not in shown["operation_backup"]["last_status"]
    assert "operation_run_command" not in shown
    assert shown["error_output"] == "boom\n"


def test_json_stays_valid_with_doubles_that_are_not_finite() -> None:
    op = backup_done(total_duration=float("nan"))
    op.operation_backup.last_status.summary.total_duration = float("nan")
    restore = with_payload("operation_restore", pb.OperationRestore(
        last_status=pb.RestoreProgressEntry(percent_done=float("inf"),
                                            seconds_elapsed=float("-inf"))))
    text = json.dumps([message_to_dict(op), message_to_dict(restore)], allow_nan=False)
    back = json.loads(text)
    assert back[0]["operation_backup"]["last_status"]["summary"]["total_duration"] == "NaN"
    status = back[1]["operation_restore"]["last_status"]
    assert (status["percent_done"], status["seconds_elapsed"]) == ("Infinity", "-Infinity")
