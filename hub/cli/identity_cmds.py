"""`synchub keygen` and `synchub id`."""

from __future__ import annotations

import click

from hub.admin import check_no_hub_serving, keyid_fingerprint
from hub.cli.main import CliContext, cli, print_json
from hub.config import Config
from hub.errors import SynchubError
from hub.identity import NodeIdentity, create_identity, load_identity


@cli.command()
@click.option("--force", is_flag=True, help="Replace an existing identity (clients must re-pin).")
@click.pass_obj
def keygen(obj: CliContext, force: bool) -> None:
    """Create this node's identity (ed25519 signing key and CURVE key pair)."""
    config = obj.load()
    try:
        check_no_hub_serving(config.data_dir)
    except SynchubError as exc:
        raise SynchubError(
            f"a hub runs on data_dir {config.data_dir}: stop it before making a new "
            "identity there (clients pin the key it serves)"
        ) from exc
    identity = create_identity(config.data_dir, force=force)
    click.echo(f"created identity {identity.signing.keyid} in {config.data_dir}")


@cli.command("id")
@click.option("--json", "as_json", is_flag=True, help="Print the fields as a JSON object.")
@click.pass_obj
def show_id(obj: CliContext, as_json: bool) -> None:
    """Print this node's identity: on a hub, the [[known_hosts]] entry clients paste;
    on a client, the `synchub authorize` line to run on its hub."""
    config = obj.load()
    identity = load_identity(config.data_dir)
    details = identity_details(config, identity)
    if as_json:
        print_json(details)
        return
    if config.hub is None:
        click.echo(client_snippet(details))
        return
    click.echo(known_hosts_snippet(details))


def identity_details(
    config: Config, identity: NodeIdentity
) -> dict[str, str | float | int | None]:
    """What a client's [[known_hosts]] entry takes; the hub's timing and frame limit
    are null on a node that runs no hub."""
    endpoint = None
    hub = config.hub
    if hub is not None:
        endpoint, guessed = hub.client_endpoint()
        if guessed:
            warn_guessed_endpoint(config, endpoint)
    return {
        "instance_id": config.instance,
        "keyid": identity.signing.keyid,
        "fingerprint": keyid_fingerprint(identity.signing.keyid),
        "ed25519pub": identity.signing.ed25519pub,
        "curve_public_key": identity.curve.public_text,
        "endpoint": endpoint,
        "heartbeat_interval": hub.heartbeat_interval if hub is not None else None,
        "handshake_timeout": hub.handshake_timeout if hub is not None else None,
        "max_frame_bytes": hub.max_frame_bytes if hub is not None else None,
    }


def warn_guessed_endpoint(config: Config, endpoint: str) -> None:
    """Say on stderr that a wildcard bind's address was guessed, and how to set it."""
    where = config.path or "the config file"
    assert config.hub is not None
    click.echo(
        f"synchub: note: [hub] bind {config.hub.bind} is a wildcard; guessed {endpoint} "
        f"from this host's name: if clients reach the hub another way, set [hub] "
        f'advertise = "tcp://NAME:PORT" in {where}',
        err=True,
    )


def known_hosts_snippet(details: dict[str, str | float | int | None]) -> str:
    keyid = str(details["keyid"] or "")
    lines = [
        f"# fingerprint: {keyid_fingerprint(keyid)} ({details['instance_id']})",
        f"# ed25519pub = {details['ed25519pub']}",
        "[[known_hosts]]",
        f'instance_id = "{details["instance_id"]}"',
        f'endpoint = "{details["endpoint"]}"',
        f'keyid = "{details["keyid"]}"',
        f'curve_public_key = "{details["curve_public_key"]}"',
        'permissions = [ { type = "read_operations", scopes = ["*"] } ]',
        "# the hub's settings: the agent heartbeats at least this often and keeps",
        "# its frames under the limit",
        f"heartbeat_interval = {details['heartbeat_interval']:g}",
        f"handshake_timeout = {details['handshake_timeout']:g}",
        f"max_frame_bytes = {details['max_frame_bytes']}",
    ]
    return "\n".join(lines)


def client_snippet(details: dict[str, str | float | int | None]) -> str:
    """A node that runs no hub: what its hub's operator runs to let it in."""
    keyid = str(details["keyid"] or "")
    return "\n".join(
        [
            f"instance     {details['instance_id']}",
            f"keyid        {keyid}",
            f"fingerprint  {keyid_fingerprint(keyid)}",
            "On the hub, after comparing the fingerprint, run:",
            f"  synchub authorize {keyid} --instance {details['instance_id']} "
            "--perm read_config:'*'",
            "(or in one step: `synchub invite --instance NAME` on the hub, "
            "`synchub join TOKEN` here)",
        ]
    )
