"""`synchub peers`, `pending`, `authorize`, `revoke`, `status` and `reload`.

Each asks the hub running on this node's data_dir over its admin socket. With no
hub answering, ``peers`` reads the peer-state file and ``authorize`` / ``revoke``
edit the config file directly (the hub applies them when it next starts or
reloads); ``-v`` says which way was taken.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click

from hub.admin import (
    ask_hub,
    ask_running_hub,
    check_instance_id,
    check_keyid,
    client_summary,
    keyid_fingerprint,
    parse_permission_list,
    permissions_from_flags,
    short_keyid,
)
from hub.cli.agent_cmds import show_client_status
from hub.cli.listing import TimeZoneChoice, table
from hub.cli.listing import ago as ago  # noqa: PLC0414 - still imported from here
from hub.cli.listing import duration as duration  # noqa: PLC0414 - as ago
from hub.cli.main import CliContext, cli, print_json
from hub.config import (
    AuthorizedClient,
    Config,
    add_or_update_authorized_client,
    remove_authorized_client,
)
from hub.errors import AdminError, AdminUnavailable, NotConfirmed, SynchubError
from hub.jsonview import message_to_dict
from hub.pb import synchub_pb2 as pb
from hub.scopes import Permissions, ScopeKind
from hub.store import AuthorizedClientStore, hub_stores, peer_store_path
from hub.text import closest_match, inert

log = logging.getLogger(__name__)

# Config changes wait longer than reads: the hub writes the file before it answers.
CHANGE_TIMEOUT = 15.0
READ_TIMEOUT = 2.0
EXIT_NOT_RUNNING = 3

_STATE_NAMES = {
    value: name.removeprefix("CONNECTION_STATE_").lower()
    for name, value in pb.ConnectionState.items()
}


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


_ERROR_STATES = frozenset({
    pb.CONNECTION_STATE_ERROR_AUTH,
    pb.CONNECTION_STATE_ERROR_PROTOCOL,
    pb.CONNECTION_STATE_ERROR_INTERNAL,
})
_LIVE_STATES = frozenset({pb.CONNECTION_STATE_CONNECTED, pb.CONNECTION_STATE_PENDING})


def _when_and_why(then_ms: int, why: str, now_ms: int) -> str:
    if not why:
        return "-"
    return f"{ago(then_ms, now_ms)}: {why}" if then_ms > 0 else why


def _last_error(state: pb.PeerState) -> tuple[int, str]:
    if state.last_error:
        return state.last_error_millis, state.last_error
    if state.state in _ERROR_STATES:  # a record written before last_error was kept apart
        return state.last_disconnect_millis, state.status_message
    return 0, ""


def peers_table(
    states: list[pb.PeerState], now_ms: int, *, wide: bool = False,
    holders: dict[str, str] | None = None,
) -> list[str]:
    """One line per peer: where it stands, when it was last heard from, why its last
    session ended and its last error (apart: a client closing on purpose is no error).
    ``holders`` (keyid -> hub node, several hubs on one store) adds a HUB column."""
    if holders is not None:
        return _with_hub_column(peers_table(states, now_ms, wide=wide), states, holders)
    header = ("INSTANCE", "KEYID", "STATE", "HEARD", "REPOS / PLANS", "LAST DISCONNECT",
              "LAST ERROR")
    rows = []
    for state in states:
        repos = ",".join(state.known_repos) or "-"
        plans = ",".join(state.known_plans) or "-"
        ended = "-" if state.state in _LIVE_STATES else _when_and_why(
            state.last_disconnect_millis, state.status_message, now_ms)
        rows.append((
            state.peer_instance_id or "-",
            short_keyid(state.peer_keyid),
            _STATE_NAMES.get(state.state, str(state.state)),
            ago(state.last_heartbeat_millis, now_ms),
            f"{repos} / {plans}",
            ended,
            _when_and_why(*_last_error(state), now_ms),
        ))
    return table(header, rows, (16, None, None, None, 24, 40, 60), wide=wide)


def _with_hub_column(
    lines: list[str], states: list[pb.PeerState], holders: dict[str, str]
) -> list[str]:
    """``lines`` (a header, then one per state) with HUB inserted after STATE."""
    at = lines[0].index("HEARD")
    cells = ["HUB", *(holders.get(s.peer_keyid, "-") for s in states)]
    width = max(len(c) for c in cells) + 2
    return [line[:at] + cell.ljust(width) + line[at:] for line, cell in zip(
        lines, cells, strict=True)]


def as_of(states: list[pb.PeerState]) -> int:
    """The latest time the stored records mention: about when the hub last wrote them."""
    return max(
        (max(s.last_heartbeat_millis, s.last_disconnect_millis, s.last_error_millis)
         for s in states),
        default=0,
    )


def load_peer_states(
    config: Config,
) -> tuple[list[pb.PeerState], bool, dict[str, str]]:
    """The peer states, whether they are live, and keyid -> the hub node holding each
    live session: from the running hub when one answers, else from its store (file or
    database) as the hubs last wrote them."""
    answer = ask_running_hub(config.data_dir, "peers", timeout=READ_TIMEOUT)
    if answer is not None:
        holders = dict(answer.get("holders") or {})
        return [pb.PeerState.FromString(raw) for raw in answer["peers"]], True, holders
    stores = hub_stores(config)
    where = stores.describe() if stores.postgresql else peer_store_path(config.data_dir)
    log.info("peers: reading %s directly", where)
    return stores.read_peer_states(), False, stores.read_holders()


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of PeerState objects.")
@click.option("--wide", is_flag=True, help="Cut nothing: every column as wide as its content.")
@click.option("--utc", is_flag=True, help="Show the as-of time in UTC instead of local time.")
@click.pass_obj
def peers(obj: CliContext, as_json: bool, wide: bool, utc: bool) -> None:
    """List every peer this hub knows: state, when last heard from, repos and plans, why
    its last session ended, its last error."""
    config = obj.load_for_running_hub()
    states, live, holders = load_peer_states(config)
    if as_json:
        print_json([
            {**message_to_dict(state), "hub_node": holders.get(state.peer_keyid)}
            for state in states
        ])
        return
    if not states:
        click.echo("no peers")
        return
    if not live:
        click.echo(
            f"no hub is running on {config.data_dir}: states as of "
            f"{TimeZoneChoice(utc=utc).show(as_of(states))}, when it last recorded them",
            err=True,
        )
    shared = hub_stores(config).shared
    for line in peers_table(states, _now_ms(), wide=wide, holders=holders if shared else None):
        click.echo(line)


@cli.command()
@click.option("--json", "as_json", is_flag=True,
              help="Print a JSON array, one object per key, most recent first.")
@click.pass_obj
def pending(obj: CliContext, as_json: bool) -> None:
    """List the keys waiting to be authorized: refused after a valid PROOF, with the
    `synchub authorize` line that lets each in (asks the running hub)."""
    config = obj.load_for_running_hub()
    try:
        answer = ask_hub(config.data_dir, "pending", timeout=READ_TIMEOUT)
    except AdminUnavailable as exc:
        raise SynchubError(
            f"{exc}: the keys waiting to be authorized are kept by the running hub"
        ) from exc
    rows: list[dict[str, Any]] = list(answer.get("pending") or [])
    if as_json:
        print_json(rows)
        return
    bounds = (f"at most {answer.get('max_keys')} keys, each kept "
              f"{duration(int(answer.get('max_age_seconds') or 0))} after its last attempt")
    if not rows:
        click.echo(f"no key is waiting to be authorized ({bounds})")
        return
    now = _now_ms()
    click.echo(f"{len(rows)} {'key' if len(rows) == 1 else 'keys'} waiting to be authorized, "
               f"refused after a valid PROOF ({bounds}); compare each fingerprint with "
               "`synchub id` on the client before letting it in:")
    for row in rows:
        attempts = int(row["attempts"])
        click.echo("")
        click.echo(f"{inert(str(row['instance_id'])) or '-'}  {row['keyid']}")
        click.echo(f"  fingerprint  {row['fingerprint']}")
        click.echo(f"  from         {inert(str(row['source_address'])) or 'unknown address'}, "
                   f"{attempts} {'attempt' if attempts == 1 else 'attempts'}, first "
                   f"{ago(int(row['first_seen_ms']), now)}, last "
                   f"{ago(int(row['last_seen_ms']), now)}")
        click.echo(f"  refused      {inert(str(row['reason']))}")
        click.echo(f"  let it in    {inert(str(row['authorize_command']))}")


def _authorized_client(config: Config, keyid: str) -> AuthorizedClient | None:
    """The client with ``keyid``: from the database when the store is shared (several
    hubs keep their clients there), else from the config file."""
    store = hub_stores(config).open_clients()
    if store is None:
        return config.authorized_client(keyid)
    try:
        return next((c for c in store.load_all() if c.keyid == keyid), None)
    finally:
        store.close()


def _change_shared_clients(
    config: Config, change: Callable[[AuthorizedClientStore], object]
) -> bool:
    """Apply ``change`` to the shared store's clients; False when the store is not shared."""
    store = hub_stores(config).open_clients()
    if store is None:
        return False
    try:
        change(store)
    finally:
        store.close()
    return True


