"""The PostgreSQL store's schema, as versioned migrations, and every statement it runs.

Migrations are applied in order, each once, each in its own transaction, by
``_pg_db.migrate``; ``synchub_migrations`` records which are in. A migration is
never edited once released: a change to the schema is a new one at the end of
``MIGRATIONS`` (the SQLite schema's additions arrive here the same way: the
``peer_instance_id`` column is migration 2).

The tables mirror the SQLite oplog's (``_sqlite_schema``) with three differences:

- ``data`` holds the operation's encoding with ``id`` and ``flow_id`` (fields 1
  and 10) cleared; the ``id`` and ``flow_id`` columns hold them and readers put
  them back (``decoded``). A batch is then stored by one statement in which the
  database assigns the ids, without a round trip to learn them first.
- A peer's batch is applied by the ``synchub_apply_remote`` function: the id and
  flow translation of docs/protocol.md §6.4 (`send_operations`), the same rules
  as ``_sqlite_remote``, in one call and one implicit transaction.
- No index for the local change feed: this store is the hub's oplog
  (``OplogStore``), not a node's own (``LocalOplogStore``).

Every writer locks the one ``counters`` row first. Writers are therefore
serialized, ids are handed out in commit order and never reused (a deleted
highest id stays taken), and what a writer reads after taking the lock includes
every earlier writer's commit, on any connection of any hub.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


MIGRATIONS_TABLE_SQL: Final = """
CREATE TABLE IF NOT EXISTS synchub_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""

# Any constant shared by every synchub: hubs starting at once migrate one at a time.
MIGRATION_LOCK_KEY: Final = 0x73796E6368756221

_OPERATIONS_SQL: Final = """
CREATE TABLE operations (
    id bigint PRIMARY KEY,
    flow_id bigint NOT NULL,
    modno bigint NOT NULL,
    original_instance_keyid text NOT NULL,
    original_id bigint,
    original_flow_id bigint,
    repo_guid text NOT NULL,
    plan_id text NOT NULL,
    instance_id text NOT NULL,
    snapshot_id text NOT NULL,
    unix_time_start_ms bigint NOT NULL,
    status integer NOT NULL,
    data bytea NOT NULL
);
COMMENT ON COLUMN operations.data IS
    'The Operation''s protobuf encoding with id and flow_id (fields 1 and 10) cleared: '
    'the id and flow_id columns hold them.';
-- Local operations have NULL original ids: the index admits any number of NULLs,
-- and two copies of one peer's operation can never both be stored.
CREATE UNIQUE INDEX operations_by_original_id
    ON operations (original_instance_keyid, original_id);
CREATE INDEX operations_by_original_flow
    ON operations (original_instance_keyid, original_flow_id);
CREATE INDEX operations_by_repo_plan ON operations (repo_guid, plan_id);
CREATE INDEX operations_by_instance ON operations (instance_id);
CREATE TABLE local_deletions (
    id bigint PRIMARY KEY,
    modno bigint NOT NULL
);
CREATE TABLE counters (
    singleton integer PRIMARY KEY CHECK (singleton = 1),
    last_id bigint NOT NULL,
    last_modno bigint NOT NULL
);
INSERT INTO counters (singleton, last_id, last_modno) VALUES (1, 0, 0);
CREATE TABLE peer_states (
    keyid text PRIMARY KEY,
    data bytea NOT NULL
);
"""

