"""The store implementations every contract suite runs against.

Each store protocol has a table of implementations by name. A table entry is a
context manager that, given a fresh temporary folder, yields an opener: every
call opens another store on the same backing database (a test reopens it, or
opens a second connection, that way), and leaving the context drops the
database. The fixtures below are parametrized over the tables, so every contract
test runs once per implementation.

To run the suites against another implementation, write its context manager next
to the others and name it in each table of a protocol it implements. The
PostgreSQL ones create a database of their own for each test on the machine's
server (tests/postgres_support.py) and drop it afterwards; where no server
answers, their tests skip with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from contract_support import Backend, NodeOplogStore, S
from postgres_support import fresh_database

from hub.store import (
    AlertStateStore,
    InvitationStore,
    LocalOplogStore,
    OplogReader,
    OplogStore,
    PeerStateStore,
    PeerStore,
    PostgresAlertStore,
    PostgresInvitationStore,
    PostgresOplogReader,
    PostgresOplogStore,
    PostgresPeerStateStore,
    SqliteAlertStore,
    SqliteInvitationStore,
    SqliteOplogReader,
    SqliteOplogStore,
)

Implementation = Callable[[Path], AbstractContextManager[Callable[[], S]]]


@contextmanager
def sqlite_oplog(tmp_path: Path) -> Iterator[Callable[[], SqliteOplogStore]]:
    path = tmp_path / "oplog.sqlite"
    yield lambda: SqliteOplogStore(path)


@contextmanager
def sqlite_peer_states(tmp_path: Path) -> Iterator[Callable[[], PeerStore]]:
    yield lambda: PeerStore(tmp_path)


@contextmanager
def postgresql_oplog(_tmp_path: Path) -> Iterator[Callable[[], PostgresOplogStore]]:
    with fresh_database() as url:
        yield lambda: PostgresOplogStore(url)


@contextmanager
def postgresql_peer_states(_tmp_path: Path) -> Iterator[Callable[[], PostgresPeerStateStore]]:
    with fresh_database() as url:
        yield lambda: PostgresPeerStateStore(url)


@dataclass
class ReaderRig:
    """A hub's oplog store and readers of the same database (for the OplogReader contract)."""

    writer: OplogStore
    open_reader: Callable[[], OplogReader]


@contextmanager
def sqlite_reader(tmp_path: Path) -> Iterator[Callable[[], ReaderRig]]:
    path = tmp_path / "oplog.sqlite"
    yield lambda: ReaderRig(SqliteOplogStore(path), lambda: SqliteOplogReader(path))


@contextmanager
def postgresql_reader(_tmp_path: Path) -> Iterator[Callable[[], ReaderRig]]:
    with fresh_database() as url:
        yield lambda: ReaderRig(PostgresOplogStore(url), lambda: PostgresOplogReader(url))


@contextmanager
def sqlite_alert_state(tmp_path: Path) -> Iterator[Callable[[], SqliteAlertStore]]:
    yield lambda: SqliteAlertStore(tmp_path)


@contextmanager
def postgresql_alert_state(_tmp_path: Path) -> Iterator[Callable[[], PostgresAlertStore]]:
    with fresh_database() as url:
        yield lambda: PostgresAlertStore(url)


@contextmanager
def sqlite_invitations(tmp_path: Path) -> Iterator[Callable[[], SqliteInvitationStore]]:
    yield lambda: SqliteInvitationStore(tmp_path)


@contextmanager
def postgresql_invitations(_tmp_path: Path) -> Iterator[Callable[[], PostgresInvitationStore]]:
    with fresh_database() as url:
        yield lambda: PostgresInvitationStore(url)


