"""latency: an operation sent by a client until it is committed in the hub's oplog.

``peers`` bench clients in worker processes connect (CURVE on) to a hub running in
this process and each sends one operation every ``peers / rate`` seconds, its
send time (``time.monotonic_ns()``, one clock for every process) in its message.
A listener subscribed to the hub's OplogActor, called after each commit, takes
the difference. Each client's first operation is a warm-up and not counted.

Baseline, in this process before the hub starts: a raw DEALER -> ROUTER -> DEALER
round trip over loopback TCP with CURVE, one 600-byte frame at a time, through
pyzmq (the ROUTER echoes from a second thread).
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zmq

from actors import OplogEvent
from hub.bench.fleet import Fleet, merged, split
from hub.bench.report import Figure, Goal, Result, figure, percentile
from hub.bench.rig import HUB_INSTANCE, bench_clients, bench_dir, make_hub_node
from hub.bench.swarm import SwarmSpec, sent_ns
from hub.config import load_config
from hub.errors import BenchError
from hub.server import Hub

GOAL_P99_MS = 50.0
FRAME_BYTES = 600
ASK_TIMEOUT = 10.0

Say = Callable[[str], None]


def _quiet(_text: str) -> None:
    pass


def raw_round_trips(samples: int = 2000) -> list[float]:
    """Milliseconds of DEALER -> ROUTER -> DEALER round trips, CURVE on, loopback TCP."""
    context: zmq.Context[Any] = zmq.Context()
    server_public, server_secret = zmq.curve_keypair()
    router = context.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    router.setsockopt(zmq.CURVE_SERVER, 1)
    router.setsockopt(zmq.CURVE_SECRETKEY, server_secret)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    stop = threading.Event()

    def echo() -> None:
        poller = zmq.Poller()
        poller.register(router, zmq.POLLIN)
        while not stop.is_set():
            if poller.poll(50):
                router.send_multipart(router.recv_multipart())

    dealer = context.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    public, secret = zmq.curve_keypair()
    dealer.curve_serverkey = server_public
    dealer.curve_publickey = public
    dealer.curve_secretkey = secret
    thread = threading.Thread(target=echo, name="bench-echo")
    thread.start()
    times: list[float] = []
    try:
        dealer.connect(f"tcp://127.0.0.1:{port}")
        frame = bytes(FRAME_BYTES)
        for n in range(samples + 50):
            started = time.monotonic_ns()
            dealer.send(frame)
            if not dealer.poll(5000):
                raise BenchError("the raw round trip got no echo within 5s")
            dealer.recv()
            if n >= 50:
                times.append((time.monotonic_ns() - started) / 1e6)
    finally:
        stop.set()
        thread.join()
        dealer.close(linger=0)
        router.close(linger=0)
        context.term()
    return times


def run(
    peers: int = 100,
    samples: int = 2000,
    *,
    rate: float = 200.0,
    workers: int | None = None,
    keep: Path | None = None,
    say: Say = _quiet,
    timeout: float = 300.0,
) -> Result:
    if peers < 1 or samples < 1 or rate <= 0:
        raise BenchError("--peers, --samples and --rate must be positive")
    workers = workers or min(2, peers)
    baseline = raw_round_trips(min(samples, 2000))
    per_peer = math.ceil(samples / peers) + 1
    interval = peers / rate
    arrivals: queue.SimpleQueue[tuple[int, int]] = queue.SimpleQueue()

    def listener(event: OplogEvent) -> None:
        now = time.monotonic_ns()
        for op in event.operations:
            sent = sent_ns(op)
            if sent is not None and op.original_id > 1:
                arrivals.put((op.original_id, now - sent))

    latencies: list[float] = []
    with bench_dir(keep) as root:
        node = make_hub_node(root / "hub", bench_clients(peers))
        hub = Hub(load_config(node.config_path))
        try:
            endpoint = hub.start()
            token = hub.oplog.subscribe(listener).get(timeout=ASK_TIMEOUT)
            assert hub.identity is not None
            specs = [
                SwarmSpec(
                    mode="latency",
                    endpoint=endpoint,
                    hub_keyid=hub.identity.signing.keyid,
                    hub_instance=HUB_INSTANCE,
                    hub_curve_public=hub.identity.curve.public_text,
                    first_client=first,
                    count=size,
                    interval=interval,
                    latency_ops=per_peer,
                )
                for first, size in split(peers, workers)
            ]
            wanted = peers * (per_peer - 1)
            with Fleet(specs, root) as fleet:
                fleet.ready()
                fleet.go()
                fleet.wait_done(timeout)
                deadline = time.monotonic() + per_peer * interval + timeout
                while len(latencies) < wanted and time.monotonic() < deadline:
                    try:
                        latencies.append(arrivals.get(timeout=1.0)[1] / 1e6)
                    except queue.Empty:
                        continue
                report = merged(fleet.stop())
            hub.oplog.unsubscribe(token).get(timeout=ASK_TIMEOUT)
        finally:
            hub.stop()
    if report.failed or len(latencies) < wanted:
        raise BenchError(
            f"got {len(latencies)} of {wanted} operations; client errors: {report.errors}"
        )
    say(f"{len(latencies)} samples from {peers} peers at {rate:g} ops/s")
    p50 = figure("latency.p50_ms", [percentile(latencies, 0.5)], "ms",
                 [percentile(baseline, 0.5)])
    p99 = figure("latency.p99_ms", [percentile(latencies, 0.99)], "ms",
                 [percentile(baseline, 0.99)])
    worst = Figure("latency.max_ms", max(latencies), "ms", baseline=max(baseline))
    return Result(
        scenario="latency",
        figures=(p50, p99, worst),
        goals=(Goal(f"p99 < {GOAL_P99_MS:g} ms (got {p99.value:.1f})", p99.value < GOAL_P99_MS),),
        params={"peers": peers, "samples": len(latencies), "rate": rate, "workers": workers,
                "curve": True, "hub": "Hub in this process"},
        notes=("baseline: raw pyzmq DEALER->ROUTER->DEALER round trip, CURVE, loopback, "
               f"{FRAME_BYTES}-byte frames",),
    )
