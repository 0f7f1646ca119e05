"""Storage: the store contracts, their SQLite implementations, and this node's own oplog file.

``OplogStore`` is the hub's oplog (what the OplogActor uses), ``LocalOplogStore``
a node's own oplog and change feed (what the client agent and local tools use),
``PeerStateStore`` the peer states (what the PeerStateActor uses); one contract
suite per protocol runs against every implementation (``tests/contract/``).
``SqliteOplogStore`` is the embedded oplog store, implementing both oplog
protocols; ``PeerStore`` keeps PeerState records. ``open_oplog`` /
``new_operation`` are what local tools (``synchub run``) use to record
operations; ``read_peer_states`` is a read-only snapshot for the CLI.

For the web side: ``OplogReader`` is a read-only view of the hub's oplog from other
threads (``SqliteOplogReader``), ``AlertStateStore`` the alerts' firing incidents
and delivery outbox (``SqliteAlertStore``; ``read_alert_state`` for the CLI).
"""

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
    SerializedOperation,
    StoredDelivery,
    StoredIncident,
)
from hub.store._files import ensure_private_database
from hub.store._local import OPLOG_FILENAME, new_operation, now_ms, open_oplog, oplog_path
from hub.store._peers import PEER_STORE_FILENAME, PeerStore, peer_store_path, read_peer_states
from hub.store._sqlite import SqliteOplogStore
from hub.store._sqlite_reader import SqliteOplogReader, find_sql
from hub.store._sqlite_schema import INSERT_SQL, LOOKUP_QUERIES, SCHEMA_SQL, SCHEMA_VERSION

__all__ = [
    "ALERT_STORE_FILENAME",
    "INSERT_SQL",
    "LOOKUP_QUERIES",
    "OPLOG_FILENAME",
    "PEER_STORE_FILENAME",
    "SCHEMA_SQL",
    "SCHEMA_VERSION",
    "AlertStateStore",
    "LocalChanges",
    "LocalOplogStore",
    "NewDelivery",
    "OpMetadata",
    "OperationQuery",
    "OplogReader",
    "OplogStore",
    "PeerStateStore",
    "PeerStore",
    "RemoteApplyResult",
    "SerializedOperation",
    "SqliteAlertStore",
    "SqliteOplogReader",
    "SqliteOplogStore",
    "StoredDelivery",
    "StoredIncident",
    "alert_store_path",
    "ensure_private_database",
    "find_sql",
    "new_operation",
    "now_ms",
    "open_oplog",
    "oplog_path",
    "peer_store_path",
    "read_alert_state",
    "read_peer_states",
]
