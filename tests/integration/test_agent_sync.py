"""The client agent against a real hub over loopback sockets (CURVE on).

Hub and agent run in this process, each with its own data_dir; the CLI tier runs
`synchub agent --once` as a subprocess against an in-process hub.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pty
import select
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import zmq
from click.testing import CliRunner

from actors import RemoteBatch
from hub import protocol
from hub.agent import Agent, AgentSettings
from hub.cli.main import cli
from hub.config import Config, load_config
from hub.errors import ClientError, HubRefused, HubUnavailable
from hub.identity import CurveKeyPair, NodeIdentity, SigningIdentity, create_identity
from hub.pb import synchub_pb2 as pb
from hub.protocol import challenge_item, hub_transcript, new_nonce, sign_challenge, validate_hello
from hub.server import Hub
from hub.store import OpMetadata, SqliteOplogStore, oplog_path
from synchub_testing import HUB, OTHER_CLIENT, STRANGER, free_tcp_port, operation, wait_until

pytestmark = pytest.mark.integration

FAST = AgentSettings(
    heartbeat_interval=1.0,
    handshake_timeout=5.0,
    connect_timeout=5.0,
    poll_interval=0.05,
    rediff_interval=0.3,
    reconnect_min=0.05,
    reconnect_max=0.5,
)
ASK = 5.0


@dataclass
class Node:
    """One node's folder: its config file, data_dir and identity."""

    root: Path
    identity: NodeIdentity

    @property
    def config_path(self) -> Path:
        return self.root / "synchub.toml"

    @property
    def oplog(self) -> Path:
        return oplog_path(self.root / "data")

    def write(self, text: str) -> Config:
        self.config_path.write_text(textwrap.dedent(text))
        return load_config(self.config_path)


def make_node(root: Path) -> Node:
    root.mkdir()
    return Node(root, create_identity(root / "data"))


SHARED = """\
[[repos]]
id = "nas"
guid = "guid-nas"
uri = "sftp:backup@nas:/srv/restic"

[[plans]]
id = "nightly"
repo = "nas"
"""


def hub_config(node: Node, client: Node | None, *, port: int = 0) -> Config:
    clients = ""
    if client is not None:
        clients = f"""
[[authorized_clients]]
instance_id = "web1"
keyid = "{client.identity.signing.keyid}"
keyid_verified = true
permissions = [ {{ type = "read_config", scopes = ["*"] }} ]
"""
    return node.write(
        f"""\
instance = "hub-1"
data_dir = "data"

[hub]
bind = "tcp://127.0.0.1:{port}"
heartbeat_interval = 1
handshake_timeout = 5

{SHARED}{clients}"""
    )


def client_config(
    node: Node, hub: Node, endpoint: str, *, keyid: str | None = None, curve: str | None = None
) -> Config:
    return node.write(
        f"""\
instance = "web1"
data_dir = "data"

{SHARED}
[[known_hosts]]
instance_id = "hub-1"
endpoint = "{endpoint}"
keyid = "{keyid or hub.identity.signing.keyid}"
curve_public_key = "{curve or hub.identity.curve.public_text}"
permissions = [
    {{ type = "read_operations", scopes = ["*"] }},
    {{ type = "read_config", scopes = ["*"] }},
]
"""
    )


@dataclass
class Rig:
    hub_node: Node
    client_node: Node
    hub: Hub
    endpoint: str
    client: Config

    def own_ops(self, hub: Hub | None = None) -> list[OpMetadata]:
        selector = pb.OpSelector(original_instance_keyid=self.client_node.identity.signing.keyid)
        return list((hub or self.hub).oplog.query_metadata(selector).get(timeout=ASK))

    def own_full_ops(self, hub: Hub | None = None) -> list[pb.Operation]:
        selector = pb.OpSelector(original_instance_keyid=self.client_node.identity.signing.keyid)
        return list((hub or self.hub).oplog.query(selector).get(timeout=ASK))


