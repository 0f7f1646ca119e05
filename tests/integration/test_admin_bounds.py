"""The admin side bounded, against `synchub start` as a real process.

`synchub ops` over large operations comes in pages bounded in bytes (the hub's
memory grows by a page, not by the listing); an `authorize` past the documented
permission limits is refused at once with a clear message while clients keep
connecting; an authorize at the limit is applied quickly.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.admin import ANSWER_MAX_BYTES, ask_hub
from hub.config import load_config
from hub.errors import SynchubError
from hub.identity import load_identity, load_or_create_identity
from hub.pb import synchub_pb2 as pb
from hub.scopes import MAX_SCOPES
from hub.store import SqliteOplogStore
from synchub_testing import (
    CLIENT,
    LAUNCHER,
    STRANGER,
    HubProcess,
    RawClient,
    free_tcp_port,
    hub_config_text,
)

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
LARGE_OPS = 12
LARGE_OP_BYTES = 4 * MIB


def synchub(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(LAUNCHER), "--config", str(config), *args],
        capture_output=True, text=True, timeout=120, check=False,
    )


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[HubProcess]:
    path = tmp_path / "hub.toml"
    path.write_text(hub_config_text(extra='\n[web]\nbind = ""\n').replace(
        "heartbeat_interval = 10",
        f'heartbeat_interval = 10\nbind = "tcp://127.0.0.1:{free_tcp_port()}"',
    ))
    data_dir = load_config(path).data_dir
    load_or_create_identity(data_dir)
    store = SqliteOplogStore(data_dir / "oplog.sqlite")
    try:
        for index in range(LARGE_OPS):
            store.add_local([pb.Operation(
                instance_id="hub1", plan_id="nightly", repo_guid="guid-nas",
                status=pb.STATUS_SUCCESS, unix_time_start_ms=1_700_000_000_000 + index,
                display_message=f"op {index} " + chr(ord("a") + index) * LARGE_OP_BYTES,
            )])
    finally:
        store.close()
    process = HubProcess(path)
    try:
        process.wait_for_output("listening on")
        yield process
    finally:
        process.kill()


def handshake_works(hub: HubProcess) -> bool:
    config = load_config(hub.config_path)
    node = load_identity(config.data_dir)
    assert config.hub is not None
    client = RawClient(config.hub.bind, node.curve.public)
    try:
        client.handshake(node.signing.keyid, identity=CLIENT, instance_id="web1")
        client.recv_action("send_config", timeout=5.0)
        return True
    finally:
        client.close()


def test_ops_over_large_operations_comes_in_bounded_pages(hub: HubProcess) -> None:
    data_dir = load_config(hub.config_path).data_dir
    rss_before = status_kib(hub.process.pid, "VmRSS")
    paged: list[int] = []
    before = None
    while True:
        page = ask_hub(data_dir, "ops", timeout=10, limit=50, before_id=before)
        sizes = [len(raw) for raw in page["operations"]]
        assert sum(sizes[:-1]) < ANSWER_MAX_BYTES, sizes  # the bound, then one more
        paged += [pb.Operation.FromString(raw).id for raw in page["operations"]]
        before = page["next_before_id"]
        if before is None:
            break
        assert before == paged[-1]
    assert paged == list(range(LARGE_OPS, 0, -1))
    listed = synchub(hub.config_path, "ops", "--json")
    assert listed.returncode == 0, listed.stderr
    ops = json.loads(listed.stdout)
    assert [op["id"] for op in ops] == list(range(LARGE_OPS, 0, -1))
    for op in ops:
        index = op["id"] - 1
        assert op["display_message"] == (
            f"op {index} " + chr(ord("a") + index) * LARGE_OP_BYTES
        )
    table = synchub(hub.config_path, "ops")
    assert table.returncode == 0 and len(table.stdout.splitlines()) == LARGE_OPS + 1
    # All of it is 48 MiB; answered whole it took the hub three copies of it or more
    # (the operations, their bytes, the answer). Paged, the hub holds a page at a time
    # and a few copies of it: less than the listing itself.
    grown_mib = (status_kib(hub.process.pid, "VmHWM") - rss_before) / 1024
    assert grown_mib < LARGE_OPS * LARGE_OP_BYTES / MIB, grown_mib
    assert hub.stop() == 0


def test_authorize_past_the_limits_is_refused_at_once_and_clients_still_connect(
    hub: HubProcess,
) -> None:
    data_dir = load_config(hub.config_path).data_dir
    huge = [{"type": "read_config", "scopes": [f"plan:p{i}" for i in range(60_000)]}]
    outcome: dict[str, object] = {}

    def ask() -> None:
        started = time.monotonic()
        try:
            ask_hub(data_dir, "authorize", timeout=15, keyid=STRANGER.keyid,
                    instance_id="new1", permissions=huge, verified=True)
        except SynchubError as exc:
            outcome["error"] = str(exc)
        outcome["seconds"] = time.monotonic() - started

    asking = threading.Thread(target=ask)
    asking.start()
    try:
        assert handshake_works(hub)
    finally:
        asking.join(timeout=30)
    assert f"more than {MAX_SCOPES} scopes" in str(outcome.get("error")), outcome
    assert float(outcome["seconds"]) < 5.0, outcome  # type: ignore[arg-type]
    assert load_config(hub.config_path).authorized_client(STRANGER.keyid) is None

    flags = [arg for i in range(MAX_SCOPES + 1) for arg in ("--perm", f"read_config:plan:p{i}")]
    refused = synchub(hub.config_path, "authorize", STRANGER.keyid, "--instance", "new1",
                      *flags, "--yes")
    assert refused.returncode == 1
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and f"more than {MAX_SCOPES} scopes" in lines[0], refused.stderr

    started = time.monotonic()
    done = synchub(hub.config_path, "authorize", STRANGER.keyid, "--instance", "new1",
                   *flags[:-2], "--yes")
    took = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert "the running hub applied it" in done.stdout
    client = load_config(hub.config_path).authorized_client(STRANGER.keyid)
    assert client is not None
    assert len(client.permissions.entries[0].scopes.scopes) == MAX_SCOPES
    assert took < 30, took  # a process start and a config write, on a loaded machine
    assert handshake_works(hub)
    assert hub.stop() == 0