def _describe_client(instance_id: str, keyid: str) -> None:
    click.echo(f"  instance     {inert(instance_id)}")
    click.echo(f"  keyid        {inert(keyid)}")
    click.echo(f"  fingerprint  {keyid_fingerprint(keyid)}")


def _confirm(question: str, yes: bool, refused: str) -> None:
    if yes:
        return
    try:
        confirmed = click.confirm(question, default=False)
    except click.Abort:
        confirmed = False
    if not sys.stdin.isatty():
        # Without a terminal the answer is not echoed: end the prompt's line.
        click.echo()
    if not confirmed:
        raise NotConfirmed(f"{refused}: nothing changed (confirm on a terminal, or pass --yes)")


def _listening_but_silent(exc: AdminUnavailable) -> NoReturn:
    raise SynchubError(
        f"{exc}; the change may or may not have been applied: check with "
        "`synchub peers` and the config file"
    ) from exc


def _permissions_text(raw: list[dict[str, Any]] | None, existing: AuthorizedClient | None) -> str:
    if raw is None:
        if existing is None:
            return "none (a new client; add --perm TYPE:SCOPE to grant some)"
        current: list[dict[str, Any]] = existing.permissions.to_toml()
        return f"unchanged ({_permissions_text(current, existing) if current else 'none'})"
    if not raw:
        return "none"
    return "; ".join(f"{p['type']}: {', '.join(p['scopes'])}" for p in raw)


