"""Copying a hub's SQLite stores into PostgreSQL: ``synchub store migrate --to URL``.

Everything a hub's clients rely on is kept: every operation's id, flow id,
original key id, id and flow id, modno and content (its encoding, byte for byte
once read back), the id and modno counters (so an id deleted at the top is
still never handed out again), local tombstones, and every peer state as
stored. The files are read in one read transaction and written in one
PostgreSQL transaction, so the target holds all of it or nothing; a target that
already holds anything is refused unless ``replace`` is given, and then emptied
in that same transaction.

The hub must be stopped while it runs (the command checks); the SQLite files are
only read.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from hub.config import AuthorizedClient
from hub.errors import StoreError
from hub.pb import synchub_pb2 as pb
from hub.store._local import oplog_path
from hub.store._peers import peer_store_path
from hub.store._pg_cluster import copy_clients
from hub.store._pg_db import Connection, connect, describe, migrate
from hub.store._pg_schema import SAVE_COUNTERS_SQL, SAVE_PEER_STATES_SQL
from hub.store._sqlite_schema import SCHEMA_VERSION as SQLITE_SCHEMA_VERSION
from hub.text import redacted_url

_COPY_OPERATIONS = (
    "COPY operations (id, flow_id, modno, original_instance_keyid, original_id, "
    "original_flow_id, repo_guid, plan_id, instance_id, peer_instance_id, snapshot_id, "
    "unix_time_start_ms, status, data) FROM STDIN"
)
# A file of oplog schema 1 (written before the peer had its own column) is read as
# its upgrade would make it: its instance_id was the authenticated peer's.
_PEER_COLUMN = {1: "instance_id", 2: "peer_instance_id"}
_SELECT_OPERATIONS = (
    "SELECT id, flow_id, modno, original_instance_keyid, original_id, original_flow_id, "
    "repo_guid, plan_id, instance_id, {peer}, snapshot_id, unix_time_start_ms, status, data "
    "FROM operations ORDER BY id"
)


@dataclass(frozen=True)
class StoreCopy:
    """What ``copy_to_postgres`` copied."""

    operations: int
    peer_states: int
    last_id: int
    last_modno: int
    target: str
    clients: int = 0


def copy_to_postgres(
    data_dir: Path, url: str, *, replace: bool = False,
    clients: Sequence[AuthorizedClient] = (),
) -> StoreCopy:
    """Copy the hub stores in ``data_dir`` into the PostgreSQL database at ``url``.

    StoreError (one line) when there is nothing to copy, a file is not a synchub
    store this code reads, the target is not empty (and ``replace`` is not
    given), or the database fails; nothing is written then.
    """
    shown = redacted_url(url)
    oplog, peers = oplog_path(data_dir), peer_store_path(data_dir)
    if not oplog.is_file() and not peers.is_file():
        raise StoreError(f"nothing to migrate: neither {oplog} nor {peers} exists")
    conn = connect(url)
    try:
        migrate(conn, shown)
        with conn.transaction():
            _claim_target(conn, shown, replace=replace)
            last_id, last_modno, operations = _copy_oplog(conn, oplog)
            peer_states = _copy_peer_states(conn, peers)
            copy_clients(conn, clients)
    except psycopg.Error as exc:
        raise StoreError(
            f"migrating into the PostgreSQL store {shown} failed, nothing was written: "
            f"{describe(exc)}"
        ) from exc
    finally:
        conn.close()
    return StoreCopy(operations, peer_states, last_id, last_modno, shown, len(clients))


def import_clients(url: str, clients: Sequence[AuthorizedClient]) -> int:
    """Add or replace ``clients`` in the database at ``url`` (``--clients-only``), all
    or nothing; running hubs on it apply them at once. How many."""
    shown = redacted_url(url)
    conn = connect(url)
    try:
        migrate(conn, shown)
        with conn.transaction():
            copy_clients(conn, clients)
    except psycopg.Error as exc:
        raise StoreError(
            f"importing authorized clients into the PostgreSQL store {shown} failed, nothing "
            f"was written: {describe(exc)}"
        ) from exc
    finally:
        conn.close()
    return len(clients)


def _claim_target(conn: Connection, shown: str, *, replace: bool) -> None:
    """Lock the target's counters; refuse it, or empty it, unless it holds nothing."""
    row = conn.execute("SELECT last_id, last_modno FROM counters FOR UPDATE").fetchone()
    held = conn.execute(
        "SELECT (SELECT count(*) FROM operations), (SELECT count(*) FROM peer_states)"
    ).fetchone()
    assert row is not None and held is not None
    if not any((*row, *held)):
        return
    if not replace:
        raise StoreError(
            f"the PostgreSQL store {shown} is not empty ({held[0]} operations, {held[1]} "
            f"peer states, last id {row[0]}): migrate into an empty database, or pass "
            "--replace to replace what it holds"
        )
    conn.execute(
        "TRUNCATE operations, local_deletions, peer_states, authorized_clients, sessions, "
        "invitations"
    )
    conn.execute(SAVE_COUNTERS_SQL, (0, 0))


@contextmanager
def _read_only(path: Path, what: str) -> Iterator[sqlite3.Connection]:
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=10.0)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open {path}: {exc}") from exc
    with closing(db):
        try:
            db.execute("BEGIN")  # one snapshot for every read
            yield db
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the {what} in {path}: {exc}") from exc


def _copy_oplog(conn: Connection, path: Path) -> tuple[int, int, int]:
    """Copy the oplog file's rows, tombstones and counters; (last id, last modno, rows)."""
    if not path.is_file():
        return 0, 0, 0
    with _read_only(path, "oplog") as db:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version not in _PEER_COLUMN:
            raise StoreError(
                f"{path} has oplog schema version {version}; this synchub migrates versions "
                f"1 to {SQLITE_SCHEMA_VERSION}: run the synchub that wrote it"
            )
        last_id, last_modno = db.execute("SELECT last_id, last_modno FROM counters").fetchone()
        copied = 0
        select = _SELECT_OPERATIONS.format(peer=_PEER_COLUMN[version])
        with conn.cursor().copy(_COPY_OPERATIONS) as copy:
            for row in db.execute(select):
                copy.write_row((*row[:13], _without_ids(row[13])))
                copied += 1
        tombstones = db.execute("SELECT id, modno FROM local_deletions").fetchall()
    if tombstones:
        conn.cursor().executemany(
            "INSERT INTO local_deletions (id, modno) VALUES (%s, %s)", tombstones
        )
    conn.execute(SAVE_COUNTERS_SQL, (last_id, last_modno))
    return int(last_id), int(last_modno), copied


def _without_ids(data: bytes) -> bytes:
    """A stored encoding as the PostgreSQL store keeps it: without id and flow id."""
    op = pb.Operation.FromString(data)
    op.ClearField("id")
    op.ClearField("flow_id")
    return op.SerializeToString()


def _copy_peer_states(conn: Connection, path: Path) -> int:
    if not path.is_file():
        return 0
    with _read_only(path, "peer states") as db:
        has_table = db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'peers'"
        ).fetchone()
        rows = db.execute("SELECT keyid, data FROM peers").fetchall() if has_table else []
    if rows:
        conn.execute(SAVE_PEER_STATES_SQL, ([k for k, _ in rows], [d for _, d in rows]))
    return len(rows)
