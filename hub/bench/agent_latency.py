"""latency --through-agent: a job recorded by `synchub run` until committed on the hub.

The hub runs in the bench process (CURVE on), with a listener subscribed to its
OplogActor, called after each commit; the client agent is the real `synchub
agent` command in a process of its own, on a data_dir of its own. Jobs are
recorded in the client's oplog by ``record_job``, the function `synchub run` is
(each runs ``true``), one every ``JOB_INTERVAL`` seconds: a period that is no
divisor of the agent's 0.5 s poll, so the jobs' commits fall all over it.

A job is timed from its recorded end (``unix_time_end_ms``, wall clock, set just
before the local commit) until the hub committed its finished state (wall clock
in the listener): the local write is inside the span, and the millisecond
resolution of the end time can add up to 1 ms, never take any off.

Two runs with the same agent and hub: first the jobs as `synchub run` records them
(each commit wakes the agent), then the polling baseline, the same operations
written by a writer that does not wake the agent (as an external tool would), so
only the agent's poll finds them. Beside them, the raw DEALER -> ROUTER round trip
of ``latency`` (CURVE, loopback), measured in this process before the hub starts.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from actors import OplogEvent
from hub.bench.latency import FRAME_BYTES, raw_round_trips
from hub.bench.report import Figure, Goal, Result, figure, percentile
from hub.bench.rig import (
    PLAN_ID,
    ClientNode,
    bench_dir,
    make_client_node,
    make_hub_node,
    write_client_config,
)
from hub.cli.run_cmds import record_job
from hub.config import Config, load_config
from hub.errors import BenchError
from hub.pb import synchub_pb2 as pb
from hub.server import Hub
from hub.store import SqliteOplogStore, new_operation, now_ms, oplog_path

GOAL_P99_MS = 100.0
JOB_INTERVAL = 0.037
ASK_TIMEOUT = 10.0
ARRIVAL_TIMEOUT = 30.0
_AGENT_COMMAND = "from hub.cli import main; main()"

Say = Callable[[str], None]


def _quiet(_text: str) -> None:
    pass


class _Arrivals:
    """Finished operations of the client as the hub commits them: (client id, wall ns)."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[int, int]] = queue.SimpleQueue()

    def listener(self, event: OplogEvent) -> None:
        now = time.time_ns()
        for op in event.operations:
            if op.status == pb.STATUS_SUCCESS:
                self._queue.put((op.original_id, now))

    def wait_for(self, wanted: dict[int, int], timeout: float) -> list[float]:
        """Milliseconds from each wanted id's end time (ms) to its arrival; BenchError
        when some do not arrive within ``timeout`` of the last one that did."""
        latencies: list[float] = []
        deadline = time.monotonic() + timeout
        while wanted:
            try:
                op_id, at_ns = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise BenchError(
                    f"{len(wanted)} jobs did not reach the hub within {timeout:g}s"
                ) from None
            end_ms = wanted.pop(op_id, None)
            if end_ms is not None:
                latencies.append(at_ns / 1e6 - end_ms)
                deadline = time.monotonic() + timeout
        return latencies

    def drain(self) -> None:
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return


