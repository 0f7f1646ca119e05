"""`synchub agent`: sync this node's operations to the hubs in [[known_hosts]]."""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, TextIO

import click

from hub.agent import Agent, AgentSettings, AgentStatusRecord, read_status
from hub.cli.listing import TimeZoneChoice, ago
from hub.cli.main import CliContext, cli, print_json
from hub.cli.progress import BarProgress, LoggedProgress
from hub.config import Config
from hub.errors import ClientError
from hub.store import SqliteOplogReader, oplog_path
from hub.text import printable

log = logging.getLogger("synchub.agent")

DEFAULT_HEARTBEAT_INTERVAL = 15.0


def _progress_for(stream: TextIO) -> BarProgress | LoggedProgress:
    """Bars on a terminal; otherwise log lines, shown with ``-v``."""
    return BarProgress(stream) if stream.isatty() else LoggedProgress(log)


def show_client_status(config: Config, *, as_json: bool, utc: bool) -> None:
    """``synchub agent --status`` (and ``synchub status`` on a client)."""
    if not config.known_hosts:
        where = config.path if config.path is not None else "the built-in defaults"
        raise ClientError(f"no [[known_hosts]] in {where}: this node is no hub's client")
    now_ms = time.time_ns() // 1_000_000
    view = client_status(config, now_ms)
    if as_json:
        print_json(view)
        return
    print_client_status(view, now_ms, TimeZoneChoice(utc=utc))


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


