"""`synchub backup` and `synchub check` on real data_dirs (SQLite files, key files, modes)."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from hub.cli.main import cli
from hub.errors import IdentityError, StoreError
from hub.identity import create_identity, load_identity
from hub.pb import synchub_pb2 as pb
from hub.store import (
    Level,
    PeerStore,
    SqliteOplogStore,
    back_up,
    check_data_dir,
    oplog_path,
)


def make_data_dir(root: Path, operations: int = 3) -> Path:
    data_dir = root / "data"
    create_identity(data_dir)
    store = SqliteOplogStore(oplog_path(data_dir))
    try:
        store.add_local([pb.Operation(instance_id="hub-1", display_message=f"job {i}",
                                      unix_time_start_ms=1000 + i) for i in range(operations)])
    finally:
        store.close()
    peers = PeerStore(data_dir)
    try:
        peers.save([pb.PeerState(peer_keyid="ed25519.x", peer_instance_id="web1")])
    finally:
        peers.close()
    return data_dir


def clock() -> int:
    return 1_700_000_000_000


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- backup ---------------------------------------------------------------------------------


def test_backup_copies_the_databases_and_identity_privately(tmp_path: Path) -> None:
    data_dir = make_data_dir(tmp_path)
    result = back_up(data_dir, tmp_path / "copy", clock_ms=clock, instance="hub-1")
    copy = tmp_path / "copy"
    assert [db.name for db in result.databases] == ["oplog.sqlite", "peers.sqlite"]
    assert result.databases[0].rows == 3 and result.databases[1].rows == 1
    assert load_identity(copy).signing.keyid == load_identity(data_dir).signing.keyid
    assert load_identity(copy).curve.public == load_identity(data_dir).curve.public
    assert mode(copy) == 0o700 and mode(copy / "identity") == 0o700
    for path in copy.rglob("*"):
        if path.is_file():
            assert mode(path) == 0o600, path
    store = SqliteOplogStore(oplog_path(copy))
    try:
        assert sorted(op.display_message for op in store.query(pb.OpSelector())) == [
            "job 0", "job 1", "job 2"]
    finally:
        store.close()
    manifest = json.loads((copy / "backup.json").read_text())
    assert manifest["created_ms"] == clock() and manifest["instance"] == "hub-1"
    assert manifest["keyid"] == result.keyid
    assert {d["file"]: d["rows"] for d in manifest["databases"]} == {
        "oplog.sqlite": 3, "peers.sqlite": 1}
    assert check_data_dir(copy) and all(
        f.level is Level.OK for f in check_data_dir(copy)), check_data_dir(copy)


def test_backup_sees_a_write_committed_by_another_connection_and_not_one_in_progress(
    tmp_path: Path,
) -> None:
    data_dir = make_data_dir(tmp_path, operations=1)
    writer = sqlite3.connect(oplog_path(data_dir), isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("DELETE FROM operations")
        # The writer holds an open transaction: the copy is the committed state.
        result = back_up(data_dir, tmp_path / "copy", clock_ms=clock)
        writer.execute("ROLLBACK")
    finally:
        writer.close()
    assert result.databases[0].rows == 1


def test_backup_refuses_an_existing_destination_and_writes_nothing(tmp_path: Path) -> None:
    data_dir = make_data_dir(tmp_path)
    (tmp_path / "copy").mkdir()
    with pytest.raises(StoreError, match="already exists"):
        back_up(data_dir, tmp_path / "copy", clock_ms=clock)
    assert list((tmp_path / "copy").iterdir()) == []
    with pytest.raises(StoreError, match="is not a directory"):
        back_up(data_dir, tmp_path / "nowhere" / "copy", clock_ms=clock)


def test_a_failed_backup_leaves_no_destination(tmp_path: Path) -> None:
    data_dir = make_data_dir(tmp_path)
    (data_dir / "alerts.sqlite").write_bytes(b"this is not an SQLite database at all" * 200)
    with pytest.raises(StoreError, match=r"alerts\.sqlite"):
        back_up(data_dir, tmp_path / "copy", clock_ms=clock)
    assert not (tmp_path / "copy").exists()
    with pytest.raises(IdentityError, match="no identity"):
        back_up(tmp_path / "empty", tmp_path / "copy", clock_ms=clock)
    assert not (tmp_path / "copy").exists()


def test_backup_of_a_postgresql_hub_copies_the_rest_and_says_to_use_pg_dump(
    tmp_path: Path,
) -> None:
    make_data_dir(tmp_path)
    config = tmp_path / "hub.toml"
    config.write_text('instance = "hub-1"\ndata_dir = "data"\n[hub]\n'
                      '[store]\nurl = "postgresql://synchub:secret@db.example.org/synchub"\n')
    result = CliRunner().invoke(cli, ["--config", str(config), "backup",
                                      str(tmp_path / "copy")])
    assert result.exit_code == 0, result.output
    assert "pg_dump --format=custom" in result.output
    assert "secret" not in result.output
    assert not (tmp_path / "copy" / "oplog.sqlite").exists()
    assert (tmp_path / "copy" / "identity" / "ed25519.key").exists()


# --- check ----------------------------------------------------------------------------------


def levels(data_dir: Path) -> dict[str, Level]:
    return {f.subject: f.level for f in check_data_dir(data_dir)}


def _state(data_dir: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(data_dir)): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in data_dir.rglob("*") if not p.name.endswith(("-wal", "-shm"))}


def test_check_of_a_healthy_data_dir_changes_nothing(tmp_path: Path) -> None:
    data_dir = make_data_dir(tmp_path)
    before = _state(data_dir)
    findings = check_data_dir(data_dir)
    assert [f.subject for f in findings] == ["data_dir", "identity", "oplog.sqlite",
                                             "peers.sqlite", "alerts.sqlite"]
    assert all(f.level is Level.OK for f in findings), findings
    assert "3 operations, schema version 2" in findings[2].message
    assert "not created yet" in findings[4].message
    # Nothing is created or written; SQLite may leave its empty -wal/-shm beside a
    # database it read.
    assert _state(data_dir) == before
    assert not (data_dir / "alerts.sqlite").exists()


def test_check_finds_open_modes_bad_keys_and_damaged_or_foreign_databases(
    tmp_path: Path,
) -> None:
    data_dir = make_data_dir(tmp_path)
    os.chmod(data_dir, 0o755)
    assert levels(data_dir)["data_dir"] is Level.WARNING
    os.chmod(oplog_path(data_dir), 0o644)
    assert levels(data_dir)["oplog.sqlite"] is Level.ERROR
    os.chmod(oplog_path(data_dir), 0o600)
    os.chmod(data_dir / "identity" / "ed25519.key", 0o644)
    [identity] = [f for f in check_data_dir(data_dir) if f.subject == "identity"]
    assert identity.level is Level.ERROR and "chmod 600" in identity.message
    os.chmod(data_dir / "identity" / "ed25519.key", 0o600)
    foreign = sqlite3.connect(data_dir / "alerts.sqlite")
    foreign.execute("CREATE TABLE something_else (x)")
    foreign.close()
    os.chmod(data_dir / "alerts.sqlite", 0o600)
    assert levels(data_dir)["alerts.sqlite"] is Level.ERROR
    with sqlite3.connect(oplog_path(data_dir)) as db:
        db.execute("PRAGMA user_version = 99")
    [oplog] = [f for f in check_data_dir(data_dir) if f.subject == "oplog.sqlite"]
    assert oplog.level is Level.ERROR and "schema version 99" in oplog.message
    (data_dir / "peers.sqlite").write_bytes(b"\0" * 4096)
    assert levels(data_dir)["peers.sqlite"] is Level.ERROR


def test_check_finds_a_damaged_page(tmp_path: Path) -> None:
    data_dir = make_data_dir(tmp_path, operations=400)
    path = oplog_path(data_dir)
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page = db.execute("PRAGMA page_size").fetchone()[0]
    data = bytearray(path.read_bytes())
    for offset in range(3 * page, len(data) - page, page):  # scribble over index pages
        data[offset + 8 : offset + 64] = b"\xff" * 56
    path.write_bytes(bytes(data))
    assert levels(data_dir)["oplog.sqlite"] is Level.ERROR


def test_check_cli_exit_status_and_json(tmp_path: Path) -> None:
    data_dir = make_data_dir(tmp_path)
    config = tmp_path / "hub.toml"
    config.write_text('instance = "hub-1"\ndata_dir = "data"\n')
    runner = CliRunner()
    good = runner.invoke(cli, ["--config", str(config), "check", "--json"])
    assert good.exit_code == 0, good.output
    assert {f["level"] for f in json.loads(good.output)} == {"ok"}
    os.chmod(oplog_path(data_dir), 0o640)
    bad = runner.invoke(cli, ["--config", str(config), "check"])
    assert bad.exit_code == 1
    assert "error   oplog.sqlite:" in bad.output and "chmod 600" in bad.output
    assert "1 problem in" in bad.output
    missing = runner.invoke(cli, ["--config", str(tmp_path / "other.toml"), "check"])
    assert missing.exit_code != 0 and "Traceback" not in missing.output
