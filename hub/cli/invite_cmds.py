"""`synchub invite` (on a hub) and `synchub join` (on a client): pairing in one step.

`invite` stores an invitation (its id, the public half of the key its secret
derives, the instance and permissions it grants, expiry and uses) in the hub's
``data_dir/invitations.sqlite`` (or, on a PostgreSQL store, in the database every hub
of the cluster shares) and prints the token, alone, on stdout. `join`
proves the token's secret inside the handshake (docs/protocol.md §5.7 (Joining with
an invitation)); the hub authorizes the key, and `join` then pins the hub in the
client's ``[[known_hosts]]``.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import click

from hub.admin import (
    check_instance_id,
    keyid_fingerprint,
    parse_permission_list,
    permissions_from_flags,
)
from hub.agent import join_hub
from hub.cli.identity_cmds import warn_guessed_endpoint
from hub.cli.main import CliContext, cli, print_json
from hub.config import Config, KnownHost, add_or_update_known_host, load_config
from hub.errors import SynchubError
from hub.identity import load_identity, load_or_create_identity
from hub.protocol import InvitationToken, invitation_id, invitation_key, new_secret
from hub.scopes import Permissions, parse_permissions
from hub.store import Invitation, hub_stores

_DURATION = re.compile(r"(?P<number>\d+(?:\.\d+)?)(?P<unit>[smhd]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_EXPIRY_SECONDS = 30 * 86400
MAX_USES = 1000


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``15m``, ``1h``, ``7d`` -> seconds; SynchubError otherwise."""
    match = _DURATION.fullmatch(text.strip())
    seconds = float(match["number"]) * _UNITS[match["unit"]] if match else 0.0
    if not 0 < seconds <= MAX_EXPIRY_SECONDS:
        raise SynchubError(
            f"bad --expires {text!r}: expected a duration such as 30m, 1h or 2d "
            "(at most 30d)"
        )
    return seconds


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _when(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ms / 1000))


def _hub_config(obj: CliContext) -> Config:
    config = obj.load()
    if config.hub is None:
        where = config.path or "the config"
        raise SynchubError(f"{where} has no [hub]: invitations are made on the hub")
    return config


@cli.command()
@click.option("--instance", "instance_id", help="The instance id the new client joins as.")
@click.option("--perm", "perms", multiple=True, metavar="TYPE:SCOPE",
              help="A permission the client gets, e.g. read_config:*; repeat for more "
              "(none: it gets none).")
@click.option("--expires", default="1h", show_default=True,
              help="How long the token is valid: 30m, 1h, 2d (at most 30d).")
@click.option("--uses", default=1, show_default=True, type=click.IntRange(1, MAX_USES),
              help="How many clients may join with it.")
@click.option("--list", "show_list", is_flag=True, help="List this hub's invitations.")
@click.option("--revoke", "revoke_id", metavar="ID", help="Close the invitation ID.")
@click.option("--json", "as_json", is_flag=True, help="With --list: a JSON array.")
@click.pass_obj
def invite(  # noqa: PLR0917 - one parameter per click option
    obj: CliContext, instance_id: str | None, perms: tuple[str, ...], expires: str,
    uses: int, show_list: bool, revoke_id: str | None, as_json: bool,
) -> None:
    """Make a one-step invitation for a new client; print its token on stdout.

    On the client, `synchub join TOKEN` then creates its identity if needed, proves
    the token to this hub and pins it; no `synchub authorize` is needed.
    """
    config = _hub_config(obj)
    if show_list or revoke_id:
        _list_or_revoke(config, revoke_id, as_json=as_json)
        return
    if not instance_id:
        raise SynchubError("missing --instance NAME: the instance id the client joins as")
    check_instance_id(instance_id)
    raw_permissions = permissions_from_flags(perms) if perms else []
    permissions = parse_permission_list(raw_permissions) if raw_permissions else Permissions()
    seconds = parse_duration(expires)
    identity = load_identity(config.data_dir)
    assert config.hub is not None
    endpoint, guessed = config.hub.client_endpoint()
    if guessed:
        warn_guessed_endpoint(config, endpoint)
    secret = new_secret()
    now = _now_ms()
    invitation = Invitation(
        id=invitation_id(secret), instance_id=instance_id,
        permissions=json.dumps(permissions.to_toml()),
        verifier=invitation_key(secret).public_key_raw, created_ms=now,
        expires_ms=now + int(seconds * 1000), uses=uses, uses_left=uses,
    )
    store = hub_stores(config).open_invitations()
    try:
        store.add(invitation, now)
    finally:
        store.close()
    token = InvitationToken(
        hub_instance_id=config.instance, hub_keyid=identity.signing.keyid,
        curve_public_key=identity.curve.public_text, endpoints=(endpoint,),
        instance_id=instance_id, secret=secret,
    )
    click.echo(token.encode())
    click.echo(
        f"synchub: invitation {invitation.id} for instance {instance_id} "
        f"({_permissions_text(permissions)}), {uses} use{'s' if uses > 1 else ''}, "
        f"expires {_when(invitation.expires_ms)}; on the client run "
        "`synchub join TOKEN`; keep the token secret until then",
        err=True,
    )


