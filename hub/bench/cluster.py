"""handshakes --hubs N and peers --hubs N: the same clients spread over N hub processes
on one PostgreSQL database, beside one hub on the same database, in the same run.

Each repetition measures both layouts, one after the other, each in a fresh scratch
schema of the ``--store`` database (``ingest.scratch_schema``) so neither sees the
other's rows: the clients are authorized in it (rows, as a cluster keeps them), the
hubs share one identity (the first hub's ``identity/`` copied), and the client
processes are dealt out over the hubs' endpoints, one hub per worker in turn. The
figure is the N-hub value with the one-hub value as its baseline; the ratio is what
the other hubs add. On a machine with few cores the client processes compete with
the hubs for them: quote the cores beside the ratio (``params.cores``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from hub.bench.fleet import Fleet, merged, split
from hub.bench.ingest import scratch_schema
from hub.bench.report import Result, figure
from hub.bench.rig import (
    HUB_INSTANCE,
    BenchClient,
    HubNode,
    HubProcess,
    bench_clients,
    bench_dir,
    cpu_count,
    make_hub_node,
    process_cpu_seconds,
    raise_open_file_limit,
)
from hub.bench.swarm import SwarmSpec
from hub.errors import BenchError

Say = Callable[[str], None]


@dataclass(frozen=True)
class Layout:
    """One measurement's shape: how many hubs, and what each client does."""

    hubs: int
    mode: str  # "handshake" or "sync"
    count: int
    workers: int
    window: int
    ops: int = 100


@dataclass(frozen=True)
class Measured:
    seconds: float
    hub_cpu_seconds: float
    stored: int


@contextlib.contextmanager
def running_cluster(
    root: Path, url: str, hubs: int, clients: list[BenchClient], max_pending: int
) -> Iterator[list[tuple[HubNode, str, HubProcess]]]:
    """``hubs`` hub processes on ``url``, one identity; (node, endpoint, process) each."""
    nodes: list[HubNode] = []
    for n in range(hubs):
        nodes.append(make_hub_node(
            root / f"hub-{n}", clients if n == 0 else [], store_url=url,
            max_pending_handshakes=max_pending, node_name=f"bench-{n}",
            identity_from=nodes[0].data_dir if nodes else None,
        ))
    with contextlib.ExitStack() as stack:
        started: list[tuple[HubNode, str, HubProcess]] = []
        for node in nodes:
            # Each hub's web side would want the same default port: the bench needs none.
            with node.config_path.open("a") as config:
                config.write('\n[web]\nbind = ""\n')
            process = HubProcess(node)
            stack.callback(process.stop)
            started.append((node, process.wait_ready(), process))
        yield started


def measure(root: Path, url: str, layout: Layout, clients: list[BenchClient],
            timeout: float) -> Measured:
    """One layout in its own scratch schema: seconds from the start signal to the last
    client done, the hubs' CPU seconds meanwhile, operations stored."""
    max_pending = max(1000, 2 * layout.window * layout.workers)
    with running_cluster(root, url, layout.hubs, clients, max_pending) as hubs:
        node = hubs[0][0]
        specs = [
            SwarmSpec(
                mode=layout.mode, endpoint=hubs[n % len(hubs)][1],
                hub_keyid=node.identity.signing.keyid, hub_instance=HUB_INSTANCE,
                hub_curve_public=node.identity.curve.public_text,
                first_client=first, count=size, window=layout.window, ops=layout.ops,
            )
            for n, (first, size) in enumerate(split(layout.count, layout.workers))
        ]
        pids = [process.pid for _node, _endpoint, process in hubs]
        with Fleet(specs, root) as fleet:
            fleet.ready()
            cpu_before = sum(process_cpu_seconds(pid) for pid in pids)
            started = fleet.go()
            fleet.wait_done(timeout)
            cpu = sum(process_cpu_seconds(pid) for pid in pids) - cpu_before
            report = merged(fleet.stop())
    if report.failed:
        raise BenchError(f"{report.failed} clients failed with {layout.hubs} hub(s): "
                         f"{report.errors}")
    seconds = (max(report.done_ns) - started) / 1e9
    return Measured(seconds, cpu, _stored(url) if layout.mode == "sync" else 0)


