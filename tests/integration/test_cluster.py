"""Several hub processes on one PostgreSQL database (docs/cluster.md), end to end.

Each test starts two or three `synchub start` processes sharing one identity (the
first hub's data_dir/identity/ copied to the others) and one database of the test's
own, and drives them with real clients over CURVE: authorization changes made on
one hub reach the others, one key has one session in the whole cluster, ids stay
unique and increasing whichever hub stored them, a dead hub's sessions expire.
Without a PostgreSQL server they skip with the reason.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from postgres_support import fresh_database, private_server
from web_support import receiver

from hub.agent import Agent
from hub.bench.rig import (
    HUB_INSTANCE,
    ClientNode,
    HubNode,
    HubProcess,
    make_client_node,
    make_hub_node,
    seed_local_operations,
    write_client_config,
)
from hub.config import load_config
from hub.identity import SigningIdentity, load_identity
from hub.pb import synchub_pb2 as pb
from synchub_testing import (
    LAUNCHER,
    RawClient,
    client_handshake,
    diff_frame,
    operation,
    send_operations_frame,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.alone]

ERROR_AUTH = pb.CONNECTION_STATE_ERROR_AUTH
DISCONNECTED = pb.CONNECTION_STATE_DISCONNECTED
NODES = ("hub-a", "hub-b", "hub-c")


@pytest.fixture
def url() -> Iterator[str]:
    with fresh_database("synchub_cluster") as fresh:
        yield fresh


@dataclass
class RunningHub:
    node: HubNode
    process: HubProcess
    endpoint: str
    name: str

    def synchub(self, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(LAUNCHER), "--config", str(self.node.config_path), *args],
            check=False, capture_output=True, text=True, timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def peers(self) -> dict[str, dict[str, object]]:
        listed = self.synchub("peers", "--json")
        assert listed.returncode == 0, listed.stderr
        return {p["peer_keyid"]: p for p in json.loads(listed.stdout)}

    def client(self) -> RawClient:
        return RawClient(self.endpoint, self.node.identity.curve.public)

    def healthz(self) -> tuple[int, dict[str, object]]:
        found = re.search(r"web:\s+(http://\S+)", self.process.log_text())
        assert found, "no web side in the log"
        try:
            with urllib.request.urlopen(f"{found.group(1)}/healthz", timeout=5) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as refused:
            return refused.code, json.loads(refused.read())


@contextlib.contextmanager
def cluster(
    root: Path, url: str, count: int, *, heartbeat_interval: float = 15.0, web: bool = False,
    extra: str = "",
) -> Iterator[list[RunningHub]]:
    """``count`` hubs on ``url``, one identity, node names hub-a, hub-b...; stopped after.
    ``web``: each serves HTTP on a free loopback port; ``extra``: more of each one's file."""
    nodes: list[HubNode] = []
    for name in NODES[:count]:
        nodes.append(make_hub_node(
            root / name, [], store_url=url, heartbeat_interval=heartbeat_interval,
            node_name=name, identity_from=nodes[0].data_dir if nodes else None,
        ))
        with nodes[-1].config_path.open("a") as config:
            config.write(('\n[web]\nbind = "127.0.0.1:0"\n' if web else "") + extra)
    with contextlib.ExitStack() as stack:
        hubs = []
        for name, node in zip(NODES, nodes, strict=False):
            process = HubProcess(node)
            stack.callback(process.stop)
            hubs.append(RunningHub(node, process, process.wait_ready(), name))
            assert f"node:   {name}" in process.log_text()
        yield hubs


def authorize(hub: RunningHub, client: SigningIdentity, instance_id: str = "web1") -> None:
    done = hub.synchub("authorize", client.keyid, "--instance", instance_id,
                       "--perm", "read_config:*", "--yes")
    assert done.returncode == 0, done.stderr


def connect(hub: RunningHub, identity: SigningIdentity, instance_id: str = "web1") -> RawClient:
    """A client whose handshake ``hub`` accepted (its send_config arrived)."""
    client = hub.client()
    try:
        client.handshake(hub.node.identity.signing.keyid, identity, instance_id,
                         hub_instance=HUB_INSTANCE)
        item = client.recv(5.0)
        assert item.WhichOneof("action") == "send_config", item
        client.recv_action("list_resources")
    except BaseException:
        client.close()
        raise
    return client


