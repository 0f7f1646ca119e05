"""`synchub start` as a process under signal storms: handlers only wake the main loop,
reloads are coalesced, and SIGTERM ends the hub within 5 s whatever came before."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.identity import load_identity
from hub.pb import synchub_pb2 as pb
from synchub_testing import (
    CLIENT,
    HubProcess,
    RawClient,
    free_tcp_port,
    hub_config_text,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.alone]

STOP_WITHIN = 5.0


@pytest.fixture
def hub_config(tmp_path: Path) -> Path:
    port = free_tcp_port()
    path = tmp_path / "hub.toml"
    path.write_text(
        hub_config_text().replace(
            "heartbeat_interval = 10", f'heartbeat_interval = 10\nbind = "tcp://127.0.0.1:{port}"'
        )
    )
    return path


@pytest.fixture
def hub(hub_config: Path) -> Iterator[HubProcess]:
    process = HubProcess(hub_config)
    try:
        process.wait_for_output("listening on")
        yield process
    finally:
        process.kill()


def storm(pid: int, signum: int, per_second: int, seconds: float) -> int:
    """Send ``signum`` to ``pid`` at about ``per_second`` for ``seconds``; how many went."""
    sent = 0
    start = time.monotonic()
    while (elapsed := time.monotonic() - start) < seconds:
        due = int(elapsed * per_second) + 1
        while sent < due:
            os.kill(pid, signum)
            sent += 1
        time.sleep(0.002)
    return sent


def sighup_blocked(pid: int) -> bool:
    """Whether the process blocks SIGHUP now (its SigBlk mask in /proc)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    mask = next(line.split()[1] for line in status.splitlines() if line.startswith("SigBlk:"))
    return bool(int(mask, 16) & (1 << (signal.SIGHUP - 1)))


def stop_timed(hub: HubProcess) -> tuple[int, float]:
    started = time.monotonic()
    hub.signal(signal.SIGTERM)
    status = hub.wait_exit(timeout=STOP_WITHIN + 10)
    return status, time.monotonic() - started


def connect(hub: HubProcess) -> RawClient:
    identity = load_identity(hub.config_path.parent / "data")
    endpoint = next(
        line.split('"')[1] for line in hub.config_path.read_text().splitlines()
        if line.startswith("bind = ")
    )
    client = RawClient(endpoint, identity.curve.public)
    client.handshake(identity.signing.keyid)
    client.recv_action("send_config")
    client.recv_action("list_resources")
    return client


def test_a_sighup_storm_is_survived_and_reloads_are_coalesced(hub: HubProcess) -> None:
    sent = storm(hub.process.pid, signal.SIGHUP, per_second=500, seconds=2.0)
    assert hub.process.poll() is None, hub.stderr
    # The hub still serves, and still reloads: a revoked client is cut.
    client = connect(hub)
    try:
        text = hub.config_path.read_text().replace(CLIENT.keyid, "ed25519." + "A" * 43)
        hub.config_path.write_text(text)
        hub.signal(signal.SIGHUP)
        error = client.recv_action("error", timeout=5.0)
        assert error.error.state == pb.CONNECTION_STATE_ERROR_AUTH
    finally:
        client.close()
    status, took = stop_timed(hub)
    assert status == 0, hub.stderr
    assert took < STOP_WITHIN
    reloads = hub.stderr.count("configuration reloaded")
    assert 1 <= reloads < sent / 4, (reloads, sent)
    assert "Traceback" not in hub.stderr


def test_sigterm_during_a_sighup_storm_ends_the_hub_within_5s(hub: HubProcess) -> None:
    for _ in range(3):
        storm(hub.process.pid, signal.SIGHUP, per_second=500, seconds=0.5)
        assert hub.process.poll() is None, hub.stderr
    hub.signal(signal.SIGTERM)
    started = time.monotonic()
    # SIGHUPs keep coming while the hub shuts down: harmless.
    while hub.process.poll() is None and time.monotonic() - started < STOP_WITHIN + 5:
        try:
            os.kill(hub.process.pid, signal.SIGHUP)
        except ProcessLookupError:
            break
        time.sleep(0.002)
    status = hub.wait_exit(timeout=STOP_WITHIN + 10)
    took = time.monotonic() - started
    assert status == 0, hub.stderr
    assert took < STOP_WITHIN, took
    assert "hub stopped" in hub.stderr


def test_a_sighup_right_after_start_is_harmless(hub_config: Path) -> None:
    process = HubProcess(hub_config)
    try:
        # As soon as the program's own code runs (before its imports), SIGHUP is held.
        wait_until(lambda: sighup_blocked(process.process.pid), timeout=10.0,
                   what="the starting hub to hold SIGHUP")
        process.signal(signal.SIGHUP)
        assert "listening on" not in process.stderr
        process.signal(signal.SIGHUP)
        process.wait_for_output("listening on")
        assert process.process.poll() is None
        status, took = stop_timed(process)
        assert status == 0, process.stderr
        assert took < STOP_WITHIN
    finally:
        process.kill()


def test_sigint_stops_like_sigterm(hub: HubProcess) -> None:
    started = time.monotonic()
    hub.signal(signal.SIGINT)
    assert hub.wait_exit(timeout=STOP_WITHIN + 10) == 0, hub.stderr
    assert time.monotonic() - started < STOP_WITHIN