def _stored(url: str) -> int:
    import psycopg  # noqa: PLC0415 - only --store loads the driver

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM operations").fetchone()
    return int(row[0]) if row else 0


def compare(
    url: str, layout: Layout, *, repeat: int, keep: Path | None, say: Say, timeout: float,
) -> tuple[list[Measured], list[Measured]]:
    """``repeat`` pairs of runs: one hub, then ``layout.hubs``, each in a fresh schema."""
    hubs = layout.hubs
    if hubs < 2:
        raise BenchError("--hubs must be at least 2 to compare with one hub")
    raise_open_file_limit(4 * layout.count + 1024)
    clients = bench_clients(layout.count)
    one: list[Measured] = []
    many: list[Measured] = []
    with bench_dir(keep) as root:
        for n in range(repeat):
            for count, into in ((1, one), (hubs, many)):
                name = f"synchub_bench_cluster_{n}_{count}"
                with scratch_schema(url, name) as scratch:
                    shape = Layout(count, layout.mode, layout.count, layout.workers,
                                   layout.window, layout.ops)
                    into.append(measure(root / f"run-{n}-{count}", scratch, shape, clients,
                                        timeout))
                say(f"run {n + 1}/{repeat}, {count} hub(s): {into[-1].seconds:.2f}s")
    return one, many


def handshakes(
    url: str, hubs: int, count: int, repeat: int, *, workers: int | None, window: int,
    keep: Path | None, say: Say, timeout: float = 300.0,
) -> Result:
    workers = max(workers or 2, hubs)
    one, many = compare(url, Layout(hubs, "handshake", count, workers, window),
                        repeat=repeat, keep=keep, say=say, timeout=timeout)
    return Result(
        scenario="handshakes",
        figures=(
            figure("handshakes.cluster_per_second", [count / m.seconds for m in many],
                   "handshakes/s", [count / m.seconds for m in one],
                   baseline_label="one hub"),
            figure("handshakes.cluster_hub_cpu_ms_each",
                   [1000 * m.hub_cpu_seconds / count for m in many], "ms",
                   [1000 * m.hub_cpu_seconds / count for m in one], baseline_label="one hub"),
        ),
        params={"count": count, "repeat": repeat, "workers": workers, "window": window,
                "hubs": hubs, "store": "PostgreSQL", "cores": cpu_count(), "curve": True},
        notes=_notes(hubs),
    )


def peers(
    url: str, hubs: int, count: int, *, ops: int, repeat: int, workers: int | None,
    window: int, keep: Path | None, say: Say, timeout: float = 600.0,
) -> Result:
    workers = max(workers or 2, hubs)
    one, many = compare(url, Layout(hubs, "sync", count, workers, window, ops),
                        repeat=repeat, keep=keep, say=say, timeout=timeout)
    for m in (*one, *many):
        if m.stored != count * ops:
            raise BenchError(f"the database holds {m.stored} operations, expected "
                             f"{count * ops}")
    return Result(
        scenario="peers",
        figures=(
            figure("peers.cluster_synced_per_second", [count / m.seconds for m in many],
                   "peers/s", [count / m.seconds for m in one], baseline_label="one hub"),
            figure("peers.cluster_ops_per_second", [count * ops / m.seconds for m in many],
                   "ops/s", [count * ops / m.seconds for m in one], baseline_label="one hub"),
            figure("peers.cluster_all_synced_seconds", [m.seconds for m in many], "s",
                   [m.seconds for m in one], baseline_label="one hub"),
        ),
        params={"peers": count, "ops": ops, "repeat": repeat, "workers": workers,
                "window": window, "hubs": hubs, "store": "PostgreSQL", "cores": cpu_count(),
                "curve": True},
        notes=_notes(hubs),
    )


def _notes(hubs: int) -> tuple[str, ...]:
    return (
        f"baseline: one hub on the same database, same clients, same run; value: {hubs} "
        "hubs, client processes dealt out over them",
        "each layout in a fresh scratch schema; hubs are `synchub start` processes",
    )
