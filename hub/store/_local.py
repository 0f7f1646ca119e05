"""This node's own oplog file, for the local tools that record operations and list
what it holds (``synchub run``, ``synchub ops``).

``open_oplog`` hands out the file as a ``LocalOplogStore``. A running agent
notices changes written here by other processes and delivers them to its hubs:
each committed write wakes it at once (``hub.store._wake``), and its poll finds
whatever a wake-up missed.

    >>> from hub.store import open_oplog, new_operation
    >>> with open_oplog(config) as oplog:                      # doctest: +SKIP
    ...     [op] = oplog.add_local([new_operation(config, display_message="backup")])
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from hub.config import Config
from hub.errors import ConfigError
from hub.pb import synchub_pb2 as pb
from hub.store._api import LocalOplogStore
from hub.store._sqlite import SqliteOplogStore
from hub.store._wake import wake_agent

OPLOG_FILENAME = "oplog.sqlite"


def oplog_path(data_dir: Path) -> Path:
    return data_dir / OPLOG_FILENAME


@contextmanager
def open_oplog(config: Config) -> Iterator[LocalOplogStore]:
    """The node's oplog store, closed on exit. Use from one thread only.

    Every committed local write wakes the agent running on this data_dir, if any.
    """
    config.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    store = _WakingOplog(config.data_dir)
    try:
        yield store
    finally:
        store.close()


class _WakingOplog(SqliteOplogStore):
    """The node's oplog as local tools write it: each committed local write wakes the
    agent running on ``data_dir``, if any (``wake_agent``: never blocks, never fails)."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(oplog_path(data_dir))
        self._data_dir = data_dir

    def add_local(self, ops: Sequence[pb.Operation]) -> list[pb.Operation]:
        stored = super().add_local(ops)
        wake_agent(self._data_dir)
        return stored

    def update_local(self, ops: Sequence[pb.Operation]) -> list[pb.Operation]:
        stored = super().update_local(ops)
        wake_agent(self._data_dir)
        return stored

    def delete(self, ids: Sequence[int]) -> list[int]:
        deleted = super().delete(ids)
        wake_agent(self._data_dir)
        return deleted


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def new_operation(
    config: Config,
    *,
    display_message: str = "",
    plan_id: str = "",
    repo_id: str = "",
    status: pb.OperationStatus = pb.STATUS_INPROGRESS,
    start_ms: int | None = None,
) -> pb.Operation:
    """A fresh local operation of this node; the store assigns id, flow id and modno.

    ``repo_id`` must name a [[repos]] entry; its guid is what peers sync by.
    """
    repo_guid = ""
    if repo_id:
        repo = config.repo(repo_id)
        if repo is None:
            known = ", ".join(r.id for r in config.repos) or "none configured"
            raise ConfigError(
                config.path or "<embedded defaults>", "repos",
                f"no repo with id {repo_id!r} (known: {known})",
            )
        repo_guid = repo.guid
    return pb.Operation(
        instance_id=config.instance,
        plan_id=plan_id,
        repo_id=repo_id,
        repo_guid=repo_guid,
        status=status,
        display_message=display_message,
        unix_time_start_ms=now_ms() if start_ms is None else start_ms,
    )
