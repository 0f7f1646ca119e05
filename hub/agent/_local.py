"""The client agent's view of its local oplog: the node's own operations only.

``LocalOplog`` is what a ``ClientSession`` reads through its ``ClientOplog``
interface, and where its ``LogServer`` finds the logs of the node's own
operations (``LogSource``); each connection thread opens its own.

Local operations are those with ``original_instance_keyid == ""`` (a node that is
also a hub holds its peers' operations in the same store; those are never sent
on). The store is opened in the thread that uses it, as sqlite3 requires, and
other processes (``synchub run``) may write to the same file meanwhile.

Changes come from the store's local change feed: every local add, update or
delete takes the next value of the store-wide modno counter inside its write
transaction, so "everything past the mark" is a complete feed, deletions
included. A poll first asks SQLite whether any connection committed since the
last look (``PRAGMA data_version``), so an idle node costs one pragma a poll.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from hub.pb import synchub_pb2 as pb
from hub.protocol import DiffSelection, LocalLog
from hub.store import (
    Digests,
    LocalChanges,
    LocalLogs,
    LocalOplogStore,
    LogSlice,
    SerializedOperation,
    SqliteOplogStore,
)

_RUNNING = frozenset({pb.STATUS_PENDING, pb.STATUS_INPROGRESS})

# Ids per query when loading operations, so one request of many ids is read in parts.
LOAD_CHUNK = 512
# An initial sync reads the whole oplog: mapped, its pages cost no read() each.
MMAP_BYTES = 256 * 1024 * 1024


def _local(selector: pb.OpSelector | None = None) -> pb.OpSelector:
    local = pb.OpSelector()
    if selector is not None:
        local.CopyFrom(selector)
    local.original_instance_keyid = ""
    return local


class LocalOplog:
    """Reads the node's own operations for syncing. Use from one thread only."""

    def __init__(self, path: Path, logs: LocalLogs | None = None) -> None:
        self._store: LocalOplogStore = SqliteOplogStore(path, mmap_bytes=MMAP_BYTES)
        self._logs = logs or LocalLogs(path.parent)
        self._seen: tuple[int, int] | None = None
        self._have: dict[DiffSelection, tuple[tuple[int, int], list[int], list[int]]] = {}

    def close(self) -> None:
        self._store.close()

    def high_water(self) -> int:
        """The modno of the latest local change; later changes get higher modnos."""
        return self._store.local_modno()

    def changes_since(self, modno: int) -> LocalChanges:
        """Local changes past ``modno`` (pass the returned ``mark`` next time)."""
        version = self._store.data_version()
        if self._seen == (version, modno):
            return LocalChanges((), (), modno)
        changes = self._store.local_changes_since(modno)
        # The version was read before the changes: a commit in between shows next time.
        self._seen = (version, changes.mark)
        return changes

    def have(self, selection: DiffSelection) -> tuple[list[int], list[int]]:
        """The (ids, modnos) of local operations in ``selection``, ascending by id.

        Read again only after a commit: a confirming diff of an unchanged oplog
        costs two pragmas, not a query of every operation.
        """
        state = (self._store.data_version(), self._store.local_modno())
        cached = self._have.get(selection)
        if cached is None or cached[0] != state:
            cached = (state, *self._read_have(selection))
            self._have[selection] = cached
        return list(cached[1]), list(cached[2])

    def _read_have(self, selection: DiffSelection) -> tuple[list[int], list[int]]:
        if selection.only_plans is not None:
            pairs = sorted(
                pair
                for plan_id in selection.only_plans
                for pair in zip(*self._store.ids_and_modnos(_local(pb.OpSelector(
                    repo_guid=selection.repo_guid, plan_id=plan_id))), strict=True)
            )
            return [i for i, _ in pairs], [m for _, m in pairs]
        ids, modnos = self._store.ids_and_modnos(selection.local_selector())
        if not selection.excluded_plans:
            return ids, modnos
        left_out = {
            op_id
            for plan_id in selection.excluded_plans
            for op_id in self._store.ids_and_modnos(
                _local(pb.OpSelector(repo_guid=selection.repo_guid, plan_id=plan_id))
            )[0]
        }
        kept = [(i, m) for i, m in zip(ids, modnos, strict=True) if i not in left_out]
        return [i for i, _ in kept], [m for _, m in kept]

    # -- resumed sync (a ResyncOplog) --------------------------------------------------

    def epoch(self) -> bytes:
        """The store's epoch (docs/protocol.md §6.8 (Resumed sync))."""
        return self._store.store_epoch()

    def digest(self, selection: DiffSelection) -> Digests:
        """The bucket digests of ``selection``, from the store's cache kept by the feed
        (read by range: a million operations' cache is not loaded whole)."""
        return self._store.local_digests(selection.local_selector(), selection.excluded_plans)

    def pairs(
        self, selection: DiffSelection, first_id: int, last_id: int
    ) -> tuple[list[int], list[int]]:
        return self._store.local_pairs(
            selection.local_selector(), selection.excluded_plans, first_id, last_id
        )

    def load(self, ids: Sequence[int]) -> list[pb.Operation]:
        """The local operations among ``ids`` that still exist, ascending by id."""
        found: list[pb.Operation] = []
        for part in self.load_parts(ids):
            found.extend(part)
        return found

    def load_parts(self, ids: Sequence[int]) -> Iterator[list[pb.Operation]]:
        """Like load, in parts of at most LOAD_CHUNK ids, each read when asked for."""
        ordered = sorted(set(ids))
        for start in range(0, len(ordered), LOAD_CHUNK):
            chunk = ordered[start : start + LOAD_CHUNK]
            yield self._store.query(_local(pb.OpSelector(ids=chunk)))

    def load_serialized_parts(self, ids: Sequence[int]) -> Iterator[list[SerializedOperation]]:
        """Like load_parts, each operation as its stored bytes (nothing is decoded)."""
        ordered = sorted(set(ids))
        for start in range(0, len(ordered), LOAD_CHUNK):
            chunk = ordered[start : start + LOAD_CHUNK]
            yield self._store.query_serialized(_local(pb.OpSelector(ids=chunk)))

    # -- the logs of the node's own operations (a LogSource) -------------------------

    def find_log(self, operation_id: int) -> LocalLog | None:
        """This node's own operation ``operation_id`` (never a peer's it holds as a hub)."""
        found = self._store.query(_local(pb.OpSelector(ids=[operation_id])))
        if not found:
            return None
        op = found[0]
        return LocalLog(
            operation_id=op.id, repo_guid=op.repo_guid, plan_id=op.plan_id,
            logref=op.logref, finished=op.status not in _RUNNING,
            output_size=op.output_size_bytes,
        )

    def read_log(self, log: LocalLog, offset: int, length: int) -> LogSlice:
        total = log.output_size if log.finished else 0
        return self._logs.read_output(log.logref, offset, length, total=total)
