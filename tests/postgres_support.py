"""Test databases on the machine's PostgreSQL server, each created for one test and dropped.

The server is reached over the local socket (/var/run/postgresql) as the current
user (scripts/test creates that role); ``SYNCHUB_TEST_POSTGRES`` names another
server's maintenance database instead. Where no server answers, the tests that
need one skip with the reason (``require_postgres``), never pass silently.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

SOCKET_DIR = "/var/run/postgresql"
ADMIN_URL = os.environ.get("SYNCHUB_TEST_POSTGRES") or f"postgresql:///postgres?host={SOCKET_DIR}"

_numbers = itertools.count(1)


@functools.cache
def postgres_unavailable_reason() -> str | None:
    """Why no test database can be made here, or None when one can."""
    try:
        with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
            row = conn.execute(
                "SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user"
            ).fetchone()
    except psycopg.Error as exc:
        return f"no PostgreSQL server at {ADMIN_URL}: {' '.join(str(exc).split())}"
    if not row or not row[0]:
        return f"the PostgreSQL role at {ADMIN_URL} may not create databases"
    return None


def require_postgres() -> None:
    reason = postgres_unavailable_reason()
    if reason:
        pytest.skip(reason)


def database_url(name: str, **options: str) -> str:
    """The URL of database ``name`` on the test server (libpq query options appended)."""
    base, _, query = ADMIN_URL.partition("?")
    url = base.rsplit("/", 1)[0] + "/" + name
    params = [query] if query else []
    params.extend(f"{key}={quote(value, safe='')}" for key, value in options.items())
    return url + ("?" + "&".join(params) if params else "")


def admin_connection() -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5)


@contextmanager
def fresh_database(prefix: str = "synchub_test") -> Iterator[str]:
    """A new, empty database for one test: its URL; dropped on exit, connections and all."""
    require_postgres()
    name = f"{prefix}_{os.getpid()}_{next(_numbers)}_{uuid.uuid4().hex[:6]}"
    with admin_connection() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield database_url(name)
    finally:
        with admin_connection() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def terminate_connections(database: str, timeout: float = 10.0) -> int:
    """End every session on ``database``, as an administrator or a failover would, and
    wait until they are gone; the number ended."""
    with admin_connection() as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchall()
        deadline = time.monotonic() + timeout
        while conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (database,)
        ).fetchone() != (0,):
            if time.monotonic() > deadline:
                raise AssertionError(f"sessions on {database} outlived {timeout:g} s")
            time.sleep(0.01)
    return sum(1 for (done,) in rows if done)


def database_name(url: str) -> str:
    return url.split("?", 1)[0].rsplit("/", 1)[1]


# -- a private server, for tests that restart it ---------------------------------------


def _server_binaries() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return found[-1].parent if found else None


def private_server_unavailable_reason() -> str | None:
    if _server_binaries() is None:
        return "no PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root without a postgres user to run a private server as"
    return None


class PrivateServer:
    """A PostgreSQL server of this test's own, on a Unix socket in a temporary folder.

    Restarting or stopping it disturbs nobody else. As root it runs as the
    ``postgres`` user (PostgreSQL refuses root) and admits the current user by
    name over its socket only.
    """

    def __init__(self) -> None:
        bin_dir = _server_binaries()
        assert bin_dir is not None
        self._bin = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="shpg-", dir="/tmp"))
        self.data = self.root / "data"
        self.port = 55432
        self.user = pwd.getpwuid(os.geteuid()).pw_name
        self._as: list[str] = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        self._run("initdb", "-D", str(self.data), "--auth=trust", f"--username={self.user}",
                  "--no-sync", "-E", "UTF8")

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([*self._as, str(self._bin / tool), *args], check=True,
                       capture_output=True, timeout=60)

    def _ctl(self, action: str, *args: str) -> None:
        options = f"-k {self.root} -p {self.port} -c listen_addresses='' -c fsync=off"
        self._run("pg_ctl", action, "-D", str(self.data), "-w", "-t", "30", "-o", options,
                  "-l", str(self.root / "server.log"), *args)

    def start(self) -> None:
        self._ctl("start")

    def stop(self) -> None:
        self._ctl("stop", "-m", "fast")

    def restart(self) -> None:
        self._ctl("restart", "-m", "fast")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql:///{database}?host={self.root}&port={self.port}&user={self.user}"

    def close(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def private_server() -> Iterator[PrivateServer]:
    reason = private_server_unavailable_reason()
    if reason:
        pytest.skip(reason)
    server = PrivateServer()
    try:
        server.start()
        yield server
    finally:
        server.close()
