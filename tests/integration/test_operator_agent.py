"""Jobs recorded with `synchub run` reaching a hub through the client agent, and the demo.

The hub (`synchub start`) and `synchub run` are separate processes, as on real
hosts; the agent runs in this process with its default timing.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from hub.admin import ask_hub
from hub.agent import Agent, AgentSettings
from hub.cli.main import cli
from hub.config import load_config
from hub.identity import create_identity
from hub.pb import synchub_pb2 as pb
from synchub_testing import LAUNCHER, HubProcess, free_tcp_port, wait_until

pytestmark = pytest.mark.integration

SHARED = """\
[[repos]]
id = "nas"
guid = "guid-nas"
uri = "sftp:nas"

[[plans]]
id = "nightly"
repo = "nas"
"""


def synchub(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(LAUNCHER), "--config", str(config), *args],
        capture_output=True, text=True, timeout=60, check=False,
    )


@dataclass
class Site:
    hub_config: Path
    hub_data: Path
    client_config: Path


@pytest.fixture
def site(tmp_path: Path) -> Site:
    hub_dir, client_dir = tmp_path / "hub", tmp_path / "client"
    hub_dir.mkdir()
    client_dir.mkdir()
    hub_identity = create_identity(hub_dir / "data")
    client_identity = create_identity(client_dir / "data")
    port = free_tcp_port()
    (hub_dir / "synchub.toml").write_text(f"""\
instance = "hub-1"
data_dir = "data"

[hub]
bind = "tcp://127.0.0.1:{port}"
heartbeat_interval = 1

{SHARED}
[[authorized_clients]]
instance_id = "web1"
keyid = "{client_identity.signing.keyid}"
keyid_verified = true
""")
    (client_dir / "synchub.toml").write_text(f"""\
instance = "web1"
data_dir = "data"

{SHARED}
[[known_hosts]]
instance_id = "hub-1"
endpoint = "tcp://127.0.0.1:{port}"
keyid = "{hub_identity.signing.keyid}"
curve_public_key = "{hub_identity.curve.public_text}"
permissions = [ {{ type = "read_operations", scopes = ["*"] }} ]
""")
    return Site(hub_dir / "synchub.toml", hub_dir / "data", client_dir / "synchub.toml")


@pytest.fixture
def hub(site: Site) -> Iterator[HubProcess]:
    process = HubProcess(site.hub_config)
    try:
        process.wait_for_output("listening on")
        yield process
    finally:
        process.kill()


@contextmanager
def running_agent(site: Site) -> Iterator[Agent]:
    agent = Agent(load_config(site.client_config), settings=AgentSettings(heartbeat_interval=1.0))
    agent.start()
    try:
        yield agent
    finally:
        agent.stop()


def hub_ops(site: Site) -> list[pb.Operation]:
    answer = ask_hub(site.hub_data, "ops", limit=100)
    return [pb.Operation.FromString(raw) for raw in answer["operations"]]


@pytest.mark.alone
def test_a_failing_job_reaches_the_hub_as_an_error_within_two_seconds(
    site: Site, hub: HubProcess
) -> None:
    # Recorded while no agent runs: it waits in the client's oplog.
    early = synchub(site.client_config, "run", "--plan", "nightly", "--", "true")
    assert early.returncode == 0, early.stderr
    assert hub_ops(site) == []

    with running_agent(site):
        wait_until(lambda: len(hub_ops(site)) == 1, timeout=15, what="the early job")
        [delivered] = hub_ops(site)
        assert delivered.status == pb.STATUS_SUCCESS
        assert delivered.plan_id == "nightly" and delivered.repo_guid == "guid-nas"

        failed = synchub(site.client_config, "run", "--", "sh", "-c", "exit 3")
        assert failed.returncode == 3
        arrived: list[pb.Operation] = []

        def failed_job_arrived() -> bool:
            arrived[:] = [
                op for op in hub_ops(site)
                if op.status == pb.STATUS_ERROR and op.operation_run_command.exit_code == 3
            ]
            return bool(arrived)

        wait_until(failed_job_arrived, timeout=10, what="the failing job on the hub")
        [on_hub] = arrived
        # From the end time the job recorded (wall clock, same machine) to seeing it.
        took = time.time() - on_hub.unix_time_end_ms / 1000
        assert took <= 2.0, f"the hub had the job {took:.2f}s after it ended"
        assert on_hub.instance_id == "web1"
        assert on_hub.operation_run_command.command == "sh -c 'exit 3'"
        assert on_hub.unix_time_end_ms >= on_hub.unix_time_start_ms
        assert on_hub.logref == on_hub.operation_run_command.output_logref != ""


def test_demo_runs_on_a_fresh_machine_and_cleans_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    # Whatever configuration is around is not the demo's business.
    (tmp_path / "synchub.toml").write_text("this is not TOML [\n")
    monkeypatch.setenv("SYNCHUB_CONFIG", str(tmp_path / "synchub.toml"))

    result = CliRunner().invoke(cli, ["demo"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = result.output
    folder = Path(re.match(r"synchub demo in (\S+)\n", out).group(1))  # type: ignore[union-attr]
    assert not folder.exists()
    assert out.rstrip().endswith("removed the demo folder")

    peers = out.split("peers, as the hub sees them")[1].split("recent operations")[0]
    rows = [line.split() for line in peers.strip().splitlines()[2:]]
    assert sorted(row[0] for row in rows) == ["backup1", "db1", "web1"]
    assert all(row[2] == "connected" for row in rows)

    operations = out.split("recent operations in the hub's oplog")[1]
    rows = [line.split() for line in operations.splitlines() if re.match(r"\s+\d+\s", line)]
    assert len(rows) == 4
    assert sorted(row[3] for row in rows) == ["error", "success", "success", "success"]
    [failed] = [line for line in operations.splitlines() if " error " in line]
    assert "backup1" in failed and failed.rstrip().endswith("[exit 3]")


def test_demo_keep_leaves_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SYNCHUB_CONFIG", raising=False)
    result = CliRunner().invoke(cli, ["demo", "--keep"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    folder = Path(re.match(r"synchub demo in (\S+)\n", result.output).group(1))  # type: ignore[union-attr]
    try:
        assert f"kept {folder}" in result.output
        assert sorted(p.name for p in folder.iterdir()) == ["backup1", "db1", "hub", "web1"]
        assert not (folder / "hub" / "data" / "admin.sock").exists()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
