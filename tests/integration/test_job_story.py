"""The whole story of a job on the hub: its failure output, its log on demand.

The hub (`synchub start`), `synchub run`, `synchub ops` and `synchub logs` are
separate processes, as on real hosts; the client agent runs in this process with
a short heartbeat so its logging can be checked.
"""

from __future__ import annotations

import json
import logging
import os
import select
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from hub.admin import ask_hub
from hub.agent import Agent, AgentSettings
from hub.config import load_config
from hub.identity import create_identity
from hub.pb import synchub_pb2 as pb
from synchub_testing import LAUNCHER, HubProcess, free_tcp_port, wait_until

pytestmark = pytest.mark.integration

READ_LOGS = '{ type = "read_logs", scopes = ["*"] }'


def synchub(config: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(LAUNCHER), "--config", str(config), *args],
        capture_output=True, text=True, timeout=60, check=False, cwd=cwd,
    )


@dataclass
class Site:
    root: Path
    hub_config: Path
    hub_data: Path
    client_config: Path
    client_data: Path


def make_site(root: Path, *, client_permissions: str) -> Site:
    hub_dir, client_dir = root / "hub", root / "client"
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

[[authorized_clients]]
instance_id = "web1"
keyid = "{client_identity.signing.keyid}"
keyid_verified = true
""")
    (client_dir / "synchub.toml").write_text(f"""\
instance = "web1"
data_dir = "data"

