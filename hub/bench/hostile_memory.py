"""hostile memory: the hub's resident memory while one authorized key attacks it.

    synchub bench hostile --attack memory [--holders 1000] [--settle 60] [--scale 1]

Against ``synchub start`` as a process, ``holders`` unauthenticated connections from
``sources`` loopback addresses hold HELLOs (as in ``--attack hello-flood``) for the whole
attack, while one authorized key, ignoring every ``throttle``, runs these one after
another, each on a fresh connection (a session the hub ends is followed by the next):

1. ``big-batches``: 40 batches of 15 MiB pipelined (600 MiB);
2. ``send-config``: 1,500 ``send_config`` items of 440 KiB (650 MiB);
3. ``list-resources``: 1,500 ``list_resources`` items of 440 KiB (650 MiB);
4. ``unread``: 120 diffs of 400,000 ids the hub lacks (each answer requests them all),
   never reading a reply until the flood is sent;
5. ``displaced``: 4 sessions of the key one after another, each displacing the one
   before, each pipelining 8 diffs of 1,000,000 ids and reading nothing.

Each phase ends with the acknowledgement diff behind its frames and waits for the hub's answer
to it or for the error that ended the session (at most ``phase_timeout``, 15 s, from
the phase's first frame; then the next phase starts).
``scale`` shrinks every count and id list (at least one of each).

The hub's VmRSS (/proc/PID/status) is sampled every 100 ms, and its VmHWM is reset
(``clear_refs``) as the attack starts, so a peak between two samples is not missed.
Figures: the RSS before the attack (the baseline: the hub started and idle), its peak
during the attack (goal < 512 MiB), its RSS ``settle`` seconds after the attack ended,
and the seconds from the attack's end until RSS had *fallen back*: the first sample
at most ``FALLEN_BACK_MIB`` (64 MiB) above the baseline (goal: within 60 s). An
authorized client then connects, to show the hub still serves.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import zmq

from hub import protocol
from hub.bench.hostile import Holders, connect_attempts, hello_flood_specs
from hub.bench.hostile_writes import WireClient, diff_frame
from hub.bench.report import Figure, Goal, Result, figure, goal_figure
from hub.bench.rig import (
    BenchClient,
    HubNode,
    HubProcess,
    bench_clients,
    bench_dir,
    bench_operation,
    hub_process,
    make_hub_node,
    proc_status_bytes,
    raise_open_file_limit,
)
from hub.errors import BenchError
from hub.pb import synchub_pb2 as pb

ATTACKS = ("memory",)
MIB = 1024 * 1024
PEAK_GOAL_MIB = 512.0
FALLEN_BACK_MIB = 64.0
FALL_BACK_GOAL_SECONDS = 60.0
SAMPLE_EVERY = 0.1
IDLE_BEFORE = 2.0

Say = Callable[[str], None]


def _quiet(_text: str) -> None:
    pass


@dataclass(frozen=True)
class Params:
    holders: int = 1000
    sources: int = 4
    settle: float = 60.0
    scale: float = 1.0
    phase_timeout: float = 15.0

    def count(self, full: int) -> int:
        return max(1, round(full * self.scale))


class RssSampler:
    """A process's VmRSS every ``SAMPLE_EVERY`` seconds, in a thread; a context manager."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-rss", daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append((time.monotonic(), proc_status_bytes(self.pid, "VmRSS")))
            except (OSError, BenchError):
                return  # the hub is gone
            self._stop.wait(SAMPLE_EVERY)

    def between(self, start: float, end: float) -> list[int]:
        return [rss for at, rss in list(self.samples) if start <= at <= end]

    def first_at_most(self, limit: int, after: float) -> float | None:
        for at, rss in list(self.samples):
            if at >= after and rss <= limit:
                return at
        return None


