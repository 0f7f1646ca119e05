"""The SQLite oplog's schema and every statement the store runs on it, in one place.

``SCHEMA_VERSION`` is kept in ``PRAGMA user_version``; a store upgrades a file of
an older version in place when it opens it (``MIGRATIONS``) and refuses a newer
one. The bench (``synchub bench ingest``) inserts with ``INSERT_SQL`` into this
schema for its baseline, and the tests check that every ``LOOKUP_QUERIES``
statement is an index search.
"""

from __future__ import annotations

from typing import Final

SCHEMA_VERSION: Final = 2

SCHEMA_SQL: Final = """
CREATE TABLE operations (
    id INTEGER PRIMARY KEY,
    flow_id INTEGER NOT NULL,
    modno INTEGER NOT NULL,
    original_instance_keyid TEXT NOT NULL,
    original_id INTEGER,
    original_flow_id INTEGER,
    repo_guid TEXT NOT NULL,
    plan_id TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    peer_instance_id TEXT NOT NULL,
    snapshot_id TEXT NOT NULL,
    unix_time_start_ms INTEGER NOT NULL,
    status INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE UNIQUE INDEX operations_by_original_id
    ON operations (original_instance_keyid, original_id);
CREATE INDEX operations_by_original_flow
    ON operations (original_instance_keyid, original_flow_id);
CREATE INDEX operations_by_repo_plan ON operations (repo_guid, plan_id);
CREATE INDEX operations_by_instance ON operations (instance_id);
CREATE INDEX operations_by_peer_instance ON operations (peer_instance_id);
CREATE INDEX operations_local_changes ON operations (original_instance_keyid, modno);
CREATE TABLE local_deletions (
    id INTEGER PRIMARY KEY,
    modno INTEGER NOT NULL
);
CREATE INDEX local_deletions_by_modno ON local_deletions (modno);
CREATE TABLE counters (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    last_id INTEGER NOT NULL,
    last_modno INTEGER NOT NULL
);
INSERT INTO counters (singleton, last_id, last_modno) VALUES (1, 0, 0);
"""

MIGRATIONS: Final[dict[int, tuple[str, ...]]] = {
    # 1 -> 2: instance_id is kept as the producer wrote it; the instance an operation
    # came from has its own column. Version 1 overwrote a peer's instance_id with the
    # authenticated one, so for its rows the two are the same; a node's own
    # operations record their own instance.
    1: (
        "ALTER TABLE operations ADD COLUMN peer_instance_id TEXT NOT NULL DEFAULT ''",
        "UPDATE operations SET peer_instance_id = instance_id",
        "CREATE INDEX operations_by_peer_instance ON operations (peer_instance_id)",
    ),
}
"""The statements that bring a file of version N to version N + 1."""

# Indexes for the readers (the API's status filter, each plan's last runs by the
# instance it came from). An index is not a format change: a store creates any that a
# file of its schema version lacks when it opens it (after its migrations), and an
# older synchub of the same version reads and maintains them.
READER_INDEXES_SQL: Final = (
    "CREATE INDEX IF NOT EXISTS operations_by_status ON operations (status)",
    "CREATE INDEX IF NOT EXISTS operations_by_peer_plan "
    "ON operations (peer_instance_id, plan_id)",
)

# What retention removed (hub.store._sqlite_retention), so a peer is not asked for it
# again. Not a format change either: created when a store opens a file without it; an
# older synchub of the same version ignores it (and then asks for retired operations
# again, which only brings them back).
RETIRED_TABLE_SQL: Final = (
    "CREATE TABLE IF NOT EXISTS retired (keyid TEXT NOT NULL, original_id INTEGER NOT NULL, "
    "modno INTEGER NOT NULL, repo_guid TEXT NOT NULL, plan_id TEXT NOT NULL, "
    "PRIMARY KEY (keyid, original_id)) WITHOUT ROWID"
)

