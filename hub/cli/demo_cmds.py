"""`synchub demo`: a hub and three client agents on loopback, a few jobs, the result.

Everything lives in a fresh temporary folder with generated identities; the
node's own configuration is not read. The hub and the agents run in this
process and are stopped, and the folder removed, on every way out.
"""

from __future__ import annotations

import io
import shlex
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import click

from hub.admin import ask_hub
from hub.agent import Agent, AgentSettings
from hub.cli.admin_cmds import peers_table
from hub.cli.main import CliContext, cli
from hub.cli.ops_cmds import operations_table
from hub.cli.run_cmds import record_job
from hub.config import Config, load_config
from hub.errors import SynchubError
from hub.identity import NodeIdentity, create_identity
from hub.pb import synchub_pb2 as pb
from hub.server import Hub
from hub.store import now_ms

HUB_INSTANCE = "demo-hub"
CLIENTS = ("web1", "db1", "backup1")
HEARTBEAT_SECONDS = 2.0

SHARED = """\
[[repos]]
id = "nas"
guid = "demo-nas"
uri = "sftp:backup@nas:/srv/restic"

[[plans]]
id = "nightly"
repo = "nas"
paths = ["/etc", "/srv"]
"""

@dataclass(frozen=True)
class DemoJob:
    client: str
    message: str
    argv: tuple[str, ...]
    plan: str = ""


# The last one fails on purpose.
JOBS = (
    DemoJob("web1", "back up /srv/www", ("sh", "-c", "echo backing up /srv/www"), "nightly"),
    DemoJob("db1", "dump the database", ("sh", "-c", "echo dumping postgres"), "nightly"),
    DemoJob("web1", "check the repository", ("sh", "-c", "echo no errors found")),
    DemoJob(
        "backup1", "back up /home",
        ("sh", "-c", "echo no space left on device >&2; exit 3"), "nightly",
    ),
)


@dataclass(frozen=True)
class DemoNode:
    name: str
    root: Path
    identity: NodeIdentity

    @property
    def config_path(self) -> Path:
        return self.root / "synchub.toml"


def _node(base: Path, name: str) -> DemoNode:
    root = base / name
    root.mkdir(mode=0o700)
    return DemoNode(name, root, create_identity(root / "data"))


def _hub_config(hub: DemoNode, clients: list[DemoNode]) -> Config:
    entries = "".join(
        f"""
[[authorized_clients]]
instance_id = "{client.name}"
keyid = "{client.identity.signing.keyid}"
keyid_verified = true
permissions = [ {{ type = "read_config", scopes = ["*"] }} ]
"""
        for client in clients
    )
    hub.config_path.write_text(
        f"""\
# The demo hub: loopback only, any free port.
instance = "{HUB_INSTANCE}"
data_dir = "data"

[hub]
bind = "tcp://127.0.0.1:0"
heartbeat_interval = {HEARTBEAT_SECONDS:g}

{SHARED}{entries}"""
    )
    return load_config(hub.config_path)


def _client_config(client: DemoNode, hub: DemoNode, endpoint: str) -> Config:
    client.config_path.write_text(
        f"""\
# A demo client: it syncs its oplog to the demo hub.
instance = "{client.name}"
data_dir = "data"

{SHARED}
[[known_hosts]]
instance_id = "{HUB_INSTANCE}"
endpoint = "{endpoint}"
keyid = "{hub.identity.signing.keyid}"
curve_public_key = "{hub.identity.curve.public_text}"
permissions = [ {{ type = "read_operations", scopes = ["*"] }} ]
"""
    )
    return load_config(client.config_path)


@contextmanager
def _running_hub(config: Config) -> Iterator[Hub]:
    hub = Hub(config)
    try:
        hub.start()
        yield hub
    finally:
        hub.stop()