def _reset_peak(pid: int) -> None:
    """Start VmHWM again from the current RSS (Linux: clear_refs 5)."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


# --- the phases -------------------------------------------------------------------------


def _big_batch() -> bytes:
    ops = []
    for op_id in range(1, 31):  # 30 operations of 512 KiB: a 15 MiB frame
        op = bench_operation(op_id)
        op.id, op.flow_id, op.modno = op_id, op_id, 1
        op.display_message = "x" * (512 * 1024)
        ops.append(op)
    return protocol.encode_item(protocol.operations_item(ops, "created_operations"))


def _config_item() -> bytes:
    item = pb.SyncStreamItem()
    for index in range(2000):
        item.send_config.config.plans.add(id=f"plan-{index}", repo="nas",
                                          paths=["/" + "p" * 200])
    return item.SerializeToString()


def _resources_item() -> bytes:
    item = pb.SyncStreamItem()
    item.list_resources.repo_ids.extend(f"repo-{i:06d}-" + "r" * 8 for i in range(11_000))
    item.list_resources.plan_ids.extend(f"plan-{i:06d}-" + "p" * 8 for i in range(11_000))
    return item.SerializeToString()


def _flood(wire: WireClient, frame: bytes, count: int, deadline: float) -> int:
    """Send ``frame`` up to ``count`` times without reading anything; how many went."""
    sent = 0
    while sent < count and time.monotonic() < deadline:
        try:
            wire.socket.send(frame, zmq.NOBLOCK, copy=False)
            sent += 1
        except zmq.Again:
            wire.socket.poll(50, zmq.POLLOUT)
    return sent


def _outcome(wire: WireClient, deadline: float) -> str:
    """The acknowledgement diff behind what was sent; how the hub answered it."""
    wire.send(protocol.ack_diff_frame(wire.client.keyid))
    while (item := wire.next_item(deadline)) is not None:
        kind = item.WhichOneof("action")
        if kind == "error":
            return f"cut ({item.error.message})"
        if kind == "diff_operations" and not item.diff_operations.request_operations:
            return "caught up"
    return "no answer in time"


@contextlib.contextmanager
def _session(node: HubNode, endpoint: str, client: BenchClient) -> Iterator[WireClient]:
    wire = WireClient(node, endpoint, client, sndhwm=64)
    try:
        yield wire
    finally:
        wire.close()


def _one_phase(node: HubNode, endpoint: str, client: BenchClient, frame: bytes, *,
               count: int, params: Params) -> str:
    deadline = time.monotonic() + params.phase_timeout
    with _session(node, endpoint, client) as wire:
        sent = _flood(wire, frame, count, deadline)
        return f"{sent} sent, {_outcome(wire, deadline)}"


def _displaced(node: HubNode, endpoint: str, client: BenchClient, params: Params) -> str:
    huge = diff_frame(client.keyid, range(1, params.count(1_000_000) + 1))
    deadline = time.monotonic() + params.phase_timeout
    wires: list[WireClient] = []
    try:
        for _ in range(4):
            wire = WireClient(node, endpoint, client, sndhwm=64)
            wires.append(wire)
            _flood(wire, huge, params.count(8), deadline)
        return f"{len(wires)} sessions, the last {_outcome(wires[-1], deadline)}"
    finally:
        for wire in wires:
            wire.close()


def attack(node: HubNode, endpoint: str, client: BenchClient, params: Params, *,
           sampler: RssSampler, say: Say) -> list[str]:
    """Run the five phases one after another; one line each: outcome and peak RSS."""
    unread = diff_frame(client.keyid, range(1, params.count(400_000) + 1))
    phases: list[tuple[str, Callable[[], str]]] = [
        ("big-batches", lambda: _one_phase(node, endpoint, client, _big_batch(),
                                           count=params.count(40), params=params)),
        ("send-config", lambda: _one_phase(node, endpoint, client, _config_item(),
                                           count=params.count(1500), params=params)),
        ("list-resources", lambda: _one_phase(node, endpoint, client, _resources_item(),
                                           count=params.count(1500), params=params)),
        ("unread", lambda: _one_phase(node, endpoint, client, unread,
                                           count=params.count(120), params=params)),
        ("displaced", lambda: _displaced(node, endpoint, client, params)),
    ]
    outcomes = []
    for name, phase in phases:
        began = time.monotonic()
        outcome = phase()
        peak = max(sampler.between(began, time.monotonic()) or [0])
        outcomes.append(f"{name}: {outcome}; hub RSS up to {peak / MIB:.0f} MiB, "
                        f"{time.monotonic() - began:.1f} s")
        say(f"memory: {outcomes[-1]}")
    return outcomes


# --- one run ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    baseline: float
    peak: float
    settled: float
    fell_back: float | None
    """Seconds from the attack's end until RSS had fallen back; None: not within settle."""
    attack_seconds: float
    served: bool
    outcomes: tuple[str, ...]


