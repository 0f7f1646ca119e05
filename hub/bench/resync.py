"""resync: a client whose N operations the hub already holds changes 10 and reconnects.

The client's oplog and the hub's (``synchub start``, a child process) are seeded
with the same N operations, as after a completed sync. Each repetition changes
``changed`` of the client's operations (new modnos), then runs the client agent
once (``Agent.run_once``) through a counting TCP relay: the bytes the client put
on the wire (CURVE and ZMTP framing included) and the seconds from connect to
the hub's confirmation that it holds everything.

Baselines, in the same run: the size of the full (id, modno) list (one
diff_operations item listing every operation, what a version 1 client sends at
least once per reconnect) for ``resync.bytes_sent``; and the reconnects of a client
without resumed sync (``resync = False``: version 1's full diffs, which it does
twice, to find the changes and to confirm) for the ``resumed_*`` and
``unchanged_*`` figures. The default agent resumes from the hub's cursor and checks
the digest (docs/protocol.md §6.8 (Resumed sync)); its first session finds no
cursor and builds the digest caches (``resync.first_seconds``). Then ``repeat``
reconnects with ``changed`` changes and ``repeat`` with none.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hub.agent import Agent, AgentSettings
from hub.bench.relay import CountingRelay
from hub.bench.report import Figure, Goal, Result, figure
from hub.bench.rig import (
    REPO_GUID,
    SEED_CHUNK,
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
from hub.protocol import DiffSelection, diff_item
from hub.store import SqliteOplogStore

Say = Callable[[str], None]


def _quiet(_text: str) -> None:
    pass


def seed_hub(hub_oplog: Path, client_oplog: Path, keyid: str) -> None:
    """Copy the client's operations into the hub's store, as a finished sync leaves them."""
    client = SqliteOplogStore(client_oplog)
    hub = SqliteOplogStore(hub_oplog)
    try:
        ids, _ = client.ids_and_modnos(pb.OpSelector(original_instance_keyid=""))
        for start in range(0, len(ids), SEED_CHUNK):
            ops = client.query(pb.OpSelector(ids=ids[start : start + SEED_CHUNK]))
            hub.apply_remote(keyid, ops, ())
    finally:
        hub.close()
        client.close()


def change_operations(path: Path, count: int, round_number: int) -> list[int]:
    """Give ``count`` operations new modnos (different ones each round); their ids."""
    store = SqliteOplogStore(path)
    try:
        ids, _ = store.ids_and_modnos(pb.OpSelector(original_instance_keyid=""))
        step = max(1, len(ids) // max(1, count))
        chosen = ids[round_number % step :: step][:count]
        ops = store.query(pb.OpSelector(ids=chosen))
        for op in ops:
            op.display_message += f" (changed in round {round_number})"
        store.update_local(ops)
        return chosen
    finally:
        store.close()


def full_list_bytes(path: Path, keyid: str) -> int:
    """The size of one diff_operations item listing every (id, modno) of the client."""
    store = SqliteOplogStore(path)
    try:
        ids, modnos = store.ids_and_modnos(pb.OpSelector(original_instance_keyid=""))
    finally:
        store.close()
    return len(diff_item(DiffSelection(REPO_GUID), keyid, ids, modnos).SerializeToString())


@dataclass
class _Runs:
    """What the reconnects of one kind measured, run by run."""

    sent: list[float] = field(default_factory=list)
    received: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    @property
    def both_ways(self) -> list[float]:
        return [a + b for a, b in zip(self.sent, self.received, strict=True)]


def _reconnect(
    client: ClientNode, relay: CountingRelay, runs: _Runs, *, resync: bool, expect: int,
    timeout: float,
) -> None:
    """One agent session until the hub confirmed, through the counting relay."""
    agent = Agent(
        load_config(client.config_path), identity=client.identity,
        settings=AgentSettings(connect_timeout=timeout, resync=resync),
    )
    up, down = relay.upstream, relay.downstream
    started = time.perf_counter()
    [report] = agent.run_once(timeout)
    runs.seconds.append(time.perf_counter() - started)
    if report.sent != expect:
        raise BenchError(f"the agent sent {report.sent} operations, expected {expect}")
    runs.sent.append(relay.upstream - up)
    runs.received.append(relay.downstream - down)


def run(
    ops: int = 100_000,
    repeat: int = 3,
    *,
    changed: int = 10,
    keep: Path | None = None,
    say: Say = _quiet,
    timeout: float = 600.0,
) -> Result:
    if ops < 1 or repeat < 1 or not 0 <= changed <= ops:
        raise BenchError("need --ops >= 1, --repeat >= 1 and 0 <= --changed <= --ops")
    full, first, resumed, unchanged = _Runs(), _Runs(), _Runs(), _Runs()
    with bench_dir(keep) as root:
        client = make_client_node(root / "client")
        keyid = client.identity.signing.keyid
        say(f"seeding {ops} operations on the client and the hub")
        seed_local_operations(client.oplog_path, ops)
        hub_node = make_hub_node(root / "hub", [client.bench_client])
        hub_node.data_dir.mkdir(parents=True, exist_ok=True)
        seed_hub(hub_node.oplog_path, client.oplog_path, keyid)
        round_number = 0
        with hub_process(hub_node) as (_hub, endpoint):
            port = int(endpoint.rsplit(":", 1)[1])
            with CountingRelay(port) as relay:
                write_client_config(client, hub_node, relay.endpoint)
                for n in range(repeat):
                    change_operations(client.oplog_path, changed, round_number)
                    round_number += 1
                    _reconnect(client, relay, full, resync=False, expect=changed,
                               timeout=timeout)
                    say(f"full diff {n + 1}/{repeat}: {full.both_ways[-1]:,.0f} bytes both "
                        f"ways in {full.seconds[-1]:.2f}s")
                change_operations(client.oplog_path, changed, round_number)
                round_number += 1
                _reconnect(client, relay, first, resync=True, expect=changed, timeout=timeout)
                say(f"first resumed-sync session (no cursor yet): {first.seconds[-1]:.2f}s")
                baseline = full_list_bytes(client.oplog_path, keyid)
                for n in range(repeat):
                    change_operations(client.oplog_path, changed, round_number)
                    round_number += 1
                    _reconnect(client, relay, resumed, resync=True, expect=changed,
                               timeout=timeout)
                    say(f"run {n + 1}/{repeat}: {resumed.sent[-1]:,.0f} bytes sent in "
                        f"{resumed.seconds[-1]:.2f}s (full list {baseline:,} bytes)")
                for _ in range(repeat):
                    _reconnect(client, relay, unchanged, resync=True, expect=0, timeout=timeout)
    return _result(ops, repeat, changed, baseline, (full, first, resumed, unchanged))


def _result(
    ops: int, repeat: int, changed: int, baseline: int,
    runs: tuple[_Runs, _Runs, _Runs, _Runs],
) -> Result:
    full, first, resumed, unchanged = runs
    sent = figure("resync.bytes_sent", resumed.sent, "bytes", [baseline] * len(resumed.sent),
                  baseline_label="full (id, modno) list")
    both = figure("resync.resumed_bytes_both_ways", resumed.both_ways, "bytes",
                  full.both_ways, baseline_label="full diff, same run")
    seconds = figure("resync.resumed_seconds", resumed.seconds, "s", full.seconds,
                     baseline_label="full diff, same run")
    idle = figure("resync.unchanged_bytes_both_ways", unchanged.both_ways, "bytes",
                  full.both_ways, baseline_label="full diff, same run")
    return Result(
        scenario="resync",
        figures=(
            sent,
            figure("resync.seconds", resumed.seconds, "s"),
            figure("resync.bytes_received", resumed.received, "bytes"),
            Figure("resync.bytes_sent_per_change", sent.value / max(1, changed), "bytes"),
            both,
            seconds,
            idle,
            figure("resync.unchanged_seconds", unchanged.seconds, "s"),
            figure("resync.first_seconds", first.seconds, "s"),
        ),
        goals=(
            Goal(f"<= 64 KB both ways for {changed} changed", both.value <= 64 * 1024),
            Goal(f"<= 0.3 s for {changed} changed", seconds.value <= 0.3),
            Goal("<= 4 KB both ways with nothing changed", idle.value <= 4 * 1024),
        ),
        params={"ops": ops, "changed": changed, "repeat": repeat, "curve": True,
                "client": "client agent (Agent.run_once)", "hub": "synchub start (process)"},
        notes=(
            "bytes are what crossed loopback TCP (CURVE and ZMTP framing included); "
            "resync.* figures without a prefix are the default agent's (resumed sync); "
            "the baseline of the resumed_* and unchanged_* figures is a client without "
            "resumed sync (version 1's full diffs) in the same run; "
            "resync.first_seconds is the first resumed-sync session, which finds no "
            "cursor, does the full diff and builds both sides' digest caches",
        ),
    )
