"""Whole nodes as real processes: `synchub start` and several `synchub agent`s.

First on loopback (two clients with their own identities and data_dirs), then
across hosts: the hub and three clients each in a network namespace the test
builds, joined by a bridge, where one client's cable is cut and mended.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from netns_support import PrivateNetwork, netns_unavailable_reason

from hub.identity import NodeIdentity, create_identity
from hub.pb import synchub_pb2 as pb
from hub.store import SqliteOplogStore, oplog_path, read_peer_states
from synchub_testing import LAUNCHER, HubProcess, free_tcp_port, wait_until

pytestmark = pytest.mark.integration

HEARTBEAT = 1.0


@dataclass
class Node:
    name: str
    root: Path
    identity: NodeIdentity

    @property
    def config(self) -> Path:
        return self.root / "synchub.toml"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @contextmanager
    def store(self) -> Iterator[SqliteOplogStore]:
        store = SqliteOplogStore(oplog_path(self.data_dir))
        try:
            yield store
        finally:
            store.close()

    def record(self, *messages: str, flow_ids: Sequence[int] = ()) -> list[pb.Operation]:
        flows = list(flow_ids) or [0] * len(messages)
        with self.store() as store:
            return store.add_local([
                pb.Operation(instance_id=self.name, display_message=m, flow_id=f,
                             status=pb.STATUS_SUCCESS)
                for m, f in zip(messages, flows, strict=True)
            ])


def make_node(tmp_path: Path, name: str) -> Node:
    root = tmp_path / name
    root.mkdir()
    return Node(name, root, create_identity(root / "data"))


def write_hub_config(hub: Node, bind: str, clients: Sequence[Node]) -> None:
    authorized = "".join(
        f"""
        [[authorized_clients]]
        instance_id = "{c.name}"
        keyid = "{c.identity.signing.keyid}"
        keyid_verified = true
        """
        for c in clients
    )
    hub.config.write_text(textwrap.dedent(f"""\
        instance = "{hub.name}"
        data_dir = "data"

        [hub]
        bind = "{bind}"
        heartbeat_interval = {HEARTBEAT}
        handshake_timeout = 5
        """) + textwrap.dedent(authorized))


def write_client_config(client: Node, hub: Node, endpoint: str) -> None:
    client.config.write_text(textwrap.dedent(f"""\
        instance = "{client.name}"
        data_dir = "data"

        [[known_hosts]]
        instance_id = "{hub.name}"
        endpoint = "{endpoint}"
        keyid = "{hub.identity.signing.keyid}"
        curve_public_key = "{hub.identity.curve.public_text}"
        permissions = [ {{ type = "read_operations", scopes = ["*"] }} ]
        """))


def agent_argv(client: Node, *extra: str) -> list[str]:
    return [sys.executable, str(LAUNCHER), "--config", str(client.config), "agent",
            "--heartbeat-interval", str(HEARTBEAT), *extra]


def agent_once(client: Node, wrap: Callable[[list[str]], list[str]] = list) -> None:
    done = subprocess.run(wrap(agent_argv(client, "--once", "--timeout", "20")),
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "in sync with" in done.stdout


@contextmanager
def agent_running(
    client: Node, wrap: Callable[[list[str]], list[str]] = list
) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(wrap(agent_argv(client)), stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            _, stderr = process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise AssertionError(f"agent for {client.name} ignored SIGTERM") from None
        assert process.returncode == 0, stderr


def hub_ops(hub: Node, client: Node) -> list[pb.Operation]:
    with hub.store() as store:
        return store.query(pb.OpSelector(original_instance_keyid=client.identity.signing.keyid))


def peer_state(hub: Node, client: Node) -> int:
    for state in read_peer_states(hub.data_dir):
        if state.peer_keyid == client.identity.signing.keyid:
            return state.state
    return pb.CONNECTION_STATE_UNKNOWN


# -- two clients on loopback ------------------------------------------------------------


def test_two_client_processes_sync_to_a_hub_process(tmp_path: Path) -> None:
    hub, first, second = (make_node(tmp_path, n) for n in ("hub-1", "web1", "web2"))
    endpoint = f"tcp://127.0.0.1:{free_tcp_port()}"
    write_hub_config(hub, endpoint, [first, second])
    for client in (first, second):
        write_client_config(client, hub, endpoint)

    process = HubProcess(hub.config)
    try:
        process.wait_for_output("listening on")
        first.record("a", "b")
        agent_once(first)
        second.record("x", "y", "z", flow_ids=[1, 1, 2])
        agent_once(second)

        # protocol.md's example: the hub held ids 1-2, so 1,2,3 / flows 1,1,2
        # become ids 3,4,5 with flows 3,3,5.
        landed = hub_ops(hub, second)
        assert [(op.id, op.flow_id, op.original_id, op.original_flow_id) for op in landed] == [
            (3, 3, 1, 1), (4, 3, 2, 1), (5, 5, 3, 2),
        ]
        assert [op.display_message for op in hub_ops(hub, first)] == ["a", "b"]

        with agent_running(second):
            wait_until(lambda: peer_state(hub, second) == pb.CONNECTION_STATE_CONNECTED,
                       timeout=15, what="web2 connected")
            with second.store() as store:
                x = store.get(1)
                assert x is not None
                x.display_message = "x, amended"
                [amended] = store.update_local([x])
                store.delete([2])
            wait_until(
                lambda: {(op.original_id, op.modno, op.display_message)
                         for op in hub_ops(hub, second)}
                == {(1, amended.modno, "x, amended"), (3, 3, "z")},
                timeout=15, what="the update and the delete at the hub",
            )

            assert process.stop() == 0
            second.record("while the hub was down")
            process = HubProcess(hub.config)
            process.wait_for_output("listening on")
            wait_until(
                lambda: "while the hub was down"
                in [op.display_message for op in hub_ops(hub, second)],
                timeout=30, what="the change made while the hub was down",
            )
        assert process.stop() == 0
    finally:
        process.kill()


def test_agent_once_fails_while_the_hub_is_away(tmp_path: Path) -> None:
    hub, client = make_node(tmp_path, "hub-1"), make_node(tmp_path, "web1")
    write_client_config(client, hub, f"tcp://127.0.0.1:{free_tcp_port()}")
    client.record("never delivered")
    done = subprocess.run(agent_argv(client, "--once", "--timeout", "2"),
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0
    assert len(done.stderr.strip().splitlines()) >= 1
    assert "Traceback" not in done.stderr


# -- across hosts: network namespaces ------------------------------------------------------


@pytest.fixture
def network() -> Iterator[PrivateNetwork]:
    reason = netns_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    net = PrivateNetwork()
    try:
        net.create(["hub", "c1", "c2", "c3"])
        yield net
    finally:
        net.destroy()


@pytest.mark.netns
def test_hub_and_three_clients_on_separate_hosts_survive_a_cut_cable(
    tmp_path: Path, network: PrivateNetwork
) -> None:
    hub = make_node(tmp_path, "hub-1")
    clients = [make_node(tmp_path, name) for name in ("c1", "c2", "c3")]
    endpoint = f"tcp://{network.address('hub')}:7470"
    write_hub_config(hub, endpoint, clients)
    for client in clients:
        write_client_config(client, hub, endpoint)
        client.record(f"{client.name} backup", f"{client.name} check")

    def on(host: str) -> Callable[[list[str]], list[str]]:
        return lambda argv: network.command(host, argv)

    hub_process = subprocess.Popen(
        network.command("hub", [sys.executable, str(LAUNCHER), "--config", str(hub.config),
                                "start"]),
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        with (agent_running(clients[0], on("c1")), agent_running(clients[1], on("c2")),
              agent_running(clients[2], on("c3"))):
            for client in clients:
                wait_until(lambda c=client: len(hub_ops(hub, c)) == 2, timeout=30,
                           what=f"{client.name}'s operations at the hub")
                wait_until(lambda c=client: peer_state(hub, c) == pb.CONNECTION_STATE_CONNECTED,
                           timeout=10, what=f"{client.name} connected")

            cut = clients[0]
            network.cut("c1")
            cut_at = time.monotonic()
            wait_until(lambda: peer_state(hub, cut) == pb.CONNECTION_STATE_DISCONNECTED,
                       timeout=3 * HEARTBEAT + 5, what="c1 marked disconnected")
            # Three silent intervals, plus one tick (a quarter interval) and the poll.
            assert time.monotonic() - cut_at <= 3 * HEARTBEAT + 0.5
            assert all(peer_state(hub, c) == pb.CONNECTION_STATE_CONNECTED for c in clients[1:])

            cut.record("made while the cable was cut")
            network.mend("c1")
            wait_until(
                lambda: "made while the cable was cut"
                in [op.display_message for op in hub_ops(hub, cut)],
                timeout=45, what="c1 catching up after the cable is mended",
            )
            wait_until(lambda: peer_state(hub, cut) == pb.CONNECTION_STATE_CONNECTED,
                       timeout=10, what="c1 connected again")
            assert [len(hub_ops(hub, c)) for c in clients] == [3, 2, 2]
    finally:
        if hub_process.poll() is None:
            hub_process.send_signal(signal.SIGTERM)
        try:
            _, stderr = hub_process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            hub_process.kill()
            hub_process.communicate()
            raise
    assert hub_process.returncode == 0, stderr
    assert os.path.exists(hub.data_dir / "peers.sqlite")
