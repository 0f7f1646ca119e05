"""A PostgreSQL store's database: connecting, the schema's migrations, a pool, errors.

``connect`` opens one connection with synchub's defaults and turns a failure into
one line naming the store (its URL with any password hidden). ``migrate`` brings
the schema to the version this code knows (``_pg_schema.MIGRATIONS``) or refuses
a newer one. ``PostgresDatabase`` is what a store holds: a small psycopg_pool
pool of autocommit connections, each checked before it is handed out, and
``errors`` / ``transaction`` that turn psycopg's errors into StoreError, or
StoreUnavailable when the database cannot be reached.

Reconnecting is the pool's: a connection the server closed (a restart, an
administrator's ``pg_terminate_backend``) is noticed when it is next handed out
and replaced, so the call after a failure finds a working connection once the
server is back. A call that fails is never retried here: whether its change was
committed is then for the caller to find out (a peer's next diff does).
"""

from __future__ import annotations

import logging
import select
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Final

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from hub.errors import StoreError, StoreUnavailable
from hub.store._pg_schema import (
    MIGRATION_LOCK_KEY,
    MIGRATIONS,
    MIGRATIONS_TABLE_SQL,
    TABLES,
    Migration,
)
from hub.text import one_line, redacted_url

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS: Final = 10
"""libpq's connect_timeout unless the URL sets one; also how long a call waits for
the pool to hand out a connection before it fails with StoreUnavailable."""

APPLICATION_NAME: Final = "synchub"

Connection = psycopg.Connection[tuple[Any, ...]]

# SQLSTATE classes and codes that mean "the server is not there (now)".
_UNAVAILABLE_CLASSES: Final = ("08",)
_UNAVAILABLE_CODES: Final = frozenset({"57P01", "57P02", "57P03"})


def connection_options(url: str, application_name: str = APPLICATION_NAME) -> dict[str, Any]:
    """psycopg's keyword arguments for ``url``: synchub's defaults where the URL sets none."""
    given = conninfo_to_dict(url)
    options: dict[str, Any] = {"autocommit": True}
    if "connect_timeout" not in given:
        options["connect_timeout"] = CONNECT_TIMEOUT_SECONDS
    if "application_name" not in given:
        options["application_name"] = application_name
    return options


def describe(exc: BaseException) -> str:
    """A psycopg error as one line."""
    return one_line(str(exc)) or type(exc).__name__


def unavailable(exc: psycopg.Error, conn: Connection | None = None) -> bool:
    """True when ``exc`` says the database cannot be reached, not that it refused something."""
    if isinstance(exc, psycopg.InterfaceError) or (conn is not None and conn.broken):
        return True
    code = exc.sqlstate or ""
    return code in _UNAVAILABLE_CODES or code.startswith(_UNAVAILABLE_CLASSES) or (
        not code and isinstance(exc, psycopg.OperationalError)
    )


def connect(url: str) -> Connection:
    """One autocommit connection to ``url``; StoreUnavailable (one line) when it fails."""
    try:
        return psycopg.connect(url, **connection_options(url))
    except psycopg.Error as exc:
        raise StoreUnavailable(
            f"cannot connect to the PostgreSQL store {redacted_url(url)}: {describe(exc)}"
        ) from exc


