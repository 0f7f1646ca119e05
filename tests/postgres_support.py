"""Test databases on the machine's PostgreSQL server, each created for one test and dropped.

The server is reached over the local socket (/var/run/postgresql) as the current
user (scripts/test creates that role); ``SYNCHUB_TEST_POSTGRES`` names another
server's maintenance database instead. Where no server answers, the tests that
need one skip with the reason (``require_postgres``), never pass silently.
"""

from __future__ import annotations

import functools
import itertools
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
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


def terminate_connections(database: str) -> int:
    """End every other session on ``database``, as an administrator or a failover would."""
    with admin_connection() as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchall()
    return sum(1 for (done,) in rows if done)


def database_name(url: str) -> str:
    return url.split("?", 1)[0].rsplit("/", 1)[1]
