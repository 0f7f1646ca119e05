"""`synchub backup DEST`: a consistent copy of a node's databases and identity, online.

Each SQLite database in data_dir (the oplog, the peer states, the alerts' state)
is copied with SQLite's online backup API in one step: the copy is the database
as one read transaction saw it, while the hub goes on writing beside it (WAL
readers never block writers). The copy is checked (``PRAGMA quick_check``) before
the next database is copied. The identity's two key files are copied byte for
byte, after they were read and checked like a starting node does. DEST must not
exist: it is created with mode 0700 (every file in it 0600), and removed again
when anything fails, so a backup is whole or absent. A store in PostgreSQL
(``[store] url``) is not copied: the result says so, and the operator backs it up
with ``pg_dump`` (docs/operations.md).

The copy is a data_dir: a hub started with ``data_dir`` pointing at it (or with
it moved into place) runs on it (docs/operations.md, "Backing up and restoring").
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from hub.errors import StoreError
from hub.identity import (
    CURVE_KEY_FILENAME,
    ED25519_KEY_FILENAME,
    identity_dir,
    load_identity,
)
from hub.store._alerts import ALERT_STORE_FILENAME
from hub.store._files import ensure_private_database
from hub.store._local import OPLOG_FILENAME
from hub.store._peers import PEER_STORE_FILENAME
from hub.text import redacted_url

MANIFEST_FILENAME: Final = "backup.json"
BUSY_TIMEOUT_SECONDS: Final = 30.0


@dataclass(frozen=True)
class CopiedDatabase:
    """One SQLite database as copied: its file name, size and what it holds."""

    name: str
    size_bytes: int
    schema_version: int
    rows: int
    """Operations for the oplog, peer records for the peer states, incidents for alerts."""


@dataclass(frozen=True)
class BackupResult:
    destination: Path
    keyid: str
    databases: tuple[CopiedDatabase, ...]
    postgresql: str | None
    """The PostgreSQL store (password hidden) that was not copied; None with SQLite."""


# What each database counts for the summary: table name per file.
_COUNTED: Final = {
    OPLOG_FILENAME: "operations",
    PEER_STORE_FILENAME: "peers",
    ALERT_STORE_FILENAME: "incidents",
}


def backed_up_databases(store_url: str | None) -> tuple[str, ...]:
    """The data_dir files a backup copies: the alerts' state always, the rest with SQLite."""
    if store_url is not None:
        return (ALERT_STORE_FILENAME,)
    return (OPLOG_FILENAME, PEER_STORE_FILENAME, ALERT_STORE_FILENAME)


def back_up(
    data_dir: Path,
    destination: Path,
    *,
    store_url: str | None = None,
    clock_ms: Callable[[], int],
    instance: str = "",
) -> BackupResult:
    """Copy ``data_dir``'s identity and SQLite databases into the new directory ``destination``.

    StoreError (or IdentityError) with one line, and no ``destination`` left
    behind, when anything fails.
    """
    if destination.exists() or destination.is_symlink():
        raise StoreError(f"{destination} already exists: give a directory that does not "
                         "exist yet (nothing was written)")
    if not destination.parent.is_dir():
        raise StoreError(f"{destination.parent} is not a directory: create it first")
    identity = load_identity(data_dir)
    try:
        destination.mkdir(mode=0o700)
    except OSError as exc:
        raise StoreError(f"cannot create {destination}: {exc.strerror or exc}") from exc
    try:
        _copy_identity(data_dir, destination)
        copied = tuple(
            _copy_database(data_dir / name, destination / name)
            for name in backed_up_databases(store_url)
            if (data_dir / name).is_file()
        )
        result = BackupResult(
            destination=destination,
            keyid=identity.signing.keyid,
            databases=copied,
            postgresql=redacted_url(store_url) if store_url is not None else None,
        )
        _write_private(destination / MANIFEST_FILENAME, _manifest(result, data_dir,
                                                                   clock_ms(), instance))
    except BaseException:
        shutil.rmtree(destination, ignore_errors=True)
        raise
    return result


def _write_private(path: Path, content: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy_identity(data_dir: Path, destination: Path) -> None:
    source = identity_dir(data_dir)
    target = identity_dir(destination)
    try:
        target.mkdir(mode=0o700)
        for name in (ED25519_KEY_FILENAME, CURVE_KEY_FILENAME):
            _write_private(target / name, (source / name).read_bytes())
    except OSError as exc:
        raise StoreError(f"cannot copy the identity into {target}: {exc.strerror or exc}") from exc


def _copy_database(source: Path, target: Path) -> CopiedDatabase:
    """One online backup step of the whole file, then a check of the copy."""
    try:
        src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True,
                              timeout=BUSY_TIMEOUT_SECONDS)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open {source} to back it up: {exc}") from exc
    try:
        ensure_private_database(target)
        dst = sqlite3.connect(target, timeout=BUSY_TIMEOUT_SECONDS)
        try:
            src.backup(dst)  # pages=-1: everything in one step, one consistent snapshot
            verdict = dst.execute("PRAGMA quick_check").fetchone()[0]
            if verdict != "ok":
                raise StoreError(f"the copy of {source} failed its check: {verdict}")
            version = int(dst.execute("PRAGMA user_version").fetchone()[0])
            table = _COUNTED.get(source.name)
            rows = _count(dst, table) if table else 0
        finally:
            dst.close()
    except sqlite3.Error as exc:
        raise StoreError(f"backing up {source} failed: {exc}") from exc
    finally:
        src.close()
    return CopiedDatabase(source.name, target.stat().st_size, version, rows)


def _count(db: sqlite3.Connection, table: str) -> int:
    present = db.execute(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).fetchone()[0]
    if not present:
        return 0
    return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608


def _manifest(result: BackupResult, source: Path, created_ms: int, instance: str) -> bytes:
    document = {
        "created_ms": created_ms,
        "instance": instance,
        "source_data_dir": str(source),
        "keyid": result.keyid,
        "databases": [
            {"file": db.name, "size_bytes": db.size_bytes, "schema_version": db.schema_version,
             "rows": db.rows}
            for db in result.databases
        ],
        "postgresql_not_copied": result.postgresql,
    }
    return (json.dumps(document, indent=2) + "\n").encode()