def unknown_resources(
    config: Config, permissions: Permissions, peers: list[pb.PeerState]
) -> list[str]:
    """A line for each plan or repo a permission names that neither this config nor any
    known peer has: the permission is kept, but it matches nothing until one exists."""
    known = {
        ScopeKind.PLAN: {p.id for p in config.plans}.union(*(s.known_plans for s in peers)),
        ScopeKind.REPO: {r.id for r in config.repos}.union(*(s.known_repos for s in peers)),
    }
    where = config.path or "the built-in defaults"
    warnings: list[str] = []
    for entry in permissions.entries:
        for scope in entry.scopes.scopes:
            names = known.get(scope.kind)
            if names is None or scope.ident in names:
                continue
            kind = scope.kind.value
            guess = closest_match(scope.ident, names)
            hint = f" (did you mean {guess!r}?)" if guess else ""
            warnings.append(
                f"{entry.type.value}:{scope}: no {kind} {scope.ident!r} in {where} or among "
                f"the peers' {kind}s{hint}; kept, but it matches nothing until one exists"
            )
    return warnings


@cli.command()
@click.argument("keyid")
@click.option("--instance", "instance_id", required=True, help="The client's instance id.")
@click.option(
    "--perm",
    "perms",
    multiple=True,
    metavar="TYPE:SCOPE",
    help="A permission, e.g. read_config:* or read_operations:repo:nas or "
    "read_config:!plan:secret; repeat for more. Without any, an existing client keeps "
    "its permissions and a new one gets none.",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask: the key was verified out of band.")
@click.pass_obj
def authorize(
    obj: CliContext, keyid: str, instance_id: str, perms: tuple[str, ...], yes: bool
) -> None:
    """Allow the client with KEYID (or its grouped fingerprint) to connect, as a verified key."""
    keyid = check_keyid(keyid)
    check_instance_id(instance_id)
    raw_permissions = permissions_from_flags(perms) if perms else None
    permissions = parse_permission_list(raw_permissions) if raw_permissions else None
    config = obj.load()

    click.echo("Authorize this client:")
    _describe_client(instance_id, keyid)
    existing = _authorized_client(config, keyid)
    click.echo(f"  permissions  {_permissions_text(raw_permissions, existing)}")
    if permissions is not None:
        for warning in unknown_resources(config, permissions, load_peer_states(config)[0]):
            click.echo(f"warning: {warning}", err=True)
    click.echo("Compare the fingerprint with `synchub id` run on the client.")
    _confirm(
        "Have you checked this fingerprint over a channel you trust?", yes, "not authorized"
    )

    try:
        answer = ask_hub(
            config.data_dir, "authorize", timeout=CHANGE_TIMEOUT,
            keyid=keyid, instance_id=instance_id, permissions=raw_permissions, verified=True,
        )
    except AdminUnavailable as exc:
        if exc.listening:
            _listening_but_silent(exc)
        log.info("%s; editing %s directly", exc, obj.write_path)
    else:
        log.info("authorize: applied by the running hub")
        stores = hub_stores(config)
        where = stores.describe() if stores.shared else answer.get("config_path")
        click.echo(
            f"authorized {instance_id} ({keyid}) in {where}; the running hub applied it"
        )
        return

    client = AuthorizedClient(
        instance_id=instance_id,
        keyid=keyid,
        keyid_verified=True,
        permissions=permissions if permissions is not None else (
            existing.permissions if existing is not None else Permissions()
        ),
    )
    if _change_shared_clients(config, lambda store: store.put(client)):
        click.echo(f"authorized {instance_id} ({keyid}) in {hub_stores(config).describe()}; "
                   "every running hub on it applies it at once")
        return
    add_or_update_authorized_client(obj.write_path, client, cwd=Path.cwd())
    click.echo(
        f"authorized {instance_id} ({keyid}) in {obj.write_path}; no hub is running on "
        f"{config.data_dir}: it applies when the hub starts"
    )
    log.debug("authorized %s", client_summary(client))


@cli.command()
@click.argument("keyid")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def revoke(obj: CliContext, keyid: str, yes: bool) -> None:
    """Remove the client with KEYID; its live sessions end at once."""
    keyid = check_keyid(keyid)
    config = obj.load()
    existing = _authorized_client(config, keyid)
    if existing is None:
        shared = hub_stores(config)
        where = shared.describe() if shared.shared else (config.path or obj.write_path)
        raise SynchubError(f"{where}: no authorized client has keyid {keyid!r}")

    click.echo("Revoke this client:")
    _describe_client(existing.instance_id, keyid)
    _confirm("Revoke it and end its live sessions?", yes, "not revoked")

    try:
        ask_hub(config.data_dir, "revoke", timeout=CHANGE_TIMEOUT, keyid=keyid)
    except AdminUnavailable as exc:
        if exc.listening:
            _listening_but_silent(exc)
        log.info("%s; editing %s directly", exc, obj.write_path)
    else:
        log.info("revoke: applied by the running hub")
        click.echo(
            f"revoked {existing.instance_id} ({keyid}); the running hub ended its sessions"
        )
        return
    if _change_shared_clients(config, lambda store: store.remove(keyid)):
        click.echo(f"revoked {existing.instance_id} ({keyid}) in "
                   f"{hub_stores(config).describe()}; every running hub on it ends its sessions")
        return
    remove_authorized_client(obj.write_path, keyid)
    click.echo(
        f"revoked {existing.instance_id} ({keyid}) in {obj.write_path}; no hub is running "
        f"on {config.data_dir}"
    )


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the hub's status as JSON.")
@click.option("--utc", is_flag=True, help="On a client: times in UTC.")
@click.pass_obj
def status(obj: CliContext, as_json: bool, utc: bool) -> None:
    """Show the running hub's identity and counts (exit status 3 when none runs); on a
    client (no [hub], some [[known_hosts]]), how each of its hubs stands."""
    config = obj.load_for_running_hub()
    if config.hub is None and config.known_hosts:
        show_client_status(config, as_json=as_json, utc=utc)
        return
    try:
        answer = ask_hub(config.data_dir, "status", timeout=READ_TIMEOUT)
    except AdminUnavailable as exc:
        if as_json:
            print_json({"running": False, "reason": str(exc)})
        else:
            click.echo(f"not running: {exc}")
        raise click.exceptions.Exit(EXIT_NOT_RUNNING) from exc
    answer.pop("ok", None)
    if as_json:
        print_json({"running": True, **answer})
        return
    click.echo(
        f"hub {inert(str(answer['instance']))} running "
        f"(pid {answer['pid']}, up {duration(answer['uptime_seconds'])})"
    )
    click.echo(f"  endpoint  {inert(str(answer['endpoint']))}")
    click.echo(f"  keyid     {inert(str(answer['keyid']))}")
    click.echo(f"  config    {inert(str(answer['config_path'] or 'embedded defaults'))}")
    click.echo(f"  data      {inert(str(answer['data_dir']))}")
    click.echo(
        f"  peers     {answer['peers_connected']} connected of {answer['peers_known']} known; "
        f"{answer['authorized_clients']} authorized"
    )
    click.echo(f"  oplog     {answer['operations']} operations")
    waiting = _waiting_count(config)
    if waiting:
        click.echo(f"  waiting   {waiting} {'key' if waiting == 1 else 'keys'} refused after a "
                   "valid PROOF: `synchub pending` lists them with the authorize line")


def _waiting_count(config: Config) -> int:
    """How many keys wait to be authorized (0 when the hub cannot say)."""
    try:
        answer = ask_hub(config.data_dir, "pending", timeout=READ_TIMEOUT)
    except (AdminError, AdminUnavailable):
        return 0
    return len(answer.get("pending") or [])


@cli.command()
@click.pass_obj
def reload(obj: CliContext) -> None:
    """Make the running hub re-read its config file (like SIGHUP, but reports errors)."""
    config = obj.load_for_running_hub(warn=False)
    try:
        answer = ask_hub(config.data_dir, "reload", timeout=CHANGE_TIMEOUT)
    except AdminUnavailable as exc:
        if exc.listening:
            raise SynchubError(str(exc)) from exc
        raise SynchubError(f"{exc}: nothing to reload") from exc
    click.echo(f"reloaded {answer.get('config_path') or 'embedded defaults (nothing to read)'}")
