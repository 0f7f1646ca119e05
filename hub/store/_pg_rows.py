"""Operations as PostgreSQL rows and back, column by column.

A row's ``data`` is the operation's encoding with ``id`` and ``flow_id`` cleared
(``_pg_schema`` says why); ``encoded`` makes it and ``decoded`` puts the two
columns back. Rows travel to the database as one array a column (``Columns``),
so a whole batch is one statement parameterized the same way whatever its size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from hub.pb import synchub_pb2 as pb
from hub.store._rules import peer_of_local


def encoded(op: pb.Operation) -> bytes:
    """``op``'s encoding without its id and flow id; ``op`` is left as it was."""
    op_id, flow_id = op.id, op.flow_id
    op.ClearField("id")
    op.ClearField("flow_id")
    try:
        return op.SerializeToString()
    finally:
        op.id, op.flow_id = op_id, flow_id


def decoded(op_id: int, flow_id: int, data: bytes, peer_instance_id: str = "") -> pb.Operation:
    """A stored row's operation, with its id, flow id and (for a peer's) peer instance
    from their columns."""
    op = pb.Operation.FromString(data)
    op.id = op_id
    op.flow_id = flow_id
    if peer_instance_id:
        op.peer_instance_id = peer_instance_id
    return op


@dataclass(slots=True)
class Columns:
    """Operations rows gathered column by column, in ``INSERT_ROWS_SQL``'s order."""

    ids: list[int] = field(default_factory=list)
    flow_ids: list[int] = field(default_factory=list)
    modnos: list[int] = field(default_factory=list)
    keyids: list[str] = field(default_factory=list)
    original_ids: list[int | None] = field(default_factory=list)
    original_flow_ids: list[int | None] = field(default_factory=list)
    repo_guids: list[str] = field(default_factory=list)
    plan_ids: list[str] = field(default_factory=list)
    instance_ids: list[str] = field(default_factory=list)
    peer_instance_ids: list[str] = field(default_factory=list)
    snapshot_ids: list[str] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    data: list[bytes] = field(default_factory=list)

    def add_local(self, op: pb.Operation) -> None:
        """A local operation's row (no original ids: they are NULL)."""
        self.ids.append(op.id)
        self.flow_ids.append(op.flow_id)
        self.modnos.append(op.modno)
        self.keyids.append("")
        self.original_ids.append(None)
        self.original_flow_ids.append(None)
        self.repo_guids.append(op.repo_guid)
        self.plan_ids.append(op.plan_id)
        self.instance_ids.append(op.instance_id)
        self.peer_instance_ids.append(peer_of_local(op))
        self.snapshot_ids.append(op.snapshot_id)
        self.starts.append(op.unix_time_start_ms)
        self.statuses.append(op.status)
        self.data.append(encoded(op))

    def params(self) -> tuple[Sequence[object], ...]:
        return (
            self.ids, self.flow_ids, self.modnos, self.keyids, self.original_ids,
            self.original_flow_ids, self.repo_guids, self.plan_ids, self.instance_ids,
            self.peer_instance_ids, self.snapshot_ids, self.starts, self.statuses, self.data,
        )
