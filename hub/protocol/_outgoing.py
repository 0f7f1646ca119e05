"""The operation frames a client sends one hub: answers to diff replies and live changes.

Owned by one ``ClientSession``. It reads the local oplog only through the
``ClientOplog`` interface and keeps the session's counts of what it sent.

- An answer (docs/protocol.md §6.2 (The client's order of work), step 5) is read
  from the store as it is sent: a lazy source of ``created_operations`` frames
  built from the stored bytes (nothing decoded), at most ``batch_operations``
  operations and one frame each, then the requested ids it lacks or no longer
  shares as ``deleted_operations``.
- Live changes (step 6) are the store's changes past a mark, sent as
  ``updated_operations`` batches and one ``deleted_operations``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from hub.pb import synchub_pb2 as pb
from hub.protocol._batching import batch_operations, batch_serialized
from hub.protocol._codec import encode_item
from hub.protocol._items import deleted_item, operations_item, serialized_operations_frame
from hub.protocol._scope import DiffSelection, SyncScope
from hub.store import LocalChanges, SerializedOperation

DELETED_IDS_PER_FRAME = 1_000_000
"""Ids per deleted_operations frame: 1,000,000 ids fit well under 16 MiB."""


class ClientOplog(Protocol):
    """What a client session reads from its local oplog (the agent's LocalOplog offers it).

    Only the node's own operations; ids ascending.
    """

    def high_water(self) -> int:
        """The modno of the latest local change."""
        ...

    def changes_since(self, modno: int) -> LocalChanges:
        """Local changes past ``modno``; pass the returned mark next time."""
        ...

    def have(self, selection: DiffSelection) -> tuple[list[int], list[int]]:
        """The (ids, modnos) of the operations in ``selection``."""
        ...

    def load_serialized_parts(self, ids: Sequence[int]) -> Iterator[list[SerializedOperation]]:
        """The operations among ``ids`` that exist, as stored bytes, in parts read when asked."""
        ...


@dataclass
class SyncCounts:
    """What one session sent, and what the hub requested in each round of diffs."""

    sent: int = 0
    deleted: int = 0
    requested: int = 0
    rounds: list[int] = field(default_factory=list)


class OperationFrames:
    """Builds the operation frames of one session and counts them in ``counts``."""

    def __init__(
        self,
        oplog: ClientOplog,
        scope: SyncScope,
        *,
        batch_operations: int,
        max_frame_bytes: int,
        counts: SyncCounts,
        progress: Callable[[int, int], None],
        who: str,
        log: logging.Logger,
    ) -> None:
        self._oplog = oplog
        self._scope = scope
        self._batch_operations = batch_operations
        self._max_frame_bytes = max_frame_bytes
        self._counts = counts
        self._progress = progress
        self._who = who
        self._log = log

    def answer(self, requested: Sequence[int]) -> Iterator[bytes]:
        """The frames answering one diff reply, read from the store as they are taken."""
        counts = self._counts
        present: set[int] = set()
        for part in self._oplog.load_serialized_parts(requested):
            allowed = self._scope.filter(part)
            present.update(op.id for op in allowed)
            for batch in self._serialized_batches(allowed):
                counts.sent += len(batch)
                self._progress(counts.sent, counts.requested)
                yield serialized_operations_frame(batch, "created_operations")
        missing = sorted(set(requested) - present)
        for start in range(0, len(missing), DELETED_IDS_PER_FRAME):
            chunk = missing[start : start + DELETED_IDS_PER_FRAME]
            counts.deleted += len(chunk)
            yield encode_item(deleted_item(chunk))

    def unasked(self, ops: list[pb.Operation]) -> Iterator[bytes]:
        """Changed operations the hub did not ask for (resumed sync), as updated batches.

        They count as work to do, like requested ones, so progress shows them.
        """
        counts = self._counts
        counts.requested += len(ops)
        for batch in self.batches(ops):
            counts.sent += len(batch)
            self._progress(counts.sent, counts.requested)
            yield encode_item(operations_item(batch, "updated_operations"))

    def changes(self, mark: int) -> tuple[list[bytes], int]:
        """The frames streaming the local changes past ``mark``, and the new mark."""
        changes = self._oplog.changes_since(mark)
        allowed = [op for op in changes.operations if self._scope.allows(op)]
        frames: list[bytes] = []
        for batch in self.batches(allowed):
            frames.append(encode_item(operations_item(batch, "updated_operations")))
            self._counts.sent += len(batch)
        if changes.deleted_ids:
            # Out-of-scope or never-sent ids are harmless: the hub ignores unknown ids.
            frames.append(encode_item(deleted_item(changes.deleted_ids)))
            self._counts.deleted += len(changes.deleted_ids)
        if allowed or changes.deleted_ids:
            self._log.debug(
                "%s: streaming %d changed and %d deleted operations",
                self._who, len(allowed), len(changes.deleted_ids),
            )
        return frames, changes.mark

    def batches(self, ops: list[pb.Operation]) -> Iterator[list[pb.Operation]]:
        """``ops`` in batches of at most ``batch_operations`` and one frame each."""
        def oversized(op: pb.Operation) -> None:
            self._oversized(op.id, op.ByteSize())

        return batch_operations(
            ops,
            max_operations=self._batch_operations,
            max_frame_bytes=self._max_frame_bytes,
            on_oversized=oversized,
        )

    def _serialized_batches(
        self, ops: list[SerializedOperation]
    ) -> Iterator[list[SerializedOperation]]:
        def oversized(op: SerializedOperation) -> None:
            self._oversized(op.id, len(op.data))

        return batch_serialized(
            ops,
            max_operations=self._batch_operations,
            max_frame_bytes=self._max_frame_bytes,
            on_oversized=oversized,
        )

    def _oversized(self, op_id: int, size: int) -> None:
        self._log.error(
            "operation %d is %d bytes, more than one frame (%d) may carry: not sent",
            op_id, size, self._max_frame_bytes,
        )