[[known_hosts]]
instance_id = "hub-1"
endpoint = "tcp://127.0.0.1:{port}"
keyid = "{hub_identity.signing.keyid}"
curve_public_key = "{hub_identity.curve.public_text}"
permissions = [ {{ type = "read_operations", scopes = ["*"] }}, {client_permissions} ]
""")
    return Site(root, hub_dir / "synchub.toml", hub_dir / "data",
                client_dir / "synchub.toml", client_dir / "data")


@contextmanager
def hub_running(site: Site) -> Iterator[HubProcess]:
    process = HubProcess(site.hub_config)
    try:
        process.wait_for_output("listening on")
        yield process
    finally:
        process.kill()


@contextmanager
def agent_running(site: Site) -> Iterator[Agent]:
    agent = Agent(load_config(site.client_config), settings=AgentSettings(heartbeat_interval=1.0))
    agent.start()
    try:
        yield agent
    finally:
        agent.stop()


def hub_ops(site: Site) -> list[pb.Operation]:
    answer = ask_hub(site.hub_data, "ops", limit=100)
    return [pb.Operation.FromString(raw) for raw in answer["operations"]]


def arrived(site: Site, status: int) -> pb.Operation:
    """The newest operation with ``status`` on the hub (with its log named), once there."""
    found: list[pb.Operation] = []

    def there() -> bool:
        found[:] = [op for op in hub_ops(site) if op.status == status and op.logref]
        return bool(found)

    wait_until(there, timeout=15, what=f"an operation with status {status} on the hub")
    return found[0]


def peer_state(site: Site) -> int:
    [raw] = ask_hub(site.hub_data, "peers")["peers"]
    return pb.PeerState.FromString(raw).state


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return make_site(tmp_path, client_permissions=READ_LOGS)


def test_a_failed_job_tells_the_hub_why_and_its_log_comes_on_demand(site: Site) -> None:
    with hub_running(site), agent_running(site):
        job = synchub(site.client_config, "run", "--", "sh", "-c", "echo boom >&2; exit 3")
        assert job.returncode == 3 and job.stderr == "boom\n"
        on_hub = arrived(site, pb.STATUS_ERROR)

        listed = synchub(site.hub_config, "ops", "--json")
        assert listed.returncode == 0, listed.stderr
        [shown] = json.loads(listed.stdout)
        assert shown["error_output"] == "boom\n"
        assert (shown["instance_id"], shown["peer_instance_id"]) == ("web1", "web1")
        assert shown["operation_run_command"]["exit_code"] == 3

        fetched = synchub(site.hub_config, "logs", str(on_hub.id))
        assert fetched.returncode == 0, fetched.stderr
        assert fetched.stdout == "boom\n" and fetched.stderr == ""

    # The agent has stopped: the hub marked the client disconnected when it said goodbye.
    with hub_running(site):
        wait_until(lambda: peer_state(site) == pb.CONNECTION_STATE_DISCONNECTED, timeout=10,
                   what="the client disconnected")
        offline = synchub(site.hub_config, "logs", str(on_hub.id))
        assert offline.returncode == 1
        [line] = offline.stderr.splitlines()
        assert line.startswith("synchub: error: client web1 is not connected")
        assert offline.stdout == ""
        # The reason is still there without the client.
        [kept] = json.loads(synchub(site.hub_config, "ops", "--json").stdout)
        assert kept["error_output"] == "boom\n"


def test_a_hub_without_read_logs_is_refused_and_the_client_logs_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    site = make_site(tmp_path, client_permissions='{ type = "read_config", scopes = ["*"] }')
    caplog.set_level(logging.WARNING, logger="hub.agent")
    with hub_running(site), agent_running(site):
        assert synchub(site.client_config, "run", "--", "sh", "-c", "exit 4").returncode == 4
        on_hub = arrived(site, pb.STATUS_ERROR)
        refused = synchub(site.hub_config, "logs", str(on_hub.id))
    assert refused.returncode == 1
    [line] = refused.stderr.splitlines()
    assert line.startswith("synchub: error: client web1 refused the log of operation")
    assert "read_logs" in line
    warnings = [r.getMessage() for r in caplog.records if r.name.startswith("hub.agent")]
    assert any("asked for the log of operation" in w and "refused" in w for w in warnings)


def test_a_missing_log_file_is_one_clear_line(site: Site) -> None:
    with hub_running(site), agent_running(site):
        assert synchub(site.client_config, "run", "--", "sh", "-c", "exit 5").returncode == 5
        on_hub = arrived(site, pb.STATUS_ERROR)
        (site.client_data / on_hub.logref).unlink()
        missing = synchub(site.hub_config, "logs", str(on_hub.id))
        unknown = synchub(site.hub_config, "logs", "999")
    assert missing.returncode == 1
    [line] = missing.stderr.splitlines()
    assert line.startswith("synchub: error: client web1 has no log for operation")
    assert "no longer exists" in line
    assert unknown.returncode == 1
    assert unknown.stderr.splitlines() == [
        "synchub: error: logs: no operation 999 on this hub (see `synchub ops`)"
    ]


def read_until(stream: object, wanted: bytes, timeout: float) -> bytes:
    """What ``stream`` (a pipe) gives until it holds ``wanted``; fails after ``timeout``."""
    fd = stream.fileno()  # type: ignore[attr-defined]
    got = b""
    deadline = os.times().elapsed + timeout
    while wanted not in got:
        left = deadline - os.times().elapsed
        if left <= 0:
            raise AssertionError(f"never saw {wanted!r}; got {got[-200:]!r}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                raise AssertionError(f"the stream ended before {wanted!r}; got {got[-200:]!r}")
            got += chunk
    return got


def test_a_running_jobs_log_is_read_part_by_part_and_followed_to_its_end(site: Site) -> None:
    stop = site.root / "stop"
    # 1.5 MB before the job waits: more than one request (1 MiB) of many chunks.
    script = (
        "head -c 1500000 /dev/zero | tr '\\0' a; echo; echo part-1; "
        f"while [ ! -e {stop} ]; do sleep 0.05; done; echo part-2"
    )
    with hub_running(site), agent_running(site):
        job = subprocess.Popen(
            [sys.executable, str(LAUNCHER), "--config", str(site.client_config), "run", "--",
             "sh", "-c", script],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            running = arrived(site, pb.STATUS_INPROGRESS)
            log_file = site.client_data / running.logref
            wait_until(lambda: b"part-1" in log_file.read_bytes(), timeout=15,
                       what="the job's first part in its log")
            so_far = synchub(site.hub_config, "logs", str(running.id))
            assert so_far.returncode == 0, so_far.stderr
            assert so_far.stdout == "a" * 1500000 + "\npart-1\n"
            assert "still running" in so_far.stderr

            follower = subprocess.Popen(
                [sys.executable, str(LAUNCHER), "--config", str(site.hub_config), "logs",
                 "--follow", str(running.id)],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )
            try:
                assert follower.stdout is not None
                seen = read_until(follower.stdout, b"part-1\n", timeout=20)
                stop.touch()
                rest, errors = follower.communicate(timeout=30)
            finally:
                if follower.poll() is None:
                    follower.kill()
                    follower.communicate()
            assert follower.returncode == 0, errors
            assert seen + rest == b"a" * 1500000 + b"\npart-1\npart-2\n"
            assert job.wait(timeout=30) == 0
        finally:
            if job.poll() is None:
                job.kill()
                job.wait()