@contextmanager
def rig(tmp_path: Path, *, authorized: bool = True, port: int = 0) -> Iterator[Rig]:
    hub_node = make_node(tmp_path / "hub")
    client_node = make_node(tmp_path / "client")
    hub = Hub(hub_config(hub_node, client_node if authorized else None, port=port))
    try:
        endpoint = hub.start()
        client = client_config(client_node, hub_node, endpoint)
        yield Rig(hub_node, client_node, hub, endpoint, client)
    finally:
        hub.stop()


@contextmanager
def local_store(node: Node) -> Iterator[SqliteOplogStore]:
    store = SqliteOplogStore(node.oplog)
    try:
        yield store
    finally:
        store.close()


@contextmanager
def running(agent: Agent) -> Iterator[Agent]:
    agent.start()
    try:
        yield agent
    finally:
        agent.stop()


def local_op(message: str, *, flow_id: int = 0, repo_guid: str = "guid-nas") -> pb.Operation:
    op = operation(1, flow_id=0, repo_guid=repo_guid, message=message)
    op.id = 0
    op.modno = 0
    op.flow_id = flow_id
    return op


# --- in-process tier ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resync", "rounds"),
    [(True, (3,)), (False, (3, 0))],
    ids=["resumed-sync", "version-1-client"],
)
def test_once_maps_ids_and_flows_as_the_protocol_example(
    tmp_path: Path, resync: bool, rounds: tuple[int, ...]
) -> None:
    # A client without resync (version 1's full diffs) gets exactly what it always got.
    settings = dataclasses.replace(FAST, resync=resync)
    with rig(tmp_path) as r:
        # The hub already holds ids 1-2, from another client.
        r.hub.oplog.apply_remote(
            OTHER_CLIENT.keyid, RemoteBatch(operations=(operation(1), operation(2)))
        ).get(timeout=ASK)
        with local_store(r.client_node) as store:
            stored = store.add_local(
                [local_op("a"), local_op("b", flow_id=1), local_op("c", flow_id=2)]
            )
        assert [(op.id, op.flow_id) for op in stored] == [(1, 1), (2, 1), (3, 2)]

        reports = Agent(r.client, settings=settings).run_once(timeout=10)

        assert len(reports) == 1
        report = reports[0]
        assert report.host == "hub-1"
        # Success only after the hub confirmed: a round in which it requested nothing,
        # or (resumed sync) a digest check answered in sync within the round.
        assert report.rounds == rounds
        assert report.sent == 3 and report.deleted == 0
        mine = r.own_ops()
        assert [m.id for m in mine] == [3, 4, 5]
        assert [m.flow_id for m in mine] == [3, 3, 5]
        assert [m.original_id for m in mine] == [1, 2, 3]
        assert [m.modno for m in mine] == [op.modno for op in stored]
        assert [op.display_message for op in r.own_full_ops()] == ["a", "b", "c"]
        # The hub also has this node's config view and resources.
        peer = r.hub.peers.get(r.client_node.identity.signing.keyid).get(timeout=ASK)
        assert [repo.guid for repo in peer.remote_config.repos] == ["guid-nas"]
        assert list(peer.known_repos) == ["nas"] and list(peer.known_plans) == ["nightly"]

        again = Agent(r.client, settings=settings).run_once(timeout=10)
        assert again[0].rounds == (0,) and again[0].sent == 0


def test_once_sends_operations_without_a_repo_and_many_in_batches(tmp_path: Path) -> None:
    with rig(tmp_path) as r:
        with local_store(r.client_node) as store:
            store.add_local([local_op(f"op {i}") for i in range(600)])
            store.add_local([local_op("no repo", repo_guid="")])
        seen: list[tuple[str, int, int]] = []
        agent = Agent(r.client, settings=FAST, progress=lambda *args: seen.append(args))
        report = agent.run_once(timeout=10)[0]
        # One round: resumed sync (the default) confirms it by the digest check that
        # follows the batches, where a version 1 client needs a second round of diffs.
        assert report.rounds == (601,)
        assert len(r.own_ops()) == 601
        assert [op.display_message for op in r.own_full_ops() if op.repo_guid == ""] == [
            "no repo"
        ]
        # 600 operations in one repo: batches of 256, 256, 88, then the one without a repo.
        assert [sent for _, sent, _ in seen] == [256, 512, 600, 601]
        assert agent.status()["hub-1"].in_sync


