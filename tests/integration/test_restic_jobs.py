"""Real restic wrapped by `synchub run` on a client, seen on a real hub: a backup's
snapshot id and bytes added, a forget's removed snapshots, a check's and a prune's
outcome, a failure's reason. The repository lives in a temporary folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_job_story import READ_LOGS, Site, agent_running, arrived, hub_ops, hub_running, make_site

from hub.pb import synchub_pb2 as pb
from synchub_testing import LAUNCHER

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("restic") is None,
                       reason="restic is not installed (Debian: apt-get install restic)"),
]

PASSWORD = "correct horse battery staple"


def restic_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESTIC_")}
    env.update({"RESTIC_PASSWORD": PASSWORD, **extra})
    return env


def run_on_client(site: Site, *command: str, env: dict[str, str] | None = None,
                  ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(LAUNCHER), "--config", str(site.client_config), "run", "--",
         *command],
        capture_output=True, text=True, timeout=120, check=False, env=env or restic_env(),
    )


def snapshots(repo: Path) -> list[dict[str, object]]:
    listed = subprocess.run(["restic", "-r", str(repo), "snapshots", "--json"],
                            capture_output=True, text=True, check=True, env=restic_env())
    return list(json.loads(listed.stdout))


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return make_site(tmp_path, client_permissions=READ_LOGS)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    subprocess.run(["restic", "init", "-q", "-r", str(path)], check=True, env=restic_env(),
                   capture_output=True)
    return path


@pytest.fixture
def source(tmp_path: Path) -> Path:
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "a.txt").write_bytes(os.urandom(20_000))
    (folder / "b.txt").write_text("hello\n")
    return folder


def latest_on_hub(site: Site, member: str) -> pb.Operation:
    done = [op for op in hub_ops(site)
            if op.WhichOneof("op") == member and op.status != pb.STATUS_INPROGRESS]
    assert done, f"no finished {member} on the hub"
    return done[0]


def test_a_restic_backup_shows_on_the_hub_with_its_snapshot_and_bytes_added(
    site: Site, repo: Path, source: Path
) -> None:
    with hub_running(site), agent_running(site):
        job = run_on_client(site, "restic", "-r", str(repo), "backup", "--json", str(source))
        assert job.returncode == 0, job.stderr
        # What restic printed still reached the terminal, its summary last.
        printed = json.loads(job.stdout.strip().splitlines()[-1])
        assert printed["message_type"] == "summary"
        arrived(site, pb.STATUS_SUCCESS)
        backup = latest_on_hub(site, "operation_backup")
        listed = subprocess.run(
            [sys.executable, str(LAUNCHER), "--config", str(site.hub_config), "ops"],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout

    [snapshot] = snapshots(repo)
    summary = backup.operation_backup.last_status.summary
    assert backup.snapshot_id == summary.snapshot_id == printed["snapshot_id"]
    assert str(snapshot["id"]).startswith(backup.snapshot_id)
    assert summary.data_added == printed["data_added"] > 20_000
    assert (summary.files_new, summary.total_files_processed) == (2, 2)
    assert summary.total_bytes_processed == 20_006
    assert summary.total_duration > 0
    assert backup.instance_id == backup.peer_instance_id == "web1"
    assert backup.output_size_bytes == len(job.stdout.encode())
    assert f"snapshot {backup.snapshot_id[:8]}" in listed and "2 new files" in listed


def test_forget_check_prune_and_a_failure_are_recorded_with_restics_outcome(
    site: Site, repo: Path, source: Path
) -> None:
    with hub_running(site), agent_running(site):
        for _ in range(2):
            assert run_on_client(site, "restic", "-r", str(repo), "backup", "-q",
                                 str(source)).returncode == 0
            (source / "b.txt").write_text("changed\n")
        first, second = sorted(snapshots(repo), key=lambda s: str(s["time"]))
        forget = run_on_client(site, "restic", "-r", str(repo), "forget", "--keep-last", "1",
                               "--json")
        assert forget.returncode == 0, forget.stderr
        check = run_on_client(site, "restic", "-r", str(repo), "check")
        assert check.returncode == 0, check.stderr
        prune = run_on_client(site, "restic", "-r", str(repo), "prune")
        assert prune.returncode == 0, prune.stderr
        wrong = run_on_client(site, "restic", "-r", str(repo), "backup", str(source),
                              env=restic_env(RESTIC_PASSWORD="wrong"))
        assert wrong.returncode != 0
        arrived(site, pb.STATUS_ERROR)
        on_hub = {op.WhichOneof("op"): op for op in reversed(hub_ops(site))}
        failed = [op for op in hub_ops(site) if op.status == pb.STATUS_ERROR]

    [removed] = on_hub["operation_forget"].operation_forget.forget
    assert removed.id == first["id"] and removed.hostname == first["hostname"]
    assert removed.unix_time_ms > 0
    assert on_hub["operation_forget"].operation_forget.policy.policy_keep_last_n == 1
    assert [s["id"] for s in snapshots(repo)] == [second["id"]]
    assert on_hub["operation_check"].status == pb.STATUS_SUCCESS
    assert on_hub["operation_check"].operation_check.output == "no errors were found"
    assert on_hub["operation_check"].operation_check.output_logref.startswith("logs/")
    assert on_hub["operation_prune"].operation_prune.output.startswith("total prune:")
    [bad] = failed
    assert bad.WhichOneof("op") == "operation_backup"
    assert "wrong password" in bad.error_output
    assert bad.display_message.endswith(f"[exit {wrong.returncode}]")