# One peer's batch: deletes first, then each operation (in batch order, one per
# peer id) updated in place when (keyid, original id) is held, else stored under
# the next id; its flow is that of a held operation with the same original flow
# id, else that of the first operation of the batch in that flow (the caller
# passes each one's position, p_flow_leaders, 1-based). When every id and flow is
# above the highest the peer sent before, as in an initial sync, nothing needs
# looking up: one INSERT stores the batch.
_APPLY_REMOTE_SQL: Final = r"""
CREATE FUNCTION synchub_apply_remote(
    p_keyid text,
    p_deleted bigint[],
    p_original_ids bigint[],
    p_original_flow_ids bigint[],
    p_flow_leaders integer[],
    p_modnos bigint[],
    p_repo_guids text[],
    p_plan_ids text[],
    p_instance_ids text[],
    p_snapshot_ids text[],
    p_starts bigint[],
    p_statuses integer[],
    p_data bytea[],
    OUT deleted_ids bigint[],
    OUT ids bigint[],
    OUT flow_ids bigint[],
    OUT fresh boolean[]
) LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
    v_count integer := coalesce(cardinality(p_original_ids), 0);
    v_last bigint;
    v_max_id bigint;
    v_max_flow bigint;
    v_new bigint;
BEGIN
    SELECT c.last_id INTO v_last FROM counters AS c WHERE c.singleton = 1 FOR UPDATE;
    WITH gone AS (
        DELETE FROM operations AS o
        WHERE o.original_instance_keyid = p_keyid AND o.original_id = ANY (p_deleted)
        RETURNING o.id
    )
    SELECT coalesce(array_agg(gone.id ORDER BY gone.id), '{}') INTO deleted_ids FROM gone;
    ids := '{}'; flow_ids := '{}'; fresh := '{}';
    IF v_count = 0 THEN
        RETURN;
    END IF;
    SELECT max(o.original_id) INTO v_max_id
        FROM operations AS o WHERE o.original_instance_keyid = p_keyid;
    SELECT max(o.original_flow_id) INTO v_max_flow
        FROM operations AS o WHERE o.original_instance_keyid = p_keyid;
    IF coalesce((SELECT min(x) FROM unnest(p_original_ids) AS x) > v_max_id, true)
       AND coalesce((SELECT min(x) FROM unnest(p_original_flow_ids) AS x) > v_max_flow, true)
    THEN
        ids := array(SELECT v_last + g FROM generate_series(1, v_count) AS g);
        flow_ids := array(SELECT v_last + l FROM unnest(p_flow_leaders) AS l);
        fresh := array_fill(true, ARRAY[v_count]);
        v_new := v_count;
    ELSE
        WITH batch AS (
            SELECT b.pos, b.oid, b.ofid, b.leader,
                   CASE WHEN b.oid <= v_max_id THEN
                       (SELECT o.id FROM operations AS o
                        WHERE o.original_instance_keyid = p_keyid AND o.original_id = b.oid)
                   END AS held,
                   CASE WHEN b.ofid <= v_max_flow THEN
                       (SELECT o.flow_id FROM operations AS o
                        WHERE o.original_instance_keyid = p_keyid
                          AND o.original_flow_id = b.ofid LIMIT 1)
                   END AS known_flow
            FROM unnest(p_original_ids, p_original_flow_ids, p_flow_leaders)
                 WITH ORDINALITY AS b(oid, ofid, leader, pos)
        ), numbered AS (
            SELECT batch.*,
                   coalesce(batch.held, v_last + row_number() OVER (
                       PARTITION BY batch.held IS NULL ORDER BY batch.pos)) AS local_id
            FROM batch
        )
        SELECT array_agg(n.local_id ORDER BY n.pos), array_agg(n.held IS NULL ORDER BY n.pos),
               array_agg(n.known_flow ORDER BY n.pos), count(*) FILTER (WHERE n.held IS NULL)
        INTO ids, fresh, flow_ids, v_new
        FROM numbered AS n;
        flow_ids := array(
            SELECT coalesce(f.known, ids[f.leader])
            FROM unnest(flow_ids, p_flow_leaders) WITH ORDINALITY AS f(known, leader, pos)
            ORDER BY f.pos
        );
    END IF;
    IF v_new > 0 THEN
        UPDATE counters SET last_id = v_last + v_new WHERE singleton = 1;
        INSERT INTO operations (id, flow_id, modno, original_instance_keyid, original_id,
            original_flow_id, repo_guid, plan_id, instance_id, snapshot_id,
            unix_time_start_ms, status, data)
        SELECT r.id, r.flow_id, r.modno, p_keyid, r.oid, r.ofid, r.repo_guid, r.plan_id,
               r.instance_id, r.snapshot_id, r.start_ms, r.status, r.data
        FROM unnest(ids, flow_ids, fresh, p_original_ids, p_original_flow_ids, p_modnos,
                    p_repo_guids, p_plan_ids, p_instance_ids, p_snapshot_ids, p_starts,
                    p_statuses, p_data)
             AS r(id, flow_id, is_new, oid, ofid, modno, repo_guid, plan_id, instance_id,
                  snapshot_id, start_ms, status, data)
        WHERE r.is_new;
    END IF;
    IF v_new < v_count THEN
        UPDATE operations AS o
        SET flow_id = r.flow_id, modno = r.modno, original_flow_id = r.ofid,
            repo_guid = r.repo_guid, plan_id = r.plan_id, instance_id = r.instance_id,
            snapshot_id = r.snapshot_id, unix_time_start_ms = r.start_ms,
            status = r.status, data = r.data
        FROM unnest(ids, flow_ids, fresh, p_original_flow_ids, p_modnos, p_repo_guids,
                    p_plan_ids, p_instance_ids, p_snapshot_ids, p_starts, p_statuses, p_data)
             AS r(id, flow_id, is_new, ofid, modno, repo_guid, plan_id, instance_id,
                  snapshot_id, start_ms, status, data)
        WHERE NOT r.is_new AND o.id = r.id;
    END IF;
END
$fn$
"""

