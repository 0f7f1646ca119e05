"""Damaged SQLite stores are refused when they are opened, with one line that says so."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import pytest

from hub.errors import StoreError
from hub.pb import synchub_pb2 as pb
from hub.store import HubStores, PeerStore, SqliteAlertStore, SqliteOplogStore

PAGE = 4096


class Closable(Protocol):
    def close(self) -> None: ...


def filled_oplog(path: Path, count: int = 300) -> None:
    store = SqliteOplogStore(path)
    try:
        store.add_local([
            pb.Operation(instance_id="hub1", plan_id="p", repo_guid="g",
                         display_message="m" * 2000, unix_time_start_ms=i + 1)
            for i in range(count)
        ])
    finally:
        store.close()


def corrupt_pages(path: Path) -> None:
    pages = path.stat().st_size // PAGE
    with path.open("r+b") as file:
        for page in (pages // 3, pages // 2):
            file.seek(page * PAGE)
            file.write(b"\xa5" * PAGE)


def refused(message: str, path: Path, *fragments: str) -> None:
    assert "\n" not in message
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, message


OPENERS: dict[str, Callable[[Path], Closable]] = {
    "oplog.sqlite": lambda d: SqliteOplogStore(d / "oplog.sqlite"),
    "peers.sqlite": PeerStore,
    "alerts.sqlite": SqliteAlertStore,
}


@pytest.mark.parametrize("name", sorted(OPENERS))
def test_a_zero_length_file_is_refused_not_taken_for_a_new_store(
    tmp_path: Path, name: str
) -> None:
    OPENERS[name](tmp_path).close()
    path = tmp_path / name
    for extra in tmp_path.glob(f"{name}-*"):
        extra.unlink()
    path.write_bytes(b"")
    os.utime(path, (0, 0))  # an old empty file, not one being made
    with pytest.raises(StoreError) as caught:
        OPENERS[name](tmp_path)
    refused(str(caught.value), path, "is damaged", "empty (0 bytes)", "from a backup")
    assert path.stat().st_size == 0


def test_a_new_store_is_created_and_reopened(tmp_path: Path) -> None:
    path = tmp_path / "oplog.sqlite"
    SqliteOplogStore(path, check=True).close()
    SqliteOplogStore(path, check=True).close()
    assert path.stat().st_size > 0


def test_a_foreign_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "oplog.sqlite"
    filled_oplog(path, 10)
    with path.open("r+b") as file:
        file.write(b"PK\x03\x04 not a database")
    with pytest.raises(StoreError) as caught:
        SqliteOplogStore(path)
    refused(str(caught.value), path, "header is not an SQLite database")


def test_a_corrupt_page_is_refused_by_the_check(tmp_path: Path) -> None:
    path = tmp_path / "oplog.sqlite"
    filled_oplog(path)
    corrupt_pages(path)
    with pytest.raises(StoreError) as caught:
        SqliteOplogStore(path, check=True)
    refused(str(caught.value), path, "is damaged", "from a backup")


def test_hub_stores_check_refuses_any_damaged_store_and_passes_intact_ones(
    tmp_path: Path,
) -> None:
    stores = HubStores(tmp_path)
    stores.check()
    filled_oplog(tmp_path / "oplog.sqlite")
    stores.check()
    peers = tmp_path / "peers.sqlite"
    with sqlite3.connect(peers) as db:
        db.execute("PRAGMA journal_mode = DELETE")
    with peers.open("r+b") as file:
        file.seek(PAGE)
        file.write(b"\xa5" * PAGE)
    with pytest.raises(StoreError) as caught:
        stores.check()
    refused(str(caught.value), peers, "peer store", "is damaged")


def test_an_error_on_a_damaged_page_later_says_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "oplog.sqlite"
    filled_oplog(path)
    store = SqliteOplogStore(path)
    try:
        corrupt_pages(path)
        with pytest.raises(StoreError) as caught:
            store.query(pb.OpSelector())
    finally:
        store.close()
    refused(str(caught.value), path, "is damaged", "from a backup")