@contextmanager
def _stop_on_signals(stop: Callable[[], None]) -> Iterator[None]:
    """Turn SIGINT and SIGTERM into ``stop()`` while the block runs (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: stopping", signal.Signals(signum).name)
        stop()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def client_status(config: Config, now_ms: int) -> dict[str, Any]:
    """This client's view of each known hub, from the agent's status file and its oplog."""
    record = read_status(config.data_dir)
    recorded = record.hosts if record is not None else {}
    reader = _local_reader(config)
    try:
        hosts = []
        for host in config.known_hosts:
            entry = recorded.get(host.instance_id, {})
            running = record is not None and record.running
            state = str(entry.get("state", "")) if running else "not running"
            connected = running and state == "connected"
            why = "" if connected else _why_not(record, entry)
            mark = int(entry.get("acknowledged_mark", -1))
            hosts.append({
                "instance_id": host.instance_id,
                # Of a cluster's addresses, the one the agent dials now.
                "endpoint": str(entry.get("endpoint") or host.endpoint),
                "connected": connected,
                "state": state,
                "why_not_connected": why,
                # Why the hub is not reached, when the transport told (docs/operations.md).
                "reason": str(entry.get("reason", "")) if running and not connected else "",
                "in_sync": bool(entry.get("in_sync", False)) and connected,
                "last_sync_ms": int(entry.get("last_sync_ms", 0)),
                "unacknowledged": _unacknowledged(reader, mark),
                "hub_config": entry.get("hub_config"),
            })
    finally:
        if reader is not None:
            reader.close()
    return {
        "instance": config.instance,
        "data_dir": str(config.data_dir),
        "agent": {
            "running": record is not None and record.running,
            "pid": record.pid if record is not None else 0,
            "started_ms": record.started_ms if record is not None else 0,
            "updated_ms": record.updated_ms if record is not None else 0,
        },
        "hosts": hosts,
    }


def _why_not(record: AgentStatusRecord | None, entry: dict[str, Any]) -> str:
    if record is None:
        return "no agent has run on this data_dir: start `synchub agent`"
    if not record.running:
        return "the agent is not running: start `synchub agent`"
    message = str(entry.get("message", ""))
    return message or str(entry.get("state", "starting"))


def _local_reader(config: Config) -> SqliteOplogReader | None:
    path = oplog_path(config.data_dir)
    return SqliteOplogReader(path) if path.exists() else None


def _unacknowledged(reader: SqliteOplogReader | None, mark: int) -> int:
    """Local changes past what the hub last confirmed (all of them when it never did)."""
    if reader is None:
        return 0
    changes = reader.local_changes_since(max(0, mark), limit=_COUNT_LIMIT)
    return len(changes.operations) + len(changes.deleted_ids)


_COUNT_LIMIT = 1_000_000


def print_client_status(view: dict[str, Any], now_ms: int, zone: TimeZoneChoice) -> None:
    agent = view["agent"]
    if agent["running"]:
        click.echo(f"client {view['instance']}: agent running (pid {agent['pid']}), "
                   f"data {view['data_dir']}")
    else:
        click.echo(f"client {view['instance']}: no agent running, data {view['data_dir']}")
    for host in view["hosts"]:
        click.echo(f"{printable(host['instance_id'])}  {printable(host['endpoint'])}")
        if host["connected"]:
            sync = "in sync" if host["in_sync"] else "syncing"
            click.echo(f"  connected        yes ({sync})")
        else:
            click.echo(f"  connected        no: {printable(host['why_not_connected'], 300)}")
        last = host["last_sync_ms"]
        when = f"{zone.show(last)} ({ago(last, now_ms)})" if last > 0 else "never"
        click.echo(f"  last sync        {when}")
        click.echo(f"  not acknowledged {_count(host['unacknowledged'], 'operation')}")
        click.echo(f"  hub's config     {_config_text(host['hub_config'])}")


def _config_text(config: dict[str, Any] | None) -> str:
    if not config:
        return "none received yet"
    repos = [printable(str(r.get("id", "?")), 40) for r in config.get("repos", [])]
    plans = [printable(str(p.get("id", "?")), 40) for p in config.get("plans", [])]
    return (f"modno {config.get('modno', 0)}: {_count(len(repos), 'repo')}"
            f"{' (' + ', '.join(repos) + ')' if repos else ''}, {_count(len(plans), 'plan')}"
            f"{' (' + ', '.join(plans) + ')' if plans else ''}")


@cli.command()
@click.option("--once", is_flag=True,
              help="Sync, confirm every hub holds everything, and exit 0 (non-zero if not).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=30.0,
              show_default=True, metavar="SECONDS",
              help="How long to wait for a hub to answer the handshake.")
@click.option("--heartbeat-interval", type=click.FloatRange(min=0, min_open=True),
              default=None, metavar="SECONDS",
              help="Heartbeat interval; a hub silent for 3 intervals is reconnected "
                   "(default: [hub].heartbeat_interval if set, else 15).")
@click.option("--status", "show_status", is_flag=True,
              help="Show this client's view of each hub (from the running agent) and exit.")
@click.option("--json", "as_json", is_flag=True, help="With --status: print it as JSON.")
@click.option("--utc", is_flag=True, help="With --status: times in UTC.")
@click.pass_obj
def agent(  # noqa: PLR0917 - one parameter per click option
    obj: CliContext, once: bool, timeout: float, heartbeat_interval: float | None,
    show_status: bool, as_json: bool, utc: bool,
) -> None:
    """Sync this node's operations to every hub in [[known_hosts]].

    Runs until SIGINT or SIGTERM, reconnecting with backoff; with --once, syncs and
    exits; with --status, shows how each hub stands and exits.
    """
    config = obj.load()
    if show_status:
        show_client_status(config, as_json=as_json, utc=utc)
        return
    if heartbeat_interval is None:
        heartbeat_interval = (
            config.hub.heartbeat_interval if config.hub is not None
            else DEFAULT_HEARTBEAT_INTERVAL
        )
    settings = AgentSettings(heartbeat_interval=heartbeat_interval, connect_timeout=timeout)
    progress = _progress_for(sys.stderr)
    client = Agent(config, settings=settings, progress=progress)
    keyid = client.keyid
    how = f"`synchub authorize {keyid} --instance {config.instance}`"
    if client.identity_created:
        log.warning("created identity %s in %s; on each hub run %s",
                    keyid, config.data_dir, how)
    else:
        log.info("this node is %s (%s); a hub authorizes it with %s",
                 config.instance, keyid, how)
    stopping = threading.Event()

    def stop() -> None:
        stopping.set()
        client.request_stop()

    with _stop_on_signals(stop):
        try:
            if once:
                reports = client.run_once(timeout)
                progress.close()
                for report in reports:
                    click.echo(
                        f"in sync with {report.host}: sent {_count(report.sent, 'operation')}, "
                        f"{_count(report.deleted, 'deletion')}, "
                        f"{_count(len(report.rounds), 'round')} of diffs"
                    )
                return
            client.start()
            hosts = ", ".join(h.instance_id for h in config.known_hosts)
            log.info("syncing to %s; stop with Ctrl-C or SIGTERM", hosts)
            while not stopping.wait(0.5):
                pass
        finally:
            client.stop()
            progress.close()