def _apply_remote_v2() -> str:
    """Migration 1's ``synchub_apply_remote``, taking the batch's peer instance too and
    storing it in its own column (the operations keep the instance_id they were sent
    with). Derived from the released text so the two cannot drift apart."""
    text = _APPLY_REMOTE_SQL
    for old, new in (
        ("    p_keyid text,\n", "    p_keyid text,\n    p_peer_instance_id text,\n"),
        ("original_flow_id, repo_guid, plan_id, instance_id, snapshot_id,\n"
         "            unix_time_start_ms, status, data)",
         "original_flow_id, repo_guid, plan_id, instance_id, peer_instance_id, snapshot_id,\n"
         "            unix_time_start_ms, status, data)"),
        ("               r.instance_id, r.snapshot_id, r.start_ms, r.status, r.data\n",
         "               r.instance_id, p_peer_instance_id, r.snapshot_id, r.start_ms, r.status,\n"
         "               r.data\n"),
        ("repo_guid = r.repo_guid, plan_id = r.plan_id, instance_id = r.instance_id,\n",
         "repo_guid = r.repo_guid, plan_id = r.plan_id, instance_id = r.instance_id,\n"
         "            peer_instance_id = p_peer_instance_id,\n"),
    ):
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


# 2: instance_id is kept as the producer wrote it; the instance the peer
# authenticated as gets its own column. Migration 1's function stored the
# authenticated instance in instance_id, so for its rows the two are the same.
_PEER_INSTANCE_SQL: Final = (
    """
ALTER TABLE operations ADD COLUMN peer_instance_id text NOT NULL DEFAULT '';
UPDATE operations SET peer_instance_id = instance_id;
CREATE INDEX operations_by_peer_instance ON operations (peer_instance_id);
DROP FUNCTION synchub_apply_remote(text, bigint[], bigint[], bigint[], integer[], bigint[],
    text[], text[], text[], text[], bigint[], integer[], bytea[]);
"""
    + _apply_remote_v2()
)

# 3: the index of the web side's readers (the API's status filter, each plan's last
# runs by the instance it came from), as the SQLite store has them.
_READER_INDEXES_SQL: Final = """
CREATE INDEX IF NOT EXISTS operations_by_status ON operations (status);
CREATE INDEX IF NOT EXISTS operations_by_peer_plan ON operations (peer_instance_id, plan_id);
"""

