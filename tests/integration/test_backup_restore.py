"""Data lifecycle under live sync: `synchub backup` of a running hub while a client syncs,
then a hub started on the copy; retention while a client syncs, and its next sync.

The hub is `synchub start` as a process, the client `synchub agent --once` as a
process sending 20,000 operations; `synchub backup` runs as a process while the
hub's oplog is partway through them. The copy must be a consistent snapshot (whole
batches, every operation the client's, none twice, `synchub check` clean), and a hub
started on it must take the same client, whose next sync sends exactly what the
copy lacked.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hub.bench.rig import (
    HubNode,
    HubProcess,
    make_client_node,
    make_hub_node,
    seed_local_operations,
    write_client_config,
)
from hub.identity import load_identity
from hub.pb import synchub_pb2 as pb
from hub.store import SqliteOplogStore
from synchub_testing import LAUNCHER, free_tcp_port

pytestmark = pytest.mark.integration

OPERATIONS = 20_000
BACKUP_AT = 3_000


def synchub(config: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(LAUNCHER), "--config", str(config), *args],
        capture_output=True, text=True, timeout=timeout, check=False,
    )


def held_operations(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1.0)
        try:
            return int(db.execute("SELECT count(*) FROM operations").fetchone()[0])
        finally:
            db.close()
    except sqlite3.OperationalError:
        return 0


def held_by(path: Path, keyid: str) -> list[pb.Operation]:
    store = SqliteOplogStore(path)
    try:
        return store.query(pb.OpSelector(original_instance_keyid=keyid))
    finally:
        store.close()


# `synchub backup` in a process that has imported everything and waits for a line on
# stdin: the backup then starts within milliseconds, while the sync is still running.
_READY_BACKUP = (
    "import sys\n"
    "from hub.cli import main\n"
    "sys.argv = ['synchub', *sys.argv[1:]]\n"
    "print('ready', flush=True)\n"
    "sys.stdin.readline()\n"
    "main()\n"
)


def ready_backup(config: Path, destination: Path) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", _READY_BACKUP, "--config", str(config), "backup",
         str(destination)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert process.stdout is not None and process.stdout.readline() == "ready\n"
    return process


def start_agent(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, str(LAUNCHER), "--config", str(config), "agent", "--once",
             "--timeout", "60"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
        )


# Two syncs of 20,000 operations and two hub processes: about a minute here, much
# more on a loaded machine; every wait inside has its own deadline.
@pytest.mark.timeout(600)
def test_backup_while_a_client_syncs_then_restore_and_resync(tmp_path: Path) -> None:
    client = make_client_node(tmp_path / "client")
    seed_local_operations(client.oplog_path, OPERATIONS)
    local = held_by(client.oplog_path, "")
    port = free_tcp_port()
    node = make_hub_node(tmp_path / "hub", [client.bench_client], port=port)
    write_client_config(client, node, f"tcp://127.0.0.1:{port}")
    keyid = client.identity.signing.keyid
    restored_root = tmp_path / "restored"
    restored_root.mkdir()
    copy_dir = restored_root / "data"
    agent_log = tmp_path / "agent.log"

    hub = HubProcess(node)
    backup = ready_backup(node.config_path, copy_dir)
    try:
        hub.wait_ready()
        agent = start_agent(client.config_path, agent_log)
        try:
            deadline = time.monotonic() + 60
            while held_operations(node.oplog_path) < BACKUP_AT:
                assert agent.poll() is None, agent_log.read_text()
                assert time.monotonic() < deadline, "the sync did not get going"
                time.sleep(0.005)
            out, err = backup.communicate("go\n", timeout=60)
            during = held_operations(node.oplog_path)
            assert backup.returncode == 0, err
            assert "copied oplog.sqlite" in out
            assert agent.wait(120) == 0, agent_log.read_text()
        finally:
            if agent.poll() is None:
                agent.kill()
                agent.wait()
        assert held_operations(node.oplog_path) == OPERATIONS
    finally:
        if backup.poll() is None:
            backup.kill()
            backup.communicate()
        hub.stop()

    # The copy: a snapshot taken while the sync ran, whole and consistent.
    copied = held_by(copy_dir / "oplog.sqlite", keyid)
    assert BACKUP_AT <= len(copied) < OPERATIONS, (len(copied), during)
    by_id = {op.id: op for op in local}
    original_ids = [op.original_id for op in copied]
    assert len(set(original_ids)) == len(original_ids), "an operation is held twice"
    for op in copied:
        sent = by_id[op.original_id]
        assert (op.modno, op.display_message, op.snapshot_id) == (
            sent.modno, sent.display_message, sent.snapshot_id)
    # The agent sends in id order, one batch per transaction: a snapshot holds a prefix.
    assert sorted(original_ids) == sorted(by_id)[: len(copied)]
    manifest = json.loads((copy_dir / "backup.json").read_text())
    assert {d["file"]: d["rows"] for d in manifest["databases"]}["oplog.sqlite"] == len(copied)
    assert load_identity(copy_dir).signing.keyid == node.identity.signing.keyid

    # Restore: the same config, data_dir the copy, the same port; `check` first.
    restored = HubNode(restored_root, load_identity(copy_dir))
    restored.config_path.write_text(node.config_path.read_text())
    checked = synchub(restored.config_path, "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "error" not in checked.stdout
    hub = HubProcess(restored)
    try:
        hub.wait_ready()
        agent = start_agent(client.config_path, agent_log)
        assert agent.wait(120) == 0, agent_log.read_text()
    finally:
        hub.stop()
    held = held_by(restored.oplog_path, keyid)
    assert sorted(op.original_id for op in held) == sorted(by_id)
    assert {op.original_id: op.id for op in held if op.original_id in set(original_ids)} == {
        op.original_id: op.id for op in copied
    }, "the operations in the copy kept their hub ids"


@pytest.mark.timeout(600)
def test_retention_while_a_client_syncs_and_its_next_sync_sends_nothing_again(
    tmp_path: Path,
) -> None:
    """The bench operations started in 2023: with keep_days = 1 every one of them but
    the latest run of web1's plan goes, a batch a second, while the sync is running;
    the client's next sync is answered 'in sync' without sending any of them again."""
    client = make_client_node(tmp_path / "client")
    seed_local_operations(client.oplog_path, OPERATIONS)
    port = free_tcp_port()
    node = make_hub_node(tmp_path / "hub", [client.bench_client], port=port)
    text = node.config_path.read_text()
    node.config_path.write_text(
        text.replace("[hub]\n", "[retention]\nkeep_days = 1\ninterval = 1\n\n[hub]\n", 1))
    write_client_config(client, node, f"tcp://127.0.0.1:{port}")
    keyid = client.identity.signing.keyid
    agent_log = tmp_path / "agent.log"

    hub = HubProcess(node)
    try:
        hub.wait_ready()
        agent = start_agent(client.config_path, agent_log)
        removed_while_syncing = False
        most = 0
        try:
            deadline = time.monotonic() + 120
            while agent.poll() is None:
                assert time.monotonic() < deadline, agent_log.read_text()
                count = held_operations(node.oplog_path)
                most = max(most, count)
                removed_while_syncing |= 0 < count < most
                time.sleep(0.01)
            assert agent.returncode == 0, agent_log.read_text()
        finally:
            if agent.poll() is None:
                agent.kill()
                agent.wait()
        assert removed_while_syncing, "retention did not run during the sync"
        deadline = time.monotonic() + 60
        while held_operations(node.oplog_path) != 1:
            assert time.monotonic() < deadline, held_operations(node.oplog_path)
            time.sleep(0.05)
        [latest] = held_by(node.oplog_path, keyid)
        assert latest.original_id == OPERATIONS  # the newest run of web1's nightly plan

        again_log = tmp_path / "again.log"
        with again_log.open("wb") as out:
            again = subprocess.run(
                [sys.executable, str(LAUNCHER), "--config", str(client.config_path), "-vv",
                 "agent", "--once", "--timeout", "60"],
                stdout=out, stderr=subprocess.STDOUT, timeout=120, check=False,
            )
        assert again.returncode == 0, again_log.read_text()
        assert held_operations(node.oplog_path) == 1, "the client sent removed operations again"
        assert "requests" not in again_log.read_text(), again_log.read_text()[-2000:]
    finally:
        hub.stop()
