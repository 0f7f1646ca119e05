"""Resumed sync (docs/protocol.md §6.8 (Resumed sync)) between the real agent and a real hub.

Every test ends with the full comparison: the hub holds exactly the client's own
operations, (id, modno, message) for (id, modno, message). Whether a reconnect
resumed or fell back to a full diff shows in the agent's report: a resumed one is
asked for nothing (its changes go unasked), a full diff is asked for what it lacks.
"""

from __future__ import annotations

import dataclasses
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from test_agent_sync import ASK, FAST, Rig, local_op, local_store, rig

from actors import RemoteBatch
from hub.agent import Agent
from hub.config import load_config
from hub.pb import synchub_pb2 as pb
from hub.server import Hub
from hub.store import SqliteOplogStore, oplog_path
from synchub_testing import free_tcp_port

pytestmark = pytest.mark.integration

ONCE = dataclasses.replace(FAST, rediff_interval=300.0, resync=True)


def client_ops(r: Rig) -> list[tuple[int, int, str]]:
    store = SqliteOplogStore(r.client_node.oplog)
    try:
        ops = store.query(pb.OpSelector(original_instance_keyid=""))
    finally:
        store.close()
    return [(op.id, op.modno, op.display_message) for op in ops]


def hub_ops(r: Rig, hub: Hub | None = None) -> list[tuple[int, int, str]]:
    held = r.own_full_ops(hub)
    return sorted((op.original_id, op.modno, op.display_message) for op in held)


def assert_same(r: Rig, hub: Hub | None = None) -> None:
    assert hub_ops(r, hub) == client_ops(r)


def sync(r: Rig) -> tuple[tuple[int, ...], int, int]:
    [report] = Agent(r.client, settings=ONCE).run_once(timeout=20)
    return report.rounds, report.sent, report.deleted


def seed(r: Rig, count: int) -> list[pb.Operation]:
    with local_store(r.client_node) as store:
        return store.add_local([local_op(f"op {i}") for i in range(count)])


def change(r: Rig, ops: list[pb.Operation], note: str) -> None:
    with local_store(r.client_node) as store:
        for op in ops:
            op.display_message += note
        store.update_local(ops)


def test_reconnect_after_changes_sends_only_the_changes(tmp_path: Path) -> None:
    with rig(tmp_path) as r:
        ops = seed(r, 3000)
        assert sync(r) == ((3000,), 3000, 0)
        assert_same(r)

        change(r, ops[10:15] + ops[2500:2502], " (changed)")
        with local_store(r.client_node) as store:
            store.add_local([local_op("new")])
        # Resumed: seven changes and one new operation go unasked, and the digest agrees.
        assert sync(r) == ((0,), 8, 0)
        assert_same(r)
        assert sync(r) == ((0,), 0, 0)


def test_reconnect_after_deletes_sends_the_deletions(tmp_path: Path) -> None:
    with rig(tmp_path) as r:
        ops = seed(r, 200)
        sync(r)
        with local_store(r.client_node) as store:
            store.delete([ops[0].id, ops[100].id, ops[199].id])
        assert sync(r) == ((0,), 0, 3)
        assert_same(r)
        assert len(hub_ops(r)) == 197


def test_a_replaced_client_database_falls_back_to_the_full_diff(tmp_path: Path) -> None:
    with rig(tmp_path) as r:
        seed(r, 50)
        sync(r)
        # A new database: a new epoch, ids starting again at 1, other operations.
        for suffix in ("", "-wal", "-shm"):
            Path(f"{r.client_node.oplog}{suffix}").unlink(missing_ok=True)
        with local_store(r.client_node) as store:
            store.add_local([local_op(f"replacement {i}") for i in range(30)])
        # The full diff. Ids 1-30 have the same modnos as the old database's, so the
        # pairs compare equal: a client that sees another epoch sends all it has, and
        # answers the 20 ids only the hub holds as deleted.
        assert sync(r) == ((50,), 30, 20)
        assert_same(r)
        assert sync(r) == ((0,), 0, 0)


