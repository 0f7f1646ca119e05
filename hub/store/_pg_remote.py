"""A peer's batches in the PostgreSQL oplog: one call of ``synchub_apply_remote``.

The ingest hot path: the batch goes to the database as one array a column, and
the function (``_pg_schema``) deletes, translates ids and flows, inserts and
updates in one implicit transaction, so a batch costs one round trip and is
committed when the call returns. The operations are made ready here (the peer's
ids as ``original_*``, the encoding without id and flow id) and get their local
ids from the answer. The caller has checked the batch (``hub.store._rules``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hub.pb import synchub_pb2 as pb
from hub.store._api import RemoteApplyResult
from hub.store._pg_db import Connection
from hub.store._pg_schema import APPLY_REMOTE_SQL


def apply_remote_batch(
    conn: Connection,
    keyid: str,
    latest: dict[int, pb.Operation],
    to_delete: Sequence[int],
    *,
    reuse: bool,
    peer_instance_id: str = "",
) -> RemoteApplyResult:
    """Delete ``to_delete`` (peer ids), then insert or update ``latest`` (by peer id).

    ``peer_instance_id`` goes in its own column, never into the stored bytes."""
    stored_ops, columns = _prepared(keyid, latest, reuse=reuse)
    row = conn.execute(
        APPLY_REMOTE_SQL, (keyid, peer_instance_id, list(to_delete), *columns),
        prepare=True, binary=True,
    ).fetchone()
    assert row is not None, "synchub_apply_remote returns one row"
    deleted_ids, ids, flow_ids, fresh = row
    created: list[pb.Operation] = []
    updated: list[pb.Operation] = []
    for stored, local_id, flow_id, is_new in zip(stored_ops, ids, flow_ids, fresh, strict=True):
        stored.id = local_id
        stored.flow_id = flow_id
        if peer_instance_id:
            stored.peer_instance_id = peer_instance_id
        (created if is_new else updated).append(stored)
    return RemoteApplyResult(tuple(created), tuple(updated), tuple(deleted_ids))


def _prepared(
    keyid: str, latest: dict[int, pb.Operation], *, reuse: bool
) -> tuple[list[pb.Operation], tuple[list[Any], ...]]:
    """The operations to store (the peer's ids as ``original_*``, no id or flow id yet)
    and the function's column arrays, in its parameters' order."""
    stored_ops: list[pb.Operation] = []
    columns: tuple[list[Any], ...] = tuple([] for _ in range(11))
    (original_ids, original_flow_ids, flow_leaders, modnos, repo_guids, plan_ids,
     instance_ids, snapshot_ids, starts, statuses, data) = columns
    # The 1-based position of the first operation of the batch in each one's flow.
    leaders: dict[int, int] = {}
    for original_id, op in latest.items():
        if reuse:
            stored = op
        else:
            stored = pb.Operation()
            stored.CopyFrom(op)
        original_flow_id = op.flow_id or original_id
        stored.original_id = original_id
        stored.original_flow_id = original_flow_id
        stored.original_instance_keyid = keyid
        stored.ClearField("id")
        stored.ClearField("flow_id")
        stored.ClearField("peer_instance_id")
        # Spelled out rather than built by a helper: this runs once per operation.
        stored_ops.append(stored)
        original_ids.append(original_id)
        original_flow_ids.append(original_flow_id)
        flow_leaders.append(leaders.setdefault(original_flow_id, len(original_ids)))
        modnos.append(stored.modno)
        repo_guids.append(stored.repo_guid)
        plan_ids.append(stored.plan_id)
        instance_ids.append(stored.instance_id)
        snapshot_ids.append(stored.snapshot_id)
        starts.append(stored.unix_time_start_ms)
        statuses.append(stored.status)
        data.append(stored.SerializeToString())
    return stored_ops, columns
