"""The wake-up socket for real: the listener's thread, and a job from `synchub run`
through a running agent to a hub.

The hub runs in this process; the agent and `synchub run` are processes of their
own, so the wake-up crosses processes as on a real host. The agent polls every
300 s there: only the wake-up can explain a job that reaches the hub in seconds.
The fallback's agent runs in this process.
"""

from __future__ import annotations

import fcntl
import logging
import os
import select
import socket
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from hub.agent import Agent, AgentSettings, WakeListener, WakeSignal, read_status
from hub.cli.run_cmds import record_job
from hub.config import Config, load_config
from hub.identity import NodeIdentity, create_identity
from hub.pb import synchub_pb2 as pb
from hub.server import Hub
from hub.store import (
    SqliteOplogStore,
    ensure_private_database,
    oplog_path,
    wake_agent,
    wake_lock_path,
    wake_path,
)
from synchub_testing import LAUNCHER, wait_until

pytestmark = pytest.mark.integration

ASK = 5.0
ARRIVAL_SECONDS = 10.0
"""A job reaches the hub within this, far below the agent's poll in the wake-up test."""


def private_dir(path: Path) -> Path:
    path.mkdir(mode=0o700)
    ensure_private_database(oplog_path(path))
    return path


# --- the listener -----------------------------------------------------------------------


def readable(signal: WakeSignal) -> bool:
    """One of the signal's descriptors can be read now (as the connection's poller sees)."""
    ready, _, _ = select.select(list(signal.fds()), [], [], 0)
    return bool(ready)


def test_the_listener_binds_privately_wakes_every_connection_and_rebinds(
    tmp_path: Path,
) -> None:
    data = private_dir(tmp_path / "d")
    listener = WakeListener(data, check_seconds=0.05)
    first, second = listener.signal(), listener.signal()
    assert listener.start()
    try:
        info = wake_path(data).stat()
        assert stat.S_ISSOCK(info.st_mode)
        assert stat.S_IMODE(info.st_mode) == 0o600
        assert wake_lock_path(data).read_text().strip() == str(os.getpid())
        # A burst: the first connection to look reads it all, and passes it on.
        for _ in range(20):
            wake_agent(data)
        wait_until(lambda: readable(first), what="the socket readable")
        assert first.take()
        assert not first.take()
        assert second.take()
        assert not second.take()
        assert listener.wakes == 2
        # Deleted while the agent runs: it is bound again, and wake-ups work again.
        wake_path(data).unlink()
        wait_until(wake_path(data).exists, what="the socket bound again")
        wake_agent(data)
        wait_until(lambda: readable(second), what="a wake-up after it")
        assert second.take() and first.take()
    finally:
        listener.stop()
    assert not wake_path(data).exists()
    # The lock is free again: the next agent binds.
    again = WakeListener(data)
    try:
        assert again.start()
    finally:
        again.stop()


