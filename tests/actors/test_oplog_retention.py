"""OplogActor applying [retention] on its ticks, with a real SQLite store."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from pathlib import Path

import pykka
import pytest

from actors import OplogActor, OplogEvent, RemoteBatch
from hub.config import load_config
from hub.pb import synchub_pb2 as pb
from hub.store import SqliteOplogStore

KEY = "ed25519." + "A" * 43
TIMEOUT = 5.0
DAY_MS = 86_400_000
NOW = 1_800_000_000.0


@pytest.fixture
def oplog(tmp_path: Path) -> Iterator[pykka.ActorProxy[OplogActor]]:
    ref = OplogActor.start(lambda: SqliteOplogStore(tmp_path / "oplog.sqlite"))
    try:
        yield ref.proxy()
    finally:
        ref.stop(block=True, timeout=TIMEOUT)


def config(tmp_path: Path, retention: str) -> object:
    path = tmp_path / "hub.toml"
    path.write_text(f'instance = "hub-1"\n[hub]\n{retention}')
    return load_config(path)


def test_ticks_remove_old_operations_and_publish_the_deletions(
    oplog: pykka.ActorProxy[OplogActor], tmp_path: Path
) -> None:
    ops = tuple(
        pb.Operation(id=i, modno=1, plan_id="nightly",
                     unix_time_start_ms=int(NOW * 1000) - (100 - i) * DAY_MS)
        for i in range(1, 11)
    )
    stored = oplog.apply_remote(KEY, RemoteBatch(ops, peer_instance_id="web1")).get(timeout=TIMEOUT)
    events: queue.Queue[OplogEvent] = queue.Queue()
    oplog.subscribe(events.put).get(timeout=TIMEOUT)
    oplog.retention_tick(NOW).get(timeout=TIMEOUT)  # not configured: nothing happens
    assert oplog.count().get(timeout=TIMEOUT) == 10
    oplog.configure(config(tmp_path, "[retention]\nkeep_days = 95\n")).get(timeout=TIMEOUT)
    oplog.retention_tick(NOW).get(timeout=TIMEOUT)
    event = events.get(timeout=TIMEOUT)
    assert event.kind == "deleted"
    # Started 99 to 96 days ago: removed; 95 days ago and newer: kept.
    assert event.deleted_ids == tuple(op.id for op in stored.created[:4])
    assert oplog.count().get(timeout=TIMEOUT) == 6
    # The pass is over: the next one waits for the interval (600 s by default).
    oplog.configure(config(tmp_path, "[retention]\nkeep_days = 1\n")).get(timeout=TIMEOUT)
    oplog.retention_tick(NOW + 1).get(timeout=TIMEOUT)
    assert oplog.count().get(timeout=TIMEOUT) == 1  # new settings: a pass at once; the latest stays
    oplog.retention_tick(NOW + 2).get(timeout=TIMEOUT)
    assert events.get(timeout=TIMEOUT).kind == "deleted"
    assert events.empty()
