"""restic commands `synchub run` wraps: detection, and what restic printed recorded in
backrest's payload shapes. The samples are restic 0.14's own output (JSON and text);
tests/integration/test_restic_jobs.py runs the real restic."""

from __future__ import annotations

import json

import pytest

from hub.pb import synchub_pb2 as pb
from hub.restic import MAX_ERRORS, MAX_LINE_BYTES, ResticCommand, ResticReport, detect

SUMMARY = (
    '{"message_type":"summary","files_new":1,"files_changed":0,"files_unmodified":0,'
    '"dirs_new":1,"dirs_changed":0,"dirs_unmodified":0,"data_blobs":1,"tree_blobs":2,'
    '"data_added":708,"total_files_processed":1,"total_bytes_processed":6,'
    '"total_duration":0.210608764,"snapshot_id":"b091b3f5"}\n'
)
STATUS = ('{"message_type":"status","percent_done":0.5,"total_files":4,"files_done":2,'
          '"total_bytes":6,"bytes_done":3,"current_files":["/src/a"]}\n')
TEXT_BACKUP = """\
using parent snapshot b091b3f5

Files:           1 new,     0 changed,     1 unmodified
Dirs:            0 new,     1 changed,     0 unmodified
Added to the repository: 1.021 KiB (738 B stored)

processed 2 files, 11 B in 0:03
snapshot b9a69e3b saved
"""
FORGET_JSON = json.dumps([{
    "tags": None, "host": "vm", "paths": ["/src"],
    "keep": [{"time": "2026-12-01T17:41:38.927666031Z", "id": "b9" * 32, "short_id": "b9b9b9b9",
              "paths": ["/src"], "hostname": "vm", "username": "root", "tree": "e7" * 32}],
    "remove": [{"time": "2026-12-01T17:41:38.178584218Z", "tree": "40" * 32, "paths": ["/src"],
                "hostname": "vm", "username": "root", "id": "b0" * 32, "short_id": "b0b0b0b0",
                "parent": "aa" * 32, "tags": ["nightly"]}],
    "reasons": [],
}]) + "\n"
TEXT_FORGET = """\
Applying Policy: keep 1 latest snapshots
keep 1 snapshots:
ID        Time                 Host        Tags        Reasons        Paths
------------------------------------------------------------------------------------
bb2f78e9  2026-12-01 17:41:40  vm                      last snapshot  /tmp/rtest/src
------------------------------------------------------------------------------------
1 snapshots

remove 2 snapshots:
ID        Time                 Host        Tags        Paths
---------------------------------------------------------------------
b9a69e3b  2026-12-01 17:41:38  vm                      /tmp/rtest/src
0c1d2e3f  2026-12-01 17:41:39  vm                      /tmp/rtest/src
---------------------------------------------------------------------
2 snapshots

[0:00] 100.00%  2 / 2 files deleted
"""
PRUNE = """\
to repack:             0 blobs / 0 B
this removes:          0 blobs / 0 B
to delete:             2 blobs / 495 B
total prune:           2 blobs / 495 B
remaining:             4 blobs / 662 B
done
"""


@pytest.mark.parametrize(
    ("argv", "force", "expected"),
    [
        (["restic", "backup", "/home"], False, ResticCommand("backup", False, ("/home",))),
        (["/usr/bin/restic", "-r", "/srv/repo", "--json", "backup", "/home"], False,
         ResticCommand("backup", True, ("/home",))),
        (["restic-0.17.3", "--repo=/r", "-o", "s3.region=x", "forget", "--keep-last", "3"],
         False, ResticCommand("forget", False, ("--keep-last", "3"))),
        (["restic", "--password-file", "check", "check"], False,
         ResticCommand("check", False, ())),
        (["restic", "prune", "--json"], False, ResticCommand("prune", True, ("--json",))),
        (["restic", "snapshots"], False, None),
        (["restic", "-r", "backup"], False, None),  # "backup" is the repository here
        (["restic"], False, None),
        (["sh", "-c", "restic backup /home"], False, None),
        (["restic2000", "backup"], False, None),
        ([], False, None),
        (["/opt/wrap-backups", "--json", "backup", "/home"], True,
         ResticCommand("backup", True, ("/home",))),
        (["sudo", "restic", "check"], True, ResticCommand("check", False, ())),
        (["sudo", "ls"], True, None),
    ],
)
def test_detect(argv: list[str], force: bool, expected: ResticCommand | None) -> None:
    assert detect(argv, force=force) == expected


def recorded(command: ResticCommand, stdout: str, exit_code: int = 0, stderr: str = "",
             chunk: int = 7) -> tuple[pb.Operation, int]:
    """What a ResticReport records after restic printed ``stdout`` in small chunks."""
    report = ResticReport(command)
    op = pb.Operation(display_message="job")
    report.start(op, "logs/1.log")
    data = stdout.encode()
    for start in range(0, len(data), chunk):
        report.stdout(data[start : start + chunk])
    report.stderr(stderr.encode())
    status = report.finish(op, exit_code)
    return op, status


def test_a_json_backup_records_restics_summary_and_the_snapshot() -> None:
    op, status = recorded(ResticCommand("backup", True, ()), STATUS * 3 + SUMMARY)
    assert status == pb.STATUS_SUCCESS
    assert op.snapshot_id == "b091b3f5"
    summary = op.operation_backup.last_status.summary
    assert (summary.files_new, summary.dirs_new, summary.data_added) == (1, 1, 708)
    assert (summary.tree_blobs, summary.total_bytes_processed) == (2, 6)
    assert summary.total_duration == pytest.approx(0.210608764)
    assert summary.snapshot_id == "b091b3f5"


