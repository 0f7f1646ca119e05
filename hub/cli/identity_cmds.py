"""`synchub keygen` and `synchub id`."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import click

from hub.admin import keyid_fingerprint
from hub.cli.main import CliContext, cli, print_json
from hub.config import Config
from hub.identity import NodeIdentity, create_identity, identity_dir, load_identity


@cli.command()
@click.option("--force", is_flag=True, help="Replace an existing identity (clients must re-pin).")
@click.pass_obj
def keygen(obj: CliContext, force: bool) -> None:
    """Create this node's identity (ed25519 signing key and CURVE key pair)."""
    config = obj.load()
    identity = create_identity(config.data_dir, force=force)
    click.echo(f"created identity {identity.signing.keyid} in {config.data_dir}")


@cli.command("id")
@click.option("--json", "as_json", is_flag=True, help="Print the fields as a JSON object.")
@click.pass_obj
def show_id(obj: CliContext, as_json: bool) -> None:
    """Print what a client pastes into its [[known_hosts]] entry for this node."""
    config = obj.load()
    identity = load_identity(config.data_dir)
    details = identity_details(config, identity)
    if as_json:
        print_json(details)
        return
    click.echo(known_hosts_snippet(details))
    if config.hub is not None:
        # Comments, so that the whole output still pastes as TOML.
        click.echo(
            f"# several hubs on one [store] url serve this identity: copy "
            f"{identity_dir(config.data_dir)}/ to each hub's data_dir, and give clients\n"
            '# endpoints = ["tcp://hub1:7470", "tcp://hub2:7470"] instead of endpoint'
        )


def identity_details(config: Config, identity: NodeIdentity) -> dict[str, str | None]:
    return {
        "instance_id": config.instance,
        "keyid": identity.signing.keyid,
        "ed25519pub": identity.signing.ed25519pub,
        "curve_public_key": identity.curve.public_text,
        "endpoint": connect_endpoint(config.hub.bind) if config.hub is not None else None,
    }


def connect_endpoint(bind: str) -> str:
    """The address a client dials for a hub bound at ``bind``.

    A wildcard bind (0.0.0.0, *, ::) is not dialable; the host name stands in.
    """
    parts = urlsplit(bind)
    host = parts.hostname or ""
    if host in {"0.0.0.0", "*", "::", ""}:  # noqa: S104 - recognising, not binding
        host = socket.getfqdn()
    elif ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


def known_hosts_snippet(details: dict[str, str | None]) -> str:
    endpoint = details["endpoint"] or "tcp://HUB-ADDRESS:7470"
    keyid = details["keyid"] or ""
    lines = [
        f"# fingerprint: {keyid_fingerprint(keyid)} ({details['instance_id']})",
        f"# ed25519pub = {details['ed25519pub']}",
        "[[known_hosts]]",
        f'instance_id = "{details["instance_id"]}"',
        f'endpoint = "{endpoint}"',
        f'keyid = "{details["keyid"]}"',
        f'curve_public_key = "{details["curve_public_key"]}"',
        'permissions = [ { type = "read_operations", scopes = ["*"] } ]',
    ]
    return "\n".join(lines)
