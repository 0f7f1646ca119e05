"""Storage: the oplog store contract and its SQLite implementation, peer states,
and this node's own oplog file.

``OplogStore`` is the contract every oplog store implements (one contract test
suite runs against each); ``SqliteOplogStore`` is the embedded default.
``PeerStore`` keeps PeerState records. ``open_oplog`` / ``new_operation`` are
what local tools (``synchub run``) use to record operations.
"""

from hub.store._api import (
    LocalChanges,
    OplogStore,
    OpMetadata,
    RemoteApplyResult,
    SerializedOperation,
)
from hub.store._files import ensure_private_database
from hub.store._local import OPLOG_FILENAME, new_operation, now_ms, open_oplog, oplog_path
from hub.store._peers import PEER_STORE_FILENAME, PeerStore, peer_store_path, read_peer_states
from hub.store._sqlite import (
    INSERT_SQL,
    LOOKUP_QUERIES,
    SCHEMA_SQL,
    SCHEMA_VERSION,
    SqliteOplogStore,
)

__all__ = [
    "INSERT_SQL",
    "LOOKUP_QUERIES",
    "OPLOG_FILENAME",
    "PEER_STORE_FILENAME",
    "SCHEMA_SQL",
    "SCHEMA_VERSION",
    "LocalChanges",
    "OpMetadata",
    "OplogStore",
    "PeerStore",
    "RemoteApplyResult",
    "SerializedOperation",
    "SqliteOplogStore",
    "ensure_private_database",
    "new_operation",
    "now_ms",
    "open_oplog",
    "oplog_path",
    "peer_store_path",
    "read_peer_states",
]
