"""handshakes: connections a second taken from TCP connect to CONNECTED, CURVE on.

``count`` bench clients in ``workers`` processes connect to a fresh hub
(``synchub start``, a child process), each through CURVE, HELLO, the hub's signed
CHALLENGE, PROOF and the hub's send_config; at most ``window`` are in progress
per worker (together under the hub's max_pending_handshakes). The rate is
completed handshakes over the time from the start signal to the last one.
Sessions stay open until the end, as real peers would.

Baseline, measured in this process before each repetition: ed25519 signature
verifications a second (``cryptography``), the hub's one unavoidable cost per
handshake (it also signs one challenge, about a third of a verify).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from hub.bench.fleet import Fleet, merged, split
from hub.bench.report import Goal, Result, figure
from hub.bench.rig import (
    HUB_INSTANCE,
    bench_clients,
    bench_dir,
    cpu_count,
    hub_process,
    make_hub_node,
    process_cpu_seconds,
    raise_open_file_limit,
)
from hub.bench.swarm import SwarmSpec
from hub.errors import BenchError
from hub.identity import SigningIdentity

GOAL_PER_SECOND = 2000.0

Say = Callable[[str], None]


def _quiet(_text: str) -> None:
    pass


def verify_rate(seconds: float = 0.5) -> float:
    """ed25519 verifications a second, one signature over a 32-byte digest."""
    signer = SigningIdentity.from_seed(bytes(32))
    public = signer._private.public_key()
    digest = bytes(range(32))
    signature = signer.sign(digest)
    done = 0
    started = time.perf_counter()
    deadline = started + seconds
    while True:
        for _ in range(200):
            public.verify(signature, digest)
        done += 200
        now = time.perf_counter()
        if now >= deadline:
            return done / (now - started)


def default_workers() -> int:
    return max(2, min(4, cpu_count()))


def run(
    count: int = 2000,
    repeat: int = 3,
    *,
    workers: int | None = None,
    window: int = 200,
    keep: Path | None = None,
    say: Say = _quiet,
    timeout: float = 300.0,
) -> Result:
    if count < 1 or repeat < 1:
        raise BenchError("--count and --repeat must be at least 1")
    workers = workers or default_workers()
    raise_open_file_limit(4 * count + 1024)
    rates: list[float] = []
    baselines: list[float] = []
    hub_cpu: list[float] = []
    client_cpu: list[float] = []
    clients = bench_clients(count)
    with bench_dir(keep) as root:
        for n in range(repeat):
            baselines.append(verify_rate())
            node = make_hub_node(
                root / f"hub-{n}", clients, max_pending_handshakes=max(1000, 2 * window * workers)
            )
            with hub_process(node) as (hub, endpoint):
                specs = [
                    SwarmSpec(
                        mode="handshake",
                        endpoint=endpoint,
                        hub_keyid=node.identity.signing.keyid,
                        hub_instance=HUB_INSTANCE,
                        hub_curve_public=node.identity.curve.public_text,
                        first_client=first,
                        count=size,
                        window=window,
                    )
                    for first, size in split(count, workers)
                ]
                with Fleet(specs, root) as fleet:
                    fleet.ready()
                    pids = [p.pid for p in fleet.processes]
                    hub_before = process_cpu_seconds(hub.pid)
                    clients_before = sum(process_cpu_seconds(pid) for pid in pids)
                    started = fleet.go()
                    fleet.wait_done(timeout)
                    hub_cpu.append(1000 * (process_cpu_seconds(hub.pid) - hub_before) / count)
                    client_cpu.append(
                        1000 * (sum(process_cpu_seconds(pid) for pid in pids) - clients_before)
                        / count
                    )
                    report = merged(fleet.stop())
            if report.failed:
                raise BenchError(f"{report.failed} handshakes failed: {report.errors}")
            elapsed = (max(report.done_ns) - started) / 1e9
            rates.append(count / elapsed)
            say(f"run {n + 1}/{repeat}: {count / elapsed:,.0f} handshakes/s "
                f"(verify {baselines[-1]:,.0f}/s)")
    rate = figure("handshakes.per_second", rates, "handshakes/s", baselines,
                  baseline_unit="verifies/s")
    return Result(
        scenario="handshakes",
        figures=(
            rate,
            figure("handshakes.hub_cpu_ms_each", hub_cpu, "ms"),
            figure("handshakes.client_cpu_ms_each", client_cpu, "ms"),
        ),
        goals=(Goal(f">= {GOAL_PER_SECOND:,.0f} handshakes/s (got {rate.value:,.0f})",
                    rate.value >= GOAL_PER_SECOND),),
        params={"count": count, "repeat": repeat, "workers": workers, "window": window,
                "curve": True, "hub": "synchub start (process)"},
        notes=(
            "baseline: ed25519 verifications a second (cryptography), this process",
            "cpu: all threads of the hub (and of the client processes) over the run, "
            "per handshake",
        ),
    )
