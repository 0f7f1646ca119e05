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

With ``store`` (a PostgreSQL URL) the hub keeps its oplog in that database
instead (``[store] url``), and the baseline is a raw psycopg ``COPY`` of the
same rows (as that store writes them) into the same schema (its migrations), 256
rows a transaction. Every repetition, the hub's and the baseline's, gets a
fresh schema of its own in that database (``search_path``), dropped afterwards:
the database's own tables are never touched.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import hub.store
from hub.agent import Agent, AgentSettings
from hub.bench.report import Goal, Result, figure
from hub.bench.rig import (
    ClientNode,
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
from hub.store import INSERT_SQL, OplogStore, SqliteOplogStore
from hub.text import redacted_url

BATCH_ROWS = 256
GOAL_RATIO = 0.75
"""The median of the ratios to the baseline (docs/benchmarks.md, shared targets)."""
GOAL_WORST_RATIO = 0.6
"""No repetition below this ratio to its own baseline."""

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


_PG_COPY_SQL = (
    "COPY operations (id, flow_id, modno, original_instance_keyid, original_id, "
    "original_flow_id, repo_guid, plan_id, instance_id, peer_instance_id, snapshot_id, "
    "unix_time_start_ms, status, data) FROM STDIN"
)


def postgres_rows(rows: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
    """``hub_rows`` as the PostgreSQL store writes them: the encoding without id and flow id."""
    converted = []
    for row in rows:
        data = row[-1]
        assert isinstance(data, bytes)
        op = pb.Operation.FromString(data)
        op.ClearField("id")
        op.ClearField("flow_id")
        converted.append((*row[:-1], op.SerializeToString()))
    return converted


@contextlib.contextmanager
def scratch_schema(url: str, name: str) -> Iterator[str]:
    """A fresh schema ``name`` in the database at ``url``: a URL that works in it only."""
    import psycopg  # noqa: PLC0415 - only --store loads the driver
    from psycopg.conninfo import conninfo_to_dict  # noqa: PLC0415

    if "options" in conninfo_to_dict(url):
        raise BenchError("--store: leave `options` out of the URL; the bench sets search_path")
    try:
        admin = psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        raise BenchError(f"--store: cannot connect: {' '.join(str(exc).split())}") from exc
    with admin:
        try:
            admin.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
            admin.execute(f'CREATE SCHEMA "{name}"')
        except psycopg.Error as exc:
            raise BenchError(
                f"--store: cannot create the scratch schema {name} (the role needs CREATE "
                f"on the database): {' '.join(str(exc).split())}"
            ) from exc
        try:
            joiner = "&" if "?" in url else "?"
            yield f"{url}{joiner}options={quote(f'-csearch_path={name}', safe='')}"
        finally:
            admin.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def postgres_insert_rate(url: str, rows: list[tuple[object, ...]]) -> float:
    """Rows a second of one COPY a batch, a transaction each, into the store's fresh schema.

    COPY is the fastest way a client has to insert rows; psycopg's pipelined
    executemany of the same batches is about half as fast here.
    """
    import psycopg  # noqa: PLC0415 - only --store loads the driver

    hub.store.migrate_postgres(url)  # the hub's schema
    with psycopg.connect(url, autocommit=True) as db:
        started = time.perf_counter()
        for start in range(0, len(rows), BATCH_ROWS):
            with db.transaction(), db.cursor().copy(_PG_COPY_SQL) as copy:
                for row in rows[start : start + BATCH_ROWS]:
                    copy.write_row(row)
        elapsed = time.perf_counter() - started
    return len(rows) / elapsed


def run(
    ops: int = 100_000,
    repeat: int = 5,
    *,
    store: str | None = None,
    keep: Path | None = None,
    say: Say = _quiet,
    timeout: float = 600.0,
) -> Result:
    """``store``: a PostgreSQL URL to run the hub (and the baseline) on, instead of SQLite."""
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
        pg_rows = postgres_rows(rows) if store else []
        for n in range(repeat):
            with contextlib.ExitStack() as scratch:
                hub_url = None
                if store is None:
                    baselines.append(sqlite_insert_rate(root / f"baseline-{n}.sqlite", rows))
                else:
                    prefix = f"synchub_bench_{os.getpid()}_{n}"
                    base_url = scratch.enter_context(scratch_schema(store, f"{prefix}_raw"))
                    baselines.append(postgres_insert_rate(base_url, pg_rows))
                    hub_url = scratch.enter_context(scratch_schema(store, f"{prefix}_hub"))
                elapsed = _sync_once(root, n, client, ops=ops, store_url=hub_url,
                                     timeout=timeout)
            seconds.append(elapsed)
            rates.append(ops / elapsed)
            say(
                f"run {n + 1}/{repeat}: {ops / elapsed:,.0f} ops/s "
                f"({'postgresql' if store else 'sqlite'} {baselines[-1]:,.0f} rows/s)"
            )
    return _result(ops, repeat, store, rates=rates, baselines=baselines, seconds=seconds)


def _sync_once(
    root: Path, n: int, client: ClientNode, *, ops: int, store_url: str | None, timeout: float
) -> float:
    """One repetition: a fresh hub, the client's whole initial sync; its seconds."""
    hub_node = make_hub_node(root / f"hub-{n}", [client.bench_client], store_url=store_url)
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
    held = _count(hub_node.oplog_path, store_url)
    if held != ops:
        raise BenchError(f"the hub holds {held} operations after the sync, expected {ops}")
    return elapsed


def ratio_goals(
    ratio: float, rates: list[float], baselines: list[float]
) -> tuple[Goal, Goal]:
    """The two goals of ``ratio`` (the medians' ratio) and of each run's own ratio."""
    worst = min(rate / base for rate, base in zip(rates, baselines, strict=True))
    return (
        Goal(f"ratio >= {GOAL_RATIO} (got {ratio:.2f})", ratio >= GOAL_RATIO),
        Goal(f"no run below {GOAL_WORST_RATIO} (worst {worst:.2f})",
             worst >= GOAL_WORST_RATIO),
    )


def _result(
    ops: int, repeat: int, store: str | None, *,
    rates: list[float], baselines: list[float], seconds: list[float],
) -> Result:
    rate = figure("ingest.ops_per_second", rates, "ops/s", baselines, baseline_unit="rows/s")
    ratio = rate.ratio or 0.0
    raw = "PostgreSQL COPY" if store else "SQLite executemany"
    return Result(
        scenario="ingest",
        figures=(rate, figure("ingest.sync_seconds", seconds, "s")),
        goals=ratio_goals(ratio, rates, baselines),
        params={"ops": ops, "repeat": repeat, "curve": True,
                "client": "client agent (Agent.run_once)", "hub": "synchub start (process)",
                "store": redacted_url(store) if store else "sqlite"},
        notes=(
            f"baseline: raw {raw} of the same rows, hub schema, "
            f"{BATCH_ROWS} rows a transaction",
        ),
    )


def _count(path: Path, store_url: str | None) -> int:
    store: OplogStore = (
        SqliteOplogStore(path) if store_url is None else hub.store.PostgresOplogStore(store_url)
    )
    try:
        return store.count()
    finally:
        store.close()