@contextmanager
def _running_agent(config: Config) -> Iterator[Agent]:
    agent = Agent(
        config,
        settings=AgentSettings(
            heartbeat_interval=HEARTBEAT_SECONDS,
            connect_timeout=10.0,
            poll_interval=0.1,
            reconnect_min=0.2,
            reconnect_max=2.0,
        ),
    )
    agent.start()
    try:
        yield agent
    finally:
        agent.stop()


def _wait_for_jobs(hub: Hub, expected: int, timeout: float) -> None:
    """Until the hub holds every job, finished, and every agent is connected."""
    deadline = time.monotonic() + timeout
    while True:
        ops: tuple[pb.Operation, ...] = hub.oplog.query(pb.OpSelector()).get(timeout=5)
        finished = [op for op in ops if op.status != pb.STATUS_INPROGRESS]
        states: list[pb.PeerState] = hub.peers.list().get(timeout=5)
        connected = [s for s in states if s.state == pb.CONNECTION_STATE_CONNECTED]
        if len(finished) >= expected and len(connected) == len(CLIENTS):
            return
        if time.monotonic() >= deadline:
            raise SynchubError(
                f"the demo hub holds {len(finished)} of {expected} finished jobs and "
                f"{len(connected)} of {len(CLIENTS)} connected agents after {timeout:g}s"
            )
        time.sleep(0.05)


def run_demo(base: Path, timeout: float) -> None:
    hub_node = _node(base, "hub")
    clients = [_node(base, name) for name in CLIENTS]
    with ExitStack() as stack:
        hub = stack.enter_context(_running_hub(_hub_config(hub_node, clients)))
        assert hub.endpoint is not None
        click.echo(f"hub {HUB_INSTANCE} listening on {hub.endpoint} (CURVE on)")
        configs: dict[str, Config] = {}
        for client in clients:
            configs[client.name] = _client_config(client, hub_node, hub.endpoint)
            stack.enter_context(_running_agent(configs[client.name]))
            click.echo(f"agent {client.name} started ({client.identity.signing.keyid})")

        click.echo("\nrecording jobs with `synchub run`:")
        for demo_job in JOBS:
            output = io.BytesIO()
            job = record_job(
                configs[demo_job.client], demo_job.argv, out=output, err=output,
                plan_id=demo_job.plan, message=demo_job.message,
            )
            status = "ok" if job.outcome.exit_code == 0 else job.outcome.describe()
            click.echo(f"  {demo_job.client:8} {status:7} -- {shlex.join(demo_job.argv)}")

        _wait_for_jobs(hub, len(JOBS), timeout)
        data_dir = hub_node.root / "data"
        peers = ask_hub(data_dir, "peers")["peers"]
        click.echo("\npeers, as the hub sees them (`synchub peers`):")
        for line in peers_table([pb.PeerState.FromString(raw) for raw in peers], now_ms()):
            click.echo(f"  {line}")
        recent = ask_hub(data_dir, "ops", limit=10)["operations"]
        click.echo("\nrecent operations in the hub's oplog (`synchub ops`):")
        for line in operations_table([pb.Operation.FromString(raw) for raw in recent]):
            click.echo(f"  {line}")


@cli.command()
@click.option("--keep", is_flag=True, help="Keep the demo folder instead of removing it.")
@click.option("--timeout", type=click.FloatRange(min=1), default=30.0, show_default=True,
              metavar="SECONDS", help="How long to wait for the jobs to reach the hub.")
@click.pass_obj
def demo(_obj: CliContext, keep: bool, timeout: float) -> None:
    """Run a hub and three agents on loopback, record a few jobs, show the result.

    Needs no configuration: everything is made up in a temporary folder, which
    is removed on exit (unless --keep).
    """
    base = Path(tempfile.mkdtemp(prefix="synchub-demo-"))
    click.echo(f"synchub demo in {base}")
    try:
        run_demo(base, timeout)
    finally:
        if keep:
            click.echo(f"\nkept {base}: each node has its synchub.toml and data/ there")
        else:
            shutil.rmtree(base, ignore_errors=True)
    if not keep:
        click.echo("\nstopped the hub and the agents and removed the demo folder")