# 4: resumed sync (docs/protocol.md §6.8 (Resumed sync), ``_pg_sync``): the cursors
# recorded for peers, the cached bucket digests of their selections, and the buckets a
# write touched since (marked by statement triggers, in the writer's transaction, so
# every writer of any hub keeps the caches honest). ``touched`` counts marks, so a
# cache refresh clears only the marks it read.
_SYNC_SQL: Final = """
CREATE TABLE sync_cursors (
    keyid text NOT NULL, selection text NOT NULL, epoch bytea NOT NULL,
    sequence bigint NOT NULL, PRIMARY KEY (keyid, selection)
);
CREATE TABLE sync_digest_marks (
    owner text NOT NULL, selection text NOT NULL, PRIMARY KEY (owner, selection)
);
CREATE TABLE sync_digests (
    owner text NOT NULL, selection text NOT NULL, bucket bigint NOT NULL,
    count bigint NOT NULL, digest bigint NOT NULL, PRIMARY KEY (owner, selection, bucket)
);
CREATE TABLE sync_dirty (
    keyid text NOT NULL, bucket bigint NOT NULL, touched bigint NOT NULL DEFAULT 1,
    PRIMARY KEY (keyid, bucket)
);
CREATE FUNCTION synchub_dirty_new() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO sync_dirty (keyid, bucket)
    SELECT DISTINCT original_instance_keyid, original_id >> 6 FROM new_rows
    WHERE original_instance_keyid <> ''
    ON CONFLICT (keyid, bucket) DO UPDATE SET touched = sync_dirty.touched + 1;
    RETURN NULL;
END $$;
CREATE FUNCTION synchub_dirty_old() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO sync_dirty (keyid, bucket)
    SELECT DISTINCT original_instance_keyid, original_id >> 6 FROM old_rows
    WHERE original_instance_keyid <> ''
    ON CONFLICT (keyid, bucket) DO UPDATE SET touched = sync_dirty.touched + 1;
    RETURN NULL;
END $$;
CREATE FUNCTION synchub_dirty_both() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO sync_dirty (keyid, bucket)
    SELECT original_instance_keyid, original_id >> 6 FROM old_rows
    WHERE original_instance_keyid <> ''
    UNION SELECT original_instance_keyid, original_id >> 6 FROM new_rows
    WHERE original_instance_keyid <> ''
    ON CONFLICT (keyid, bucket) DO UPDATE SET touched = sync_dirty.touched + 1;
    RETURN NULL;
END $$;
CREATE TRIGGER operations_sync_dirty_insert AFTER INSERT ON operations
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION synchub_dirty_new();
CREATE TRIGGER operations_sync_dirty_delete AFTER DELETE ON operations
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION synchub_dirty_old();
CREATE TRIGGER operations_sync_dirty_update AFTER UPDATE ON operations
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION synchub_dirty_both();
"""

# 5: several hubs on one database. Who may connect (rows changed by `synchub authorize`
# / `revoke` on any hub), and which hub holds each key's one live session, under a
# lease its hub renews (docs/cluster.md). Changes are announced on the channels
# CLIENTS_CHANNEL and SESSIONS_CHANNEL.
_CLUSTER_SQL: Final = """
CREATE TABLE authorized_clients (
    keyid text PRIMARY KEY,
    instance_id text NOT NULL,
    keyid_verified boolean NOT NULL,
    permissions jsonb NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE sessions (
    keyid text PRIMARY KEY,
    node text NOT NULL,
    session_id text NOT NULL,
    instance_id text NOT NULL,
    connected_at timestamptz NOT NULL DEFAULT now(),
    lease_until timestamptz NOT NULL
);
CREATE INDEX sessions_by_node ON sessions (node);
CREATE INDEX sessions_by_lease ON sessions (lease_until);
"""

# 6: invitations in the database several hubs share, so a token made on one hub is
# redeemed on any, and a use is taken once across them (docs/cluster.md). The columns
# are the SQLite store's (``_invitations``); ``joined`` is a JSON array of key ids.
_INVITATIONS_SQL: Final = """
CREATE TABLE invitations (
    id text PRIMARY KEY,
    instance_id text NOT NULL,
    permissions text NOT NULL,
    verifier bytea NOT NULL,
    created_ms bigint NOT NULL,
    expires_ms bigint NOT NULL,
    uses integer NOT NULL,
    uses_left integer NOT NULL,
    revoked boolean NOT NULL DEFAULT false,
    joined jsonb NOT NULL DEFAULT '[]',
    finished_ms bigint
);
"""

# 7: the alerts' firing incidents and delivery outbox, shared by every hub: one hub
# (the holder of TRY_LEAD_SQL's advisory lock) judges and delivers them, and a hub that takes over
# finds what the last one recorded (docs/cluster.md). As ``_alerts``'s SQLite tables.
_ALERTS_SQL: Final = """
CREATE TABLE alert_incidents (
    alert text NOT NULL,
    key text NOT NULL,
    fired_ms bigint NOT NULL,
    event text NOT NULL,
    PRIMARY KEY (alert, key)
);
CREATE TABLE alert_outbox (
    id bigserial PRIMARY KEY,
    alert text NOT NULL,
    target text NOT NULL,
    event text NOT NULL
);
"""