def test_a_grant_narrowed_past_a_whole_selection_takes_its_operations_back(
    tmp_path: Path,
) -> None:
    """docs/protocol.md §6.2: with `*` dropped, the operations without a repo are no
    longer diffed as a selection; the withdrawal diff has the hub ask for them and the
    client answers them as deleted. What is still shared stays."""
    with rig(tmp_path) as r:
        with local_store(r.client_node) as store:
            store.add_local([local_op("nas job"), local_op("loose job", repo_guid="")])
        assert Agent(r.client, settings=FAST).run_once(timeout=10)[0].sent == 2
        assert sorted(op.display_message for op in r.own_full_ops()) == ["loose job", "nas job"]

        assert r.client.path is not None
        text = r.client.path.read_text()
        wide = '{ type = "read_operations", scopes = ["*"] }'
        assert wide in text
        r.client.path.write_text(text.replace(wide, '{ type = "read_operations", scopes = '
                                                   '["repo:nas"] }'))
        narrowed = load_config(r.client.path)
        report = Agent(narrowed, settings=FAST).run_once(timeout=10)[0]
        assert report.deleted == 1 and report.sent == 0
        assert [op.display_message for op in r.own_full_ops()] == ["nas job"]
        # In sync from then on: the withdrawal asks for nothing more.
        again = Agent(narrowed, settings=FAST).run_once(timeout=10)[0]
        assert again.rounds == (0,) and again.deleted == 0


def test_live_changes_updates_and_deletes_reach_the_hub(tmp_path: Path) -> None:
    with rig(tmp_path) as r, local_store(r.client_node) as store:
        first = store.add_local([local_op("first")])[0]
        # No periodic re-diff during the test: changes and deletes must stream live.
        live_only = dataclasses.replace(FAST, rediff_interval=300.0)
        with running(Agent(r.client, settings=live_only)) as agent:
            wait_until(lambda: len(r.own_ops()) == 1, timeout=10, what="the initial sync")
            wait_until(lambda: agent.status()["hub-1"].in_sync, timeout=10, what="in sync")

            created = store.add_local([local_op("second"), local_op("third", repo_guid="")])
            wait_until(lambda: len(r.own_ops()) == 3, timeout=10, what="the new operations")

            changed = pb.Operation()
            changed.CopyFrom(first)
            changed.display_message = "first, finished"
            changed.status = pb.STATUS_ERROR
            updated = store.update_local([changed])[0]
            assert updated.modno > first.modno
            wait_until(
                lambda: any(m.original_id == first.id and m.modno == updated.modno
                            for m in r.own_ops()),
                timeout=10, what="the update",
            )
            hub_copy = next(op for op in r.own_full_ops() if op.original_id == first.id)
            assert hub_copy.display_message == "first, finished"
            assert hub_copy.status == pb.STATUS_ERROR

            assert store.delete([created[0].id]) == [created[0].id]
            wait_until(
                lambda: sorted(m.original_id for m in r.own_ops()) == [first.id, created[1].id],
                timeout=10, what="the delete",
            )
            assert agent.status()["hub-1"].sessions == 1


def test_changes_made_while_the_hub_is_down_arrive_after_it_returns(tmp_path: Path) -> None:
    port = free_tcp_port()
    with rig(tmp_path, port=port) as r, local_store(r.client_node) as store:
        store.add_local([local_op("before")])
        with running(Agent(r.client, settings=FAST)) as agent:
            wait_until(lambda: len(r.own_ops()) == 1, timeout=10, what="the initial sync")
            r.hub.stop()
            wait_until(lambda: agent.status()["hub-1"].state != "connected",
                       timeout=10, what="the agent to notice")
            store.add_local([local_op("during 1"), local_op("during 2")])

            again = Hub(load_config(r.hub_node.config_path))
            try:
                assert again.start() == r.endpoint
                wait_until(lambda: len(r.own_ops(again)) == 3, timeout=10, what="the backlog")
                assert [op.display_message for op in r.own_full_ops(again)] == [
                    "before", "during 1", "during 2",
                ]
                assert agent.status()["hub-1"].sessions >= 2
            finally:
                again.stop()


