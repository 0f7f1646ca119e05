"""`synchub store migrate --to URL`: move a hub's SQLite stores into PostgreSQL.

Copies ``data_dir``'s oplog and peer states into the database (docs/operations.md,
"A hub on PostgreSQL"); the hub must be stopped, and the SQLite files are left
as they were, so going back is removing ``[store] url`` again.
"""

from __future__ import annotations

import click

import hub.store
from hub.admin import ask_hub
from hub.cli.main import CliContext, cli
from hub.config import postgresql_url_problem
from hub.errors import AdminUnavailable, StoreError
from hub.text import redacted_url


@cli.group()
def store() -> None:
    """The hub's stores: where its oplog and peer states are kept ([store] url)."""


@store.command()
@click.option("--to", "url", required=True, metavar="URL",
              help="The PostgreSQL database, as a libpq URL (postgresql://...).")
@click.option("--replace", is_flag=True,
              help="Replace what the database already holds (refused without it).")
@click.option("--clients-only", is_flag=True,
              help="Only add the file's [[authorized_clients]] to the database (for a hub "
              "joining a cluster); running hubs apply them at once.")
@click.pass_obj
def migrate(obj: CliContext, url: str, replace: bool, clients_only: bool) -> None:
    """Copy this hub's SQLite oplog, peer states and authorized clients into PostgreSQL.

    Ids, flows, original ids, modnos and every operation's bytes are kept. Then
    set `[store] url` to the same URL, delete the [[authorized_clients]] from the
    file (they are in the database now, shared by every hub on it) and start the hub.
    """
    config = obj.load()
    problem = postgresql_url_problem(url)
    if problem:
        raise click.BadParameter(problem, param_hint="--to")
    if clients_only:
        count = hub.store.import_clients(url, config.authorized_clients)
        click.echo(f"added {count:,} authorized client(s) from {config.path or 'the defaults'} "
                   f"to {redacted_url(url)}")
        if count:
            click.echo(f"next: delete the [[authorized_clients]] from {config.path}: the "
                       "database holds them now")
        return
    try:
        ask_hub(config.data_dir, "status", timeout=2.0)
    except AdminUnavailable as exc:
        if exc.listening:
            raise StoreError(f"a hub is answering slowly on {config.data_dir}: stop it "
                             "first, so nothing changes while its stores are copied") from exc
    else:
        raise StoreError(f"a hub is running on {config.data_dir}: stop it first, so nothing "
                         "changes while its stores are copied")
    copied = hub.store.copy_to_postgres(
        config.data_dir, url, replace=replace, clients=config.authorized_clients
    )
    click.echo(
        f"copied {copied.operations:,} operations, {copied.peer_states:,} peer states and "
        f"{copied.clients:,} authorized clients from {config.data_dir} to {copied.target} "
        f"(next id {copied.last_id + 1:,})"
    )
    where = config.path or "the config file"
    also = ", delete its [[authorized_clients]]" if copied.clients else ""
    click.echo(f'next: add [store] url = "{copied.target}" to {where}{also}, then start the hub')
