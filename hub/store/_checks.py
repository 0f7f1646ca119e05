"""`synchub check`: what a data_dir holds, verified without starting anything.

``check_data_dir`` looks at a node's data_dir the way a starting hub would use it
and changes nothing in it: the directory itself (a directory, this user's, closed
to others), the identity (both key files present, private and well-formed, as
``load_identity`` reads them), and each SQLite database that exists (private,
opened read-only, ``PRAGMA quick_check``, a schema this synchub reads) or, with
``[store] url``, the PostgreSQL database (reachable, its schema version). Each
finding is one line; an ``error`` means the node would not start or would run on
damaged data, a ``warning`` that it would start but something deserves a look.
"""

from __future__ import annotations

import enum
import os
import sqlite3
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from hub.errors import SynchubError
from hub.identity import identity_dir, load_identity
from hub.store._alerts import ALERT_STORE_FILENAME
from hub.store._local import OPLOG_FILENAME
from hub.store._logs import LOGS_DIRNAME
from hub.store._peers import PEER_STORE_FILENAME, read_peer_states
from hub.store._sqlite_schema import MIGRATIONS, SCHEMA_VERSION
from hub.text import redacted_url


class Level(enum.Enum):
    OK = "ok"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True)
class Finding:
    subject: str
    level: Level
    message: str

    def line(self) -> str:
        return f"{self.level.value:<7} {self.subject}: {self.message}"


_TABLES: Final = {
    OPLOG_FILENAME: ("operations", "counters"),
    PEER_STORE_FILENAME: ("peers",),
    ALERT_STORE_FILENAME: ("incidents", "outbox"),
}


def check_data_dir(data_dir: Path, *, store_url: str | None = None) -> list[Finding]:
    """Every finding about ``data_dir`` (and the PostgreSQL store at ``store_url``)."""
    findings = [_directory(data_dir, "data_dir", required=True)]
    if findings[0].level is Level.ERROR:
        return findings
    findings.append(_identity(data_dir))
    names = [ALERT_STORE_FILENAME] if store_url else [OPLOG_FILENAME, PEER_STORE_FILENAME,
                                                      ALERT_STORE_FILENAME]
    findings.extend(_database(data_dir / name) for name in names)
    if store_url is not None:
        findings.append(_postgres(store_url))
    logs = data_dir / LOGS_DIRNAME
    if logs.exists():
        findings.append(_directory(logs, LOGS_DIRNAME, required=False))
    return findings


def _mode_problem(path: Path, info: os.stat_result, *, directory: bool) -> str | None:
    if info.st_uid != os.geteuid():
        return f"owned by uid {info.st_uid}, not by this user ({os.geteuid()})"
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        wanted = "700" if directory else "600"
        return f"open to group or others (mode {mode:04o}): run `chmod {wanted} {path}`"
    return None


def _directory(path: Path, subject: str, *, required: bool) -> Finding:
    try:
        info = path.stat()
    except FileNotFoundError:
        level = Level.ERROR if required else Level.OK
        return Finding(subject, level, f"{path} does not exist"
                       + (": run `synchub keygen` to create it" if required else ""))
    except OSError as exc:
        return Finding(subject, Level.ERROR, f"cannot read {path}: {exc.strerror or exc}")
    if not stat.S_ISDIR(info.st_mode):
        return Finding(subject, Level.ERROR, f"{path} is not a directory")
    problem = _mode_problem(path, info, directory=True)
    if problem:
        return Finding(subject, Level.WARNING, f"{path} is {problem}")
    return Finding(subject, Level.OK, f"{path}, private")


def _identity(data_dir: Path) -> Finding:
    try:
        identity = load_identity(data_dir)
    except SynchubError as exc:
        return Finding("identity", Level.ERROR, str(exc))
    directory = identity_dir(data_dir)
    problem = _mode_problem(directory, directory.stat(), directory=True)
    if problem:
        return Finding("identity", Level.WARNING, f"{directory} is {problem}")
    return Finding("identity", Level.OK, f"keyid {identity.signing.keyid}, key files private")


def _database(path: Path) -> Finding:
    name = path.name
    if not path.exists():
        return Finding(name, Level.OK, "not created yet (the hub creates it when it starts)")
    for part in (path, path.with_name(name + "-wal"), path.with_name(name + "-shm")):
        if not part.exists():
            continue
        problem = _mode_problem(part, part.stat(), directory=False)
        if problem:
            return Finding(name, Level.ERROR, f"{part} is {problem}")
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=10.0)
    except sqlite3.Error as exc:
        return Finding(name, Level.ERROR, f"cannot open {path} read-only: {exc}")
    try:
        verdict = str(db.execute("PRAGMA quick_check").fetchone()[0])
        if verdict != "ok":
            return Finding(name, Level.ERROR, f"{path} is damaged: {verdict}")
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE "
                                               "type = 'table'")}
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        return _schema_finding(path, tables, version, db)
    except sqlite3.Error as exc:
        return Finding(name, Level.ERROR, f"cannot read {path}: {exc}")
    finally:
        db.close()


def _schema_finding(path: Path, tables: set[str], version: int,
                    db: sqlite3.Connection) -> Finding:
    name = path.name
    missing = [t for t in _TABLES[name] if t not in tables]
    if missing and tables:
        return Finding(name, Level.ERROR, f"{path} is an SQLite database but not synchub's "
                       f"{name} (no table {missing[0]!r})")
    if not tables:
        return Finding(name, Level.OK, "quick_check ok, empty")
    if name == OPLOG_FILENAME:
        if version > SCHEMA_VERSION or not all(
                step in MIGRATIONS for step in range(version, SCHEMA_VERSION)):
            return Finding(name, Level.ERROR, f"{path} has schema version {version}; this "
                           f"synchub reads version {SCHEMA_VERSION}: upgrade synchub")
        count = int(db.execute("SELECT count(*) FROM operations").fetchone()[0])
        upgrade = (f", upgraded to version {SCHEMA_VERSION} at the next start"
                   if version < SCHEMA_VERSION else "")
        summary = f"{count:,} operations, schema version {version}{upgrade}"
    elif name == PEER_STORE_FILENAME:
        try:
            states = read_peer_states(path.parent)
        except SynchubError as exc:
            return Finding(name, Level.ERROR, str(exc))
        summary = f"{len(states):,} peer records, each readable"
    else:
        count = int(db.execute("SELECT count(*) FROM incidents").fetchone()[0])
        summary = f"{count:,} firing incidents"
    return Finding(name, Level.OK, f"quick_check ok, {summary}")


def _postgres(url: str) -> Finding:
    from hub.store._pg_db import connect, schema_version  # noqa: PLC0415 - driver on use
    from hub.store._pg_schema import SCHEMA_VERSION as PG_VERSION  # noqa: PLC0415

    shown = redacted_url(url)
    try:
        conn = connect(url)
    except SynchubError as exc:
        return Finding("postgresql", Level.ERROR, str(exc))
    try:
        version = schema_version(conn)
    except Exception as exc:  # any driver failure is this one finding
        return Finding("postgresql", Level.ERROR, f"{shown}: cannot read its schema: {exc}")
    finally:
        conn.close()
    if version > PG_VERSION:
        return Finding("postgresql", Level.ERROR, f"{shown} has schema version {version}; "
                       f"this synchub knows {PG_VERSION}: upgrade synchub")
    upgrade = f", upgraded to {PG_VERSION} at the next start" if version < PG_VERSION else ""
    return Finding("postgresql", Level.OK, f"{shown} reachable, schema version {version}"
                   f"{upgrade}")