def _permissions_text(permissions: Permissions) -> str:
    entries = permissions.to_toml()
    if not entries:
        return "no permissions"
    return "; ".join(f"{e['type']}: {', '.join(e['scopes'])}" for e in entries)


def _list_or_revoke(config: Config, revoke_id: str | None, *, as_json: bool) -> None:
    store = hub_stores(config).open_invitations()
    try:
        now = _now_ms()
        if revoke_id:
            if not store.revoke(revoke_id.strip(), now):
                raise SynchubError(
                    f"no open invitation {revoke_id.strip()!r} (see `synchub invite --list`)"
                )
            click.echo(f"revoked invitation {revoke_id.strip()}; its token no longer works")
            return
        invitations = store.all()
    finally:
        store.close()
    if as_json:
        print_json([_invitation_json(i, now) for i in invitations])
        return
    if not invitations:
        click.echo("no invitations")
        return
    click.echo(f"{'ID':16}  {'INSTANCE':16}  {'STATE':8}  {'USES LEFT':9}  EXPIRES")
    for i in invitations:
        click.echo(f"{i.id:16}  {i.instance_id:16}  {i.state(now):8}  "
                   f"{f'{i.uses_left}/{i.uses}':9}  {_when(i.expires_ms)}")


def _invitation_json(invitation: Invitation, now_ms: int) -> dict[str, object]:
    return {
        "id": invitation.id,
        "instance_id": invitation.instance_id,
        "permissions": json.loads(invitation.permissions),
        "state": invitation.state(now_ms),
        "uses": invitation.uses,
        "uses_left": invitation.uses_left,
        "created_ms": invitation.created_ms,
        "expires_ms": invitation.expires_ms,
        "joined": list(invitation.joined),
    }


@cli.command()
@click.argument("token")
@click.option("--endpoint", help="Dial this tcp://HOST:PORT instead of the token's address.")
@click.option("--timeout", default=30.0, show_default=True, type=click.FloatRange(min=1),
              help="Seconds to wait for the hub's answer.")
@click.pass_obj
def join(obj: CliContext, token: str, endpoint: str | None, timeout: float) -> None:
    """Join the hub that made TOKEN (`synchub invite`): no `synchub authorize` needed.

    Creates this node's identity if it has none (and its config file, when there is
    none, for the instance the token names), proves the token inside the handshake,
    and, once the hub has let this node in, pins the hub in [[known_hosts]].
    """
    invitation = InvitationToken.decode(token)
    path = obj.write_path
    config = load_config(path) if path.exists() else None
    if config is not None and config.instance != invitation.instance_id:
        raise SynchubError(
            f"{path}: this node is instance {config.instance!r}, the invitation is for "
            f"{invitation.instance_id!r}: ask for an invitation for {config.instance!r}"
        )
    if config is not None:
        pinned = config.known_host(invitation.hub_instance_id)
        if pinned is not None and pinned.keyid != invitation.hub_keyid:
            raise SynchubError(
                f"{path}: known_hosts already pins {invitation.hub_instance_id} with key "
                f"{pinned.keyid}, the invitation names {invitation.hub_keyid}: remove the "
                "old entry first if the hub's key really changed"
            )
    data_dir = config.data_dir if config is not None else path.parent / "synchub-data"
    identity, created = load_or_create_identity(data_dir)
    if created:
        click.echo(f"created identity {identity.signing.keyid} in {data_dir}", err=True)
    target = endpoint or invitation.endpoints[0]
    joined = join_hub(identity.signing, invitation.instance_id, invitation, target, timeout)
    written = add_or_update_known_host(
        path,
        KnownHost(
            instance_id=invitation.hub_instance_id, endpoint=target,
            keyid=invitation.hub_keyid, curve_public_key=invitation.curve_public_key,
            permissions=parse_permissions([{"type": "read_operations", "scopes": ["*"]}]),
        ),
        instance=invitation.instance_id,
    )
    shared = ", ".join(joined.repos + joined.plans) or "nothing yet"
    click.echo(
        f"joined {invitation.hub_instance_id} at {target} as {invitation.instance_id} "
        f"(key {keyid_fingerprint(identity.signing.keyid)}); it shares: {shared}"
    )
    click.echo(f"pinned it in {Path(written.path or path)}; now run `synchub agent`", err=True)
