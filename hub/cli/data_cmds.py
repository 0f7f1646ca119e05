"""`synchub backup DEST` and `synchub check`: a node's data_dir, copied or verified.

Both work whether or not a hub is running on the data_dir: the backup is SQLite's
online backup (each database copied as one read transaction saw it), and the check
opens everything read-only. docs/operations.md ("Backing up and restoring",
"Checking a data_dir") is the operator's account.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from hub.cli.main import EXIT_FAILURE, CliContext, cli, print_json
from hub.store import Level, back_up, check_data_dir, now_ms


@cli.command()
@click.argument("destination", type=click.Path(path_type=Path, file_okay=False))
@click.pass_obj
def backup(obj: CliContext, destination: Path) -> None:
    """Copy this node's databases and identity into the new directory DESTINATION.

    Safe while the hub runs and clients sync: each database is copied as one
    consistent snapshot. Restore by starting a hub with data_dir set to the copy
    (docs/operations.md). A PostgreSQL store is not copied: use pg_dump for it.
    """
    config = obj.load()
    result = back_up(config.data_dir, destination, store_url=config.store.url,
                     clock_ms=now_ms, instance=config.instance)
    for db in result.databases:
        click.echo(f"copied {db.name} ({db.size_bytes:,} bytes, {db.rows:,} "
                   f"{_ROWS.get(db.name, 'rows')})")
    click.echo(f"copied the identity (keyid {result.keyid})")
    click.echo(f"backup of {config.data_dir} written to {result.destination}")
    if result.postgresql is not None:
        click.echo(
            f"synchub: warning: the oplog and peer states are in PostgreSQL "
            f"({result.postgresql}) and were not copied: back them up with "
            f"`pg_dump --format=custom --file={destination}/synchub.pgdump '{result.postgresql}'`"
            " (docs/operations.md)",
            err=True,
        )


_ROWS = {"oplog.sqlite": "operations", "peers.sqlite": "peer records",
         "alerts.sqlite": "firing incidents"}


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of findings.")
@click.pass_obj
def check(obj: CliContext, as_json: bool) -> None:
    """Verify this node's data_dir (identity, databases, permissions) without starting.

    Changes nothing; exits 1 when anything is an error (a warning alone exits 0).
    """
    config = obj.load()
    findings = check_data_dir(config.data_dir, store_url=config.store.url)
    if as_json:
        print_json([{**dataclasses.asdict(f), "level": f.level.value} for f in findings])
    else:
        for finding in findings:
            click.echo(finding.line())
    errors = sum(f.level is Level.ERROR for f in findings)
    if errors:
        if not as_json:
            click.echo(f"synchub: error: {errors} problem{'s' if errors > 1 else ''} in "
                       f"{config.data_dir}", err=True)
        raise SystemExit(EXIT_FAILURE)
