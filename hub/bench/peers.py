"""peers: many clients at once, syncing or idle, against one hub process.

Sync (the default): ``peers`` bench clients in ``workers`` processes connect to a
fresh hub (``synchub start``, CURVE on), complete the handshake, diff ``ops``
operations, send the ones the hub requests and diff again until the hub answers
with an empty list. The time runs from the start signal until the last client is
in sync; the hub's peak resident memory (VmHWM) is read from /proc at the end.

Idle (``idle`` > 0): that many clients connect and then only heartbeat, every
``heartbeat_interval`` seconds (the hub's interval too), for ``hold`` seconds,
longer than the three intervals after which a silent peer is dropped. At the end
the hub's own count of CONNECTED peers (admin socket) and every client's view
(no error received) say whether they all stayed connected.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hub.admin import ask_hub
from hub.bench.fleet import Fleet, merged, split
from hub.bench.handshakes import default_workers
from hub.bench.report import Figure, Goal, Result, goal_figure
from hub.bench.rig import (
    HUB_INSTANCE,
    HubProcess,
    bench_clients,
    bench_dir,
    hub_process,
    make_hub_node,
    process_cpu_seconds,
    raise_open_file_limit,
)
from hub.bench.swarm import SwarmReport, SwarmSpec
from hub.errors import AdminUnavailable, BenchError
from hub.pb import synchub_pb2 as pb
from hub.store import SqliteOplogStore, read_peer_states

GOAL_SYNC_SECONDS = 30.0
GOAL_RSS_MB = 500.0
MB = 1024 * 1024

Say = Callable[[str], None]


def _quiet(_text: str) -> None:
    pass


@dataclass
class _Observed:
    """What one run measured."""

    count: int
    workers: int
    report: SwarmReport = field(default_factory=SwarmReport)
    seconds: float = 0.0
    base_rss: int = 0
    peak_rss: int = 0
    rss: int = 0
    held_operations: int = 0
    hub_connected: int = 0
    busy_percent: float = 0.0


def run(
    peers: int = 1000,
    *,
    ops: int = 100,
    idle: int = 0,
    hold: float = 20.0,
    heartbeat_interval: float = 5.0,
    workers: int | None = None,
    window: int = 100,
    keep: Path | None = None,
    say: Say = _quiet,
    timeout: float = 600.0,
) -> Result:
    count = idle or peers
    if count < 1 or ops < 1:
        raise BenchError("--peers (or --idle) and --ops must be at least 1")
    seen = _Observed(count=count, workers=workers or default_workers())
    raise_open_file_limit(4 * count + 1024)
    clients = bench_clients(count)
    with bench_dir(keep) as root:
        node = make_hub_node(
            root / "hub", clients, heartbeat_interval=heartbeat_interval,
            max_pending_handshakes=max(1000, 2 * window * seen.workers),
        )
        with hub_process(node) as (hub, endpoint):
            seen.base_rss = hub.status_field("VmRSS")
            specs = [
                SwarmSpec(
                    mode="idle" if idle else "sync",
                    endpoint=endpoint,
                    hub_keyid=node.identity.signing.keyid,
                    hub_instance=HUB_INSTANCE,
                    hub_curve_public=node.identity.curve.public_text,
                    first_client=first,
                    count=size,
                    window=window,
                    ops=ops,
                    heartbeat_interval=heartbeat_interval,
                )
                for first, size in split(count, seen.workers)
            ]
            with Fleet(specs, root) as fleet:
                fleet.ready()
                started = fleet.go()
                fleet.wait_done(timeout)
                seen.seconds = (time.monotonic_ns() - started) / 1e9
                say(f"{count} peers {'connected' if idle else 'in sync'} after "
                    f"{seen.seconds:.1f}s")
                if idle:
                    seen.busy_percent = _hold(hub, hold, say)
                    seen.hub_connected = _connected_peers(node.data_dir)
                seen.report = merged(fleet.stop())
            if seen.report.done_ns:
                seen.seconds = (max(seen.report.done_ns) - started) / 1e9
            seen.peak_rss = hub.status_field("VmHWM")
            seen.rss = hub.status_field("VmRSS")
        if not idle:
            seen.held_operations = _count_operations(node.oplog_path)
    if idle:
        return _idle_result(seen, hold, heartbeat_interval)
    return _sync_result(seen, ops, window)


def _hold(hub: HubProcess, hold: float, say: Say) -> float:
    """Wait ``hold`` seconds; returns the hub's CPU use meanwhile, in % of one core."""
    started, cpu_before = time.monotonic(), process_cpu_seconds(hub.pid)
    deadline = started + hold
    while time.monotonic() < deadline:
        if hub.process.poll() is not None:
            raise BenchError(f"the hub exited while holding idle peers:\n{hub.log_text()}")
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
    busy = 100 * (process_cpu_seconds(hub.pid) - cpu_before) / (time.monotonic() - started)
    say(f"held for {hold:g}s; hub CPU {busy:.0f}% of a core, "
        f"peak RSS {hub.status_field('VmHWM') / MB:.0f} MB")
    return busy