def test_a_json_backup_without_a_summary_keeps_its_last_status_and_errors() -> None:
    errors = "".join(
        json.dumps({"message_type": "error", "error": error, "during": "archival",
                    "item": f"/src/{n}"}) + "\n"
        for n, error in enumerate([{}, {"message": "permission denied"}, "open failed"])
    )
    op, status = recorded(ResticCommand("backup", True, ()), STATUS + errors, exit_code=1)
    assert status == pb.STATUS_ERROR
    entry = op.operation_backup.last_status
    assert entry.WhichOneof("entry") == "status"
    assert (entry.status.percent_done, list(entry.status.current_file)) == (0.5, ["/src/a"])
    assert [e.message for e in op.operation_backup.errors] == [
        "(restic gave no message)", "permission denied", "open failed"
    ]
    assert op.operation_backup.errors[1].item == "/src/1"
    assert op.snapshot_id == ""


def test_exit_3_with_a_saved_snapshot_is_a_warning() -> None:
    warn = '{"message_type":"error","error":{},"during":"archival","item":"/x"}\n'
    _, status = recorded(ResticCommand("backup", True, ()), warn + SUMMARY, exit_code=3)
    assert status == pb.STATUS_WARNING
    _, failed = recorded(ResticCommand("backup", True, ()), warn, exit_code=3)
    assert failed == pb.STATUS_ERROR


def test_errors_kept_are_bounded() -> None:
    error = '{"message_type":"error","error":{"message":"x"},"item":"/y"}\n'
    op, _ = recorded(ResticCommand("backup", True, ()), error * (MAX_ERRORS + 50), chunk=4096)
    assert len(op.operation_backup.errors) == MAX_ERRORS


def test_a_text_backup_records_the_closing_lines() -> None:
    op, status = recorded(ResticCommand("backup", False, ()), TEXT_BACKUP)
    assert status == pb.STATUS_SUCCESS
    summary = op.operation_backup.last_status.summary
    assert op.snapshot_id == summary.snapshot_id == "b9a69e3b"
    assert (summary.files_new, summary.files_changed, summary.files_unmodified) == (1, 0, 1)
    assert (summary.dirs_new, summary.dirs_changed, summary.dirs_unmodified) == (0, 1, 0)
    assert summary.data_added == int(1.021 * 1024)
    assert (summary.total_files_processed, summary.total_bytes_processed) == (2, 11)
    assert summary.total_duration == 3.0


def test_a_forget_records_the_snapshots_removed_and_the_policy() -> None:
    args = ("--keep-daily", "7", "--keep-weekly=4", "-l", "2", "--prune")
    op, status = recorded(ResticCommand("forget", True, args), FORGET_JSON + PRUNE)
    assert status == pb.STATUS_SUCCESS
    [removed] = op.operation_forget.forget
    assert (removed.id, removed.hostname, list(removed.tags)) == ("b0" * 32, "vm", ["nightly"])
    assert removed.parent == "aa" * 32 and list(removed.paths) == ["/src"]
    assert removed.unix_time_ms == 1796146898178
    policy = op.operation_forget.policy
    assert policy.WhichOneof("policy") == "policy_time_bucketed"
    counts = policy.policy_time_bucketed
    assert (counts.daily, counts.weekly, counts.keep_last_n) == (7, 4, 2)


def test_a_text_forget_records_the_short_ids_removed() -> None:
    op, _ = recorded(ResticCommand("forget", False, ("--keep-last", "1")), TEXT_FORGET)
    assert [s.id for s in op.operation_forget.forget] == ["b9a69e3b", "0c1d2e3f"]
    assert op.operation_forget.policy.policy_keep_last_n == 1


def test_check_and_prune_record_their_outcome_and_log() -> None:
    check, status = recorded(ResticCommand("check", False, ()), "load indexes\n"
                             "no errors were found\n")
    assert status == pb.STATUS_SUCCESS
    assert check.operation_check.output == "no errors were found"
    assert check.operation_check.output_logref == "logs/1.log"
    broken, status = recorded(ResticCommand("check", False, ()), "load indexes\n", exit_code=1,
                              stderr="error: pack 1a2b: not found\nFatal: repository "
                              "contains errors\n")
    assert status == pb.STATUS_ERROR
    assert broken.operation_check.output == "Fatal: repository contains errors"
    prune, _ = recorded(ResticCommand("prune", False, ()), PRUNE)
    assert prune.operation_prune.output == "total prune: 2 blobs / 495 B"
    assert prune.operation_prune.output_logref == "logs/1.log"


def test_the_payload_kind_is_set_when_the_job_starts() -> None:
    for name, member in (("backup", "operation_backup"), ("forget", "operation_forget"),
                         ("check", "operation_check"), ("prune", "operation_prune")):
        op = pb.Operation()
        ResticReport(ResticCommand(name, False, ())).start(op, "logs/2.log")
        assert op.WhichOneof("op") == member


def test_odd_output_is_survived() -> None:
    garbage = (
        '{"message_type":"summary","files_new":"many","data_added":1e400,'
        '"snapshot_id":null}\n'
        "{not json\n"
        '["a list where an object belongs"]\n'
        "\xff\xfe binary\n"
        + "x" * (MAX_LINE_BYTES + 10) + "\n"
    )
    op, status = recorded(ResticCommand("backup", True, ()), garbage, chunk=1 << 20)
    assert status == pb.STATUS_SUCCESS
    summary = op.operation_backup.last_status.summary
    assert (summary.files_new, summary.data_added, summary.snapshot_id) == (0, 0, "")
    forget, _ = recorded(ResticCommand("forget", True, ()),
                         '[{"remove": [{"id": 7, "time": "yesterday"}, "x"]}, 3]\n')
    assert [s.id for s in forget.operation_forget.forget] == ["7"]
    assert forget.operation_forget.forget[0].unix_time_ms == 0
