"""web: the dashboard and the API of a hub holding many peers and operations.

The hub's oplog is filled directly (raw inserts into its schema) with ``ops``
operations spread over ``peers`` authorized peers, two plans each, 2% of them
failed and 3% warnings, all recent; their peer states are saved beside it. Then
``synchub start`` runs as a child process with its web side on a free loopback
port, and this process times, over one keep-alive connection as a browser would
(gzip accepted):

- ``/`` (the fleet: every peer, every plan with its last 50 runs), after one warm-up
  request (the first render of each plan's row is timed on its own: ``first``);
- ``/api/operations?status=error&limit=100``.

Baselines, the equivalent raw SQL on the same file from this process: for ``/``,
each plan's last 50 runs by a window query over the oplog (what the page would
cost without the incrementally kept state); for the API, its own statement
(``hub.store.find_sql``), rows fetched, not decoded. Also: how long the hub took to
be ready (it builds the per-plan state once from the store at start).
"""

from __future__ import annotations

import http.client
import socket
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from hub.bench.report import Figure, Goal, Result, figure
from hub.bench.rig import (
    REPO_GUID,
    REPO_ID,
    HubProcess,
    bench_clients,
    bench_dir,
    make_hub_node,
)
from hub.errors import BenchError
from hub.pb import synchub_pb2 as pb
from hub.store import (
    INSERT_SQL,
    OperationQuery,
    PeerStore,
    SqliteOplogStore,
    find_sql,
    now_ms,
)

Say = Callable[[str], None]

PLANS = ("nightly", "hourly")
PAGE_GOAL_MS = 200.0
API_GOAL_MS = 50.0
API_PATH = "/api/operations?status=error&limit=100"
WINDOW_SQL = (
    "SELECT instance_id, plan_id, id, status, unix_time_start_ms FROM ("
    "SELECT instance_id, plan_id, id, status, unix_time_start_ms, row_number() OVER "
    "(PARTITION BY instance_id, plan_id ORDER BY id DESC) AS n FROM operations) WHERE n <= 50"
)
_CHUNK = 20_000


def _quiet(_text: str) -> None:
    pass


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _status(index: int) -> pb.OperationStatus:
    bucket = index % 100
    if bucket < 2:
        return pb.STATUS_ERROR
    if bucket < 5:
        return pb.STATUS_WARNING
    return pb.STATUS_SUCCESS


