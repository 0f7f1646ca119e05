"""Why a hub is not reached, on real sockets: the agent tells the cases apart in seconds.

A closed port, a name that cannot resolve (``nonexistent.invalid``), a ROUTER
without CURVE (a mechanism mismatch, or the same failure as a wrong key, whichever
libzmq sees first), a plain TCP listener that never speaks ZMTP and a ROUTER with
another CURVE key, all on loopback; the CLI as a process; and, in a private network
of namespaces, packets that go nowhere. docs/operations.md,
"When the agent cannot reach a hub".
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
import zmq
from netns_support import SUBNET, PrivateNetwork, netns_unavailable_reason

from hub.agent import Agent, AgentSettings
from hub.cli.agent_cmds import client_status
from hub.config import Config, load_config
from hub.errors import ClientError
from hub.identity import CurveKeyPair, create_identity
from synchub_testing import HUB, LAUNCHER, free_tcp_port, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.alone]

FAST = AgentSettings(heartbeat_interval=1.0, handshake_timeout=5.0, connect_timeout=3.5,
                     reconnect_min=0.05, reconnect_max=0.2, refused_retry=0.2)


def client(root: Path, hosts: dict[str, tuple[str, str]]) -> Config:
    """A client whose known_hosts are ``name: (endpoint, curve key)``."""
    root.mkdir()
    create_identity(root / "data")
    entries = "".join(
        f"""
        [[known_hosts]]
        instance_id = "{name}"
        endpoint = "{endpoint}"
        keyid = "{HUB.keyid}"
        curve_public_key = "{curve}"
        permissions = [ {{ type = "read_operations", scopes = ["*"] }} ]
        """ for name, (endpoint, curve) in hosts.items()
    )
    path = root / "synchub.toml"
    path.write_text(textwrap.dedent('instance = "web1"\ndata_dir = "data"\n') +
                    textwrap.dedent(entries))
    return load_config(path)


@contextmanager
def routers(*, curve: bool) -> Iterator[str]:
    """A ROUTER on loopback that never answers (a CURVE server with a key of its own)."""
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    router = context.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    if curve:
        keys = CurveKeyPair.generate()
        router.curve_server = True
        router.curve_secretkey = keys.secret
    router.bind("tcp://127.0.0.1:0")
    try:
        yield router.getsockopt_string(zmq.LAST_ENDPOINT)
    finally:
        router.close(linger=0)
        context.term()


def test_refused_unresolved_and_no_curve_are_told_apart_within_seconds(tmp_path: Path) -> None:
    key = CurveKeyPair.generate().public_text
    closed = f"tcp://127.0.0.1:{free_tcp_port()}"
    with routers(curve=False) as plain_zmq:
        config = client(tmp_path / "client", {
            "closed": (closed, key),
            "unknown": ("tcp://nonexistent.invalid:7470", key),
            "plain": (plain_zmq, key),
        })
        started = time.monotonic()
        with pytest.raises(ClientError) as caught:
            Agent(config, settings=FAST).run_once(timeout=20)
        elapsed = time.monotonic() - started
    message = str(caught.value)
    port = closed.rsplit(":", 1)[1]
    assert (f"hub closed at {closed}: connection refused: nothing listens on port {port} "
            "of 127.0.0.1") in message
    assert ("hub unknown at tcp://nonexistent.invalid:7470: cannot resolve the name "
            "nonexistent.invalid (") in message
    # Whether libzmq sees the mechanism mismatch or only the connection closed under
    # it (EPIPE, as for a wrong key) depends on which side is quicker: either way the
    # line says to check the hub's CURVE.
    assert (f"hub plain at {plain_zmq} speaks ZeroMQ without CURVE encryption" in message
            or f"hub plain at {plain_zmq}: the encrypted (CURVE) connection failed: check "
               "that known_hosts curve_public_key is the hub's (`synchub id` on the hub "
               "prints it) and that the hub has curve = true" in message), message
    # Said after the few seconds a hub may take to come up, not after the 20 s timeout.
    assert elapsed < 10, elapsed
    recorded = client_status(config, 0)["hosts"]
    assert [h["state"] for h in recorded] == ["not running"] * 3


def test_a_running_agent_says_why_while_it_keeps_retrying(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A listener that accepts TCP and never speaks ZMTP, and a ROUTER with another
    CURVE key: each reason is logged at WARNING, in the status and its JSON, within a
    few seconds; the agent goes on connecting (the listener is dialled again)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.1)
    silent = f"tcp://127.0.0.1:{listener.getsockname()[1]}"
    accepted: list[socket.socket] = []
    caplog.set_level(logging.WARNING, logger="hub.agent._agent")
    try:
        with routers(curve=True) as other_key:
            config = client(tmp_path / "client", {
                "silent": (silent, CurveKeyPair.generate().public_text),
                "wrongkey": (other_key, CurveKeyPair.generate().public_text),
            })
            agent = Agent(config, settings=FAST)
            agent.start()
            try:
                deadline = time.monotonic() + 15
                while len(accepted) < 2 and time.monotonic() < deadline:
                    with suppress(TimeoutError):
                        accepted.append(listener.accept()[0])
                    status = agent.status()["silent"]
                    if len(accepted) < 2:
                        assert status.state != "connected", status
                assert len(accepted) >= 2, "the agent did not dial the silent port again"
                wait_until(lambda: agent.status()["wrongkey"].state == "refused", timeout=10,
                           what="the CURVE refusal")
                view = {h["instance_id"]: h for h in client_status(config, 0)["hosts"]}
            finally:
                agent.stop()
    finally:
        for conn in accepted:
            conn.close()
        listener.close()
    assert view["silent"]["reason"] == "no-handshake", view["silent"]
    assert view["silent"]["connected"] is False
    assert "TCP is connected but nothing has answered the ZeroMQ handshake" in (
        view["silent"]["why_not_connected"]
    )
    assert view["wrongkey"]["reason"] == "curve-failed", view["wrongkey"]
    assert "curve_public_key" in view["wrongkey"]["why_not_connected"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(m.startswith(f"hub silent at {silent}: TCP is connected but nothing")
               and m.endswith("; still trying") for m in warnings), warnings


def test_cli_once_says_connection_refused_in_one_line(tmp_path: Path) -> None:
    closed = f"tcp://127.0.0.1:{free_tcp_port()}"
    config = client(tmp_path / "client", {"hub-1": (closed, CurveKeyPair.generate().public_text)})
    assert config.path is not None
    env = {k: v for k, v in os.environ.items() if k != "SYNCHUB_CONFIG"}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(LAUNCHER), "--config", str(config.path), "agent", "--once",
         "--timeout", "30"],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )
    elapsed = time.monotonic() - started
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"synchub: error: hub hub-1 at {closed}: connection refused: ")
    assert elapsed < 15, elapsed


@pytest.mark.netns
def test_dropped_packets_are_no_answer_within_seconds(tmp_path: Path) -> None:
    """A host whose packets go nowhere (a private network where the hub's address has a
    fixed link-layer address no host owns, so every SYN is lost): `agent --once` warns
    `no-answer` after 3 s and its error line says so at the timeout (4 s)."""
    reason = netns_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    network = PrivateNetwork()
    try:
        network.create(["client"])
        lost = f"{SUBNET}.200"
        subprocess.run(network.command("client", [
            "ip", "neigh", "replace", lost, "lladdr", "02:00:00:00:00:c8", "dev", "eth0",
            "nud", "permanent"]), check=True, capture_output=True, timeout=20)
        endpoint = f"tcp://{lost}:7470"
        config = client(tmp_path / "client",
                        {"hub-1": (endpoint, CurveKeyPair.generate().public_text)})
        assert config.path is not None
        env = {k: v for k, v in os.environ.items() if k != "SYNCHUB_CONFIG"}
        done = subprocess.run(
            network.command("client", [sys.executable, str(LAUNCHER), "--config",
                                       str(config.path), "agent", "--once", "--timeout", "4"]),
            capture_output=True, text=True, timeout=60, env=env, check=False,
        )
    finally:
        network.destroy()
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    warned = [line for line in lines if "still trying" in line]
    assert len(warned) == 1, done.stderr
    assert f"hub hub-1 at {endpoint} does not answer: a TCP connection has been pending" in (
        warned[0])
    assert lines[-1].startswith(f"synchub: error: hub hub-1 at {endpoint} does not answer: ")
    assert lines[-1].endswith("(not answered within 4s)")
