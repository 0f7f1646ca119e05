"""kill -9 of the hub in the middle of a client's initial sync, three times.

The hub is `synchub start` as a process; the client is `synchub agent --once` as a
process, rerun whenever it fails. Each kill lands while the hub's oplog is partway
through the client's operations (read from the file with a read-only connection);
the hub restarts on the same data_dir and port. When the agent finally succeeds,
the hub holds exactly the client's operations: every id once, same modnos, same
content.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hub.bench.rig import (
    HubProcess,
    make_client_node,
    make_hub_node,
    seed_local_operations,
    write_client_config,
)
from hub.pb import synchub_pb2 as pb
from hub.store import SqliteOplogStore
from synchub_testing import LAUNCHER, free_tcp_port

pytestmark = [pytest.mark.integration, pytest.mark.alone]

OPERATIONS = 20_000
KILL_AT = (2_000, 7_000, 13_000)
STUCK_SECONDS = 60.0


def held_operations(path: Path) -> int:
    """Rows in the hub's oplog, read beside the running hub without taking a lock."""
    if not path.exists():
        return 0
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1.0)
        try:
            return int(db.execute("SELECT count(*) FROM operations").fetchone()[0])
        finally:
            db.close()
    except sqlite3.OperationalError:
        return 0  # not created yet, or caught mid-checkpoint: ask again


def start_agent(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, str(LAUNCHER), "--config", str(config), "agent", "--once",
             "--timeout", "20"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
        )


@pytest.mark.timeout(600)  # four hub starts and several agent runs, on a loaded machine too
def test_three_kills_mid_sync_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    client = make_client_node(tmp_path / "client")
    seed_local_operations(client.oplog_path, OPERATIONS)
    port = free_tcp_port()
    node = make_hub_node(tmp_path / "hub", [client.bench_client], port=port)
    write_client_config(client, node, f"tcp://127.0.0.1:{port}")
    agent_log = tmp_path / "agent.log"

    hub = HubProcess(node)
    agent: subprocess.Popen[bytes] | None = None
    kills = 0
    attempts = 0
    try:
        hub.wait_ready()
        agent = start_agent(client.config_path, agent_log)
        attempts = 1
        # Stuck means no progress for a while: a restart of both processes on a loaded
        # machine takes many seconds, so the deadline moves with every operation stored.
        deadline, last_held = time.monotonic() + STUCK_SECONDS, 0
        while kills < len(KILL_AT):
            held = held_operations(node.oplog_path)
            if held != last_held:
                deadline, last_held = time.monotonic() + STUCK_SECONDS, held
            assert time.monotonic() < deadline, (
                f"stuck after {kills} kills at {held} operations; "
                f"agent log:\n{agent_log.read_text()}"
            )
            if held >= KILL_AT[kills]:
                hub.kill()  # SIGKILL: no goodbye, no checkpoint, no cleanup
                kills += 1
                assert held_operations(node.oplog_path) < OPERATIONS, "the sync finished first"
                hub = HubProcess(node, log_name=f"hub-{kills}.log")
                hub.wait_ready()
            elif agent.poll() is not None:
                assert agent.returncode != 0, "the sync finished before the third kill"
                agent = start_agent(client.config_path, agent_log)
                attempts += 1
            else:
                time.sleep(0.002)
        while agent.wait(60) != 0:
            assert attempts < 10, agent_log.read_text()
            agent = start_agent(client.config_path, agent_log)
            attempts += 1
    finally:
        if agent is not None and agent.poll() is None:
            agent.kill()
            agent.wait()
        hub.stop()

    assert kills == 3 and attempts >= 2
    mine = SqliteOplogStore(client.oplog_path)
    theirs = SqliteOplogStore(node.oplog_path)
    try:
        local = {op.id: op for op in mine.query(pb.OpSelector(original_instance_keyid=""))}
        held = theirs.query(
            pb.OpSelector(original_instance_keyid=client.identity.signing.keyid)
        )
        assert theirs.count() == len(held) == OPERATIONS
    finally:
        theirs.close()
        mine.close()
    original_ids = [op.original_id for op in held]
    assert len(set(original_ids)) == len(original_ids), "an operation is held twice"
    assert set(original_ids) == set(local)
    for op in held:
        sent = local[op.original_id]
        assert (op.modno, op.display_message, op.snapshot_id, op.unix_time_start_ms) == (
            sent.modno, sent.display_message, sent.snapshot_id, sent.unix_time_start_ms
        )
        assert op.original_flow_id == sent.flow_id