def connects_within(
    hub: RunningHub, identity: SigningIdentity, seconds: float
) -> tuple[RawClient, float]:
    """Keep trying until ``hub`` accepts ``identity``; the client and the time it took."""
    started = time.monotonic()
    while True:
        client = hub.client()
        client.handshake(
            hub.node.identity.signing.keyid, identity, "web1", hub_instance=HUB_INSTANCE
        )
        item = client.recv(5.0)
        elapsed = time.monotonic() - started
        if item.WhichOneof("action") == "send_config":
            client.recv_action("list_resources")
            return client, elapsed
        client.close()
        assert item.error.state == ERROR_AUTH, item
        assert elapsed < seconds, f"{hub.name} still refuses after {elapsed:.2f}s"
        time.sleep(0.02)  # the next attempt, not a wait for a thread


def holder(url: str, keyid: str) -> object:
    """The node holding ``keyid``'s session, as the database records it (None: none)."""
    found = rows(url, f"SELECT node FROM sessions WHERE keyid = '{keyid}'")
    return found[0][0] if found else None


def rows(url: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql.encode()).fetchall()


def test_authorize_and_revoke_on_any_hub_reach_every_hub_within_a_second(
    tmp_path: Path, url: str
) -> None:
    key = SigningIdentity.generate()
    with cluster(tmp_path, url, 3) as (hub_a, hub_b, hub_c):
        refused = hub_c.client()
        refused.handshake(hub_c.node.identity.signing.keyid, key, "web1", hub_instance=HUB_INSTANCE)
        assert refused.recv_action("error").error.state == ERROR_AUTH
        refused.close()

        authorize(hub_a, key)
        live, took = connects_within(hub_c, key, 1.0)
        try:
            assert took < 1.0
            # A client flooding batches while another hub revokes it.
            for batch in range(40):
                live.send(send_operations_frame(
                    [operation(batch * 25 + n + 1) for n in range(25)]
                ))
            revoked = hub_b.synchub("revoke", key.keyid, "--yes")
            assert revoked.returncode == 0, revoked.stderr
            cut_at = time.monotonic()
            while True:
                item = live.recv(max(0.01, cut_at + 1.0 - time.monotonic()))
                if item.WhichOneof("action") == "error":
                    break
            assert time.monotonic() - cut_at < 1.0
            assert item.error.state == ERROR_AUTH
        finally:
            live.close()

        again = hub_a.client()
        again.handshake(hub_a.node.identity.signing.keyid, key, "web1", hub_instance=HUB_INSTANCE)
        assert again.recv_action("error").error.state == ERROR_AUTH
        again.close()
        assert rows(url, "SELECT count(*) FROM authorized_clients") == [(0,)]


def join(cwd: Path, token: str, endpoint: str) -> subprocess.Popen[str]:
    """`synchub join TOKEN --endpoint ENDPOINT` in an empty folder, started, not awaited."""
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "SYNCHUB_CONFIG"}
    return subprocess.Popen(
        [sys.executable, str(LAUNCHER), "join", token, "--endpoint", endpoint], cwd=cwd,
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )


def joined(process: subprocess.Popen[str]) -> tuple[int, str]:
    _out, err = process.communicate(timeout=60)
    return process.returncode, err


def test_invitations_are_shared_rows_and_each_use_is_taken_once_in_the_cluster(
    tmp_path: Path, url: str
) -> None:
    with cluster(tmp_path, url, 2) as (hub_a, hub_b):
        made = hub_a.synchub("invite", "--instance", "web1", "--perm", "read_config:*",
                             "--uses", "2")
        assert made.returncode == 0, made.stderr
        token = made.stdout.strip()
        # Made on hub-a, redeemed through hub-b.
        first = join(tmp_path / "first", token, hub_b.endpoint)
        code, err = joined(first)
        assert code == 0, err
        # The last use, claimed at once through both hubs: the database lets one in.
        racers = [join(tmp_path / f"racer-{hub.name}", token, hub.endpoint)
                  for hub in (hub_a, hub_b)]
        outcomes = [joined(racer) for racer in racers]
        assert sorted(code for code, _ in outcomes) == [0, 1], outcomes
        [loser] = [err for code, err in outcomes if code == 1]
        assert "ERROR_AUTH" in loser and "used up" in loser
        keys = {name: load_identity(tmp_path / name / "synchub-data").signing.keyid
                for name in ("first", "racer-hub-a", "racer-hub-b")}
        winner = "racer-hub-a" if outcomes[0][0] == 0 else "racer-hub-b"
        listed = hub_b.synchub("invite", "--list", "--json")
        assert listed.returncode == 0, listed.stderr
        [row] = json.loads(listed.stdout)
        assert (row["state"], row["joined"]) == ("used up", [keys["first"], keys[winner]])
        in_db = {str(k) for (k,) in rows(url, "SELECT keyid FROM authorized_clients")}
        assert in_db == {keys["first"], keys[winner]}