def schema_version(conn: Connection) -> int:
    """The newest migration applied; 0 for a database synchub never touched."""
    exists = conn.execute("SELECT to_regclass('synchub_migrations') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return 0
    row = conn.execute("SELECT coalesce(max(version), 0) FROM synchub_migrations").fetchone()
    return int(row[0]) if row else 0


def migrate(
    conn: Connection, shown: str, migrations: Sequence[Migration] = MIGRATIONS
) -> int:
    """Apply the ``migrations`` ``conn``'s database lacks, in order, each once, each in
    its own transaction; return the schema version now.

    StoreError when the schema is newer than the last of ``migrations``, when a
    migration fails (it is rolled back, and those before it stay applied), or
    when the database holds tables of the same names that synchub did not create.
    """
    if [m.version for m in migrations] != list(range(1, len(migrations) + 1)):
        raise ValueError("migrations must be numbered 1, 2, 3... in order")
    known = migrations[-1].version
    try:
        current = schema_version(conn)
        if current > known:
            raise _newer_schema(shown, current, known)
        for migration in migrations[current:]:
            _apply(conn, shown, migration, known)
        return schema_version(conn)
    except psycopg.Error as exc:
        raise _store_error(exc, conn, f"PostgreSQL store {shown}: migrating the schema") from exc


def migrate_postgres(url: str, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Connect to ``url`` and ``migrate`` it; the schema version now. One line on failure."""
    conn = connect(url)
    try:
        return migrate(conn, redacted_url(url), migrations)
    finally:
        conn.close()


def _apply(conn: Connection, shown: str, migration: Migration, known: int) -> None:
    with conn.transaction():
        # Hubs starting at once take turns; each re-reads the version under the lock.
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
        conn.execute(MIGRATIONS_TABLE_SQL)
        current = schema_version(conn)
        if current > known:
            raise _newer_schema(shown, current, known)
        if current >= migration.version:
            return
        if current == 0:
            _refuse_foreign_tables(conn, shown)
        log.info("PostgreSQL store %s: applying migration %d (%s)",
                 shown, migration.version, migration.name)
        conn.execute(migration.sql)
        conn.execute(
            "INSERT INTO synchub_migrations (version, name) VALUES (%s, %s)",
            (migration.version, migration.name),
        )


def _refuse_foreign_tables(conn: Connection, shown: str) -> None:
    for table in TABLES:
        found = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
        if found and found[0]:
            raise StoreError(
                f"PostgreSQL store {shown} already has a table {table!r} that synchub did "
                "not create: give synchub a database (or schema) of its own"
            )


def _newer_schema(shown: str, version: int, known: int) -> StoreError:
    return StoreError(
        f"PostgreSQL store {shown} has schema version {version}, newer than this synchub "
        f"knows ({known}): a newer synchub migrated it; upgrade synchub here too"
    )


def _store_error(exc: psycopg.Error, conn: Connection | None, what: str) -> StoreError:
    if unavailable(exc, conn):
        return StoreUnavailable(f"{what} failed: the database cannot be reached: {describe(exc)}")
    return StoreError(f"{what} failed: {describe(exc)}")


def _check_before_use(conn: Connection) -> None:
    """The pool's check: raise if ``conn`` is dead, without a round trip when it is idle.

    An idle connection receives nothing; a server that restarts or ends the
    session sends it a message or closes it, and its socket turns readable. Only
    then is a round trip spent to tell.
    """
    if conn.closed or conn.broken:
        raise psycopg.OperationalError("the connection is closed")
    readable, _, _ = select.select([conn.fileno()], [], [], 0)
    if readable:
        ConnectionPool.check_connection(conn)


class PostgresDatabase:
    """One store's way to its database: the schema migrated, a pool of connections."""

    def __init__(
        self, url: str, *, name: str, max_connections: int = 1,
        wait_seconds: float = CONNECT_TIMEOUT_SECONDS, application_name: str = APPLICATION_NAME,
    ) -> None:
        """``wait_seconds``: how long a call waits for a connection (the database being
        unreachable) before it fails with StoreUnavailable."""
        self.url = url
        self.shown = redacted_url(url)
        self._wait_seconds = wait_seconds
        migrate_postgres(url)
        self._pool: ConnectionPool[Connection] | None = ConnectionPool(
            url,
            kwargs=connection_options(url, application_name),
            min_size=1,
            max_size=max_connections,
            check=_check_before_use,
            timeout=wait_seconds,
            num_workers=1,
            name=f"synchub-{name}",
            open=False,
        )
        try:
            self._pool.open(wait=True, timeout=CONNECT_TIMEOUT_SECONDS)
        except PoolTimeout as exc:
            self.close()
            raise StoreUnavailable(
                f"cannot connect to the PostgreSQL store {self.shown}: no connection "
                f"within {CONNECT_TIMEOUT_SECONDS} s"
            ) from exc

    @contextmanager
    def connection(self, action: str) -> Iterator[Connection]:
        """A pooled connection for one call; errors as StoreError naming ``action``."""
        pool = self._pool
        if pool is None:
            raise StoreError(f"PostgreSQL store {self.shown} is closed")
        try:
            with pool.connection() as conn:
                try:
                    yield conn
                except psycopg.Error as exc:
                    raise _store_error(exc, conn, f"PostgreSQL store {self.shown}: {action}") \
                        from exc
        except PoolTimeout as exc:
            raise StoreUnavailable(
                f"PostgreSQL store {self.shown}: {action} failed: no connection to the "
                f"database within {self._wait_seconds:g} s (is the server up?)"
            ) from exc

    @contextmanager
    def transaction(self, action: str) -> Iterator[Connection]:
        """One transaction on a pooled connection: committed on success, else rolled back."""
        with self.connection(action) as conn, conn.transaction():
            yield conn

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()