def test_a_killed_agents_socket_is_replaced_and_a_second_agent_only_polls(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = private_dir(tmp_path / "d")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    stale.bind(str(wake_path(data)))
    stale.close()
    first = WakeListener(data)
    signal = first.signal()
    assert first.start()
    try:
        wake_agent(data)
        wait_until(lambda: readable(signal), what="a wake-up")
        assert signal.take()
        caplog.set_level(logging.WARNING)
        second = WakeListener(data)
        assert not second.start()
        second.stop()
        assert f"another agent (pid {os.getpid()}) runs on {data}" in caplog.text
        # The first one's socket is untouched.
        wake_agent(data)
        wait_until(lambda: readable(signal), what="a wake-up after it")
        assert signal.take()
    finally:
        first.stop()


def test_a_data_dir_too_long_for_a_socket_is_polled_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = private_dir(tmp_path / ("x" * 120))
    caplog.set_level(logging.WARNING)
    listener = WakeListener(data)
    assert not listener.start()
    listener.stop()
    assert "too long for a local socket" in caplog.text
    assert not wake_path(data).exists()


# --- through a hub --------------------------------------------------------------------


@dataclass
class Site:
    hub: Hub
    client: Config
    client_identity: NodeIdentity

    def finished_on_hub(self, op_id: int) -> bool:
        selector = pb.OpSelector(original_instance_keyid=self.client_identity.signing.keyid)
        return any(op.original_id == op_id and op.status == pb.STATUS_SUCCESS
                   for op in self.hub.oplog.query(selector).get(timeout=ASK))


@contextmanager
def site(root: Path) -> Iterator[Site]:
    """A hub in this process and a client config for it (the client's data_dir is c/d)."""
    hub_dir, client_dir = root / "h", root / "c"
    hub_dir.mkdir()
    client_dir.mkdir()
    hub_identity = create_identity(hub_dir / "d")
    client_identity = create_identity(client_dir / "d")
    (hub_dir / "synchub.toml").write_text(textwrap.dedent(f"""\
        instance = "hub-1"
        data_dir = "d"
        [hub]
        bind = "tcp://127.0.0.1:0"
        [web]
        bind = ""
        [[authorized_clients]]
        instance_id = "web1"
        keyid = "{client_identity.signing.keyid}"
        keyid_verified = true
    """))
    hub = Hub(load_config(hub_dir / "synchub.toml"))
    try:
        endpoint = hub.start()
        (client_dir / "synchub.toml").write_text(textwrap.dedent(f"""\
            instance = "web1"
            data_dir = "d"
            [[known_hosts]]
            instance_id = "hub-1"
            endpoint = "{endpoint}"
            keyid = "{hub_identity.signing.keyid}"
            curve_public_key = "{hub_identity.curve.public_text}"
            permissions = [ {{ type = "read_operations", scopes = ["*"] }} ]
        """))
        yield Site(hub, load_config(client_dir / "synchub.toml"), client_identity)
    finally:
        hub.stop()


def synchub_run(config: Config) -> int:
    """`synchub run -- true` as its own process; the id of the job it recorded."""
    assert config.path is not None
    done = subprocess.run(
        [sys.executable, str(LAUNCHER), "--config", str(config.path), "run", "--", "true"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    store = SqliteOplogStore(oplog_path(config.data_dir))
    try:
        return max(op.id for op in store.query(pb.OpSelector()))
    finally:
        store.close()


@contextmanager
def running(agent: Agent) -> Iterator[Agent]:
    agent.start()
    try:
        yield agent
    finally:
        agent.stop()


def in_sync(agent: Agent) -> bool:
    return agent.status()["hub-1"].in_sync


# The agent as a process of its own, polling every 300 s; it stops when stdin closes.
AGENT_PROCESS = """\
import sys
from hub.agent import Agent, AgentSettings
from hub.config import load_config
agent = Agent(load_config(sys.argv[1]),
              settings=AgentSettings(poll_interval=300.0, rediff_interval=3600.0))
agent.start()
try:
    sys.stdin.read()
finally:
    agent.stop()
"""


def status_in_sync(data_dir: Path) -> bool:
    record = read_status(data_dir)
    return record is not None and record.running and bool(
        record.hosts.get("hub-1", {}).get("in_sync")
    )


def test_a_job_from_synchub_run_wakes_the_agent_long_before_its_poll(tmp_path: Path) -> None:
    with site(tmp_path) as rig:
        data = rig.client.data_dir
        assert rig.client.path is not None
        agent = subprocess.Popen(
            [sys.executable, "-c", AGENT_PROCESS, str(rig.client.path)],
            stdin=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        try:
            wait_until(lambda: status_in_sync(data), timeout=ARRIVAL_SECONDS,
                       what="the agent's first round")
            assert stat.S_IMODE(wake_path(data).stat().st_mode) == 0o600
            job_id = synchub_run(rig.client)
            wait_until(lambda: rig.finished_on_hub(job_id), timeout=ARRIVAL_SECONDS,
                       what="the job on the hub, woken (the poll is 300 s away)")
        finally:
            _, errors = agent.communicate(timeout=30)
        assert agent.returncode == 0, errors
        assert not wake_path(data).exists()


def test_without_a_wake_up_jobs_are_recorded_and_still_synced_by_polling(
    tmp_path: Path,
) -> None:
    with site(tmp_path) as rig:
        data = rig.client.data_dir
        # A killed agent's socket file, and no agent running: `synchub run` records.
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        stale.bind(str(wake_path(data)))
        stale.close()
        before = synchub_run(rig.client)
        # Another agent holds the lock: this one cannot bind, and polls.
        fd = os.open(wake_lock_path(data), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            polling = AgentSettings(poll_interval=0.1, rediff_interval=3600.0)
            with running(Agent(rig.client, settings=polling)) as agent:
                assert agent.wake_listener is None
                wait_until(lambda: rig.finished_on_hub(before), timeout=ARRIVAL_SECONDS,
                           what="the job recorded before the agent started")
                wait_until(lambda: in_sync(agent), timeout=ARRIVAL_SECONDS, what="in sync")
                with open(os.devnull, "wb") as sink:
                    job = record_job(rig.client, ["true"], out=sink, err=sink)
                wait_until(lambda: rig.finished_on_hub(job.operation.id),
                           timeout=ARRIVAL_SECONDS, what="the job found by the poll")
        finally:
            os.close(fd)
        assert wake_path(data).exists()  # not this agent's to remove
