"""Storage: the store contracts, their SQLite implementations, and this node's own oplog file.

``OplogStore`` is the hub's oplog (what the OplogActor uses), ``LocalOplogStore``
a node's own oplog and change feed (what the client agent and local tools use),
``PeerStateStore`` the peer states (what the PeerStateActor uses); one contract
suite per protocol runs against every implementation (``tests/contract/``).
``SqliteOplogStore`` is the embedded oplog store, implementing both oplog
protocols; ``PeerStore`` keeps PeerState records. ``PostgresOplogStore`` and
``PostgresPeerStateStore`` keep a hub's in PostgreSQL (``[store] url``);
``hub_stores`` says which a hub uses. Several hubs on one PostgreSQL database share
the authorized clients (``AuthorizedClientStore``, ``PostgresClientStore``) and
record which hub holds each key's session (``SessionLeases``,
``PostgresSessionLeases``); ``ClusterNotices`` hears their changes. ``open_oplog`` /
``new_operation`` are what local tools (``synchub run``) use to record
operations (each write wakes the node's running agent: ``wake_agent``, the
socket ``wake_path``), and ``LocalLogs`` reads the job logs they write (``log_path``,
``logref_for``); ``read_peer_states`` is a read-only snapshot for the CLI. ``back_up``
(`synchub backup`) copies a data_dir's databases and identity online, and
``check_data_dir`` (`synchub check`) verifies one without changing it.

For the web side: ``OplogReader`` is a read-only view of the hub's oplog from other
threads (``SqliteOplogReader``), ``AlertStateStore`` the alerts' firing incidents
and delivery outbox (``SqliteAlertStore``, ``PostgresAlertStore`` on a shared store,
where ``AlertLeadership`` says which hub delivers; ``HubStores.read_alert_state`` for
the CLI).
``InvitationStore`` keeps the hub's invitations (``synchub invite``, joining):
``SqliteInvitationStore`` in data_dir, ``PostgresInvitationStore`` in the database
several hubs share (``HubStores.open_invitations`` picks).
"""

import importlib
from typing import TYPE_CHECKING, Any

from hub.store._alerts import (
    ALERT_STORE_FILENAME,
    SqliteAlertStore,
    alert_store_path,
    read_alert_state,
)
from hub.store._api import (
    AlertStateStore,
    LocalChanges,
    LocalOplogStore,
    NewDelivery,
    OperationQuery,
    OplogReader,
    OplogStore,
    OpMetadata,
    PeerStateStore,
    RemoteApplyResult,
    RetentionStore,
    RetireBatch,
    SerializedOperation,
    StoredDelivery,
    StoredIncident,
)
from hub.store._backup import MANIFEST_FILENAME as BACKUP_MANIFEST_FILENAME
from hub.store._backup import BackupResult, CopiedDatabase, back_up, backed_up_databases
from hub.store._checks import Finding, Level, check_data_dir
from hub.store._cluster_api import (
    AlertLeadership,
    AuthorizedClientStore,
    ClientsChanged,
    ClusterNotice,
    LiveSession,
    OplogCommitted,
    SessionClaimed,
    SessionLeases,
)
from hub.store._files import ensure_private_database
from hub.store._hub_stores import HubStores, hub_stores
from hub.store._invitations import (
    INVITATION_STORE_FILENAME,
    Invitation,
    InvitationStore,
    SqliteInvitationStore,
    invitation_store_path,
)
from hub.store._local import OPLOG_FILENAME, new_operation, now_ms, open_oplog, oplog_path
from hub.store._logs import LOGS_DIRNAME, LocalLogs, LogSlice, log_path, logref_for
from hub.store._peers import PEER_STORE_FILENAME, PeerStore, peer_store_path, read_peer_states
from hub.store._pg_schema import MIGRATIONS as POSTGRES_MIGRATIONS
from hub.store._pg_schema import SCHEMA_VERSION as POSTGRES_SCHEMA_VERSION
from hub.store._pg_schema import Migration as PostgresMigration
from hub.store._rules import requested_ids
from hub.store._sqlite import SqliteOplogStore
from hub.store._sqlite_reader import SqliteOplogReader, find_sql
from hub.store._sqlite_schema import INSERT_SQL, LOOKUP_QUERIES, SCHEMA_SQL, SCHEMA_VERSION
from hub.store._sync import (
    BUCKET_BITS,
    BUCKET_IDS,
    LAST_BUCKET,
    BucketDigest,
    BucketMap,
    Digests,
    SyncCursor,
    as_digests,
    bucket_ids,
    bucket_of,
    check_cursor,
    check_digest_selector,
    digest_pairs,
    leaf_hash,
    range_digest,
)
from hub.store._wake import (
    SUN_PATH_MAX,
    WAKE_FILENAME,
    WAKE_LOCK_FILENAME,
    fits_unix_address,
    wake_address,
    wake_agent,
    wake_lock_path,
    wake_mode,
    wake_path,
    wake_staging_path,
)

