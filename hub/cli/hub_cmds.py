"""`synchub start`: run the hub until SIGINT/SIGTERM; SIGHUP reloads the config.

The signal handlers only wake the main loop (``hub.cli._signals``). The loop runs at
most one reload at a time and at most one each ``RELOAD_SPACING`` seconds, without
waiting for it: SIGHUPs that arrive meanwhile are coalesced into one more reload when
it is due, and a SIGTERM is acted on at once. The
hub then stops within ``STOP_DEADLINE`` seconds; if it has not, the process reports
it and exits anyway (the stores are crash-safe, so nothing acknowledged is lost).
"""

from __future__ import annotations

import logging
import os
import resource
import sys
import threading
import time
from dataclasses import dataclass

import click
import pykka

from hub.cli._signals import SignalWaiter
from hub.cli.main import CliContext, cli
from hub.config import Config
from hub.errors import ConfigError
from hub.server import Hub, bound_malloc_arenas
from hub.store import hub_stores

log = logging.getLogger(__name__)

# Each session is a thread; small stacks let one hub hold thousands of peers.
SESSION_THREAD_STACK_BYTES = 512 * 1024
# From SIGTERM (or SIGINT) to the end of the process, whatever is still running.
STOP_DEADLINE = 4.5
# Reloads start at most this often; the SIGHUPs in between are one more reload.
RELOAD_SPACING = 0.5
EXIT_STOP_OVERDUE = 1


def _raise_open_file_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-file limit from %d: %s", soft, exc)


@dataclass
class _Reloads:
    """At most one reload in flight, and at most one each ``RELOAD_SPACING`` seconds:
    SIGHUPs meanwhile make exactly one more reload when it is due."""

    hub: Hub
    running: pykka.Future[Config] | None = None
    again: bool = False
    last_started: float = float("-inf")

    @property
    def busy(self) -> bool:
        return self.running is not None or self.again

    def wanted(self) -> None:
        self.again = True
        self._start_if_due()

    def _start_if_due(self) -> None:
        now = time.monotonic()
        if self.running is None and self.again and now - self.last_started >= RELOAD_SPACING:
            self.again = False
            self.last_started = now
            self.running = self.hub.request_reload()

    def poll(self) -> None:
        if self.running is None:
            self._start_if_due()
            return
        try:
            self.running.get(timeout=0)
            click.echo("synchub: configuration reloaded", err=True)
        except pykka.Timeout:
            return
        except ConfigError:
            pass  # the config actor logged it: one line at ERROR, saying what to do
        except pykka.ActorDeadError:
            pass
        self.running = None
        self._start_if_due()


def _stop_overdue() -> None:
    """The hub did not stop in time: say so and end the process regardless."""
    try:
        sys.stderr.write(
            f"synchub: the hub did not stop within {STOP_DEADLINE:.1f}s; exiting anyway\n"
        )
        sys.stderr.flush()
    finally:
        os._exit(EXIT_STOP_OVERDUE)


def _print_banner(hub: Hub, config: Config, endpoint: str) -> None:
    assert hub.identity is not None
    source = config.path or "embedded defaults"
    curve = hub.identity.curve.public_text if config.hub and config.hub.curve else "OFF"
    click.echo(
        f"synchub hub {config.instance} listening on {endpoint}\n"
        f"  config: {source}\n"
        f"  data:   {config.data_dir}\n"
        f"  store:  {hub_stores(config).describe()}\n"
        f"  node:   {hub.node}\n"
        f"  keyid:  {hub.identity.signing.keyid}\n"
        f"  curve:  {curve}\n"
        f"  web:    {hub.web_endpoint or 'off'}\n"
        "  to add a client: `synchub invite --instance NAME` here, then\n"
        "  `synchub join TOKEN` on the client (or the manual way: README).",
        err=True,
    )


def _serve(hub: Hub, signals: SignalWaiter) -> None:
    reloads = _Reloads(hub)
    while True:
        wakeup = signals.wait(0.05 if reloads.busy else 1.0)
        if wakeup.stop:
            return
        if wakeup.reload:
            reloads.wanted()
        reloads.poll()


@cli.command()
@click.pass_obj
def start(obj: CliContext) -> None:
    """Run the hub in the foreground until SIGINT or SIGTERM (SIGHUP reloads the config)."""
    config = obj.load()
    threading.stack_size(SESSION_THREAD_STACK_BYTES)
    bound_malloc_arenas()  # before the hub's threads start: they take arenas as they go
    _raise_open_file_limit()
    with SignalWaiter() as signals:
        hub = Hub(config, config_write_path=obj.write_path)
        watchdog: threading.Timer | None = None
        try:
            endpoint = hub.start()
            _print_banner(hub, config, endpoint)
            _serve(hub, signals)
        finally:
            watchdog = threading.Timer(STOP_DEADLINE, _stop_overdue)
            watchdog.daemon = True
            watchdog.start()
            hub.stop()
            watchdog.cancel()
    click.echo("synchub: hub stopped", err=True)