def web_page(hub: RunningHub, path: str) -> str:
    found = re.search(r"web:\s+(http://\S+)", hub.process.log_text())
    assert found, "no web side in the log"
    with urllib.request.urlopen(f"{found.group(1)}{path}", timeout=5) as answer:
        return str(answer.read().decode())


def failed_op(op_id: int, plan: str, message: str) -> pb.Operation:
    op = operation(op_id, message=message)
    op.status, op.plan_id = pb.STATUS_ERROR, plan
    op.unix_time_start_ms = int(time.time() * 1000)
    return op


def test_one_hub_delivers_each_alert_and_every_hub_follows_the_others_writes(
    tmp_path: Path, url: str
) -> None:
    key = SigningIdentity.generate()
    # hub-a is up before hub-b starts: it leads the alerts, hub-b stands by.
    with receiver() as hook, cluster(tmp_path, url, 2, web=True, extra=f"""
[[alerts]]
name = "backup-failed"
when = "operation_failed"
webhook = "{hook.url}"
""") as (hub_a, hub_b):
        authorize(hub_a, key)
        client, _took = connects_within(hub_b, key, 2.0)
        try:
            sent = time.monotonic()
            client.send(send_operations_frame([failed_op(1, "nightly", "disk full")]))
            event = hook.next_event(timeout=5)  # hub-a judged it from hub-b's write
            assert (event["alert"], event["event"], event["plan"]) == (
                "backup-failed", "firing", "nightly")
            assert "disk full" in event["message"]
            wait_until(lambda: "disk full" in web_page(hub_a, "/"), timeout=2.0,
                       what="hub-a's dashboard showing what hub-b stored")
            assert time.monotonic() - sent < 5
            active = json.loads(web_page(hub_b, "/api/alerts"))  # what hub-a recorded
            assert [a["alert"] for a in active] == ["backup-failed"]
            hook.no_event(within=1.5)  # delivered once: hub-b stood by
            # A job's log is fetched through the client's session: hub-a says where it is.
            [stored] = json.loads(hub_a.synchub("ops", "--json").stdout)
            fetched = hub_a.synchub("logs", str(stored["id"]))
            assert fetched.returncode == 1 and "Traceback" not in fetched.stderr
            assert (f"client web1 is connected to hub hub-b, not this one: run `synchub "
                    f"logs {stored['id']}` on that hub") in fetched.stderr

            hub_a.process.kill()  # the deliverer dies; hub-b takes over
            wait_until(lambda: "this hub took the lead" in hub_b.process.log_text(),
                       timeout=10.0, what="hub-b taking the lead")
            client.send(send_operations_frame([failed_op(2, "nightly", "again"),
                                               failed_op(3, "weekly", "tape gone")]))
            taken = hook.next_event(timeout=5)  # nightly's incident was recorded: not again
            assert (taken["plan"], taken["event"]) == ("weekly", "firing")
            hook.no_event(within=1.5)
        finally:
            client.close()


def test_one_session_per_key_in_the_whole_cluster(tmp_path: Path, url: str) -> None:
    key = SigningIdentity.generate()
    with cluster(tmp_path, url, 3) as (hub_a, hub_b, hub_c):
        authorize(hub_b, key)
        older = connect(hub_a, key)
        try:
            wait_until(lambda: holder(url, key.keyid) == "hub-a", 15.0,
                       "the session on hub-a to be recorded")
            newer = connect(hub_b, key)
            displaced_at = time.monotonic()
            try:
                goodbye = older.recv_action("error", timeout=1.0).error
                assert time.monotonic() - displaced_at < 1.0
                assert goodbye.state == DISCONNECTED
                assert goodbye.message == "displaced by a newer connection"
                # The newer session is untouched, and every hub says who holds it.
                newer.send(send_operations_frame([operation(1)]))
                for hub in (hub_a, hub_b, hub_c):
                    peer = hub.peers()[key.keyid]
                    assert peer["hub_node"] == "hub-b", hub.name
                    assert peer["state"] == "CONNECTION_STATE_CONNECTED", hub.name
                table = hub_a.synchub("peers").stdout.splitlines()
                assert table[0].split()[:4] == ["INSTANCE", "KEYID", "STATE", "HUB"]
                assert table[1].split()[2:4] == ["connected", "hub-b"]
            finally:
                newer.close()
        finally:
            older.close()