def test_a_diff_too_large_for_a_frame_is_reported_not_sent(tmp_path: Path) -> None:
    with rig(tmp_path) as r:
        with local_store(r.client_node) as store:
            store.add_local([local_op(f"op {i}") for i in range(100)])
        settings = AgentSettings(heartbeat_interval=1.0, max_frame_bytes=250)
        with pytest.raises(ClientError, match=r"lists 100 operations.*more than one frame"):
            Agent(r.client, settings=settings).run_once(timeout=10)


def test_a_hub_that_is_not_the_pinned_one_is_refused(tmp_path: Path) -> None:
    with rig(tmp_path) as r:
        config = client_config(r.client_node, r.hub_node, r.endpoint, keyid=STRANGER.keyid)
        with pytest.raises(HubRefused) as caught:
            Agent(config, settings=FAST).run_once(timeout=10)
        message = str(caught.value)
        assert f"presented keyid {r.hub_node.identity.signing.keyid}" in message
        assert f"known_hosts pins {STRANGER.keyid}" in message
        assert r.own_ops() == []


def test_a_wrong_curve_key_is_reported_as_such(tmp_path: Path) -> None:
    with rig(tmp_path) as r:
        wrong = zmq.curve_keypair()[0].decode()
        config = client_config(r.client_node, r.hub_node, r.endpoint, curve=wrong)
        with pytest.raises(HubRefused, match="curve_public_key"):
            Agent(config, settings=FAST).run_once(timeout=10)


def test_what_a_client_with_a_wrong_pinned_curve_key_observes(tmp_path: Path) -> None:
    """docs/protocol.md §2.2 (Encryption: CurveZMQ): CONNECTED, HANDSHAKE_FAILED_NO_DETAIL,
    DISCONNECTED, then libzmq retries by itself and the same happens again; no item
    gets through in either direction."""
    from zmq.utils.monitor import recv_monitor_message  # noqa: PLC0415

    with rig(tmp_path) as r:
        context = zmq.Context.instance()
        public, secret = zmq.curve_keypair()
        dealer = context.socket(zmq.DEALER)
        dealer.linger = 0
        dealer.curve_serverkey = zmq.curve_keypair()[0]  # not the hub's
        dealer.curve_publickey, dealer.curve_secretkey = public, secret
        dealer.setsockopt(zmq.RECONNECT_IVL, 100)
        monitor = dealer.get_monitor_socket()
        try:
            dealer.connect(r.endpoint)
            dealer.send(protocol.encode_item(protocol.hello_item(
                r.client_node.identity.signing, "web1", new_nonce())))
            watched = {zmq.EVENT_CONNECTED, zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL,
                       zmq.EVENT_DISCONNECTED, zmq.EVENT_HANDSHAKE_SUCCEEDED}
            seen: list[int] = []
            deadline = time.monotonic() + 10
            while seen.count(zmq.EVENT_DISCONNECTED) < 2 and time.monotonic() < deadline:
                if monitor.poll(100):
                    event = recv_monitor_message(monitor)["event"]
                    if event in watched:
                        seen.append(event)
            assert seen[:6] == [zmq.EVENT_CONNECTED, zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL,
                                zmq.EVENT_DISCONNECTED] * 2, seen
            assert dealer.poll(200) == 0, "an item came through a failed CURVE handshake"
            assert r.hub.status().front.sessions_started == 0
        finally:
            dealer.disable_monitor()
            monitor.close()
            dealer.close()


def test_an_agent_heartbeats_as_often_as_its_known_hosts_entry_says_the_hub_needs(
    tmp_path: Path,
) -> None:
    """The hub heartbeats every second and ends a session silent for 3 s; the agent's
    own interval is 30 s, but the hub's entry says 1 s, so the session lasts."""
    with rig(tmp_path) as r:
        assert r.client.path is not None
        text = r.client.path.read_text()
        r.client.path.write_text(text + "heartbeat_interval = 1\nhandshake_timeout = 5\n")
        config = load_config(r.client.path)
        assert config.known_hosts[0].heartbeat_interval == 1.0
        slow = dataclasses.replace(FAST, heartbeat_interval=30.0, rediff_interval=300.0,
                                   poll_interval=30.0)
        with running(Agent(config, settings=slow)) as agent:
            wait_until(lambda: agent.status()["hub-1"].in_sync, timeout=10, what="in sync")
            started = r.hub.status().front.sessions_started
            deadline = time.monotonic() + 4.5  # more than the hub's silence limit
            while time.monotonic() < deadline:
                assert agent.status()["hub-1"].state == "connected", agent.status()
                assert r.hub.status().front.sessions_started == started
                time.sleep(0.1)
            peer = r.hub.peers.get(r.client_node.identity.signing.keyid).get(timeout=ASK)
            assert peer.state == pb.CONNECTION_STATE_CONNECTED


