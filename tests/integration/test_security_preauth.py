"""No lockout before authentication: HELLO holders from several addresses (some of them
replaying the authorized client's own public key) against `synchub start` as a process,
while the authorized client connects again and again."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import zmq
from zmq.utils.monitor import recv_monitor_message

from hub.bench.hostile import Holders, connect_attempts, hello_flood_specs
from hub.bench.rig import BenchClient
from hub.identity import load_identity
from synchub_testing import (
    CLIENT,
    HUB_INSTANCE,
    HubProcess,
    free_tcp_port,
    hub_text_with,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.alone]

VICTIM = BenchClient("web1", CLIENT)


def start_hub(tmp_path: Path, **settings: object) -> tuple[HubProcess, str]:
    endpoint = f"tcp://127.0.0.1:{free_tcp_port()}"
    path = tmp_path / "hub.toml"
    path.write_text(hub_text_with(bind=endpoint, **settings))
    hub = HubProcess(path)
    hub.wait_for_output("listening on")
    return hub, endpoint


def test_an_authorized_client_gets_in_while_hellos_are_held(tmp_path: Path) -> None:
    hub, endpoint = start_hub(
        tmp_path, max_pending_handshakes=100, max_pending_per_source=40,
        handshake_timeout=5, proof_timeout=1,
    )
    try:
        identity = load_identity(tmp_path / "data")
        curve = identity.curve.public_text
        keyid = identity.signing.keyid
        specs = hello_flood_specs(endpoint, curve, VICTIM, 200, sources=4, victim_share=0.1)
        with Holders(specs) as holders:
            time.sleep(2.0)  # the holders' HELLOs are in, held, and re-sent as they expire
            results = connect_attempts(
                endpoint, keyid, curve, VICTIM, 20, within=2.0, hub_instance=HUB_INSTANCE
            )
            counts = holders.stop()
        assert sum(t is not None for t in results) >= 19, (results, counts)
        # The attack was real: holders were challenged, expired and refused, over and over.
        assert counts["challenges"] >= 100, counts
        assert counts["expired"] >= 100, counts
        assert counts["refused"] > 0, counts
        assert hub.process.poll() is None
    finally:
        assert hub.stop() == 0, hub.stderr


def test_connections_that_never_send_a_frame_are_closed(tmp_path: Path) -> None:
    hub, endpoint = start_hub(tmp_path, handshake_timeout=1)
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    try:
        identity = load_identity(tmp_path / "data")
        silent = []
        for _ in range(20):
            sock = context.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            public, secret = zmq.curve_keypair()
            sock.curve_serverkey = identity.curve.public
            sock.curve_publickey, sock.curve_secretkey = public, secret
            monitor = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED | zmq.EVENT_CONNECTED)
            sock.connect(endpoint)
            silent.append((sock, monitor))
        disconnected: set[int] = set()

        def all_cut() -> bool:
            for index, (_sock, monitor) in enumerate(silent):
                while monitor.poll(0):
                    event = recv_monitor_message(monitor)
                    if event["event"] == zmq.EVENT_DISCONNECTED:
                        disconnected.add(index)
            return len(disconnected) == len(silent)

        wait_until(all_cut, timeout=30.0, what="the hub to close silent connections")
    finally:
        for sock, monitor in silent:
            monitor.close(linger=0)
            sock.close(linger=0)
        context.term()
        assert hub.stop() == 0, hub.stderr
