"""What every oplog store decides the same way, whatever it stores in: no I/O here.

A remote batch is checked before anything is stored (docs/protocol.md §6.4
(`send_operations`): an id <= 0 or a flow id < 0 rejects the whole batch), a
diff's request is checked and answered by comparing (id, modno) lists
(§6.3 (The hub's answer to `diff_operations`)), and a local operation is stored
without any remote bookkeeping. Each store implementation calls these so the
rules live once.
"""

from __future__ import annotations

from collections.abc import Sequence

from hub.errors import ProtocolError
from hub.pb import synchub_pb2 as pb


def local_copy(op: pb.Operation) -> pb.Operation:
    """A fresh copy of ``op`` as a local operation: no original key id, id or flow id,
    and no peer instance (a store sets that one on what it reads, never stores it)."""
    stored = pb.Operation()
    stored.CopyFrom(op)
    stored.ClearField("original_instance_keyid")
    stored.ClearField("original_id")
    stored.ClearField("original_flow_id")
    stored.ClearField("peer_instance_id")
    return stored


def peer_of_local(op: pb.Operation) -> str:
    """The peer_instance_id column of a node's own operation: the instance it was recorded
    with (it reached the oplog from no peer)."""
    return op.instance_id


def checked_remote_batch(
    keyid: str, created_or_updated: Sequence[pb.Operation]
) -> dict[int, pb.Operation]:
    """The batch's operations by peer id, the last copy of a repeated id winning.

    ValueError without a key id; ProtocolError, naming the operation, when an id
    or flow id is not valid (the whole batch is then rejected).
    """
    if not keyid:
        raise ValueError("apply_remote needs the peer's key id")
    latest: dict[int, pb.Operation] = {}
    for op in created_or_updated:
        if op.id <= 0:
            raise ProtocolError(
                f"operation id {op.id} is not valid: ids start at 1 (batch rejected)"
            )
        if op.flow_id < 0:
            raise ProtocolError(
                f"operation {op.id} has flow id {op.flow_id}: flow ids are operation ids "
                "(batch rejected)"
            )
        latest[op.id] = op
    return latest


def peer_diff_selector(
    keyid: str, selector: pb.OpSelector, have_ids: Sequence[int], have_modnos: Sequence[int]
) -> pb.OpSelector:
    """A copy of a diff's selector confined to ``keyid``, after checking the request.

    ProtocolError when the lists differ in length or the selector names another
    peer's operations.
    """
    if len(have_ids) != len(have_modnos):
        raise ProtocolError(
            f"diff_operations lists {len(have_ids)} ids but {len(have_modnos)} modnos"
        )
    if selector.HasField("original_instance_keyid") and (
        selector.original_instance_keyid != keyid
    ):
        raise ProtocolError(
            "diff_operations selector names another peer's operations "
            f"({selector.original_instance_keyid})"
        )
    peer_selector = pb.OpSelector()
    peer_selector.CopyFrom(selector)
    peer_selector.original_instance_keyid = keyid
    return peer_selector


def lists_few_ids(selector: pb.OpSelector, limit: int) -> bool:
    """True when the selection names at most ``limit`` ids: a step of it costs at most
    that many rows without bounding its window (an acknowledgement diff names one)."""
    return 0 < len(selector.ids) <= limit


def window_bound(upto: int | None, limit_id: int | None) -> int | None:
    """The lower of two window ends, None meaning no bound."""
    if upto is None:
        return limit_id
    return upto if limit_id is None else min(upto, limit_id)


def requested_ids(
    held: dict[int, int], have_ids: Sequence[int], have_modnos: Sequence[int]
) -> list[int]:
    """The peer ids to request, ascending: ``held`` maps the peer ids stored to their modnos.

    Requested: ids whose modno differs, ids the peer has and the store lacks, and
    ids the store holds that the peer did not list.
    """
    if not held:
        return sorted(set(have_ids))
    theirs = dict(zip(have_ids, have_modnos, strict=True))
    if theirs == held:
        return []
    wanted = {op_id for op_id, modno in theirs.items() if held.get(op_id) != modno}
    wanted.update(op_id for op_id in held if op_id not in theirs)
    return sorted(wanted)
