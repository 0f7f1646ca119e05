"""resync: a client whose N operations the hub already holds changes 10 and reconnects.

The client's oplog and the hub's (``synchub start``, a child process) are seeded
with the same N operations, as after a completed sync. Each repetition changes
``changed`` of the client's operations (new modnos), then runs the client agent
once (``Agent.run_once``) through a counting TCP relay: the bytes the client put
on the wire (CURVE and ZMTP framing included) and the seconds from connect to
the hub's confirmation that it holds everything.

Baseline: the size of the full (id, modno) list, one diff_operations item
listing every operation: what a client sends at least once per reconnect today.
The agent diffs twice (once to find the changes, once to confirm), so expect a
ratio near 2 until diffs become incremental.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from hub.agent import Agent, AgentSettings
from hub.bench.relay import CountingRelay
from hub.bench.report import Figure, Result, figure
from hub.bench.rig import (
    REPO_GUID,
    SEED_CHUNK,
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
    sent_bytes: list[float] = []
    seconds: list[float] = []
    received_bytes: list[float] = []
    with bench_dir(keep) as root:
        client = make_client_node(root / "client")
        keyid = client.identity.signing.keyid
        say(f"seeding {ops} operations on the client and the hub")
        seed_local_operations(client.oplog_path, ops)
        hub_node = make_hub_node(root / "hub", [client.bench_client])
        hub_node.data_dir.mkdir(parents=True, exist_ok=True)
        seed_hub(hub_node.oplog_path, client.oplog_path, keyid)
        with hub_process(hub_node) as (_hub, endpoint):
            port = int(endpoint.rsplit(":", 1)[1])
            with CountingRelay(port) as relay:
                write_client_config(client, hub_node, relay.endpoint)
                for n in range(repeat):
                    change_operations(client.oplog_path, changed, n)
                    baseline = full_list_bytes(client.oplog_path, keyid)
                    agent = Agent(
                        load_config(client.config_path), identity=client.identity,
                        settings=AgentSettings(connect_timeout=timeout),
                    )
                    up, down = relay.upstream, relay.downstream
                    started = time.perf_counter()
                    [report] = agent.run_once(timeout)
                    seconds.append(time.perf_counter() - started)
                    if report.sent != changed:
                        raise BenchError(
                            f"the agent sent {report.sent} operations, expected {changed}"
                        )
                    sent_bytes.append(relay.upstream - up)
                    received_bytes.append(relay.downstream - down)
                    say(f"run {n + 1}/{repeat}: {sent_bytes[-1]:,.0f} bytes sent in "
                        f"{seconds[-1]:.2f}s (full list {baseline:,} bytes)")
    sent = figure("resync.bytes_sent", sent_bytes, "bytes", [baseline] * len(sent_bytes),
                  baseline_label="full (id, modno) list")
    return Result(
        scenario="resync",
        figures=(
            sent,
            figure("resync.seconds", seconds, "s"),
            figure("resync.bytes_received", received_bytes, "bytes"),
            Figure("resync.bytes_sent_per_change", sent.value / max(1, changed), "bytes"),
        ),
        params={"ops": ops, "changed": changed, "repeat": repeat, "curve": True,
                "client": "client agent (Agent.run_once)", "hub": "synchub start (process)"},
        notes=(
            "bytes are what crossed loopback TCP (CURVE and ZMTP framing included); "
            "the agent diffs twice per reconnect (find, then confirm)",
        ),
    )
