"""PeerStore, the SQLite PeerStateStore: its file <data_dir>/peers.sqlite and the
read-only snapshot the CLI takes of it.

The behaviour every PeerStateStore must have is in
tests/contract/test_peer_state_store_contract.py.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.errors import StoreError
from hub.pb import synchub_pb2 as pb
from hub.store import PEER_STORE_FILENAME, PeerStore, read_peer_states


@pytest.fixture
def store(tmp_path: Path) -> Iterator[PeerStore]:
    s = PeerStore(tmp_path)
    try:
        yield s
    finally:
        s.close()


def full_state(keyid: str = "ed25519.web1", instance: str = "web1") -> pb.PeerState:
    return pb.PeerState(
        peer_instance_id=instance,
        peer_keyid=keyid,
        state=pb.CONNECTION_STATE_ERROR_AUTH,
        status_message="key revoked",
        known_plans=["nightly", "hourly"],
        known_repos=["nas"],
        remote_config=pb.RemoteConfig(
            modno=7,
            version=3,
            repos=[pb.Repo(id="nas", uri="sftp:backup@nas:/srv/restic", guid="b8e1")],
            plans=[pb.Plan(id="nightly", repo="nas", paths=["/etc"], excludes=["*.tmp"])],
        ),
        last_heartbeat_millis=1_700_000_000_123,
    )


def test_file_is_sqlite_in_wal_mode(tmp_path: Path, store: PeerStore) -> None:
    store.save([full_state()])
    conn = sqlite3.connect(tmp_path / PEER_STORE_FILENAME)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("SELECT keyid FROM peers").fetchall() == [("ed25519.web1",)]
    finally:
        conn.close()


def test_unopenable_location_raises_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot open"):
        PeerStore(blocker)


def test_corrupt_record_raises_store_error(tmp_path: Path, store: PeerStore) -> None:
    conn = sqlite3.connect(tmp_path / PEER_STORE_FILENAME)
    try:
        with conn:
            conn.execute("INSERT INTO peers VALUES ('bad', x'ffffffff')")
    finally:
        conn.close()
    with pytest.raises(StoreError, match="corrupt"):
        store.load_all()


def test_read_peer_states_missing_file_returns_empty(tmp_path: Path) -> None:
    assert read_peer_states(tmp_path) == []
    assert read_peer_states(tmp_path / "no-such-dir") == []
    assert not (tmp_path / PEER_STORE_FILENAME).exists()


def test_read_peer_states_sorted_while_store_is_open(tmp_path: Path, store: PeerStore) -> None:
    store.save(
        [
            full_state("ed25519.zz", "web1"),
            full_state("ed25519.aa", "web1"),
            full_state("ed25519.mm", "db1"),
        ]
    )
    states = read_peer_states(tmp_path)
    assert [(s.peer_instance_id, s.peer_keyid) for s in states] == [
        ("db1", "ed25519.mm"),
        ("web1", "ed25519.aa"),
        ("web1", "ed25519.zz"),
    ]
    assert states[1] == full_state("ed25519.aa", "web1")


def test_read_peer_states_of_a_file_without_records_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / PEER_STORE_FILENAME
    sqlite3.connect(path).close()
    before = path.read_bytes()
    assert read_peer_states(tmp_path) == []
    assert path.read_bytes() == before


def test_read_peer_states_after_store_closed(tmp_path: Path) -> None:
    s = PeerStore(tmp_path)
    s.save([full_state()])
    s.close()
    assert read_peer_states(tmp_path) == [full_state()]


def test_peer_store_file_is_private(tmp_path: Path) -> None:
    store = PeerStore(tmp_path)
    try:
        store.save([pb.PeerState(peer_keyid="k", peer_instance_id="web1")])
        assert store.path.stat().st_mode & 0o777 == 0o600
    finally:
        store.close()