# Local operations store NULL original ids: the UNIQUE (keyid, original_id) index
# admits any number of NULLs, and remote rows always have both set.
INSERT_SQL: Final = (
    "INSERT INTO operations (id, flow_id, modno, original_instance_keyid, original_id, "
    "original_flow_id, repo_guid, plan_id, instance_id, peer_instance_id, snapshot_id, "
    "unix_time_start_ms, status, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
UPDATE_SQL: Final = (
    "UPDATE operations SET flow_id = ?, modno = ?, original_instance_keyid = ?, "
    "original_id = ?, original_flow_id = ?, repo_guid = ?, plan_id = ?, instance_id = ?, "
    "peer_instance_id = ?, snapshot_id = ?, unix_time_start_ms = ?, status = ?, data = ? "
    "WHERE id = ?"
)

# Resumed sync (docs/protocol.md §6.8 (Resumed sync), ``_sqlite_sync``): the store's
# epoch, the cursors a hub records for its peers, and the cached bucket digests of
# selections (``owner`` is "" for this node's own, else the peer's key id). Like the
# reader indexes these are not a format change: a store creates what a file lacks
# when it opens it, and an older synchub leaves them alone. A hub's caches of its
# peers' selections are kept current by this version's writes only (docs/operations.md,
# "Resumed sync: cursors and digest caches": after an older hub wrote, clear them).
SYNC_TABLES_SQL: Final = (
    "CREATE TABLE IF NOT EXISTS sync_epoch (singleton INTEGER PRIMARY KEY "
    "CHECK (singleton = 1), epoch BLOB NOT NULL)",
    "INSERT OR IGNORE INTO sync_epoch (singleton, epoch) VALUES (1, randomblob(16))",
    "CREATE TABLE IF NOT EXISTS sync_cursors (keyid TEXT NOT NULL, selection TEXT NOT NULL, "
    "epoch BLOB NOT NULL, sequence INTEGER NOT NULL, PRIMARY KEY (keyid, selection))",
    "CREATE TABLE IF NOT EXISTS sync_digest_marks (owner TEXT NOT NULL, "
    "selection TEXT NOT NULL, mark INTEGER NOT NULL, PRIMARY KEY (owner, selection))",
    "CREATE TABLE IF NOT EXISTS sync_digests (owner TEXT NOT NULL, selection TEXT NOT NULL, "
    "bucket INTEGER NOT NULL, count INTEGER NOT NULL, digest INTEGER NOT NULL, "
    "PRIMARY KEY (owner, selection, bucket))",
    "CREATE TABLE IF NOT EXISTS sync_dirty (keyid TEXT NOT NULL, bucket INTEGER NOT NULL, "
    "PRIMARY KEY (keyid, bucket))",
)

READ_COUNTERS_SQL: Final = "SELECT last_id, last_modno FROM counters WHERE singleton = 1"
SAVE_COUNTERS_SQL: Final = "UPDATE counters SET last_id = ?, last_modno = ? WHERE singleton = 1"
TOMBSTONE_SQL: Final = "INSERT OR REPLACE INTO local_deletions (id, modno) VALUES (?, ?)"

# The hot-path lookups, with named parameters; lists travel as one JSON array
# parameter so each statement is prepared once whatever the batch size.
LOOKUP_QUERIES: Final[dict[str, str]] = {
    "highest_original_ids": (
        "SELECT (SELECT max(original_id) FROM operations "
        "WHERE original_instance_keyid = :keyid), "
        "(SELECT max(original_flow_id) FROM operations WHERE original_instance_keyid = :keyid)"
    ),
    "existing_by_original_id": (
        "SELECT original_id, id FROM operations "
        "WHERE original_instance_keyid = :keyid "
        "AND original_id IN (SELECT value FROM json_each(:ids))"
    ),
    "flow_by_original_flow_id": (
        "SELECT f.value, (SELECT o.flow_id FROM operations AS o "
        "WHERE o.original_instance_keyid = :keyid AND o.original_flow_id = f.value LIMIT 1) "
        "FROM json_each(:ids) AS f"
    ),
    "delete_by_original_id": (
        "DELETE FROM operations WHERE original_instance_keyid = :keyid "
        "AND original_id IN (SELECT value FROM json_each(:ids)) RETURNING id"
    ),
    "rows_by_id": (
        "SELECT id, flow_id, original_instance_keyid FROM operations "
        "WHERE id IN (SELECT value FROM json_each(:ids))"
    ),
    "delete_by_id": (
        "DELETE FROM operations WHERE id IN (SELECT value FROM json_each(:ids)) "
        "RETURNING id, original_instance_keyid, original_id"
    ),
    "local_changes_since": (
        "SELECT data FROM operations WHERE original_instance_keyid = '' AND modno > :modno "
        "ORDER BY modno LIMIT :limit"
    ),
    "local_deletions_since": (
        "SELECT id, modno FROM local_deletions WHERE modno > :modno ORDER BY modno LIMIT :limit"
    ),
}
