"""`synchub start`: run the hub until SIGINT/SIGTERM; SIGHUP reloads the config."""

from __future__ import annotations

import logging
import resource
import signal
import threading
from types import FrameType

import click

from hub.cli.main import CliContext, cli
from hub.errors import ConfigError
from hub.server import Hub
from hub.store import hub_stores

log = logging.getLogger(__name__)

# Each session is a thread; small stacks let one hub hold thousands of peers.
SESSION_THREAD_STACK_BYTES = 512 * 1024


def _raise_open_file_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-file limit from %d: %s", soft, exc)


@cli.command()
@click.pass_obj
def start(obj: CliContext) -> None:
    """Run the hub in the foreground until SIGINT or SIGTERM (SIGHUP reloads the config)."""
    config = obj.load()
    threading.stack_size(SESSION_THREAD_STACK_BYTES)
    _raise_open_file_limit()

    stop = threading.Event()
    reload = threading.Event()

    def on_stop(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    def on_hup(signum: int, _frame: FrameType | None) -> None:
        reload.set()

    previous = {
        sig: signal.signal(sig, handler)
        for sig, handler in (
            (signal.SIGTERM, on_stop),
            (signal.SIGINT, on_stop),
            (signal.SIGHUP, on_hup),
        )
    }
    hub = Hub(config, config_write_path=obj.write_path)
    try:
        endpoint = hub.start()
        assert hub.identity is not None
        source = config.path or "embedded defaults"
        curve = hub.identity.curve.public_text if config.hub and config.hub.curve else "OFF"
        click.echo(
            f"synchub hub {config.instance} listening on {endpoint}\n"
            f"  config: {source}\n"
            f"  data:   {config.data_dir}\n"
            f"  store:  {hub_stores(config).describe()}\n"
            f"  keyid:  {hub.identity.signing.keyid}\n"
            f"  curve:  {curve}\n"
            "  to add a client: run `synchub id` here and paste it into the client's\n"
            "  [[known_hosts]]; then `synchub authorize KEYID --instance NAME` here.",
            err=True,
        )
        while not stop.is_set():
            stop.wait(0.5)
            if reload.is_set():
                reload.clear()
                try:
                    hub.reload()
                    click.echo("synchub: configuration reloaded", err=True)
                except ConfigError as exc:
                    click.echo(f"synchub: reload refused, old config kept: {exc}", err=True)
    finally:
        hub.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    click.echo("synchub: hub stopped", err=True)
