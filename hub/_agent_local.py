"""The client agent's view of its local oplog: the node's own operations only.

Local operations are those with ``original_instance_keyid == ""`` (a node that is
also a hub holds its peers' operations in the same store; those are never sent
on). The store is opened in the thread that uses it, as sqlite3 requires, and
other processes (``synchub run``) may write to the same file meanwhile.

Every local add or update takes the next value of the store-wide modno counter
inside its write transaction, so changes commit in modno order: once a change
with modno N is visible, no change with a lower modno can appear later. That
makes "everything past the high-water mark" a complete change feed.

Finding those changes means reading the bookkeeping of every local operation
(the store has no "local changes since modno N" query yet), so a poll first
checks whether the database changed at all: every commit, by any process,
changes the size or modification time of the database or its WAL file, or the
number of operations. A full read is also made every ``FULL_SCAN_SECONDS``
whatever the files say, which bounds the delay should a file system's
timestamps be too coarse to tell two commits apart.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from hub._agent_sync import DiffSelection
from hub.oplog_store import SqliteOplogStore
from hub.pb import synchub_pb2 as pb

# Ids per query when loading operations, so one request of many ids is read in parts.
LOAD_CHUNK = 512
FULL_SCAN_SECONDS = 30.0

_FileState = tuple[tuple[int, int, int] | None, ...]


def _local(selector: pb.OpSelector | None = None) -> pb.OpSelector:
    local = pb.OpSelector()
    if selector is not None:
        local.CopyFrom(selector)
    local.original_instance_keyid = ""
    return local


class LocalOplog:
    """Reads the node's own operations for syncing. Use from one thread only."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._path = Path(path)
        self._store = SqliteOplogStore(path)
        self._clock = clock
        self._seen: tuple[_FileState, int, int] | None = None
        self._seen_at = 0.0

    def close(self) -> None:
        self._store.close()

    def high_water(self) -> int:
        """The highest modno among local operations (0 when there are none).

        A later local add or update gets a higher modno than this: the store's
        counter only grows and is never below any stored modno.
        """
        return max((m.modno for m in self._store.query_metadata(_local())), default=0)

    def _database_state(self) -> tuple[_FileState, int]:
        files: list[tuple[int, int, int] | None] = []
        for name in (str(self._path), f"{self._path}-wal"):
            try:
                info = os.stat(name)
            except FileNotFoundError:
                files.append(None)
            else:
                files.append((info.st_ino, info.st_size, info.st_mtime_ns))
        return tuple(files), self._store.count()

    def changes_since(self, modno: int) -> tuple[list[pb.Operation], int]:
        """Local operations added or updated past ``modno``, by modno, and the new mark.

        Meant to be called with the mark it returned last time.
        """
        now = self._clock()
        files, count = self._database_state()
        if (files, count, modno) == self._seen and now - self._seen_at < FULL_SCAN_SECONDS:
            return [], modno
        changed = sorted(
            (m for m in self._store.query_metadata(_local()) if m.modno > modno),
            key=lambda m: m.modno,
        )
        mark = max((m.modno for m in changed), default=modno)
        # The state was taken before the read: a commit during it shows next time.
        self._seen, self._seen_at = (files, count, mark), now
        if not changed:
            return [], modno
        by_id = {op.id: op for op in self.load([m.id for m in changed])}
        return [by_id[m.id] for m in changed if m.id in by_id], mark

    def have(self, selection: DiffSelection) -> tuple[list[int], list[int]]:
        """The (ids, modnos) of local operations in ``selection``, ascending by id."""
        rows = self._store.query_metadata(selection.local_selector())
        if selection.excluded_plans:
            left_out = {
                m.id
                for plan_id in selection.excluded_plans
                for m in self._store.query_metadata(
                    _local(pb.OpSelector(repo_guid=selection.repo_guid, plan_id=plan_id))
                )
            }
            rows = [m for m in rows if m.id not in left_out]
        return [m.id for m in rows], [m.modno for m in rows]

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