if TYPE_CHECKING:
    from hub.store._migrate import StoreCopy, copy_to_postgres, import_clients
    from hub.store._pg_alerts import PostgresAlertLeadership, PostgresAlertStore
    from hub.store._pg_cluster import ClusterNotices, PostgresClientStore, PostgresSessionLeases
    from hub.store._pg_db import migrate_postgres
    from hub.store._pg_invitations import PostgresInvitationStore
    from hub.store._pg_oplog import PostgresOplogStore
    from hub.store._pg_peers import PostgresPeerStateStore
    from hub.store._pg_reader import PostgresOplogReader

# What needs the PostgreSQL driver is imported when first used, so that commands
# that never touch PostgreSQL (``synchub run`` above all) do not pay for loading it.
_ON_FIRST_USE = {
    "PostgresOplogStore": "hub.store._pg_oplog",
    "PostgresPeerStateStore": "hub.store._pg_peers",
    "PostgresOplogReader": "hub.store._pg_reader",
    "ClusterNotices": "hub.store._pg_cluster",
    "PostgresClientStore": "hub.store._pg_cluster",
    "PostgresSessionLeases": "hub.store._pg_cluster",
    "PostgresInvitationStore": "hub.store._pg_invitations",
    "PostgresAlertStore": "hub.store._pg_alerts",
    "PostgresAlertLeadership": "hub.store._pg_alerts",
    "StoreCopy": "hub.store._migrate",
    "copy_to_postgres": "hub.store._migrate",
    "import_clients": "hub.store._migrate",
    "migrate_postgres": "hub.store._pg_db",
}


def __getattr__(name: str) -> Any:
    module = _ON_FIRST_USE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "ALERT_STORE_FILENAME",
    "BACKUP_MANIFEST_FILENAME",
    "BUCKET_BITS",
    "BUCKET_IDS",
    "INSERT_SQL",
    "INVITATION_STORE_FILENAME",
    "LAST_BUCKET",
    "LOGS_DIRNAME",
    "LOOKUP_QUERIES",
    "OPLOG_FILENAME",
    "PEER_STORE_FILENAME",
    "POSTGRES_MIGRATIONS",
    "POSTGRES_SCHEMA_VERSION",
    "SCHEMA_SQL",
    "SCHEMA_VERSION",
    "SUN_PATH_MAX",
    "WAKE_FILENAME",
    "WAKE_LOCK_FILENAME",
    "AlertLeadership",
    "AlertStateStore",
    "AuthorizedClientStore",
    "BackupResult",
    "BucketDigest",
    "BucketMap",
    "ClientsChanged",
    "ClusterNotice",
    "ClusterNotices",
    "CopiedDatabase",
    "Digests",
    "Finding",
    "HubStores",
    "Invitation",
    "InvitationStore",
    "Level",
    "LiveSession",
    "LocalChanges",
    "LocalLogs",
    "LocalOplogStore",
    "LogSlice",
    "NewDelivery",
    "OpMetadata",
    "OperationQuery",
    "OplogCommitted",
    "OplogReader",
    "OplogStore",
    "PeerStateStore",
    "PeerStore",
    "PostgresAlertLeadership",
    "PostgresAlertStore",
    "PostgresClientStore",
    "PostgresInvitationStore",
    "PostgresMigration",
    "PostgresOplogReader",
    "PostgresOplogStore",
    "PostgresPeerStateStore",
    "PostgresSessionLeases",
    "RemoteApplyResult",
    "RetentionStore",
    "RetireBatch",
    "SerializedOperation",
    "SessionClaimed",
    "SessionLeases",
    "SqliteAlertStore",
    "SqliteInvitationStore",
    "SqliteOplogReader",
    "SqliteOplogStore",
    "StoreCopy",
    "StoredDelivery",
    "StoredIncident",
    "SyncCursor",
    "alert_store_path",
    "as_digests",
    "back_up",
    "backed_up_databases",
    "bucket_ids",
    "bucket_of",
    "check_cursor",
    "check_data_dir",
    "check_digest_selector",
    "copy_to_postgres",
    "digest_pairs",
    "ensure_private_database",
    "find_sql",
    "fits_unix_address",
    "hub_stores",
    "import_clients",
    "invitation_store_path",
    "leaf_hash",
    "log_path",
    "logref_for",
    "migrate_postgres",
    "new_operation",
    "now_ms",
    "open_oplog",
    "oplog_path",
    "peer_store_path",
    "range_digest",
    "read_alert_state",
    "read_peer_states",
    "requested_ids",
    "wake_address",
    "wake_agent",
    "wake_lock_path",
    "wake_mode",
    "wake_path",
    "wake_staging_path",
]