def run_once(root: Path, params: Params, say: Say) -> Run:
    attacker, victim = bench_clients(2)
    node = make_hub_node(root, [attacker, victim])
    curve = node.identity.curve.public_text
    keyid = node.identity.signing.keyid
    with hub_process(node) as (hub, endpoint), RssSampler(hub.pid) as sampler:
        time.sleep(IDLE_BEFORE)  # the started hub, idle: the baseline
        started = time.monotonic()
        baseline = max(sampler.between(started - IDLE_BEFORE, started) or
                       [proc_status_bytes(hub.pid, "VmRSS")])
        _reset_peak(hub.pid)
        specs = hello_flood_specs(endpoint, curve, victim, params.holders,
                                  sources=params.sources)
        with Holders(specs):
            outcomes = attack(node, endpoint, attacker, params, sampler=sampler, say=say)
        ended = time.monotonic()
        peak = max([*sampler.between(started, ended), _hwm(hub)])
        say(f"memory: attack over after {ended - started:.1f}s, peak {peak / MIB:.0f} MiB; "
            f"watching {params.settle:g}s")
        limit = baseline + int(FALLEN_BACK_MIB * MIB)
        while time.monotonic() < ended + params.settle:
            time.sleep(SAMPLE_EVERY)
        settled = proc_status_bytes(hub.pid, "VmRSS")
        back_at = sampler.first_at_most(limit, ended)
        served = connect_attempts(endpoint, keyid, curve, victim, 1, within=10.0)[0]
    return Run(
        baseline=baseline / MIB, peak=peak / MIB, settled=settled / MIB,
        fell_back=None if back_at is None else back_at - ended,
        attack_seconds=ended - started, served=served is not None,
        outcomes=tuple(outcomes),
    )


def _hwm(hub: HubProcess) -> int:
    try:
        return hub.status_field("VmHWM")
    except (OSError, BenchError):
        return 0


def run(params: Params, repeat: int = 1, *, keep: Path | None = None,
        say: Say = _quiet) -> Result:
    if params.holders < 1 or params.sources < 1 or repeat < 1 or params.settle < 0:
        raise BenchError("--holders, --sources and --repeat must be at least 1, --settle "
                         "at least 0")
    raise_open_file_limit(2 * params.holders + 1024)
    runs: list[Run] = []
    with bench_dir(keep) as root:
        for n in range(repeat):
            runs.append(run_once(root / f"hub-{n}", params, say))
            say(f"run {n + 1}/{repeat}: {runs[-1]}")
    return _result(params, repeat, runs)


def _result(params: Params, repeat: int, runs: list[Run]) -> Result:
    never = [r for r in runs if r.fell_back is None]
    fall_back = [params.settle if r.fell_back is None else r.fell_back for r in runs]
    peak = max(r.peak for r in runs)
    figures: tuple[Figure, ...] = (
        figure("memory.baseline_rss_mb", [r.baseline for r in runs], "MiB"),
        goal_figure("memory.peak_rss_mb", [r.peak for r in runs], "MiB", PEAK_GOAL_MIB),
        figure("memory.settled_rss_mb", [r.settled for r in runs], "MiB",
               [r.baseline for r in runs], baseline_label="before the attack"),
        goal_figure("memory.fall_back_seconds", fall_back, "s", FALL_BACK_GOAL_SECONDS),
        figure("memory.attack_seconds", [r.attack_seconds for r in runs], "s"),
    )
    goals = (
        Goal(f"hub peak RSS < {PEAK_GOAL_MIB:g} MiB (got {peak:.0f})", peak < PEAK_GOAL_MIB),
        Goal(f"RSS back within {FALLEN_BACK_MIB:g} MiB of the baseline within "
             f"{FALL_BACK_GOAL_SECONDS:g} s of the attack's end"
             + (f" (not within {params.settle:g} s in {len(never)} of {len(runs)} runs)"
                if never else ""),
             not never and max(fall_back) <= FALL_BACK_GOAL_SECONDS),
        Goal("an authorized client connects after the attack", all(r.served for r in runs)),
    )
    return Result(
        scenario="hostile",
        figures=figures,
        goals=goals,
        params={"attack": "memory", "holders": params.holders, "sources": params.sources,
                "settle": params.settle, "scale": params.scale, "repeat": repeat,
                "hub": "synchub start (process)"},
        notes=(
            "baseline: the hub's RSS started and idle, before the attack; VmRSS sampled "
            f"every {SAMPLE_EVERY * 1000:.0f} ms, the peak also from VmHWM",
            f"fallen back: the first sample at most {FALLEN_BACK_MIB:g} MiB above the "
            "baseline; fall_back_seconds is settle when it never did",
            *(f"last run, {line}" for line in runs[-1].outcomes),
        ),
    )
