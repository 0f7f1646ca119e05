"""ingest: one client's initial sync of N operations into a fresh hub, CURVE on.

The client is the real client agent (``Agent.run_once``) in this process; the hub
is ``synchub start`` in a child process on its own fresh data_dir each repetition.
The clock runs from ``run_once`` to its return, which is after the hub confirmed
(with an empty diff reply) that it holds every operation: connect, handshake, the
diff of N ids, N operations in batches of 256, the confirming diff.

Baseline, measured in the same run between the repetitions: a raw SQLite
executemany of the same rows (as the hub stores them) into a fresh file with the
hub's schema (SqliteOplogStore creates it), 256 rows a transaction, the hub's
pragmas (WAL, synchronous NORMAL).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from hub.agent import Agent, AgentSettings
from hub.bench.report import Goal, Result, figure
from hub.bench.rig import (
    bench_dir,
    hub_process,
    make_client_node,
    make_hub_node,
    seed_local_operations,
    write_client_config,
)
from hub.config import load_config
from hub.errors import BenchError
from hub.pb import synchub_pb2 as pb
from hub.store import INSERT_SQL, SqliteOplogStore

BATCH_ROWS = 256
GOAL_RATIO = 0.5

Say = Callable[[str], None]


def _quiet(_text: str) -> None:
    pass


def hub_rows(local_path: Path, keyid: str) -> list[tuple[object, ...]]:
    """The rows a hub writes for these operations (its ids, the client's as original)."""
    store = SqliteOplogStore(local_path)
    try:
        ops = store.query(pb.OpSelector(original_instance_keyid=""))
    finally:
        store.close()
    rows: list[tuple[object, ...]] = []
    for local_id, op in enumerate(ops, start=1):
        stored = pb.Operation()
        stored.CopyFrom(op)
        stored.original_id = op.id
        stored.original_flow_id = op.flow_id
        stored.original_instance_keyid = keyid
        stored.id = local_id
        stored.flow_id = local_id
        rows.append((
            local_id, local_id, op.modno, keyid, op.id, op.flow_id,
            op.repo_guid, op.plan_id, op.instance_id, op.instance_id, op.snapshot_id,
            op.unix_time_start_ms, op.status, stored.SerializeToString(),
        ))
    return rows


def sqlite_insert_rate(path: Path, rows: list[tuple[object, ...]]) -> float:
    """Rows a second of a batched executemany into a fresh store file at ``path``."""
    SqliteOplogStore(path).close()  # the hub's schema and pragmas
    db = sqlite3.connect(str(path), isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        started = time.perf_counter()
        for start in range(0, len(rows), BATCH_ROWS):
            db.execute("BEGIN IMMEDIATE")
            db.executemany(INSERT_SQL, rows[start : start + BATCH_ROWS])
            db.execute("COMMIT")
        elapsed = time.perf_counter() - started
    finally:
        db.close()
    return len(rows) / elapsed


def run(
    ops: int = 100_000,
    repeat: int = 5,
    *,
    keep: Path | None = None,
    say: Say = _quiet,
    timeout: float = 600.0,
) -> Result:
    if ops < 1 or repeat < 1:
        raise BenchError("--ops and --repeat must be at least 1")
    rates: list[float] = []
    baselines: list[float] = []
    seconds: list[float] = []
    with bench_dir(keep) as root:
        client = make_client_node(root / "client")
        say(f"seeding {ops} local operations")
        seed_local_operations(client.oplog_path, ops)
        rows = hub_rows(client.oplog_path, client.identity.signing.keyid)
        for n in range(repeat):
            baselines.append(sqlite_insert_rate(root / f"baseline-{n}.sqlite", rows))
            hub_node = make_hub_node(root / f"hub-{n}", [client.bench_client])
            with hub_process(hub_node) as (_hub, endpoint):
                write_client_config(client, hub_node, endpoint)
                agent = Agent(
                    load_config(client.config_path),
                    identity=client.identity,
                    settings=AgentSettings(connect_timeout=timeout),
                )
                started = time.perf_counter()
                reports = agent.run_once(timeout)
                elapsed = time.perf_counter() - started
            sent = sum(r.sent for r in reports)
            if sent != ops:
                raise BenchError(f"the agent sent {sent} operations, expected {ops}")
            held = _count(hub_node.oplog_path)
            if held != ops:
                raise BenchError(f"the hub holds {held} operations after the sync, expected {ops}")
            seconds.append(elapsed)
            rates.append(ops / elapsed)
            say(
                f"run {n + 1}/{repeat}: {ops / elapsed:,.0f} ops/s "
                f"(sqlite {baselines[-1]:,.0f} rows/s)"
            )
    rate = figure("ingest.ops_per_second", rates, "ops/s", baselines, baseline_unit="rows/s")
    ratio = rate.ratio or 0.0
    return Result(
        scenario="ingest",
        figures=(rate, figure("ingest.sync_seconds", seconds, "s")),
        goals=(Goal(f"ratio >= {GOAL_RATIO} (got {ratio:.2f})", ratio >= GOAL_RATIO),),
        params={"ops": ops, "repeat": repeat, "curve": True,
                "client": "client agent (Agent.run_once)", "hub": "synchub start (process)"},
        notes=(
            "baseline: raw SQLite executemany of the same rows, hub schema, "
            f"{BATCH_ROWS} rows a transaction",
        ),
    )


def _count(path: Path) -> int:
    store = SqliteOplogStore(path)
    try:
        return store.count()
    finally:
        store.close()
