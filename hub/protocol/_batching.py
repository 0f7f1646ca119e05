"""Splitting operations into send_operations frames: docs/protocol.md §6.5 (Batch and frame sizes).

A batch holds at most ``MAX_BATCH_OPERATIONS`` operations and fits one frame of
``max_frame_bytes``. Decoded operations are sized by their encoding, stored ones
(``SerializedOperation``) by their bytes, so the ingest fast path splits exactly
as the decoding path does without parsing anything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from hub.pb import synchub_pb2 as pb
from hub.store import SerializedOperation

MAX_BATCH_OPERATIONS = 256
"""Operations per send_operations frame (docs/protocol.md §6.5 (Batch and frame sizes))."""

# Bytes a SyncStreamItem adds around its OperationList (oneof tags and lengths of
# the three nested messages), and around each operation (tag plus length varint).
FRAME_OVERHEAD_BYTES = 32
PER_OPERATION_OVERHEAD_BYTES = 6

_Op = TypeVar("_Op")


def operation_frame_bytes(op: pb.Operation) -> int:
    """What one operation adds to a send_operations frame."""
    return op.ByteSize() + PER_OPERATION_OVERHEAD_BYTES


def serialized_frame_bytes(op: SerializedOperation) -> int:
    """What one stored operation adds to a send_operations frame."""
    return len(op.data) + PER_OPERATION_OVERHEAD_BYTES


def batch_operations(
    ops: Iterable[pb.Operation],
    *,
    max_operations: int = MAX_BATCH_OPERATIONS,
    max_frame_bytes: int,
    on_oversized: Callable[[pb.Operation], None] | None = None,
) -> Iterator[list[pb.Operation]]:
    """Split ops, in order, into batches of at most max_operations that fit one frame.

    An operation too large for any frame on its own is passed to on_oversized and
    left out (sending it would only make the hub drop the connection).
    """
    return _batches(ops, operation_frame_bytes, max_operations, max_frame_bytes, on_oversized)


def batch_serialized(
    ops: Iterable[SerializedOperation],
    *,
    max_operations: int = MAX_BATCH_OPERATIONS,
    max_frame_bytes: int,
    on_oversized: Callable[[SerializedOperation], None] | None = None,
) -> Iterator[list[SerializedOperation]]:
    """batch_operations for stored operations (sized by their bytes)."""
    return _batches(ops, serialized_frame_bytes, max_operations, max_frame_bytes, on_oversized)


def _batches(
    ops: Iterable[_Op],
    size_of: Callable[[_Op], int],
    max_operations: int,
    max_frame_bytes: int,
    on_oversized: Callable[[_Op], None] | None,
) -> Iterator[list[_Op]]:
    if max_operations < 1:
        raise ValueError("max_operations must be at least 1")
    budget = max_frame_bytes - FRAME_OVERHEAD_BYTES
    batch: list[_Op] = []
    size = 0
    for op in ops:
        op_size = size_of(op)
        if op_size > budget:
            if on_oversized is not None:
                on_oversized(op)
            continue
        if batch and (len(batch) >= max_operations or size + op_size > budget):
            yield batch
            batch, size = [], 0
        batch.append(op)
        size += op_size
    if batch:
        yield batch
