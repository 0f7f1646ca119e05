"""What every scenario sets up on loopback: nodes, configs, a hub process, seeded oplogs.

Everything lives in one temporary directory per run. Bench clients get identities
derived from fixed seeds, so a config listing thousands of them is quick to build.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from hub.config import AuthorizedClient
from hub.errors import BenchError
from hub.identity import (
    NodeIdentity,
    SigningIdentity,
    create_identity,
    identity_dir,
    load_identity,
)
from hub.pb import synchub_pb2 as pb
from hub.scopes import parse_permissions
from hub.store import SqliteOplogStore

HUB_INSTANCE = "bench-hub"
REPO_ID = "nas"
REPO_GUID = "guid-bench-nas"
PLAN_ID = "nightly"
SEED_CHUNK = 10_000

SHARED_TOML = f"""\
[[repos]]
id = "{REPO_ID}"
guid = "{REPO_GUID}"
uri = "sftp:backup@nas:/srv/restic"

[[plans]]
id = "{PLAN_ID}"
repo = "{REPO_ID}"
paths = ["/srv/data"]
"""


@dataclass(frozen=True)
class BenchClient:
    """A client the hub authorizes: its instance id and signing key."""

    instance_id: str
    signing: SigningIdentity

    @property
    def keyid(self) -> str:
        return self.signing.keyid


def bench_client(index: int) -> BenchClient:
    seed = hashlib.sha256(f"synchub-bench-client-{index}".encode()).digest()
    return BenchClient(f"bench-{index}", SigningIdentity.from_seed(seed))


def bench_clients(count: int, start: int = 0) -> list[BenchClient]:
    return [bench_client(i) for i in range(start, start + count)]


@contextlib.contextmanager
def bench_dir(keep: Path | None = None) -> Iterator[Path]:
    """A fresh directory for one run (short path: the admin socket must fit in 107 bytes)."""
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix="shb-", dir="/tmp") as name:
        yield Path(name)


@dataclass(frozen=True)
class HubNode:
    root: Path
    identity: NodeIdentity

    @property
    def config_path(self) -> Path:
        return self.root / "synchub.toml"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def oplog_path(self) -> Path:
        return self.data_dir / "oplog.sqlite"


def make_hub_node(
    root: Path,
    clients: Sequence[BenchClient],
    *,
    port: int = 0,
    curve: bool = True,
    heartbeat_interval: float = 15.0,
    handshake_timeout: float = 10.0,
    max_pending_handshakes: int = 1000,
    store_url: str | None = None,
    identity_from: Path | None = None,
    node_name: str | None = None,
) -> HubNode:
    """A hub's folder, identity and config; ``store_url`` puts its stores in PostgreSQL,
    and its clients in that database (as several hubs on one database keep them).

    ``identity_from``: another hub's data_dir whose identity/ is copied here (the hubs
    of one cluster share one, as docs/cluster.md says); ``node_name``: its ``[hub] node``.
    """
    root.mkdir(parents=True, exist_ok=True)
    if identity_from is None:
        identity = create_identity(root / "data")
    else:
        shutil.copytree(identity_dir(identity_from), identity_dir(root / "data"))
        identity = load_identity(root / "data")
    node = HubNode(root, identity)
    parts = [
        f'instance = "{HUB_INSTANCE}"\n',
        'data_dir = "data"\n\n',
        "[hub]\n",
        f'bind = "tcp://127.0.0.1:{port}"\n',
        *([f"node = {json.dumps(node_name)}\n"] if node_name else []),
        f"curve = {'true' if curve else 'false'}\n",
        f"heartbeat_interval = {heartbeat_interval}\n",
        f"handshake_timeout = {handshake_timeout}\n",
        f"max_pending_handshakes = {max_pending_handshakes}\n\n",
    ]
    if store_url is not None:
        parts.append(f"[store]\nurl = {json.dumps(store_url)}\n\n")
    parts.append(SHARED_TOML)
    if store_url is not None and clients:
        import hub.store  # noqa: PLC0415 - loads the PostgreSQL driver

        hub.store.import_clients(store_url, [bench_authorized_client(c) for c in clients])
        clients = ()
    for client in clients:
        parts.append(
            "\n[[authorized_clients]]\n"
            f'instance_id = "{client.instance_id}"\n'
            f'keyid = "{client.keyid}"\n'
            "keyid_verified = true\n"
            'permissions = [ { type = "read_config", scopes = ["*"] } ]\n'
        )
    node.config_path.write_text("".join(parts))
    return node


def bench_authorized_client(client: BenchClient) -> AuthorizedClient:
    """``client`` as make_hub_node authorizes it: verified, reading all the config."""
    return AuthorizedClient(
        instance_id=client.instance_id, keyid=client.keyid, keyid_verified=True,
        permissions=parse_permissions([{"type": "read_config", "scopes": ["*"]}]),
    )


@dataclass(frozen=True)
class ClientNode:
    root: Path
    identity: NodeIdentity
    instance_id: str

    @property
    def config_path(self) -> Path:
        return self.root / "synchub.toml"

    @property
    def oplog_path(self) -> Path:
        return self.root / "data" / "oplog.sqlite"

    @property
    def bench_client(self) -> BenchClient:
        return BenchClient(self.instance_id, self.identity.signing)


def make_client_node(root: Path, instance_id: str = "web1") -> ClientNode:
    root.mkdir(parents=True, exist_ok=True)
    return ClientNode(root, create_identity(root / "data"), instance_id)


def write_client_config(node: ClientNode, hub: HubNode, endpoint: str) -> Path:
    """The client's config with one known host: ``hub`` at ``endpoint``."""
    signing = hub.identity.signing
    node.config_path.write_text(
        f'instance = "{node.instance_id}"\n'
        'data_dir = "data"\n\n'
        f"{SHARED_TOML}\n"
        "[[known_hosts]]\n"
        f'instance_id = "{HUB_INSTANCE}"\n'
        f'endpoint = "{endpoint}"\n'
        f'keyid = "{signing.keyid}"\n'
        f'curve_public_key = "{hub.identity.curve.public_text}"\n'
        "permissions = [\n"
        '    { type = "read_operations", scopes = ["*"] },\n'
        '    { type = "read_config", scopes = ["*"] },\n'
        "]\n"
    )
    return node.config_path