OPLOG_STORES: dict[str, Implementation[OplogStore]] = {
    "sqlite": sqlite_oplog,
    "postgresql": postgresql_oplog,
}
LOCAL_OPLOG_STORES: dict[str, Implementation[LocalOplogStore]] = {
    "sqlite": sqlite_oplog,
}
PEER_STATE_STORES: dict[str, Implementation[PeerStateStore]] = {
    "sqlite": sqlite_peer_states,
    "postgresql": postgresql_peer_states,
}
OPLOG_READERS: dict[str, Callable[[Path], AbstractContextManager[Callable[[], ReaderRig]]]] = {
    "sqlite": sqlite_reader,
    "postgresql": postgresql_reader,
}
ALERT_STATE_STORES: dict[str, Implementation[AlertStateStore]] = {
    "sqlite": sqlite_alert_state,
    "postgresql": postgresql_alert_state,
}

INVITATION_STORES: dict[str, Implementation[InvitationStore]] = {
    "sqlite": sqlite_invitations,
    "postgresql": postgresql_invitations,
}


@contextmanager
def _backend(implementation: Implementation[S], tmp_path: Path) -> Iterator[Backend[S]]:
    with implementation(tmp_path) as opener:
        backend = Backend(opener)
        try:
            yield backend
        finally:
            backend.close_all()


@pytest.fixture(params=sorted(OPLOG_STORES))
def oplog_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend[OplogStore]]:
    with _backend(OPLOG_STORES[request.param], tmp_path) as backend:
        yield backend


@pytest.fixture
def oplog_store(oplog_backend: Backend[OplogStore]) -> OplogStore:
    """A hub's oplog store, empty."""
    return oplog_backend.open()


@pytest.fixture(params=sorted(LOCAL_OPLOG_STORES))
def local_backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Backend[LocalOplogStore]]:
    with _backend(LOCAL_OPLOG_STORES[request.param], tmp_path) as backend:
        yield backend


@pytest.fixture
def local_store(local_backend: Backend[LocalOplogStore]) -> LocalOplogStore:
    """A node's own oplog, empty."""
    return local_backend.open()


@pytest.fixture(params=sorted(OPLOG_STORES.keys() | LOCAL_OPLOG_STORES.keys()))
def any_oplog_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[OplogStore | LocalOplogStore]:
    """A store of either oplog protocol, empty: for the local writes and queries both share."""
    implementation = OPLOG_STORES.get(request.param) or LOCAL_OPLOG_STORES[request.param]
    with _backend(implementation, tmp_path) as backend:
        yield backend.open()


@pytest.fixture(params=sorted(OPLOG_STORES.keys() & LOCAL_OPLOG_STORES.keys()))
def node_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[NodeOplogStore]:
    """A store implementing both oplog protocols, empty: a node that is a hub and a client."""
    with _backend(OPLOG_STORES[request.param], tmp_path) as backend:
        store = backend.open()
        assert isinstance(store, NodeOplogStore)
        yield store


@pytest.fixture(params=sorted(PEER_STATE_STORES))
def peer_state_backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Backend[PeerStateStore]]:
    with _backend(PEER_STATE_STORES[request.param], tmp_path) as backend:
        yield backend


@pytest.fixture
def peer_state_store(peer_state_backend: Backend[PeerStateStore]) -> PeerStateStore:
    """A peer-state store, empty."""
    return peer_state_backend.open()


@pytest.fixture(params=sorted(OPLOG_READERS))
def reader_rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ReaderRig]:
    """An empty hub oplog and an opener of readers on it; everything closed afterwards."""
    with OPLOG_READERS[request.param](tmp_path) as opener:
        rig = opener()
        readers: list[OplogReader] = []

        def open_reader() -> OplogReader:
            reader = rig.open_reader()
            readers.append(reader)
            return reader

        try:
            yield ReaderRig(rig.writer, open_reader)
        finally:
            for reader in readers:
                reader.close()
            rig.writer.close()


@pytest.fixture(params=sorted(ALERT_STATE_STORES))
def alert_state_backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Backend[AlertStateStore]]:
    with _backend(ALERT_STATE_STORES[request.param], tmp_path) as backend:
        yield backend


@pytest.fixture(params=sorted(INVITATION_STORES))
def invitation_backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Backend[InvitationStore]]:
    """Opens invitation stores on one empty backing store (each its own connection)."""
    with _backend(INVITATION_STORES[request.param], tmp_path) as backend:
        yield backend