def test_a_client_the_hub_does_not_know_gets_the_hubs_message(tmp_path: Path) -> None:
    with rig(tmp_path, authorized=False) as r:
        keyid = r.client_node.identity.signing.keyid
        with pytest.raises(HubRefused) as caught:
            Agent(r.client, settings=FAST).run_once(timeout=10)
        assert (
            f"refused this client: client web1 ({keyid}) is not authorized: "
            f"run `synchub authorize {keyid} --instance web1` on the hub"
        ) in str(caught.value)


def test_a_running_agent_refused_by_the_hub_says_why_and_waits(tmp_path: Path) -> None:
    with rig(tmp_path, authorized=False) as r:
        settings = AgentSettings(heartbeat_interval=1.0, refused_retry=0.2)
        with running(Agent(r.client, settings=settings)) as agent:
            wait_until(lambda: agent.status()["hub-1"].state == "refused", timeout=10,
                       what="the refusal")
            assert "is not authorized: run `synchub authorize" in (
                agent.status()["hub-1"].message
            )
            assert agent.status()["hub-1"].sessions == 0


def test_an_unreachable_hub_fails_within_the_timeout(tmp_path: Path) -> None:
    hub_node = make_node(tmp_path / "hub")
    client_node = make_node(tmp_path / "client")
    config = client_config(client_node, hub_node, f"tcp://127.0.0.1:{free_tcp_port()}")
    started = time.monotonic()
    # Before the few seconds after which a one-shot sync gives up on a refusal, the
    # timeout's error already says what the transport saw.
    with pytest.raises(HubUnavailable, match=r"connection refused: nothing listens on port "
                                             r"\d+ of 127\.0\.0\.1.*within 0\.5s"):
        Agent(config, settings=FAST).run_once(timeout=0.5)
    assert time.monotonic() - started < 5


def test_no_known_hosts_says_what_to_add(tmp_path: Path) -> None:
    node = make_node(tmp_path / "client")
    config = node.write('instance = "web1"\ndata_dir = "data"\n')
    with pytest.raises(ClientError) as caught:
        Agent(config)
    assert str(caught.value) == (
        f"no [[known_hosts]] in {node.config_path}: add the hub's `synchub id` output"
    )


# --- against a scripted hub ---------------------------------------------------------------------