def seed(oplog: Path, data_dir: Path, peers: int, ops: int) -> None:
    """``ops`` operations over ``peers`` clients and two plans, newest last; their peer states."""
    SqliteOplogStore(oplog).close()
    clients = bench_clients(peers)
    start = now_ms() - ops * 1_000
    db = sqlite3.connect(oplog, isolation_level=None)
    try:
        db.execute("PRAGMA synchronous = OFF")
        per_client = [0] * peers
        for first in range(0, ops, _CHUNK):
            rows = []
            for index in range(first, min(ops, first + _CHUNK)):
                peer = index % peers
                per_client[peer] += 1
                op = pb.Operation(
                    id=index + 1, flow_id=index + 1, modno=1,
                    repo_id=REPO_ID, repo_guid=REPO_GUID,
                    plan_id=PLANS[(index // peers) % 2],
                    instance_id=clients[peer].instance_id, status=_status(index),
                    unix_time_start_ms=start + index * 1_000,
                    unix_time_end_ms=start + index * 1_000 + 30_000,
                    display_message=f"backup {index}", original_instance_keyid=clients[peer].keyid,
                    original_id=per_client[peer], original_flow_id=per_client[peer],
                )
                rows.append((
                    op.id, op.flow_id, op.modno, op.original_instance_keyid, op.original_id,
                    op.original_flow_id, op.repo_guid, op.plan_id, op.instance_id,
                    op.instance_id, "", op.unix_time_start_ms, op.status, op.SerializeToString(),
                ))
            db.execute("BEGIN")
            db.executemany(INSERT_SQL, rows)
            db.execute("COMMIT")
        db.execute("UPDATE counters SET last_id = ?, last_modno = 0", (ops,))
    finally:
        db.close()
    store = PeerStore(data_dir)
    try:
        store.save(
            pb.PeerState(
                peer_instance_id=c.instance_id, peer_keyid=c.keyid,
                state=pb.CONNECTION_STATE_CONNECTED, known_plans=list(PLANS),
                known_repos=[REPO_ID], last_heartbeat_millis=now_ms(),
            )
            for c in clients
        )
    finally:
        store.close()


def _timed_get(conn: http.client.HTTPConnection, path: str) -> tuple[float, int]:
    started = time.perf_counter()
    conn.request("GET", path, headers={"Accept-Encoding": "gzip"})
    answer = conn.getresponse()
    body = answer.read()
    elapsed = (time.perf_counter() - started) * 1000
    if answer.status != 200:
        raise BenchError(f"GET {path} answered {answer.status}: {body[:200]!r}")
    return elapsed, len(body)


def _raw_ms(oplog: Path, sql: str, params: tuple[object, ...], repeat: int) -> list[float]:
    db = sqlite3.connect(f"{oplog.resolve().as_uri()}?mode=ro", uri=True)
    try:
        samples = []
        for _ in range(repeat):
            started = time.perf_counter()
            db.execute(sql, params).fetchall()
            samples.append((time.perf_counter() - started) * 1000)
        return samples
    finally:
        db.close()


def _wait_web(port: int, hub: HubProcess, timeout: float = 120.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if hub.process.poll() is not None:
            raise BenchError(f"the hub exited:\n{hub.log_text()}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                conn.close()
                return time.monotonic() - started
            conn.close()
        except OSError:
            pass
        time.sleep(0.05)
    raise BenchError(f"the hub's web side did not answer within {timeout:g}s")


def run(peers: int, ops: int, repeat: int, *, keep: Path | None = None,
        say: Say = _quiet) -> Result:
    if ops < peers * len(PLANS):
        raise BenchError(f"--ops must be at least {peers * len(PLANS)} (two runs per peer)")
    with bench_dir(keep) as root:
        node = make_hub_node(root / "hub", bench_clients(peers))
        port = _free_port()
        with node.config_path.open("a") as config:
            config.write(f'\n[web]\nbind = "127.0.0.1:{port}"\n')
        say(f"seeding {ops:,} operations over {peers} peers")
        started = time.perf_counter()
        seed(node.oplog_path, node.data_dir, peers, ops)
        say(f"seeded in {time.perf_counter() - started:.1f}s")
        hub = HubProcess(node)
        try:
            ready = _wait_web(port, hub)
            say(f"hub ready in {ready:.1f}s")
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            first, page_bytes = _timed_get(conn, "/")
            page = [_timed_get(conn, "/")[0] for _ in range(repeat)]
            api = [_timed_get(conn, API_PATH)[0] for _ in range(repeat)]
            conn.close()
        finally:
            hub.stop()
        window = _raw_ms(node.oplog_path, WINDOW_SQL, (), max(1, min(repeat, 3)))
        sql, params = find_sql(OperationQuery(status=pb.STATUS_ERROR, limit=100))
        raw_api = _raw_ms(node.oplog_path, sql, params, repeat)
    page_figure = figure("web.dashboard_ms", page, "ms", window,
                         baseline_label="raw SQL, last 50 runs of every plan")
    api_figure = figure("web.api_errors_ms", api, "ms", raw_api,
                        baseline_label="raw SQL, same statement")
    figures: tuple[Figure, ...] = (
        page_figure,
        api_figure,
        Figure("web.dashboard_first_ms", first, "ms (the first request renders every row)"),
        Figure("web.dashboard_bytes", float(page_bytes), "bytes (gzip)"),
        Figure("web.hub_ready_seconds", ready, "s"),
    )
    goals = (
        Goal(f"/ < {PAGE_GOAL_MS:g} ms (median)", page_figure.value < PAGE_GOAL_MS),
        Goal(f"{API_PATH} < {API_GOAL_MS:g} ms (median)", api_figure.value < API_GOAL_MS),
    )
    return Result(
        "web", figures, goals, params={"peers": peers, "ops": ops, "repeat": repeat},
        notes=(f"{peers * len(PLANS)} plans, {peers * len(PLANS) * 50:,} history cells on /",),
    )
