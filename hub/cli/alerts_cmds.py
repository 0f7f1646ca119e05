"""`synchub alerts`: the firing incidents, and `synchub alerts test NAME`.

The listing reads the alert store in data_dir read-only (what the hub recorded, whether
or not it is running). ``test`` sends a test event (``"test": true``) through each of
the alert's deliveries from this process, one attempt each, and says how each went.
"""

from __future__ import annotations

import click

from hub.alerting import (
    DELIVERY_TIMEOUT,
    active_alert_dict,
    describe_target,
    encode_event,
    send,
    stored_alert,
    targets_of,
    test_event,
)
from hub.cli.admin_cmds import ago
from hub.cli.main import CliContext, cli, print_json
from hub.errors import SynchubError
from hub.store import hub_stores, now_ms
from hub.text import cell, closest_match, printable


@cli.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of firing incidents.")
@click.pass_context
def alerts(ctx: click.Context, as_json: bool) -> None:
    """List the alerts firing now (`synchub alerts test NAME` sends a test event)."""
    if ctx.invoked_subcommand is not None:
        return
    obj: CliContext = ctx.obj
    config = obj.load()
    incidents, pending = hub_stores(config).read_alert_state()
    firing = [stored_alert(incident, config.alerts) for incident in incidents]
    if as_json:
        print_json([active_alert_dict(alert) for alert in firing])
        return
    if not firing:
        click.echo("no alerts firing")
    else:
        click.echo(f"{'ALERT':18}  {'WHEN':16}  {'SUBJECT':28}  {'SINCE':9}  MESSAGE")
        now = now_ms()
        for alert in firing:
            click.echo(
                f"{cell(alert.alert, 18)}  {cell(alert.when, 16)}  "
                f"{cell(alert.key, 28)}  {ago(alert.fired_ms, now):9}  "
                f"{printable(alert.message, 200)}"
            )
    if pending:
        click.echo(f"{len(pending)} event(s) waiting to be delivered")


@alerts.command("test")
@click.argument("name")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True),
              default=DELIVERY_TIMEOUT, show_default=True, help="Seconds each delivery may take.")
@click.pass_obj
def test_alert(obj: CliContext, name: str, timeout: float) -> None:
    """Send a test event through each delivery of alert NAME."""
    config = obj.load()
    rule = config.alert(name)
    if rule is None:
        names = [a.name for a in config.alerts]
        close = closest_match(name, names)
        hint = f"did you mean {close!r}? " if close else ""
        known = ", ".join(names) or "none are configured"
        raise SynchubError(f"no alert named {name!r}; {hint}alerts: {known}")
    event = encode_event(test_event(rule, hub=config.instance, now_ms=now_ms()))
    failed = 0
    for target in targets_of(rule):
        outcome = send(rule, target, event, timeout)
        where = describe_target(rule, target)
        if outcome.delivered:
            click.echo(f"{where}: delivered ({printable(outcome.detail)})")
        else:
            failed += 1
            click.echo(f"{where}: failed: {printable(outcome.detail)}", err=True)
    if failed:
        raise SynchubError(f"{failed} of {len(targets_of(rule))} deliveries of {name} failed")