def diff_reply(client: RawClient, keyid: str, ids: list[int], modnos: list[int]) -> list[int]:
    client.send(diff_frame(keyid, ids, modnos))
    return list(client.recv_action("diff_operations").diff_operations.request_operations)


def test_ids_stay_unique_and_increasing_whichever_hub_stored_them(
    tmp_path: Path, url: str
) -> None:
    first, second = SigningIdentity.generate(), SigningIdentity.generate()
    with cluster(tmp_path, url, 3) as (hub_a, hub_b, hub_c):
        authorize(hub_a, first, "db1")
        authorize(hub_a, second, "web1")
        one = connect(hub_a, first, "db1")
        one.send(send_operations_frame([operation(1), operation(2)]))
        assert diff_reply(one, first.keyid, [1, 2], [1, 1]) == []
        one.close()
        # docs/protocol.md's example, through another hub: the hub holds 1-2, the
        # client sends 1, 2, 3 in flows 1, 1, 2; they become 3, 4, 5 in flows 3, 3, 5.
        two = connect(hub_b, second)
        two.send(send_operations_frame(
            [operation(1, flow_id=1), operation(2, flow_id=1), operation(3, flow_id=2)]
        ))
        assert diff_reply(two, second.keyid, [1, 2, 3], [1, 1, 1]) == []
        two.close()
        stored = "SELECT id, flow_id, original_id FROM operations ORDER BY id"
        assert [r[:2] for r in rows(url, stored)] == [(1, 1), (2, 2), (3, 3), (4, 3), (5, 5)]

        # The same client through a third hub: what it sent is held once, and its
        # next operation takes the next id.
        three = connect(hub_c, second)
        assert diff_reply(three, second.keyid, [1, 2, 3], [1, 1, 1]) == []
        three.send(send_operations_frame([operation(2, modno=2, flow_id=1), operation(4)]))
        assert diff_reply(three, second.keyid, [1, 2, 3, 4], [1, 2, 1, 1]) == []
        three.close()
        assert rows(url, stored)[3:] == [(4, 3, 2), (5, 5, 3), (6, 6, 4)]
        assert rows(url, "SELECT modno FROM operations WHERE id = 4") == [(2,)]

    # The database itself refuses a second copy of one peer's operation.
    with pytest.raises(psycopg.errors.UniqueViolation):
        rows(url, f"INSERT INTO operations (id, flow_id, modno, original_instance_keyid, "
                  f"original_id, original_flow_id, repo_guid, plan_id, instance_id, "
                  f"snapshot_id, unix_time_start_ms, status, data) VALUES (99, 99, 1, "
                  f"'{second.keyid}', 4, 4, 'g', '', 'web1', '', 0, 3, '')")


def test_a_dead_hubs_sessions_expire_within_three_heartbeat_intervals(
    tmp_path: Path, url: str
) -> None:
    key = SigningIdentity.generate()
    heartbeat = 2.0
    with cluster(tmp_path, url, 2, heartbeat_interval=heartbeat) as (hub_a, hub_b):
        authorize(hub_a, key)
        client = connect(hub_a, key)
        try:
            wait_until(lambda: holder(url, key.keyid) == "hub-a", 15.0,
                       "the session on hub-a to be recorded")
            assert hub_b.peers()[key.keyid]["hub_node"] == "hub-a"
            hub_a.process.kill()
            killed_at = time.monotonic()
            deadline = killed_at + 3 * heartbeat
            while True:  # the database itself, polled (a CLI would take its own time)
                [(data,)] = rows(url, f"SELECT data FROM peer_states "
                                      f"WHERE keyid = '{key.keyid}'")
                state = pb.PeerState.FromString(bytes(data))  # type: ignore[arg-type]
                if state.state == DISCONNECTED:
                    break
                assert time.monotonic() < deadline, f"still {state} after 3 intervals"
                time.sleep(0.05)
            assert time.monotonic() - killed_at < 3 * heartbeat
            peer = hub_b.peers()[key.keyid]
            assert peer["state"] == "CONNECTION_STATE_DISCONNECTED"
            assert peer["hub_node"] is None
            assert "hub hub-a stopped renewing" in str(peer["status_message"])
            assert rows(url, "SELECT count(*) FROM sessions") == [(0,)]
        finally:
            client.close()


