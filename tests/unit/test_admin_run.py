"""`synchub run -- CMD`: exit codes, the recorded operation, the output log."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from hub.cli.main import cli
from hub.cli.run_cmds import LOG_TAIL_BYTES, Tail, error_text, keep_tail
from hub.config import load_config
from hub.pb import synchub_pb2 as pb
from hub.store import open_oplog
from synchub_testing import LAUNCHER

CONFIG = """\
instance = "web1"
data_dir = "data"

[[repos]]
id = "nas"
guid = "guid-nas"
uri = "sftp:nas"

[[plans]]
id = "nightly"
repo = "nas"
"""


@pytest.fixture
def node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SYNCHUB_CONFIG", raising=False)
    (tmp_path / "synchub.toml").write_text(CONFIG)
    return tmp_path


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def operations(node: Path) -> list[pb.Operation]:
    with open_oplog(load_config(node / "synchub.toml")) as oplog:
        return oplog.query(pb.OpSelector())


def test_a_failing_job_exits_with_its_code_and_is_recorded_as_error(node: Path) -> None:
    result = run("run", "--", "sh", "-c", "echo to-out; echo to-err >&2; exit 3")
    assert result.exit_code == 3
    assert result.stdout == "to-out\n"
    assert result.stderr == "to-err\n"

    [op] = operations(node)
    assert op.status == pb.STATUS_ERROR
    assert op.instance_id == "web1"
    assert op.unix_time_end_ms >= op.unix_time_start_ms > 0
    assert op.operation_run_command.command == "sh -c 'echo to-out; echo to-err >&2; exit 3'"
    assert op.operation_run_command.exit_code == 3
    assert op.operation_run_command.output_size_bytes == len("to-out\nto-err\n")
    assert op.logref == op.operation_run_command.output_logref == f"logs/{op.id}.log"
    assert op.display_message.endswith("[exit 3]")
    log = node / "data" / op.logref
    assert sorted(log.read_text().splitlines()) == ["to-err", "to-out"]
    assert log.stat().st_mode & 0o777 == 0o600
    assert (node / "data" / "logs").stat().st_mode & 0o777 == 0o700


def test_a_successful_job_with_plan_and_message(node: Path) -> None:
    result = run("run", "--plan", "nightly", "-m", "nightly backup", "--", "true")
    assert result.exit_code == 0
    [op] = operations(node)
    assert op.status == pb.STATUS_SUCCESS
    assert (op.plan_id, op.repo_id, op.repo_guid) == ("nightly", "nas", "guid-nas")
    assert op.display_message == "nightly backup"
    assert op.operation_run_command.exit_code == 0
    listed = json.loads(run("ops", "--json").output)
    assert listed[0]["operation_run_command"] == {
        "command": "true",
        "output_logref": f"logs/{op.id}.log",
        "output_size_bytes": 0,
        "exit_code": 0,
    }


def test_options_after_the_command_belong_to_the_command(node: Path) -> None:
    result = run("run", "sh", "-c", "echo $0 $1", "--plan", "x")
    assert result.exit_code == 0
    assert result.stdout == "--plan x\n"
    [op] = operations(node)
    assert op.plan_id == ""


def test_a_command_that_cannot_start_exits_127(node: Path) -> None:
    result = run("run", "--", "no-such-command-here", "arg")
    assert result.exit_code == 127
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "synchub: error: cannot start 'no-such-command-here': No such file or directory"
    ]
    [op] = operations(node)
    assert op.status == pb.STATUS_ERROR
    assert op.operation_run_command.exit_code == 127
    assert "cannot start 'no-such-command-here'" in op.display_message


def test_a_command_killed_by_a_signal_exits_128_plus_n(node: Path) -> None:
    result = run("run", "--", "sh", "-c", "kill -KILL $$")
    assert result.exit_code == 128 + signal.SIGKILL
    [op] = operations(node)
    assert op.status == pb.STATUS_ERROR
    assert op.operation_run_command.exit_code == -signal.SIGKILL
    assert op.display_message.endswith("[killed by SIGKILL]")


def test_only_the_tail_of_long_output_is_kept(node: Path) -> None:
    script = f"{sys.executable} -c \"import sys; sys.stdout.write('x' * {LOG_TAIL_BYTES} + 'END')\""
    result = run("run", "--", "sh", "-c", script)
    assert result.exit_code == 0
    assert len(result.stdout) == LOG_TAIL_BYTES + 3
    [op] = operations(node)
    assert op.operation_run_command.output_size_bytes == LOG_TAIL_BYTES + 3
    kept = (node / "data" / op.logref).read_bytes()
    assert len(kept) == LOG_TAIL_BYTES
    assert kept.endswith(b"xEND")


def test_keep_tail_leaves_short_files_alone(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    path.write_bytes(b"0123456789")
    keep_tail(path, limit=10)
    assert path.read_bytes() == b"0123456789"
    keep_tail(path, limit=4)
    assert path.read_bytes() == b"6789"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--repo", "tape", "--", "true"), "no repo with id or guid 'tape'"),
        (("--plan", "nightly", "--repo", "other", "--", "true"), "plan 'nightly' uses repo 'nas'"),
        (("--plan", "bad plan", "--", "true"), "bad plan id 'bad plan'"),
        (("--plan", "bogus", "--", "true"), "no plan 'bogus' (known: nightly)"),
        (("--plan", "nightli", "--", "true"), "did you mean 'nightly'?"),
    ],
)
def test_bad_options_are_one_line_and_run_nothing(
    node: Path, args: tuple[str, ...], fragment: str
) -> None:
    result = run("run", *args)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("synchub: error: ")
    assert fragment in lines[0]
    assert not (node / "data" / "oplog.sqlite").exists()


def test_repo_is_an_id_or_a_guid(node: Path) -> None:
    config = load_config(node / "synchub.toml")
    [nas] = config.repos
    assert run("run", "--repo", "nas", "--", "true").exit_code == 0
    assert run("run", "--repo", nas.guid, "--", "true").exit_code == 0
    assert run("run", "--plan", "nightly", "--repo", nas.guid, "--", "true").exit_code == 0
    assert [(op.repo_id, op.repo_guid) for op in operations(node)] == [("nas", nas.guid)] * 3


def test_run_without_a_command_is_a_usage_error(node: Path) -> None:
    result = run("run")
    assert result.exit_code == 2
    assert "Missing argument" in result.stderr


def test_sigterm_is_passed_to_the_command_and_the_end_recorded(node: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, str(LAUNCHER), "run", "--", "sh", "-c",
         'trap "echo got-term; exit 42" TERM; echo ready; while :; do sleep 0.02; done'],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": ""},
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "ready\n"
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 42, err
    assert out == "got-term\n"
    [op] = operations(node)
    assert op.status == pb.STATUS_ERROR
    assert op.operation_run_command.exit_code == 42


# -- the failure output the operation carries ----------------------------------------


def test_a_failed_job_keeps_the_end_of_its_output_in_the_operation(node: Path) -> None:
    result = run("run", "--", "sh", "-c", "echo boom >&2; exit 3")
    assert result.exit_code == 3
    [op] = operations(node)
    assert op.error_output == "boom\n"


def test_a_successful_job_keeps_none(node: Path) -> None:
    assert run("run", "--", "sh", "-c", "echo fine").exit_code == 0
    [op] = operations(node)
    assert op.error_output == ""


def test_only_the_last_error_output_bytes_are_kept(node: Path) -> None:
    (node / "synchub.toml").write_text(CONFIG + "\n[run]\nerror_output_bytes = 100\n")
    script = "for i in $(seq 1 2000); do echo line-$i; done; echo the-reason >&2; exit 1"
    assert run("run", "--", "sh", "-c", script).exit_code == 1
    [op] = operations(node)
    assert len(op.error_output.encode()) <= 100
    assert op.error_output.endswith("line-2000\nthe-reason\n")
    assert op.error_output.startswith(op.error_output.splitlines()[0])


def test_zero_turns_it_off(node: Path) -> None:
    (node / "synchub.toml").write_text(CONFIG + "\n[run]\nerror_output_bytes = 0\n")
    assert run("run", "--", "sh", "-c", "echo boom >&2; exit 3").exit_code == 3
    [op] = operations(node)
    assert op.error_output == ""
    assert op.display_message.endswith("[exit 3]")


def test_a_command_that_cannot_start_keeps_the_reason(node: Path) -> None:
    assert run("run", "--", "/nonexistent/tool").exit_code == 127
    [op] = operations(node)
    assert "cannot start '/nonexistent/tool'" in op.error_output


@pytest.mark.parametrize(
    ("tail", "limit", "expected"),
    [
        (b"plain", 10, "plain"),
        ("é-then-text".encode()[1:], 64, "-then-text"),  # cut inside 'é'
        (b"bad \xff byte", 64, "bad \ufffd byte"),
        (b"\xff" * 10, 9, "\ufffd" * 3),  # replacements cost 3 bytes each
        (b"", 10, ""),
    ],
)
def test_error_text_is_valid_utf8_within_the_limit(tail: bytes, limit: int, expected: str) -> None:
    text = error_text(tail, limit)
    assert text == expected
    assert len(text.encode()) <= limit


def test_the_tail_keeps_exactly_the_last_bytes() -> None:
    tail = Tail(10)
    for chunk in (b"abc", b"defghij", b"k", b"lmnopqrstuvwxyz", b"12"):
        tail.add(chunk)
    assert tail.value() == b"stuvwxyz12"
    assert Tail(0).value() == b""


# -- restic jobs (the real restic runs in tests/integration/test_restic_jobs.py) ------------


def fake_restic(node: Path, script: str, name: str = "restic") -> Path:
    """An executable standing in for restic: prints what ``script`` prints."""
    tool = node / "bin" / name
    tool.parent.mkdir(exist_ok=True)
    tool.write_text("#!/bin/sh\n" + script)
    tool.chmod(0o755)
    return tool


def test_a_restic_backup_is_recorded_in_backrests_payload(node: Path) -> None:
    summary = ('{"message_type":"summary","files_new":3,"data_added":4096,'
               '"total_duration":1.5,"snapshot_id":"5ca1ab1e"}')
    tool = fake_restic(node, f"echo '{summary}'\necho 'Fatal: some files were unreadable' >&2\n"
                             "exit 3\n")
    result = run("run", "--", str(tool), "-r", "/srv/repo", "backup", "--json", "/home")
    assert result.exit_code == 3
    assert summary in result.stdout  # restic's output still reaches the terminal
    [op] = operations(node)
    assert op.WhichOneof("op") == "operation_backup"
    assert op.status == pb.STATUS_WARNING
    assert op.snapshot_id == "5ca1ab1e"
    assert op.operation_backup.last_status.summary.data_added == 4096
    assert op.display_message.endswith("[exit 3]")
    assert "unreadable" in op.error_output
    assert op.logref == f"logs/{op.id}.log"
    assert op.output_size_bytes == len(result.stdout) + len(result.stderr)


def test_restic_is_forced_for_a_wrapper_and_refused_for_anything_else(node: Path) -> None:
    tool = fake_restic(node, "echo 'no errors were found'\n", name="backup-tool")
    assert run("run", "--", str(tool), "check").exit_code == 0
    [plain] = operations(node)
    assert plain.WhichOneof("op") == "operation_run_command"
    assert run("run", "--restic", "--", str(tool), "check").exit_code == 0
    forced = operations(node)[-1]
    assert forced.WhichOneof("op") == "operation_check"
    assert forced.operation_check.output == "no errors were found"
    refused = run("run", "--restic", "--", "true")
    assert refused.exit_code == 1
    assert refused.stderr.splitlines() == [
        "synchub: error: --restic: no restic command (backup, forget, check, prune) in 'true'"
    ]


def test_other_restic_commands_are_plain_jobs(node: Path) -> None:
    tool = fake_restic(node, "echo snapshots\n")
    assert run("run", "--", str(tool), "snapshots").exit_code == 0
    [op] = operations(node)
    assert op.WhichOneof("op") == "operation_run_command"
    assert op.operation_run_command.exit_code == 0