# 8: every hub follows the others' writes (docs/cluster.md): each statement that
# stores operations announces the ids it wrote on OPLOG_CHANNEL, delivered at commit,
# as runs of consecutive ids ("FIRST-LAST,FIRST-LAST,... WRITER"; WRITER is the
# writing connection's application_name, so a hub knows its own), split over several
# notices when long; readers fetch them by the primary key.
_OPLOG_NOTICES_SQL: Final = """
CREATE FUNCTION synchub_oplog_notice() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    writer text := current_setting('application_name');
    ranges text := '';
    run record;
BEGIN
    FOR run IN
        SELECT min(id) AS first_id, max(id) AS last_id
        FROM (SELECT id, id - row_number() OVER (ORDER BY id) AS island FROM new_rows) AS r
        GROUP BY island ORDER BY 1
    LOOP
        IF length(ranges) > 7000 THEN
            PERFORM pg_notify('synchub_oplog', ranges || ' ' || writer);
            ranges := '';
        END IF;
        ranges := ranges || CASE WHEN ranges = '' THEN '' ELSE ',' END
            || run.first_id || '-' || run.last_id;
    END LOOP;
    IF ranges <> '' THEN
        PERFORM pg_notify('synchub_oplog', ranges || ' ' || writer);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER operations_notice_insert AFTER INSERT ON operations
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION synchub_oplog_notice();
CREATE TRIGGER operations_notice_update AFTER UPDATE ON operations
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION synchub_oplog_notice();
"""

MIGRATIONS: Final[tuple[Migration, ...]] = (
    Migration(1, "oplog, peer states, counters", _OPERATIONS_SQL + _APPLY_REMOTE_SQL),
    Migration(2, "the peer an operation came from, beside its instance_id", _PEER_INSTANCE_SQL),
    Migration(3, "indexes for the web side's readers", _READER_INDEXES_SQL),
    Migration(4, "resumed sync: cursors and selection digests", _SYNC_SQL),
    Migration(5, "authorized clients and session leases, for several hubs", _CLUSTER_SQL),
    Migration(6, "invitations, shared by every hub", _INVITATIONS_SQL),
    Migration(7, "alert incidents and their delivery outbox, shared by every hub", _ALERTS_SQL),
    Migration(8, "notices of the ids each statement stored, for every hub's fleet",
              _OPLOG_NOTICES_SQL),
)
SCHEMA_VERSION: Final = MIGRATIONS[-1].version

TABLES: Final = (
    "operations", "local_deletions", "counters", "peer_states",
    "sync_cursors", "sync_digest_marks", "sync_digests", "sync_dirty",
    "authorized_clients", "sessions", "invitations", "alert_incidents", "alert_outbox",
)
"""The tables the migrations create; ``synchub store migrate --replace`` empties them."""

# -- statements ----------------------------------------------------------------------

APPLY_REMOTE_SQL: Final = (
    # %b: binary parameters, so no array element is quoted or escaped.
    "SELECT deleted_ids, ids, flow_ids, fresh FROM synchub_apply_remote("
    "%b::text, %b::text, %b::bigint[], %b::bigint[], %b::bigint[], %b::integer[], "
    "%b::bigint[], %b::text[], %b::text[], %b::text[], %b::text[], %b::bigint[], "
    "%b::integer[], %b::bytea[])"
)

LOCK_COUNTERS_SQL: Final = (
    "SELECT last_id, last_modno FROM counters WHERE singleton = 1 FOR UPDATE"
)
SAVE_COUNTERS_SQL: Final = (
    "UPDATE counters SET last_id = %s, last_modno = %s WHERE singleton = 1"
)

_COLUMNS: Final = (
    "id, flow_id, modno, original_instance_keyid, original_id, original_flow_id, repo_guid, "
    "plan_id, instance_id, peer_instance_id, snapshot_id, unix_time_start_ms, status, data"
)
_UNNEST_ROWS: Final = (
    "unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::text[], %s::bigint[], "
    "%s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], "
    "%s::bigint[], %s::integer[], %s::bytea[])"
)
INSERT_ROWS_SQL: Final = (
    f"INSERT INTO operations ({_COLUMNS}) SELECT * FROM {_UNNEST_ROWS}"  # noqa: S608
)
"""Rows given column by column, one array a column (the order of ``_COLUMNS``)."""

UPDATE_ROWS_SQL: Final = (
    "UPDATE operations AS o SET flow_id = r.flow_id, modno = r.modno, "  # noqa: S608
    "original_instance_keyid = r.keyid, original_id = r.original_id, "
    "original_flow_id = r.original_flow_id, repo_guid = r.repo_guid, plan_id = r.plan_id, "
    "instance_id = r.instance_id, peer_instance_id = r.peer_instance_id, "
    "snapshot_id = r.snapshot_id, unix_time_start_ms = r.start_ms, status = r.status, "
    "data = r.data "
    f"FROM {_UNNEST_ROWS} AS r(id, flow_id, modno, keyid, original_id, original_flow_id, "
    "repo_guid, plan_id, instance_id, peer_instance_id, snapshot_id, start_ms, status, data) "
    "WHERE o.id = r.id"
)