def _backup(source: Path, target: Path) -> None:
    src = sqlite3.connect(source)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def test_a_hub_restored_from_an_older_copy_gets_what_it_lost(tmp_path: Path) -> None:
    with rig(tmp_path, port=free_tcp_port()) as r:
        ops = seed(r, 500)
        sync(r)
        hub_oplog = oplog_path(r.hub_node.root / "data")
        backup = tmp_path / "hub-backup.sqlite"
        _backup(hub_oplog, backup)

        change(r, ops[:40], " (after the backup)")
        with local_store(r.client_node) as store:
            store.delete([op.id for op in ops[400:420]])
            store.add_local([local_op("after the backup")])
        assert sync(r)[0] == (0,)
        assert_same(r)
        r.hub.stop()

        for suffix in ("-wal", "-shm"):
            Path(f"{hub_oplog}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(backup, hub_oplog)
        restored = Hub(load_config(r.hub_node.config_path))
        restored.start()
        try:
            r.hub = restored
            # The restored cursor is the older one: everything since is sent again.
            rounds, sent, deleted = sync(r)
            assert rounds == (0,) and sent == 41 and deleted == 20
            assert_same(r)
        finally:
            restored.stop()


def test_a_crash_between_applying_and_recording_the_cursor_is_harmless(
    tmp_path: Path,
) -> None:
    with rig(tmp_path) as r:
        ops = seed(r, 300)
        sync(r)
        change(r, ops[:5], " (applied, cursor not recorded)")
        with local_store(r.client_node) as store:
            store.delete([ops[299].id])
        # The hub applied the batches of a session that ended (a crash) before its
        # check_digest recorded the cursor: its store holds the changes, its cursor
        # the older sequence.
        keyid = r.client_node.identity.signing.keyid
        with local_store(r.client_node) as store:
            changed = store.query(pb.OpSelector(ids=[op.id for op in ops[:5]]))
        r.hub.oplog.apply_remote(
            keyid, RemoteBatch(operations=tuple(changed), deleted_ids=(ops[299].id,),
                               peer_instance_id="web1"),
        ).get(timeout=ASK)
        # The next session sends them again: updates in place, a delete of nothing.
        assert sync(r) == ((0,), 5, 1)
        assert_same(r)


def test_a_divergence_behind_a_valid_cursor_is_found_by_the_digest(tmp_path: Path) -> None:
    with rig(tmp_path) as r:
        ops = seed(r, 5000)
        sync(r)
        keyid = r.client_node.identity.signing.keyid
        # The hub's copy drifts without the client changing anything: one operation
        # lost, one with another modno, one the client never had.
        stale = pb.Operation()
        stale.CopyFrom(ops[3000])
        stale.modno = 1
        stale.display_message = "stale"
        stray = pb.Operation()
        stray.CopyFrom(ops[10])
        stray.id = 9000
        stray.flow_id = 9000
        r.hub.oplog.apply_remote(
            keyid, RemoteBatch(operations=(stale, stray), deleted_ids=(ops[1234].id,)),
        ).get(timeout=ASK)
        assert hub_ops(r) != client_ops(r)

        rounds, sent, deleted = sync(r)
        # Found and repaired by comparing digests, not by listing 5000 pairs.
        assert rounds == (3,) and sent == 2 and deleted == 1
        assert_same(r)


def _shared_client_ops(r: Rig, keep: Callable[[pb.Operation], bool]) -> list[tuple[int, int, str]]:
    store = SqliteOplogStore(r.client_node.oplog)
    try:
        ops = store.query(pb.OpSelector(original_instance_keyid=""))
    finally:
        store.close()
    return [(op.id, op.modno, op.display_message) for op in ops if keep(op)]


def _in_nightly(op: pb.Operation) -> bool:
    return op.repo_guid == "guid-nas" and op.plan_id == "nightly"


def test_a_grant_narrowed_while_resumed_takes_back_what_it_no_longer_shares(
    tmp_path: Path,
) -> None:
    """docs/protocol.md §6.2 (withdrawals) with resumed sync on: narrowed from `*` to one
    plan, the hub gives back the repo's other plans and the operations without a repo,
    exactly as with version 1's diffs, and the plan that is still shared resumes."""
    with rig(tmp_path) as r:
        with local_store(r.client_node) as store:
            made = [local_op(f"nightly {i}") for i in range(40)]
            made += [local_op(f"weekly {i}") for i in range(30)]
            for op in made[:40]:
                op.plan_id = "nightly"
            for op in made[40:]:
                op.plan_id = "weekly"
            made += [local_op(f"loose {i}", repo_guid="") for i in range(20)]
            ops = store.add_local(made)
        assert sync(r) == ((90,), 90, 0)
        # A resumed round, so the narrowing meets a hub that holds cursors.
        change(r, ops[:2], " (changed)")
        assert sync(r) == ((0,), 2, 0)
        assert_same(r)

        assert r.client.path is not None
        text = r.client.path.read_text()
        wide = '{ type = "read_operations", scopes = ["*"] }'
        assert wide in text
        r.client.path.write_text(
            text.replace(wide, '{ type = "read_operations", scopes = ["plan:nightly"] }'))
        narrowed = load_config(r.client.path)

        def run() -> tuple[tuple[int, ...], int, int]:
            [report] = Agent(narrowed, settings=ONCE).run_once(timeout=20)
            return report.rounds, report.sent, report.deleted

        # The plan is a new selection (a full diff, nothing missing); the withdrawals
        # of the repo and of the operations without a repo have the hub ask for the
        # 30 + 20 it holds beyond them, answered as deleted, then confirm.
        assert run() == ((50,), 0, 50)
        nightly = _shared_client_ops(r, _in_nightly)
        assert len(nightly) == 40
        assert hub_ops(r) == nightly
        # The plan now resumes from its cursor: one change, unasked; nothing withdrawn.
        change(r, ops[5:6], " (after narrowing)")
        change(r, ops[50:51], " (no longer shared)")
        assert run() == ((0,), 1, 0)
        assert hub_ops(r) == _shared_client_ops(r, _in_nightly)
