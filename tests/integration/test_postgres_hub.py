"""A hub on PostgreSQL, end to end: `synchub start` with `[store] url`, a real agent
syncing to it, `ops` / `peers` from the running hub and from the database once it
stopped, a start that cannot reach its database, and `synchub store migrate`
moving a hub that ran on SQLite, whose clients then find it in sync.

Each test has a database of its own on the machine's PostgreSQL server; without
one they skip with the reason.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from postgres_support import fresh_database

from hub.agent import Agent, AgentSettings
from hub.bench.rig import (
    ClientNode,
    HubNode,
    hub_process,
    make_client_node,
    make_hub_node,
    seed_local_operations,
    write_client_config,
)
from hub.config import load_config, remove_authorized_client
from hub.pb import synchub_pb2 as pb
from hub.store import PostgresOplogStore, SqliteOplogStore
from synchub_testing import LAUNCHER

pytestmark = pytest.mark.integration

OPERATIONS = 600


@pytest.fixture
def url() -> Iterator[str]:
    with fresh_database() as fresh:
        yield fresh


def synchub(config: Path, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(LAUNCHER), "--config", str(config), *args],
        check=False, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
    )


def sync_once(client: ClientNode, hub: HubNode, endpoint: str) -> int:
    """One `agent --once` of ``client`` against ``hub``; the operations it sent."""
    write_client_config(client, hub, endpoint)
    agent = Agent(load_config(client.config_path), identity=client.identity,
                  settings=AgentSettings(connect_timeout=30.0))
    reports = agent.run_once(60.0)
    return sum(report.sent for report in reports)


def rows(url: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql.encode()).fetchall()


def test_a_hub_on_postgresql_serves_a_client(tmp_path: Path, url: str) -> None:
    client = make_client_node(tmp_path / "client")
    seed_local_operations(client.oplog_path, OPERATIONS)
    hub = make_hub_node(tmp_path / "hub", [client.bench_client], store_url=url)

    with hub_process(hub) as (process, endpoint):
        assert "store:  PostgreSQL postgresql:///synchub_test_" in process.log_text()
        assert sync_once(client, hub, endpoint) == OPERATIONS
        # Acknowledged (the agent saw the confirming diff): committed, for any reader.
        held = rows(url, "SELECT original_id, id, flow_id, original_instance_keyid "
                         "FROM operations ORDER BY id")
        assert [(r[0], r[1], r[2]) for r in held] == [
            (n, n, n) for n in range(1, OPERATIONS + 1)
        ]
        assert {r[3] for r in held} == {client.identity.signing.keyid}
        listed = json.loads(synchub(hub.config_path, "ops", "--json", "--limit", "3").stdout)
        assert [op["id"] for op in listed] == [OPERATIONS, OPERATIONS - 1, OPERATIONS - 2]
        assert sync_once(client, hub, endpoint) == 0

    assert not (hub.data_dir / "oplog.sqlite").exists()
    assert not (hub.data_dir / "peers.sqlite").exists()
    # Stopped: the commands read the database itself.
    peers = synchub(hub.config_path, "peers", "--json")
    assert peers.returncode == 0, peers.stderr
    (state,) = json.loads(peers.stdout)
    assert (state["peer_instance_id"], state["state"]) == (
        client.instance_id, "CONNECTION_STATE_DISCONNECTED"
    )
    listed = json.loads(synchub(hub.config_path, "ops", "--json", "--limit", "1").stdout)
    assert [op["original_id"] for op in listed] == [OPERATIONS]


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_a_hub_that_cannot_reach_its_database_does_not_start(tmp_path: Path) -> None:
    unreachable = "postgresql://synchub:hunter2@127.0.0.1:1/synchub?connect_timeout=2"
    hub = make_hub_node(tmp_path / "hub", [], store_url=unreachable)
    line = one_error_line(synchub(hub.config_path, "start"))
    assert line.startswith("synchub: error: cannot connect to the PostgreSQL store "
                           "postgresql://synchub:***@127.0.0.1:1/synchub")
    assert "hunter2" not in line


def test_a_hub_refuses_a_database_migrated_by_a_newer_synchub(tmp_path: Path, url: str) -> None:
    PostgresOplogStore(url).close()
    rows(url, "INSERT INTO synchub_migrations (version, name) VALUES (999, 'future') "
              "RETURNING version")
    hub = make_hub_node(tmp_path / "hub", [], store_url=url)
    line = one_error_line(synchub(hub.config_path, "start"))
    assert "has schema version 999, newer than this synchub knows" in line


def sqlite_rows(path: Path) -> tuple[list[tuple[object, ...]], tuple[int, int]]:
    store = SqliteOplogStore(path)
    store.close()  # a checkpointed, closed file
    import sqlite3  # noqa: PLC0415 - only this comparison reads the file raw

    with sqlite3.connect(path) as db:
        ops = db.execute(
            "SELECT id, flow_id, modno, original_instance_keyid, original_id, "
            "original_flow_id, data FROM operations ORDER BY id"
        ).fetchall()
        counters = db.execute("SELECT last_id, last_modno FROM counters").fetchone()
    return ops, counters


def test_store_migrate_moves_a_sqlite_hub_and_its_clients_stay_in_sync(
    tmp_path: Path, url: str
) -> None:
    client = make_client_node(tmp_path / "client")
    seed_local_operations(client.oplog_path, OPERATIONS)
    hub = make_hub_node(tmp_path / "hub", [client.bench_client])
    with hub_process(hub) as (_process, endpoint):
        assert sync_once(client, hub, endpoint) == OPERATIONS
        local = SqliteOplogStore(client.oplog_path)
        local.delete([OPERATIONS])  # the hub's highest id goes too: it is never reused
        local.close()
        sync_once(client, hub, endpoint)
        refused = one_error_line(synchub(hub.config_path, "store", "migrate", "--to", url))
        assert "a hub is running on" in refused

    before, counters = sqlite_rows(hub.oplog_path)
    assert len(before) == OPERATIONS - 1 and counters[0] == OPERATIONS
    moved = synchub(hub.config_path, "store", "migrate", "--to", url)
    assert moved.returncode == 0, moved.stderr
    assert (f"copied {OPERATIONS - 1} operations, 1 peer states and 1 authorized clients"
            in moved.stdout)
    assert "delete its [[authorized_clients]]" in moved.stdout
    assert f"next id {OPERATIONS + 1}" in moved.stdout

    store = PostgresOplogStore(url)
    try:
        after = store.query_metadata(pb.OpSelector())
        assert [(m.id, m.flow_id, m.modno, m.original_instance_keyid, m.original_id,
                 m.original_flow_id) for m in after] == [row[:6] for row in before]
        for row in before:
            stored = store.get(int(str(row[0])))
            # The bytes as the SQLite store kept them; the peer they came from beside them.
            assert stored is not None and stored.peer_instance_id == "web1"
            stored.ClearField("peer_instance_id")
            assert stored.SerializeToString() == row[6]
        assert len(store.query(pb.OpSelector(peer_instance_id="web1"))) == len(before)
    finally:
        store.close()
    assert rows(url, "SELECT last_id, last_modno FROM counters") == [counters]

    again = one_error_line(synchub(hub.config_path, "store", "migrate", "--to", url))
    assert "is not empty" in again and "--replace" in again
    replaced = synchub(hub.config_path, "store", "migrate", "--to", url, "--replace")
    assert replaced.returncode == 0, replaced.stderr

    # What the operator does next: point the hub's config at the database...
    with hub.config_path.open("a") as config:
        config.write(f"\n[store]\nurl = {json.dumps(url)}\n")
    refused_text = hub.config_path.read_text()
    refused = one_error_line(synchub(hub.config_path, "start"))
    assert "[[authorized_clients]]" not in refused  # the key path names the table
    assert "authorized_clients: 1 client(s) here, but a hub on a PostgreSQL store" in refused
    assert "synchub store migrate --clients-only --to" in refused
    # ...and delete the clients from the file: the database has them.
    remove_authorized_client(hub.config_path, client.identity.signing.keyid)
    file_text = hub.config_path.read_text()
    with hub_process(hub, log_name="hub-on-postgresql.log") as (process, endpoint):
        assert "store:  PostgreSQL" in process.log_text()
        assert sync_once(client, hub, endpoint) == 0
        # A reload whose file gained clients again is refused as the start was; the
        # hub keeps its running config (the clients in the database still sync).
        hub.config_path.write_text(refused_text)
        reload = one_error_line(synchub(hub.config_path, "reload"))
        assert "authorized_clients: 1 client(s) here, but a hub on a PostgreSQL store" in reload
        assert "reload refused, the hub keeps its running config" in process.log_text()
        hub.config_path.write_text(file_text)
        seed_local_operations(client.oplog_path, 1)
        assert sync_once(client, hub, endpoint) == 1
    assert rows(url, "SELECT max(id) FROM operations") == [(OPERATIONS + 1,)]


def test_store_migrate_without_stores_or_with_a_bad_url_changes_nothing(tmp_path: Path) -> None:
    hub = make_hub_node(tmp_path / "hub", [])
    bad = synchub(hub.config_path, "store", "migrate", "--to", "postgresql://db:0/x")
    assert bad.returncode == 2 and "is not a port number" in bad.stderr
    assert "Traceback" not in bad.stderr
    line = one_error_line(
        synchub(hub.config_path, "store", "migrate", "--to", "postgresql://127.0.0.1:1/x")
    )
    assert line.startswith("synchub: error: nothing to migrate: neither ")