class ScriptedHub:
    """A ROUTER played by hand in the test's thread, to drive the agent step by step."""

    def __init__(self, identity: SigningIdentity = HUB) -> None:
        self.identity = identity
        self.curve = CurveKeyPair.generate()
        self.context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.router = self.context.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.LINGER, 0)
        self.router.curve_server = True
        self.router.curve_secretkey = self.curve.secret
        self.router.bind("tcp://127.0.0.1:0")
        self.endpoint = self.router.getsockopt_string(zmq.LAST_ENDPOINT)
        self.answer_heartbeats = True

    def close(self) -> None:
        self.router.close(linger=0)
        self.context.term()

    def recv(self, timeout: float = 5.0) -> tuple[bytes, pb.SyncStreamItem]:
        """The next item that is not a heartbeat (heartbeats are answered, if wanted)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self.router.poll(int(remaining * 1000) + 1):
                raise AssertionError(f"no frame from the agent within {timeout}s")
            rid, frame = self.router.recv_multipart()
            item = protocol.decode_item(frame)
            if item.WhichOneof("action") != "heartbeat":
                return rid, item
            if self.answer_heartbeats:
                self.send(rid, protocol.heartbeat_frame())

    def send(self, rid: bytes, frame: bytes) -> None:
        self.router.send_multipart([rid, frame])

    def connect(self) -> bytes:
        """Answer a HELLO and a PROOF (accepted unchecked) and send an empty config."""
        rid, hello_msg = self.recv()
        hello = validate_hello(hello_msg.handshake)
        nonce = new_nonce()
        transcript = hub_transcript(hello, self.identity, "hub-1", nonce)
        signature = sign_challenge(self.identity, transcript)
        challenge = challenge_item(self.identity, "hub-1", nonce, signature)
        self.send(rid, protocol.encode_item(challenge))
        proof_rid, proof = self.recv()
        assert proof_rid == rid and proof.WhichOneof("action") == "handshake"
        for frame in protocol.config_frames(pb.RemoteConfig(), [], []):
            self.send(rid, frame)
        return rid


def test_throttle_holds_operations_and_a_silent_hub_is_left(tmp_path: Path) -> None:
    node = make_node(tmp_path / "client")
    hub = ScriptedHub()
    try:
        config = node.write(f"""\
            instance = "web1"
            data_dir = "data"

            [[known_hosts]]
            instance_id = "hub-1"
            endpoint = "{hub.endpoint}"
            keyid = "{HUB.keyid}"
            curve_public_key = "{hub.curve.public_text}"
            permissions = [ {{ type = "read_operations", scopes = ["*"] }} ]
            """)
        with local_store(node) as store:
            store.add_local([local_op("x", repo_guid=""), local_op("y", repo_guid="")])
        settings = AgentSettings(
            heartbeat_interval=0.3, poll_interval=0.05, reconnect_min=0.05, reconnect_max=0.1
        )
        with running(Agent(config, settings=settings)) as agent:
            rid = hub.connect()
            assert hub.recv()[1].WhichOneof("action") == "send_config"
            assert hub.recv()[1].WhichOneof("action") == "list_resources"
            _, diff = hub.recv()
            assert list(diff.diff_operations.have_operation_ids) == [1, 2]

            hub.send(rid, protocol.throttle_frame(400))
            throttled_at = time.monotonic()
            hub.send(rid, protocol.diff_reply_frame([1, 2, 7]))
            _, created = hub.recv()
            arrived = time.monotonic() - throttled_at
            assert arrived >= 0.4, f"operations arrived {arrived:.3f}s into a 0.4s throttle"
            ops = created.send_operations.event.created_operations.operations
            assert [op.id for op in ops] == [1, 2]
            _, deleted = hub.recv()
            assert list(deleted.send_operations.event.deleted_operations.values) == [7]
            assert agent.status()["hub-1"].sessions == 1
            # Operations were requested, so a confirming round of diffs follows at once.
            _, confirm = hub.recv()
            assert list(confirm.diff_operations.have_operation_ids) == [1, 2]

            # Silent for three heartbeat intervals: the agent gives up on this session
            # and starts a new one.
            hub.answer_heartbeats = False
            _, goodbye = hub.recv(timeout=10)
            assert goodbye.error.state == pb.CONNECTION_STATE_DISCONNECTED
            new_rid, hello = hub.recv(timeout=10)
            assert new_rid != rid
            assert hello.WhichOneof("action") == "handshake" and len(hello.handshake.nonce) == 32
            assert "silent" in agent.status()["hub-1"].message
    finally:
        hub.close()


def test_a_hub_that_never_answers_the_hello_fails_within_the_timeout(tmp_path: Path) -> None:
    node = make_node(tmp_path / "client")
    hub = ScriptedHub()
    try:
        config = node.write(f"""\
            instance = "web1"
            data_dir = "data"

            [[known_hosts]]
            instance_id = "hub-1"
            endpoint = "{hub.endpoint}"
            keyid = "{HUB.keyid}"
            curve_public_key = "{hub.curve.public_text}"
            """)
        with pytest.raises(HubUnavailable, match=r"did not answer the HELLO within 0\.5s"):
            Agent(config, settings=FAST).run_once(timeout=0.5)
    finally:
        hub.close()


# --- CLI tier -----------------------------------------------------------------------------------


def run_cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SYNCHUB_CONFIG"}
    return subprocess.run(
        [
            sys.executable, "-c",
            "from hub.cli.main import main; import hub.cli.agent_cmds; main()",
            "--config", str(config), "agent", *args,
        ],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )


def test_cli_once_syncs_and_exits_zero(tmp_path: Path) -> None:
    with rig(tmp_path) as r:
        with local_store(r.client_node) as store:
            store.add_local([local_op("from the cli"), local_op("and another")])
        done = run_cli(r.client_node.config_path, "--once", "--timeout", "10")
        assert done.returncode == 0, done.stderr
        assert "in sync with hub-1: sent 2 operations" in done.stdout
        assert [op.display_message for op in r.own_full_ops()] == [
            "from the cli", "and another",
        ]


def test_cli_once_reports_an_unknown_client(tmp_path: Path) -> None:
    with rig(tmp_path, authorized=False) as r:
        done = run_cli(r.client_node.config_path, "--once", "--timeout", "10")
        assert done.returncode != 0
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert lines[0].startswith("synchub: error: hub hub-1 at ")
        assert "is not authorized: run `synchub authorize" in lines[0]


def test_cli_once_reports_a_wrong_pinned_key(tmp_path: Path) -> None:
    with rig(tmp_path) as r:
        client_config(r.client_node, r.hub_node, r.endpoint, keyid=STRANGER.keyid)
        done = run_cli(r.client_node.config_path, "--once", "--timeout", "10")
        assert done.returncode != 0
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert f"known_hosts pins {STRANGER.keyid}" in lines[0]


def test_a_normal_exit_is_no_error_and_a_revoke_says_so(tmp_path: Path) -> None:
    """`synchub peers` keeps why a session ended apart from the last error."""
    with rig(tmp_path) as r:
        keyid = r.client_node.identity.signing.keyid

        def peer() -> pb.PeerState:
            state = r.hub.peers.get(keyid).get(timeout=ASK)
            assert state is not None
            return state

        done = run_cli(r.client_node.config_path, "--once", "--timeout", "10")
        assert done.returncode == 0, done.stderr
        wait_until(lambda: peer().state == pb.CONNECTION_STATE_DISCONNECTED, timeout=10,
                   what="the --once session's end")
        closed = peer()
        assert closed.status_message.startswith("peer reported: ")
        assert closed.last_disconnect_millis >= closed.last_heartbeat_millis > 0
        assert (closed.last_error, closed.last_error_millis) == ("", 0)

        with running(Agent(r.client, settings=FAST)) as agent:
            wait_until(lambda: agent.status()["hub-1"].state == "connected", timeout=10,
                       what="connected")
            r.hub.config_actor.revoke(keyid).get(timeout=ASK)
            wait_until(lambda: peer().state == pb.CONNECTION_STATE_ERROR_AUTH, timeout=10,
                       what="the revoked session's end")
            wait_until(lambda: agent.status()["hub-1"].state == "refused", timeout=10,
                       what="the agent told")
            assert "revoked by the operator" in agent.status()["hub-1"].message
        revoked = peer()
        assert revoked.status_message == "revoked by the operator"
        assert revoked.last_error == "revoked by the operator"


def _run_cli_on_a_terminal(config: Path, *args: str, timeout: float = 60.0) -> tuple[int, str]:
    """``synchub agent ARGS`` with stdin, stdout and stderr on a pseudo-terminal."""
    env = {k: v for k, v in os.environ.items() if k != "SYNCHUB_CONFIG"}
    env.update(TERM="xterm-256color", COLUMNS="120", LINES="40")
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-c", "from hub.cli.main import main; main()",
             "--config", str(config), "agent", *args],
            stdin=terminal, stdout=terminal, stderr=terminal, env=env, close_fds=True,
        )
    finally:
        os.close(terminal)
    shown = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(controller, 65536)
                except OSError:  # EIO: the terminal closed
                    break
                if not chunk:
                    break
                shown += chunk
            elif process.poll() is not None:
                break
        returncode = process.wait(timeout=max(0.1, deadline - time.monotonic()))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)
        os.close(controller)
    return returncode, shown.decode("utf-8", "replace")


def test_a_large_sync_shows_a_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    with rig(tmp_path) as r:
        with local_store(r.client_node) as store:
            store.add_local([local_op(f"job {n}") for n in range(3000)])
        returncode, shown = _run_cli_on_a_terminal(
            r.client_node.config_path, "--once", "--timeout", "10")
        assert returncode == 0, shown
        assert "hub-1" in shown
        assert "3000/3000" in shown
        assert "━" in shown  # the bar itself
        assert "ops/s" in shown
        assert "in sync with hub-1: sent 3000 operations" in shown
        assert len(r.own_ops()) == 3000


def test_without_a_terminal_v_logs_the_progress_of_a_large_sync(tmp_path: Path) -> None:
    with rig(tmp_path) as r:
        with local_store(r.client_node) as store:
            store.add_local([local_op(f"job {n}") for n in range(1500)])
        quiet = run_cli(r.client_node.config_path, "--once", "--timeout", "10")
        assert quiet.returncode == 0, quiet.stderr
        assert "operations sent" not in quiet.stderr  # without -v: only warnings
        with local_store(r.client_node) as store:
            store.add_local([local_op(f"more {n}") for n in range(1200)])
        told = run_cli(r.client_node.config_path, "-v", "--once", "--timeout", "10")
        assert told.returncode == 0, told.stderr
        assert "syncing to hub-1: 1200/1200 operations sent in " in told.stderr
        assert "━" not in told.stderr and "\x1b[" not in told.stderr


def _client_status(config: Path, *args: str) -> dict[str, Any]:
    result = CliRunner().invoke(cli, ["--config", str(config), *args, "--json"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    view: dict[str, Any] = json.loads(result.stdout)
    return view


def test_a_clients_own_view_of_its_hub(tmp_path: Path) -> None:
    with rig(tmp_path) as r:
        config = r.client_node.config_path
        [never] = _client_status(config, "agent", "--status")["hosts"]
        assert never["connected"] is False
        assert "no agent has run" in never["why_not_connected"]
        assert (never["last_sync_ms"], never["hub_config"]) == (0, None)

        with local_store(r.client_node) as store:
            store.add_local([local_op("one"), local_op("two")])
        before = time.time_ns() // 1_000_000
        done = run_cli(config, "--once", "--timeout", "10")
        assert done.returncode == 0, done.stderr
        [synced] = _client_status(config, "agent", "--status")["hosts"]
        assert synced["connected"] is False
        assert "the agent is not running" in synced["why_not_connected"]
        assert synced["last_sync_ms"] >= before
        assert synced["unacknowledged"] == 0
        assert [repo["id"] for repo in synced["hub_config"]["repos"]] == ["nas"]

        with local_store(r.client_node) as store:
            store.add_local([local_op("three"), local_op("four"), local_op("five")])
        [behind] = _client_status(config, "status")["hosts"]  # `synchub status` too
        assert behind["unacknowledged"] == 3

        with running(Agent(r.client, settings=FAST)) as agent:
            wait_until(lambda: agent.status()["hub-1"].in_sync, timeout=10, what="in sync")
            view = _client_status(config, "agent", "--status")
            assert view["agent"]["running"] is True
            [live] = view["hosts"]
            assert (live["connected"], live["in_sync"], live["unacknowledged"]) == (
                True, True, 0)
            shown = CliRunner().invoke(cli, ["--config", str(config), "agent", "--status"])
            assert "connected        yes (in sync)" in shown.stdout
            assert "not acknowledged 0 operations" in shown.stdout
            assert "hub's config     modno " in shown.stdout

        r.hub.stop()
        with running(Agent(r.client, settings=FAST)) as agent:
            wait_until(lambda: agent.status()["hub-1"].state == "retry-wait", timeout=10,
                       what="the hub missed")
            # The agent goes on retrying (every 50 ms at first), so the file may show the
            # next attempt: read it until it shows a wait between attempts.
            views: list[dict[str, Any]] = []

            def waiting() -> bool:
                views[:] = _client_status(config, "agent", "--status")["hosts"]
                return views[0]["state"] == "retry-wait"

            wait_until(waiting, timeout=10, what="the status file to show the wait")
            [down] = views
            assert down["connected"] is False
            assert "hub-1" in down["why_not_connected"]
