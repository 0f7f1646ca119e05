"""What only the PostgreSQL store does: its migrations, refusing a newer schema or a
database that is not its own, committing before it answers, and reconnecting after
the pool loses its connections or the server restarts.

Each test has a database of its own on the machine's server (the restart tests a
server of their own); without one they skip with the reason. The behaviour both
stores share is in tests/contract/.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from contract_support import KEY_A, peer_state, remote_op
from postgres_support import (
    database_name,
    fresh_database,
    private_server,
    terminate_connections,
)

from hub.errors import StoreError, StoreUnavailable
from hub.pb import synchub_pb2 as pb
from hub.store import (
    POSTGRES_MIGRATIONS,
    POSTGRES_SCHEMA_VERSION,
    PostgresMigration,
    PostgresOplogStore,
    PostgresPeerStateStore,
    copy_to_postgres,
    migrate_postgres,
    oplog_path,
)
from synchub_testing import SQLITE_SCHEMA_V1


@pytest.fixture
def url() -> Iterator[str]:
    with fresh_database() as fresh:
        yield fresh


@pytest.fixture
def store(url: str) -> Iterator[PostgresOplogStore]:
    opened = PostgresOplogStore(url)
    try:
        yield opened
    finally:
        opened.close()


def sql(url: str, statement: str, *params: object) -> list[tuple[object, ...]]:
    """One statement on a connection of its own (a second client of the database)."""
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(statement.encode(), params or None)
        return cursor.fetchall() if cursor.description else []


# -- migrations -----------------------------------------------------------------------


def test_a_fresh_database_gets_every_migration_once(url: str) -> None:
    PostgresOplogStore(url).close()
    PostgresPeerStateStore(url).close()

    applied = sql(url, "SELECT version, name FROM synchub_migrations ORDER BY version")
    assert applied == [(m.version, m.name) for m in POSTGRES_MIGRATIONS]
    assert applied[-1][0] == POSTGRES_SCHEMA_VERSION
    tables = {row[0] for row in sql(
        url, "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
    )}
    assert {"operations", "counters", "local_deletions", "peer_states",
            "synchub_migrations"} <= tables


def test_migrations_apply_in_order_each_once_each_in_a_transaction(url: str) -> None:
    later = (
        *POSTGRES_MIGRATIONS,
        PostgresMigration(POSTGRES_SCHEMA_VERSION + 1, "notes",
                          "CREATE TABLE notes (n integer); INSERT INTO notes VALUES (1)"),
        PostgresMigration(POSTGRES_SCHEMA_VERSION + 2, "more notes",
                          "INSERT INTO notes VALUES (2)"),
    )
    assert migrate_postgres(url, later) == POSTGRES_SCHEMA_VERSION + 2
    assert migrate_postgres(url, later) == POSTGRES_SCHEMA_VERSION + 2
    assert sql(url, "SELECT n FROM notes ORDER BY n") == [(1,), (2,)]

    broken = (
        *later,
        PostgresMigration(POSTGRES_SCHEMA_VERSION + 3, "half done",
                          "INSERT INTO notes VALUES (3); SELECT 1 / 0"),
    )
    with pytest.raises(StoreError, match="migrating the schema failed: division by zero"):
        migrate_postgres(url, broken)
    assert sql(url, "SELECT max(version) FROM synchub_migrations") == [
        (POSTGRES_SCHEMA_VERSION + 2,)
    ]
    assert sql(url, "SELECT n FROM notes ORDER BY n") == [(1,), (2,)]


def test_a_version_1_database_gets_the_peer_column(url: str) -> None:
    assert migrate_postgres(url, POSTGRES_MIGRATIONS[:1]) == 1
    # What version 1 stored: a peer's operation with the authenticated instance written in.
    theirs = pb.Operation(modno=4, instance_id="web1", original_id=9, original_flow_id=9,
                          original_instance_keyid=KEY_A)
    sql(url, "INSERT INTO operations VALUES (1, 1, 4, %s, 9, 9, '', '', 'web1', '', 0, 0, %s)",
        KEY_A, theirs.SerializeToString())
    sql(url, "UPDATE counters SET last_id = 1")

    store = PostgresOplogStore(url)
    try:
        [migrated] = store.query(pb.OpSelector(peer_instance_id="web1"))
        assert (migrated.id, migrated.peer_instance_id) == (1, "web1")
        laptop = remote_op(10)
        laptop.instance_id = "laptop"
        (created,) = store.apply_remote(KEY_A, [laptop], [], peer_instance_id="web1").created
        assert (created.id, created.instance_id, created.peer_instance_id) == (2, "laptop", "web1")
        assert [op.instance_id for op in store.query(pb.OpSelector(peer_instance_id="web1"))] \
            == ["web1", "laptop"]
    finally:
        store.close()
    assert sql(url, "SELECT max(version) FROM synchub_migrations") == [(POSTGRES_SCHEMA_VERSION,)]


def test_a_version_1_sqlite_oplog_moves_with_its_peers_instance(
    url: str, tmp_path: Path
) -> None:
    theirs = pb.Operation(modno=4, instance_id="web1", original_id=9, original_flow_id=9,
                          original_instance_keyid=KEY_A, id=2, flow_id=2)
    with sqlite3.connect(oplog_path(tmp_path)) as db:
        db.executescript(SQLITE_SCHEMA_V1)
        db.execute("INSERT INTO operations VALUES (2, 2, 4, ?, 9, 9, '', '', 'web1', '', 0, 0, ?)",
                   (KEY_A, theirs.SerializeToString()))
        db.execute("PRAGMA user_version = 1")
    db.close()
    assert copy_to_postgres(tmp_path, url).operations == 1
    store = PostgresOplogStore(url)
    try:
        [moved] = store.query(pb.OpSelector(peer_instance_id="web1"))
        assert (moved.id, moved.instance_id, moved.peer_instance_id) == (2, "web1", "web1")
    finally:
        store.close()


def test_migrations_must_be_numbered_in_order(url: str) -> None:
    with pytest.raises(ValueError, match="numbered"):
        migrate_postgres(url, tuple(reversed((*POSTGRES_MIGRATIONS,
                                              PostgresMigration(9, "gap", "SELECT 1")))))


def test_a_newer_schema_is_refused_with_one_line(url: str) -> None:
    PostgresOplogStore(url).close()
    newer = POSTGRES_SCHEMA_VERSION + 5
    sql(url, "INSERT INTO synchub_migrations (version, name) VALUES (%s, 'from the future')",
        newer)

    for opener in (PostgresOplogStore, PostgresPeerStateStore):
        with pytest.raises(StoreError) as caught:
            opener(url)
        message = str(caught.value)
        assert "\n" not in message
        assert f"schema version {newer}, newer than this synchub knows" in message
        assert "upgrade synchub" in message


def test_a_database_with_someone_elses_tables_is_refused(url: str) -> None:
    sql(url, "CREATE TABLE operations (anything text)")
    with pytest.raises(StoreError, match="'operations' that synchub did not create"):
        PostgresOplogStore(url)
    assert sql(url, "SELECT to_regclass('counters') IS NULL") == [(True,)]


def test_an_unreachable_database_is_one_line_without_the_password() -> None:
    url = "postgresql://synchub:hunter2@127.0.0.1:1/synchub?connect_timeout=2"
    with pytest.raises(StoreUnavailable) as caught:
        PostgresOplogStore(url)
    message = str(caught.value)
    assert message.startswith(
        "cannot connect to the PostgreSQL store postgresql://synchub:***@127.0.0.1:1/synchub"
    )
    assert "\n" not in message and "hunter2" not in message


# -- acknowledged means committed -----------------------------------------------------


def test_a_batch_is_committed_when_apply_remote_returns(
    url: str, store: PostgresOplogStore
) -> None:
    result = store.apply_remote(KEY_A, [remote_op(1), remote_op(2, flow_id=1)], [])

    # Another client of the database sees exactly what was answered.
    rows = sql(url, "SELECT id, flow_id, original_id FROM operations ORDER BY id")
    assert rows == [(op.id, op.flow_id, op.original_id) for op in result.created]


def test_a_batch_whose_commit_fails_is_not_acknowledged(
    url: str, store: PostgresOplogStore
) -> None:
    # A check deferred to COMMIT: the batch passes every statement and fails only there.
    sql(url, """
        CREATE FUNCTION refuse_marked() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.snapshot_id = 'refused-at-commit' THEN
                RAISE EXCEPTION 'refused at commit';
            END IF;
            RETURN NULL;
        END $$;
        CREATE CONSTRAINT TRIGGER refuse_marked AFTER INSERT ON operations
            DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_marked();
    """)
    marked = remote_op(2)
    marked.snapshot_id = "refused-at-commit"

    with pytest.raises(StoreError, match="refused at commit"):
        store.apply_remote(KEY_A, [remote_op(1), marked], [])

    assert store.count() == 0
    (created,) = store.apply_remote(KEY_A, [remote_op(3)], []).created
    assert created.id == 1  # the failed batch took no ids


# -- reconnecting ---------------------------------------------------------------------


def test_the_store_reconnects_after_its_connections_are_terminated(
    url: str, store: PostgresOplogStore
) -> None:
    peers = PostgresPeerStateStore(url)
    try:
        store.apply_remote(KEY_A, [remote_op(1)], [])
        peers.save([peer_state()])
        assert terminate_connections(database_name(url)) >= 2

        (created,) = store.apply_remote(KEY_A, [remote_op(2)], []).created
        assert created.id == 2
        assert store.count() == 2
        assert set(peers.load_all()) == {peer_state().peer_keyid}
    finally:
        peers.close()


def test_the_store_survives_a_server_restart_and_says_when_it_is_down() -> None:
    with private_server() as server:
        store = PostgresOplogStore(server.url(), wait_seconds=1.0)
        try:
            store.apply_remote(KEY_A, [remote_op(1)], [])
            server.restart()
            (created,) = store.apply_remote(KEY_A, [remote_op(2)], []).created
            assert created.id == 2

            server.stop()
            with pytest.raises(StoreUnavailable, match=r"cannot be reached|no connection"):
                store.apply_remote(KEY_A, [remote_op(3)], [])
            server.start()
            # The pool retries with backoff (1 s, 2 s, 4 s...): back within the outage's length.
            assert [op.original_id for op in until_reachable(store)] == [1, 2]
            (later,) = store.apply_remote(KEY_A, [remote_op(3)], []).created
            assert later.id == 3
        finally:
            store.close()


def until_reachable(store: PostgresOplogStore, timeout: float = 30.0) -> list[pb.Operation]:
    """``store.query`` as soon as the store reaches its database again."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return store.query(pb.OpSelector())
        except StoreUnavailable:
            if time.monotonic() > deadline:
                raise


# -- what the rows hold ---------------------------------------------------------------


def test_rows_hold_the_encoding_without_id_and_flow_id(
    url: str, store: PostgresOplogStore
) -> None:
    (created,) = store.apply_remote(KEY_A, [remote_op(4, flow_id=4, message="m")], []).created
    ((op_id, flow_id, data),) = sql(url, "SELECT id, flow_id, data FROM operations")
    assert isinstance(data, bytes)
    raw = pb.Operation.FromString(data)
    assert (raw.id, raw.flow_id) == (0, 0)
    assert (op_id, flow_id) == (created.id, created.flow_id)
    raw.id, raw.flow_id = created.id, created.flow_id
    assert raw == created


def test_the_database_refuses_a_second_copy_of_a_peers_operation(
    url: str, store: PostgresOplogStore
) -> None:
    store.apply_remote(KEY_A, [remote_op(1)], [])
    with pytest.raises(psycopg.errors.UniqueViolation):
        sql(url, "INSERT INTO operations SELECT id + 100, flow_id, modno, "
                 "original_instance_keyid, original_id, original_flow_id, repo_guid, plan_id, "
                 "instance_id, snapshot_id, unix_time_start_ms, status, data FROM operations")
