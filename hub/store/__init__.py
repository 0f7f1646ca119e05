"""Storage: the store contracts, their SQLite implementations, and this node's own oplog file.

``OplogStore`` is the hub's oplog (what the OplogActor uses), ``LocalOplogStore``
a node's own oplog and change feed (what the client agent and local tools use),
``PeerStateStore`` the peer states (what the PeerStateActor uses); one contract
suite per protocol runs against every implementation (``tests/contract/``).
``SqliteOplogStore`` is the embedded oplog store, implementing both oplog
protocols; ``PeerStore`` keeps PeerState records. ``open_oplog`` /
``new_operation`` are what local tools (``synchub run``) use to record
operations, and ``LocalLogs`` reads the job logs they write (``log_path``,
``logref_for``); ``read_peer_states`` is a read-only snapshot for the CLI.
"""

from hub.store._api import (
    LocalChanges,
    LocalOplogStore,
    OplogStore,
    OpMetadata,
    PeerStateStore,
    RemoteApplyResult,
    SerializedOperation,
)
from hub.store._files import ensure_private_database
from hub.store._local import OPLOG_FILENAME, new_operation, now_ms, open_oplog, oplog_path
from hub.store._logs import LOGS_DIRNAME, LocalLogs, LogSlice, log_path, logref_for
from hub.store._peers import PEER_STORE_FILENAME, PeerStore, peer_store_path, read_peer_states
from hub.store._sqlite import SqliteOplogStore
from hub.store._sqlite_schema import INSERT_SQL, LOOKUP_QUERIES, SCHEMA_SQL, SCHEMA_VERSION

__all__ = [
    "INSERT_SQL",
    "LOGS_DIRNAME",
    "LOOKUP_QUERIES",
    "OPLOG_FILENAME",
    "PEER_STORE_FILENAME",
    "SCHEMA_SQL",
    "SCHEMA_VERSION",
    "LocalChanges",
    "LocalLogs",
    "LocalOplogStore",
    "LogSlice",
    "OpMetadata",
    "OplogStore",
    "PeerStateStore",
    "PeerStore",
    "RemoteApplyResult",
    "SerializedOperation",
    "SqliteOplogStore",
    "ensure_private_database",
    "log_path",
    "logref_for",
    "new_operation",
    "now_ms",
    "open_oplog",
    "oplog_path",
    "peer_store_path",
    "read_peer_states",
]
