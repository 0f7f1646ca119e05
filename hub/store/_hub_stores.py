"""Which stores a hub keeps its oplog and peer states in: its config's ``[store] url``.

``hub_stores(config)`` answers for the hub process (``hub.server``, which builds
each actor's store in the actor's own thread from these factories), for the
commands that read a stopped hub's stores (``synchub ops`` / ``peers``), and
for ``synchub store migrate``. Without ``[store] url`` both stores are SQLite
files in data_dir (``oplog.sqlite``, ``peers.sqlite``); with one, both are
tables in that PostgreSQL database. The web side's readers of the oplog
(``open_reader``) follow the oplog, and so do the alerts' state
(``open_alert_state``), the invitations (``open_invitations``) and, on a shared
store, which hub delivers the alerts (``open_alert_leadership``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path

from hub.config import Config
from hub.pb import synchub_pb2 as pb
from hub.store._alerts import SqliteAlertStore, read_alert_state
from hub.store._api import (
    AlertStateStore,
    OplogReader,
    OplogStore,
    PeerStateStore,
    StoredDelivery,
    StoredIncident,
)
from hub.store._cluster_api import AlertLeadership, AuthorizedClientStore, SessionLeases
from hub.store._invitations import InvitationStore, SqliteInvitationStore
from hub.store._local import oplog_path
from hub.store._peers import PeerStore, read_peer_states
from hub.store._sqlite import SqliteOplogStore
from hub.store._sqlite_reader import SqliteOplogReader
from hub.text import redacted_url

# _LAZY: the PostgreSQL modules are imported where they are used, so that a
# process that never uses PostgreSQL never loads its driver.


@dataclass(frozen=True)
class HubStores:
    """A hub's oplog and peer-state stores: SQLite in ``data_dir``, or PostgreSQL at ``url``."""

    data_dir: Path
    url: str | None = None
    check_pages: bool = True
    origin: str = field(default_factory=lambda: f"synchub {secrets.token_hex(6)}")
    """This hub's name in the notices of what its oplog stores (PostgreSQL)."""

    @property
    def postgresql(self) -> bool:
        return self.url is not None

    def describe(self) -> str:
        """Where the stores are, for the log and ``synchub start`` (passwords hidden)."""
        if self.url is None:
            return f"SQLite in {self.data_dir}"
        return f"PostgreSQL {redacted_url(self.url)}"

    def check(self) -> None:
        """Check every store before anything starts: StoreUnavailable or StoreError, each
        one line naming the store and what is wrong, when one cannot be used.

        PostgreSQL: reach the database and bring its schema up to date. SQLite: open
        each file (created when absent) and read its header, schema version and every
        page's structure (``PRAGMA quick_check``; not with ``check_pages`` false), so a
        damaged file is refused here rather than failing later requests.
        """
        if self.url is not None:
            from hub.store._pg_db import migrate_postgres  # noqa: PLC0415 - see _LAZY

            migrate_postgres(self.url)
        else:
            SqliteOplogStore(oplog_path(self.data_dir), check=self.check_pages).close()
            PeerStore(self.data_dir, check=self.check_pages).close()
        SqliteAlertStore(self.data_dir, check=self.check_pages).close()

    def open_oplog(self) -> OplogStore:
        if self.url is None:
            return SqliteOplogStore(oplog_path(self.data_dir))
        from hub.store._pg_oplog import PostgresOplogStore  # noqa: PLC0415 - see _LAZY

        return PostgresOplogStore(self.url, origin=self.origin)

    def open_reader(self) -> OplogReader:
        """A read-only view of the oplog ``open_oplog`` opens (the store must exist)."""
        if self.url is None:
            return SqliteOplogReader(oplog_path(self.data_dir))
        from hub.store._pg_reader import PostgresOplogReader  # noqa: PLC0415 - see _LAZY

        return PostgresOplogReader(self.url)

    def open_alert_state(self) -> AlertStateStore:
        if self.url is None:
            return SqliteAlertStore(self.data_dir)
        from hub.store._pg_alerts import PostgresAlertStore  # noqa: PLC0415 - see _LAZY

        return PostgresAlertStore(self.url)

    def open_alert_leadership(self) -> AlertLeadership | None:
        """Which hub judges and delivers the alerts, or None for SQLite (this one)."""
        if self.url is None:
            return None
        from hub.store._pg_alerts import PostgresAlertLeadership  # noqa: PLC0415 - see _LAZY

        return PostgresAlertLeadership(self.url)

    def read_alert_state(self) -> tuple[list[StoredIncident], list[StoredDelivery]]:
        """The firing incidents and the undelivered events, for the CLI; creates nothing
        for SQLite."""
        if self.url is None:
            return read_alert_state(self.data_dir)
        store = self.open_alert_state()
        try:
            return store.active(), store.pending()
        finally:
            store.close()

    def open_invitations(self) -> InvitationStore:
        """The invitations: SQLite in data_dir, or rows in the database every hub shares."""
        if self.url is None:
            return SqliteInvitationStore(self.data_dir)
        from hub.store._pg_invitations import PostgresInvitationStore  # noqa: PLC0415 - see _LAZY

        return PostgresInvitationStore(self.url)

    def open_peer_states(self) -> PeerStateStore:
        if self.url is None:
            return PeerStore(self.data_dir)
        from hub.store._pg_peers import PostgresPeerStateStore  # noqa: PLC0415 - see _LAZY

        return PostgresPeerStateStore(self.url)

    # -- several hubs on one database (docs/cluster.md) -----------------------------------

    @property
    def shared(self) -> bool:
        """Whether other hubs may use these stores too: then the authorized clients and
        the session leases live in the database (PostgreSQL)."""
        return self.url is not None

    def open_clients(self) -> AuthorizedClientStore | None:
        """The authorized clients' rows, or None for SQLite (the config file holds them)."""
        if self.url is None:
            return None
        from hub.store._pg_cluster import PostgresClientStore  # noqa: PLC0415 - see _LAZY

        return PostgresClientStore(self.url)

    def open_leases(self, node: str, lease_seconds: float) -> SessionLeases | None:
        """Node ``node``'s view of the session leases, or None for SQLite (one hub)."""
        if self.url is None:
            return None
        from hub.store._pg_cluster import PostgresSessionLeases  # noqa: PLC0415 - see _LAZY

        return PostgresSessionLeases(self.url, node, lease_seconds=lease_seconds)

    def read_holders(self) -> dict[str, str]:
        """keyid -> the hub (node) holding its session, from the database; {} for SQLite."""
        leases = self.open_leases("", 0.0)
        if leases is None:
            return {}
        try:
            return leases.holders()
        finally:
            leases.close()

    def read_peer_states(self) -> list[pb.PeerState]:
        """Every stored PeerState, sorted by instance id then keyid; creates nothing for SQLite."""
        if self.url is None:
            return read_peer_states(self.data_dir)
        from hub.store._pg_peers import PostgresPeerStateStore  # noqa: PLC0415 - see _LAZY

        store = PostgresPeerStateStore(self.url)
        try:
            states = store.load_all().values()
        finally:
            store.close()
        return sorted(states, key=lambda s: (s.peer_instance_id, s.peer_keyid))


def hub_stores(config: Config) -> HubStores:
    return HubStores(config.data_dir, config.store.url, config.store.check_pages)