OWNERS_SQL: Final = (
    "SELECT id, flow_id, original_instance_keyid FROM operations WHERE id = ANY (%s::bigint[])"
)
DELETE_BY_ID_SQL: Final = (
    "DELETE FROM operations WHERE id = ANY (%s::bigint[]) RETURNING id, original_instance_keyid"
)
TOMBSTONES_SQL: Final = (
    "INSERT INTO local_deletions (id, modno) SELECT * FROM unnest(%s::bigint[], %s::bigint[]) "
    "ON CONFLICT (id) DO UPDATE SET modno = EXCLUDED.modno"
)

SAVE_PEER_STATES_SQL: Final = (
    "INSERT INTO peer_states (keyid, data) SELECT * FROM unnest(%s::text[], %s::bytea[]) "
    "ON CONFLICT (keyid) DO UPDATE SET data = EXCLUDED.data"
)
LOAD_PEER_STATES_SQL: Final = "SELECT keyid, data FROM peer_states"

HANDED_OUT_PEER_SQL: Final = (
    "CASE WHEN original_instance_keyid = '' THEN '' ELSE peer_instance_id END"
)
"""A peer's operations are handed out with the instance they came from; a node's own
keep exactly their stored bytes (the column still selects them by instance)."""

# -- several hubs (migration 5) --------------------------------------------------------

CLIENTS_CHANNEL: Final = "synchub_clients"
"""NOTIFY channel: an authorized client was added, changed or removed (payload: keyid)."""
SESSIONS_CHANNEL: Final = "synchub_sessions"
"""NOTIFY channel: a hub took a key's session (payload: JSON keyid, node, session)."""
OPLOG_CHANNEL: Final = "synchub_oplog"
"""NOTIFY channel (migration 8): a statement stored operations with these ids
(payload: ``FIRST-LAST,FIRST-LAST,... WRITER``)."""

LOAD_CLIENTS_SQL: Final = (
    "SELECT keyid, instance_id, keyid_verified, permissions FROM authorized_clients "
    "ORDER BY changed_at, keyid"
)
PUT_CLIENT_SQL: Final = (
    "INSERT INTO authorized_clients (keyid, instance_id, keyid_verified, permissions) "
    "VALUES (%s, %s, %s, %s) ON CONFLICT (keyid) DO UPDATE SET "
    "instance_id = EXCLUDED.instance_id, keyid_verified = EXCLUDED.keyid_verified, "
    "permissions = EXCLUDED.permissions, changed_at = now()"
)
DELETE_CLIENT_SQL: Final = "DELETE FROM authorized_clients WHERE keyid = %s RETURNING keyid"
SET_VERIFIED_SQL: Final = (
    "UPDATE authorized_clients SET keyid_verified = %s, changed_at = now() "
    "WHERE keyid = %s RETURNING keyid"
)
NOTIFY_SQL: Final = "SELECT pg_notify(%s, %s)"

CLAIM_SESSION_SQL: Final = (
    "INSERT INTO sessions (keyid, node, session_id, instance_id, lease_until) "
    "VALUES (%s, %s, %s, %s, now() + make_interval(secs => %s)) "
    "ON CONFLICT (keyid) DO UPDATE SET node = EXCLUDED.node, "
    "session_id = EXCLUDED.session_id, instance_id = EXCLUDED.instance_id, "
    "connected_at = now(), lease_until = EXCLUDED.lease_until"
)
RELEASE_SESSION_SQL: Final = (
    "DELETE FROM sessions WHERE keyid = %s AND node = %s AND session_id = %s RETURNING keyid"
)
# Every live session of this node, its lease extended; a row another hub holds now is
# left alone (and not returned: that session was displaced), a missing row is put back.
RENEW_SESSIONS_SQL: Final = (
    "INSERT INTO sessions AS s (keyid, node, session_id, instance_id, lease_until) "
    "SELECT k, %s, sid, inst, now() + make_interval(secs => %s) "
    "FROM unnest(%s::text[], %s::text[], %s::text[]) AS r(k, sid, inst) "
    "ON CONFLICT (keyid) DO UPDATE SET lease_until = EXCLUDED.lease_until "
    "WHERE s.node = EXCLUDED.node AND s.session_id = EXCLUDED.session_id "
    "RETURNING s.keyid"
)
RESET_NODE_SQL: Final = (
    "DELETE FROM sessions WHERE lease_until < now() OR node = %s "
    "RETURNING keyid, node"
)
EXPIRE_OTHERS_SQL: Final = (
    "DELETE FROM sessions WHERE lease_until < now() AND node <> %s RETURNING keyid, node"
)
LOCK_PEER_STATES_SQL: Final = (
    "SELECT keyid, data FROM peer_states WHERE keyid = ANY (%s::text[]) FOR UPDATE"
)
HOLDERS_SQL: Final = "SELECT keyid, node FROM sessions"