def test_kill_9_of_a_hub_during_a_sync_its_client_finishes_on_another(
    tmp_path: Path, url: str
) -> None:
    count = 40_000
    client_node = make_client_node(tmp_path / "client")
    seed_local_operations(client_node.oplog_path, count)
    keyid = client_node.identity.signing.keyid
    with cluster(tmp_path, url, 2) as hubs:
        authorize(hubs[0], client_node.identity.signing)
        write_cluster_client_config(client_node, hubs)
        agent = Agent(load_config(client_node.config_path), identity=client_node.identity)
        agent.start()
        try:
            wait_until(lambda: stored_count(url) >= 1_000, 30.0, "the sync to start")
            [(holder,)] = rows(url, f"SELECT node FROM sessions WHERE keyid = '{keyid}'")
            victim = next(h for h in hubs if h.name == holder)
            victim.process.kill()
            killed_at = time.monotonic()
            assert stored_count(url) < count, "the sync finished before the kill"
            survivor = next(h for h in hubs if h is not victim).name
            wait_until(
                lambda: rows(url, f"SELECT node FROM sessions WHERE keyid = '{keyid}'")
                == [(survivor,)], 10.0, f"the client to reconnect to {survivor}",
            )
            assert time.monotonic() - killed_at < 10.0
            wait_until(lambda: agent.status()[HUB_INSTANCE].in_sync, 90.0, "the sync to finish")
        finally:
            agent.stop()
    # Everything the client holds is stored, each operation once, in order.
    held = rows(url, "SELECT original_id, id FROM operations ORDER BY id")
    assert [original for original, _ in held] == list(range(1, count + 1))
    assert len({local for _, local in held}) == count


def stored_count(url: str) -> int:
    [(found,)] = rows(url, "SELECT count(*) FROM operations")
    return int(str(found))


def write_cluster_client_config(node: ClientNode, hubs: list[RunningHub]) -> None:
    """``node``'s config with one known host: every hub's address as its endpoints."""
    write_client_config(node, hubs[0].node, hubs[0].endpoint)
    text = node.config_path.read_text()
    endpoints = json.dumps([h.endpoint for h in hubs])
    node.config_path.write_text(
        text.replace(f'endpoint = "{hubs[0].endpoint}"', f"endpoints = {endpoints}")
    )


def test_a_postgresql_restart_under_load_loses_nothing_and_nobody_hangs(
    tmp_path: Path
) -> None:
    count = 40_000
    client_node = make_client_node(tmp_path / "client")
    seed_local_operations(client_node.oplog_path, count)
    with private_server() as server:
        with psycopg.connect(server.url(), autocommit=True) as admin:
            admin.execute("CREATE DATABASE synchub")
        url = server.url("synchub")
        with cluster(tmp_path, url, 2, web=True) as hubs:
            authorize(hubs[0], client_node.identity.signing)
            write_cluster_client_config(client_node, hubs)
            agent = Agent(load_config(client_node.config_path), identity=client_node.identity)
            agent.start()
            try:
                wait_until(lambda: stored_count(url) >= 1_000, 30.0, "the sync to start")
                server.stop()
                # The hubs stay up and say why; a new client is told to come back.
                for hub in hubs:
                    wait_until(lambda hub=hub: hub.healthz()[0] == 503, 5.0,
                               f"{hub.name}'s /healthz to see the database gone")
                    _status, health = hub.healthz()
                    assert any("cannot reach its database" in p for p in health["problems"])
                    refused = hub.client()
                    started = time.monotonic()
                    refused.send(client_handshake(SigningIdentity.generate(), "web9", None,
                                                  hub.node.identity.signing.keyid,
                                                  HUB_INSTANCE).hello_frame())
                    error = refused.recv_action("error", timeout=5.0).error
                    refused.close()
                    assert time.monotonic() - started < 5.0
                    assert error.state == pb.CONNECTION_STATE_RETRY_WAIT
                    assert error.message == "the hub cannot reach its database now; retry later"
                    assert "refusing new sessions (RETRY_WAIT)" in hub.process.log_text()
                server.start()
                wait_until(lambda: agent.status()[HUB_INSTANCE].in_sync, 90.0,
                           "the sync to finish after the restart")
                for hub in hubs:
                    assert hub.process.process.poll() is None, f"{hub.name} exited"
                    wait_until(lambda hub=hub: hub.healthz()[0] == 200, 10.0,
                               f"{hub.name} to be healthy again")
            finally:
                agent.stop()
        held = rows(url, "SELECT original_id FROM operations ORDER BY id")
        assert [original for (original,) in held] == list(range(1, count + 1))