@contextmanager
def _agent_process(node: ClientNode) -> Iterator[subprocess.Popen[bytes]]:
    """`synchub agent` on the client's config, its log in agent.log."""
    with (node.root / "agent.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", _AGENT_COMMAND, "--config", str(node.config_path), "agent"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, cwd=node.root,
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def _paced(jobs: int) -> Iterator[int]:
    """0..jobs-1, each at its slot of JOB_INTERVAL from the first."""
    start = time.monotonic()
    for n in range(jobs):
        delay = start + n * JOB_INTERVAL - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        yield n


def _run_jobs(config: Config, jobs: int, sink: IO[bytes]) -> dict[int, int]:
    """``jobs`` jobs recorded as `synchub run -- true` records them: id -> end time (ms)."""
    ended: dict[int, int] = {}
    for _ in _paced(jobs):
        job = record_job(config, ["true"], out=sink, err=sink, plan_id=PLAN_ID)
        if job.outcome.status != pb.STATUS_SUCCESS or job.record_error:
            raise BenchError(f"a job failed: {job.outcome.describe()} {job.record_error}")
        ended[job.operation.id] = job.operation.unix_time_end_ms
    return ended


def _write_unannounced(config: Config, jobs: int) -> dict[int, int]:
    """The same finished jobs written by a writer that does not wake the agent."""
    ended: dict[int, int] = {}
    store = SqliteOplogStore(oplog_path(config.data_dir))
    try:
        for n in _paced(jobs):
            op = new_operation(config, display_message=f"true (unannounced {n})",
                               plan_id=PLAN_ID, status=pb.STATUS_SUCCESS)
            op.unix_time_end_ms = now_ms()
            [stored] = store.add_local([op])
            ended[stored.id] = stored.unix_time_end_ms
    finally:
        store.close()
    return ended


def run(
    jobs: int = 200,
    *,
    baseline: bool = True,
    keep: Path | None = None,
    say: Say = _quiet,
) -> Result:
    """Time ``jobs`` jobs through the real agent, then the polling baseline (unless
    ``baseline`` is False), beside the raw round trip."""
    if jobs < 1:
        raise BenchError("--jobs must be positive")
    raw = raw_round_trips(2000)
    arrivals = _Arrivals()
    with bench_dir(keep) as root, open(os.devnull, "wb") as sink:
        client = make_client_node(root / "client")
        node = make_hub_node(root / "hub", [client.bench_client])
        hub = Hub(load_config(node.config_path))
        try:
            endpoint = hub.start()
            token = hub.oplog.subscribe(arrivals.listener).get(timeout=ASK_TIMEOUT)
            config = load_config(write_client_config(client, node, endpoint))
            with _agent_process(client) as agent:
                # The warm-up: the agent is connected and in sync once this arrives.
                arrivals.wait_for(_run_jobs(config, 1, sink), ARRIVAL_TIMEOUT)
                if agent.poll() is not None:
                    raise BenchError(f"the agent exited with status {agent.returncode}")
                woken = arrivals.wait_for(_run_jobs(config, jobs, sink), ARRIVAL_TIMEOUT)
                say(f"{len(woken)} jobs recorded by record_job (the agent woken)")
                polled: list[float] = []
                if baseline:
                    arrivals.drain()
                    polled = arrivals.wait_for(_write_unannounced(config, jobs), ARRIVAL_TIMEOUT)
                    say(f"{len(polled)} jobs written without waking the agent (polled)")
            hub.oplog.unsubscribe(token).get(timeout=ASK_TIMEOUT)
        finally:
            hub.stop()
    return _result(woken, polled, raw, jobs)


def _result(woken: list[float], polled: list[float], raw: list[float], jobs: int) -> Result:
    label = "polling, same agent"

    def pair(name: str, fraction: float) -> Figure:
        if not polled:
            return figure(name, [percentile(woken, fraction)], "ms")
        return figure(name, [percentile(woken, fraction)], "ms",
                      [percentile(polled, fraction)], baseline_label=label)

    p99 = percentile(woken, 0.99)
    worst = Figure("latency.agent_max_ms", max(woken), "ms",
                   baseline=max(polled) if polled else None, baseline_label=label)
    versus_raw = figure("latency.agent_p99_vs_raw_ms", [p99], "ms",
                        [percentile(raw, 0.99)], baseline_label="raw round trip p99")
    return Result(
        scenario="latency",
        figures=(pair("latency.agent_p50_ms", 0.5), pair("latency.agent_p99_ms", 0.99),
                 worst, versus_raw),
        goals=(Goal(f"p99 < {GOAL_P99_MS:g} ms through the agent (got {p99:.1f})",
                    p99 < GOAL_P99_MS),),
        params={"through_agent": True, "jobs": jobs, "interval_s": JOB_INTERVAL,
                "polling_baseline": bool(polled), "curve": True,
                "hub": "Hub in this process", "agent": "synchub agent process"},
        notes=(
            "timed from the job's recorded end (ms, before its local commit) to the "
            "hub's commit of the finished operation",
            f"{label}: the same jobs written without the wake-up, found by the agent's "
            "0.5 s poll",
            f"raw round trip: pyzmq DEALER->ROUTER->DEALER, CURVE, loopback, "
            f"{FRAME_BYTES}-byte frames",
        ),
    )