# -- invitations (migration 6) ----------------------------------------------------------

_INVITATION_COLUMNS: Final = (
    "id, instance_id, permissions, verifier, created_ms, expires_ms, uses, uses_left, "
    "revoked, joined"
)
DROP_FINISHED_INVITATIONS_SQL: Final = (
    "DELETE FROM invitations WHERE finished_ms IS NOT NULL AND finished_ms < %s "
    "OR expires_ms < %s"
)
INSERT_INVITATION_SQL: Final = (
    f"INSERT INTO invitations ({_INVITATION_COLUMNS}) "  # noqa: S608
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
GET_INVITATION_SQL: Final = (
    f"SELECT {_INVITATION_COLUMNS} FROM invitations WHERE id = %s"  # noqa: S608
)
ALL_INVITATIONS_SQL: Final = (
    f"SELECT {_INVITATION_COLUMNS} FROM invitations ORDER BY created_ms, id"  # noqa: S608
)
REVOKE_INVITATION_SQL: Final = (
    "UPDATE invitations SET revoked = true, finished_ms = %s "
    "WHERE id = %s AND NOT revoked RETURNING id"
)
USE_INVITATION_SQL: Final = (
    # One statement: the row lock makes concurrent users of the last use wait, and the
    # one that follows re-checks the WHERE on the committed row (READ COMMITTED), so it
    # finds no use left.
    "UPDATE invitations SET uses_left = uses_left - 1, "  # noqa: S608
    "joined = joined || jsonb_build_array(%s::text), "
    "finished_ms = CASE WHEN uses_left = 1 THEN %s ELSE finished_ms END "
    "WHERE id = %s AND NOT revoked AND uses_left > 0 AND expires_ms > %s "
    f"RETURNING {_INVITATION_COLUMNS}"
)

# -- the alerts (migration 7) -----------------------------------------------------------

TRY_LEAD_SQL: Final = (
    "SELECT pg_try_advisory_lock(hashtextextended('synchub-alerts/' || current_schema(), 0))"
)
"""The advisory lock the hub that judges and delivers the alerts holds (session level),
one per schema, so clusters in two schemas of one database do not share it."""
GIVE_UP_LEAD_SQL: Final = (
    "SELECT pg_advisory_unlock(hashtextextended('synchub-alerts/' || current_schema(), 0))"
)
"""Let TRY_LEAD_SQL's lock go at once on a clean stop, rather than when the server has
ended the closed connection's backend."""
ACTIVE_INCIDENTS_SQL: Final = (
    "SELECT alert, key, fired_ms, event FROM alert_incidents ORDER BY alert, key"
)
PENDING_DELIVERIES_SQL: Final = "SELECT id, alert, target, event FROM alert_outbox ORDER BY id"
RESOLVE_INCIDENT_SQL: Final = "DELETE FROM alert_incidents WHERE alert = %s AND key = %s"
FIRE_INCIDENT_SQL: Final = (
    "INSERT INTO alert_incidents (alert, key, fired_ms, event) VALUES (%s, %s, %s, %s) "
    "ON CONFLICT (alert, key) DO UPDATE SET fired_ms = EXCLUDED.fired_ms, "
    "event = EXCLUDED.event"
)
QUEUE_DELIVERY_SQL: Final = (
    "INSERT INTO alert_outbox (alert, target, event) VALUES (%s, %s, %s) RETURNING id"
)
DELIVERED_SQL: Final = "DELETE FROM alert_outbox WHERE id = ANY (%s::bigint[])"