def _connected_peers(data_dir: Path) -> int:
    """The running hub's count of CONNECTED peers (its peer store when it has no
    admin socket: a --keep path too long for one)."""
    try:
        status = ask_hub(data_dir, "status", timeout=30.0)
    except AdminUnavailable:
        states = read_peer_states(data_dir)
        return sum(1 for s in states if s.state == pb.CONNECTION_STATE_CONNECTED)
    connected = status.get("peers_connected")
    return connected if isinstance(connected, int) else 0


def _count_operations(path: Path) -> int:
    store = SqliteOplogStore(path)
    try:
        return store.count()
    finally:
        store.close()


def _sync_result(seen: _Observed, ops: int, window: int) -> Result:
    report, peers = seen.report, seen.count
    if report.failed:
        raise BenchError(f"{report.failed} peers failed to sync: {report.errors}")
    if seen.held_operations != peers * ops:
        raise BenchError(
            f"the hub holds {seen.held_operations} operations, expected {peers * ops}"
        )
    peak_mb = seen.peak_rss / MB
    return Result(
        scenario="peers",
        figures=(
            goal_figure("peers.all_synced_seconds", [seen.seconds], "s", GOAL_SYNC_SECONDS),
            goal_figure("peers.hub_peak_rss_mb", [peak_mb], "MB", GOAL_RSS_MB),
            Figure("peers.synced_per_second", peers / seen.seconds, "peers/s"),
            Figure("peers.ops_per_second", seen.held_operations / seen.seconds, "ops/s"),
        ),
        goals=(
            Goal(f"{peers} peers synced in < {GOAL_SYNC_SECONDS:g} s (got {seen.seconds:.1f})",
                 seen.seconds < GOAL_SYNC_SECONDS),
            Goal(f"hub peak RSS < {GOAL_RSS_MB:g} MB (got {peak_mb:.0f})",
                 peak_mb < GOAL_RSS_MB),
        ),
        params={"peers": peers, "ops": ops, "workers": seen.workers, "window": window,
                "curve": True, "hub": "synchub start (process)"},
        notes=(f"hub RSS before the peers came: {seen.base_rss / MB:.0f} MB",),
    )


def _idle_result(seen: _Observed, hold: float, heartbeat_interval: float) -> Result:
    report, count = seen.report, seen.count
    all_stayed = (
        report.failed == 0 and seen.hub_connected == count and report.connected_at_stop == count
    )
    return Result(
        scenario="peers",
        figures=(
            Figure("peers.idle_hub_peak_rss_mb", seen.peak_rss / MB, "MB"),
            Figure("peers.idle_rss_per_peer_kb", (seen.rss - seen.base_rss) / 1024 / count, "KB"),
            Figure("peers.idle_connected_at_end", float(seen.hub_connected), "peers",
                   baseline=float(count), baseline_label="held"),
            Figure("peers.idle_hub_cpu_percent", seen.busy_percent, "% of a core"),
            Figure("peers.idle_all_connected_seconds", seen.seconds, "s"),
            Figure("peers.idle_hub_heartbeats_received", float(report.hub_heartbeats),
                   "frames"),
        ),
        goals=(
            Goal(f"{count} idle peers held for {hold:g}s, all CONNECTED "
                 f"(hub counts {seen.hub_connected}, {report.failed} clients saw an error)",
                 all_stayed),
        ),
        params={"idle": count, "hold": hold, "heartbeat_interval": heartbeat_interval,
                "workers": seen.workers, "curve": True, "hub": "synchub start (process)"},
        notes=(f"hub RSS before the peers came: {seen.base_rss / MB:.0f} MB",
               *(f"client error x{n}: {m}" for m, n in report.errors.items())),
    )