# --- operations -------------------------------------------------------------------------


def bench_operation(index: int, *, instance_id: str = "web1") -> pb.Operation:
    """A local operation (no id yet) shaped like a backup job's record."""
    start = 1_700_000_000_000 + index * 60_000
    return pb.Operation(
        instance_id=instance_id,
        repo_id=REPO_ID,
        repo_guid=REPO_GUID,
        plan_id=PLAN_ID,
        status=pb.STATUS_SUCCESS,
        unix_time_start_ms=start,
        unix_time_end_ms=start + 42_000,
        display_message=f"backup {index}: 1,204 files, 3.1 GiB, 12 new",
        snapshot_id=hashlib.sha256(index.to_bytes(8, "big")).hexdigest(),
        logref=f"log-{index:08d}",
    )


def seed_local_operations(path: Path, count: int, *, instance_id: str = "web1") -> None:
    """Add ``count`` local operations to the oplog store at ``path``."""
    store = SqliteOplogStore(path)
    try:
        for start in range(0, count, SEED_CHUNK):
            store.add_local(
                [
                    bench_operation(i, instance_id=instance_id)
                    for i in range(start, min(count, start + SEED_CHUNK))
                ]
            )
    finally:
        store.close()


# --- the hub as a process ---------------------------------------------------------------


_LISTENING = re.compile(r"listening on (tcp://\S+)")
_HUB_COMMAND = "from hub.cli import main; main()"


class HubProcess:
    """``synchub start`` as a child process, its log in a file (it never blocks on a pipe)."""

    def __init__(self, node: HubNode, *, log_name: str = "hub.log") -> None:
        self.node = node
        self.log_path = node.root / log_name
        self._log: IO[bytes] = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-c", _HUB_COMMAND, "--config", str(node.config_path), "start"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            cwd=node.root,
        )
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 30.0) -> str:
        """The endpoint the hub listens on, once it says so."""
        deadline = time.monotonic() + timeout
        while True:
            match = _LISTENING.search(self.log_text())
            if match:
                return match.group(1)
            if self.process.poll() is not None:
                raise BenchError(
                    f"the hub exited with status {self.process.returncode}:\n{self.log_text()}"
                )
            if time.monotonic() >= deadline:
                raise BenchError(f"the hub did not start within {timeout:g}s")
            time.sleep(0.02)

    def status_field(self, name: str) -> int:
        """A /proc/<pid>/status size field (VmHWM, VmRSS...) in bytes."""
        return proc_status_bytes(self.pid, name)

    def stop(self, timeout: float = 30.0) -> None:
        try:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
        finally:
            self._log.close()

    def kill(self) -> None:
        try:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait()
        finally:
            self._log.close()


def process_cpu_seconds(pid: int | str) -> float:
    """User plus system CPU time of a process so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_status_bytes(pid: int | str, name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return int(line.split()[1]) * 1024
    raise BenchError(f"no {name} in /proc/{pid}/status")


@contextlib.contextmanager
def hub_process(
    node: HubNode, timeout: float = 30.0, *, log_name: str = "hub.log"
) -> Iterator[tuple[HubProcess, str]]:
    hub = HubProcess(node, log_name=log_name)
    try:
        endpoint = hub.wait_ready(timeout)
        yield hub, endpoint
    finally:
        hub.stop()


def raise_open_file_limit(wanted: int) -> int:
    """Raise this process's soft RLIMIT_NOFILE towards ``wanted``; return the new soft limit."""
    import resource  # noqa: PLC0415 - POSIX only, and only the bench needs it

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def cpu_count() -> int:
    return len(os.sched_getaffinity(0))
