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
from typing import TextIO

import click

from hub.agent import Agent, AgentSettings
from hub.cli.main import CliContext, cli

log = logging.getLogger("synchub.agent")

DEFAULT_HEARTBEAT_INTERVAL = 15.0
PROGRESS_MIN_OPERATIONS = 1000


class TerminalProgress:
    """One self-rewriting status line per large initial sync, for a terminal."""

    def __init__(self, stream: TextIO, *, min_interval: float = 0.2) -> None:
        self._stream = stream
        self._min_interval = min_interval
        self._last_shown = 0.0
        self._shown = False

    def __call__(self, host: str, sent: int, requested: int) -> None:
        if requested < PROGRESS_MIN_OPERATIONS:
            return
        now = time.monotonic()
        if sent < requested and now - self._last_shown < self._min_interval:
            return
        self._last_shown = now
        self._shown = True
        self._stream.write(f"\rsyncing to {host}: {sent}/{requested} operations sent\x1b[K")
        self._stream.flush()

    def finish(self) -> None:
        if self._shown:
            self._stream.write("\n")
            self._stream.flush()
            self._shown = False


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
@click.pass_obj
def agent(obj: CliContext, once: bool, timeout: float, heartbeat_interval: float | None) -> None:
    """Sync this node's operations to every hub in [[known_hosts]].

    Runs until SIGINT or SIGTERM, reconnecting with backoff; with --once, syncs and
    exits.
    """
    config = obj.load()
    if heartbeat_interval is None:
        heartbeat_interval = (
            config.hub.heartbeat_interval if config.hub is not None
            else DEFAULT_HEARTBEAT_INTERVAL
        )
    settings = AgentSettings(heartbeat_interval=heartbeat_interval, connect_timeout=timeout)
    progress = TerminalProgress(sys.stderr) if sys.stderr.isatty() else None
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
                if progress is not None:
                    progress.finish()
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
            if progress is not None:
                progress.finish()
