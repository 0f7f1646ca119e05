"""`synchub bench`: the benchmark scenarios, each figure printed beside its baseline.

Every scenario builds what it needs on loopback in a temporary directory, prints
one line a figure (``name: value unit (baseline: value unit, ratio: x.xx)``),
then one line a goal from docs/targets.md; ``--json`` prints one JSON object
instead, ``--json-file PATH`` writes it beside the lines. Progress goes to stderr with ``-v``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

import click

from hub.bench import agent_latency as agent_latency_bench
from hub.bench import cluster as cluster_bench
from hub.bench import handshakes as handshakes_bench
from hub.bench import hostile as hostile_bench
from hub.bench import hostile_memory as hostile_memory_bench
from hub.bench import hostile_writes as hostile_writes_bench
from hub.bench import ingest as ingest_bench
from hub.bench import latency as latency_bench
from hub.bench import peers as peers_bench
from hub.bench import resync as resync_bench
from hub.bench import web as web_bench
from hub.bench.report import Result
from hub.bench.rig import raise_open_file_limit
from hub.cli.hub_cmds import SESSION_THREAD_STACK_BYTES
from hub.cli.main import CliContext, cli
from hub.config import postgresql_url_problem
from hub.errors import BenchError

_JSON_FILE = "synchub.bench.json_file"


def _remember_json_file(ctx: click.Context, _param: click.Parameter,
                        value: Path | None) -> Path | None:
    if value is not None:
        if not value.parent.is_dir():
            raise click.BadParameter(f"{value.parent} is not a directory", ctx, _param)
        ctx.meta[_JSON_FILE] = value
    return value


def _json_option(command: Callable[..., None]) -> Callable[..., None]:
    command = click.option(
        "--json-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
        expose_value=False, callback=_remember_json_file,
        help="Also write the JSON object to this file, beside the printed figures.",
    )(command)
    return click.option("--json", "as_json", is_flag=True,
                        help="Print one JSON object.")(command)


_keep_option = click.option(
    "--keep", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Work in this directory and leave it (logs, databases) instead of a temporary one.",
)
_repeat_option = click.option(
    "--repeat", type=click.IntRange(min=1), default=3, show_default=True,
    help="Repetitions; figures are their medians.",
)
_workers_option = click.option(
    "--workers", type=click.IntRange(min=1), default=None,
    help="Client processes (default: 2 to 4, by CPU count).",
)


def _write_attack_options(command: Callable[..., None]) -> Callable[..., None]:
    """The flags of the attacks by one authorized key: ``bench hostile`` and its older
    spelling ``bench hostile-writes`` take the same ones."""
    for option in reversed((
        click.option("--batches", type=click.IntRange(min=1), default=3000, show_default=True,
                     help="revoke, displace: batches of 256 operations the attacker pipelines."),
        click.option("--diff-ids", type=click.IntRange(min=1), default=1_000_000,
                     show_default=True, help="fairness: ids in each of the attacker's diffs."),
        click.option("--depth", type=click.IntRange(min=1), default=8, show_default=True,
                     help="fairness: the attacker's diffs kept in flight."),
        click.option("--syncs", type=click.IntRange(min=1), default=5, show_default=True,
                     help="fairness: the other client's 1,000-operation syncs timed."),
    )):
        command = option(command)
    return command


_hubs_option = click.option(
    "--hubs", type=click.IntRange(min=1), default=1, show_default=True,
    help="Hub processes on one PostgreSQL database (--store), compared with one hub on "
    "it in the same run (docs/cluster.md).",
)
_store_option = click.option(
    "--store", metavar="URL", default=None,
    help="With --hubs: the PostgreSQL database (a scratch schema each run).",
)


def _cluster_store(store: str | None) -> str:
    if store is None:
        raise click.UsageError("--hubs above 1 needs --store postgresql://... (one database "
                               "the hubs share)")
    problem = postgresql_url_problem(store)
    if problem:
        raise click.BadParameter(problem, param_hint="--store")
    return store


def _flags(names: list[str]) -> str:
    shown = {"no_polling": "--no-polling-baseline"}
    return ", ".join(shown.get(name, "--" + name.replace("_", "-")) for name in names)


def _say(obj: CliContext) -> Callable[[str], None]:
    def say(text: str) -> None:
        if obj.verbosity >= 1:
            click.echo(f"bench: {text}", err=True)

    return say


def _emit(result: Result, as_json: bool) -> None:
    document = json.dumps(result.as_json(), indent=2)
    if as_json:
        click.echo(document)
    else:
        for line in result.lines():
            click.echo(line)
    json_file: Path | None = click.get_current_context().meta.get(_JSON_FILE)
    if json_file is not None:
        try:
            json_file.write_text(document + "\n")
        except OSError as exc:
            raise BenchError(f"cannot write {json_file}: {exc.strerror} (the figures are "
                             "printed above)") from exc


@cli.group()
def bench() -> None:
    """Measure the hub on this machine, each figure beside a baseline from the same run.

    Scenarios: ingest, peers, latency, handshakes, resync, web, hostile (and
    hostile-writes, its older spelling for three of its attacks); docs/benchmarks.md,
    hostile: docs/security.md.
    Defaults finish in under a minute on two cores.
    """


@bench.command()
@click.option("--ops", type=click.IntRange(min=1), default=100_000, show_default=True,
              help="Operations in the client's initial sync.")
@click.option("--repeat", type=click.IntRange(min=1), default=5, show_default=True,
              help="Repetitions; figures are their medians.")
@click.option("--store", metavar="URL", default=None,
              help="Run the hub on this PostgreSQL database (a scratch schema each "
              "repetition), beside a raw PostgreSQL insert; default: SQLite.")
@_keep_option
@_json_option
@click.pass_obj
def ingest(  # noqa: PLR0917 - one parameter per click option
    obj: CliContext, ops: int, repeat: int, store: str | None, keep: Path | None,
    as_json: bool,
) -> None:
    """One client agent's initial sync into a fresh hub, vs a raw batched insert."""
    if store is not None:
        problem = postgresql_url_problem(store)
        if problem:
            raise click.BadParameter(problem, param_hint="--store")
    _emit(ingest_bench.run(ops, repeat, store=store, keep=keep, say=_say(obj)), as_json)


@bench.command()
@click.option("--peers", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Clients that connect and sync.")
@click.option("--ops", type=click.IntRange(min=1), default=100, show_default=True,
              help="Operations each client syncs.")
@click.option("--idle", type=click.IntRange(min=0), default=0, metavar="N",
              help="Instead: hold N idle, heartbeating clients and check they stay connected.")
@click.option("--hold", type=click.FloatRange(min=0), default=20.0, show_default=True,
              metavar="SECONDS", help="How long --idle holds the clients.")
@click.option("--heartbeat-interval", type=click.FloatRange(min=0, min_open=True),
              default=5.0, show_default=True, metavar="SECONDS",
              help="The hub's and the clients' heartbeat interval.")
@click.option("--window", type=click.IntRange(min=1), default=100, show_default=True,
              help="Handshakes in progress at once, per client process.")
@_workers_option
@_hubs_option
@_store_option
@click.option("--repeat", type=click.IntRange(min=1), default=1, show_default=True,
              help="With --hubs: repetitions of the pair of runs; figures are medians.")
@_keep_option
@_json_option
@click.pass_obj
def peers(  # noqa: PLR0917 - one parameter per click option
    obj: CliContext, peers: int, ops: int, idle: int, hold: float, heartbeat_interval: float,
    window: int, workers: int | None, hubs: int, store: str | None, repeat: int,
    keep: Path | None, as_json: bool,
) -> None:
    """Many clients syncing at once (or --idle ones heartbeating): time and hub memory
    (with --hubs N: N hubs on one PostgreSQL database vs one hub on it)."""
    if hubs > 1:
        if idle:
            raise click.UsageError("--hubs compares syncing peers: leave out --idle")
        _emit(cluster_bench.peers(
            _cluster_store(store), hubs, peers, ops=ops, repeat=repeat, workers=workers,
            window=window, keep=keep, say=_say(obj),
        ), as_json)
        return
    result = peers_bench.run(
        peers, ops=ops, idle=idle, hold=hold, heartbeat_interval=heartbeat_interval,
        window=window, workers=workers, keep=keep, say=_say(obj),
    )
    _emit(result, as_json)


@bench.command()
@click.option("--peers", type=click.IntRange(min=1), default=100, show_default=True,
              help="Active clients, each sending operations.")
@click.option("--samples", type=click.IntRange(min=1), default=2000, show_default=True,
              help="Operations timed (after one warm-up operation per client).")
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), default=200.0,
              show_default=True, help="Operations a second, all clients together.")
@_workers_option
@click.option("--through-agent", is_flag=True,
              help="Time jobs recorded as `synchub run` records them, through a real "
              "`synchub agent` process, beside the same agent polling for them.")
@click.option("--jobs", type=click.IntRange(min=1), default=200, show_default=True,
              help="With --through-agent: jobs timed (after one warm-up job).")
@click.option("--no-polling-baseline", "no_polling", is_flag=True,
              help="With --through-agent: skip the polling baseline (its jobs wait for "
              "the agent's 0.5 s poll).")
@_keep_option
@_json_option
@click.pass_context
def latency(  # noqa: PLR0917 - one parameter per click option
    ctx: click.Context, peers: int, samples: int, rate: float, workers: int | None,
    through_agent: bool, jobs: int, no_polling: bool, keep: Path | None, as_json: bool,
) -> None:
    """An operation sent by a client until committed in the hub's oplog: p50 and p99.

    With --through-agent: a job recorded by `synchub run` until committed on the hub,
    through the real agent.
    """
    obj: CliContext = ctx.obj
    given = {name for name in ("peers", "samples", "rate", "workers", "jobs", "no_polling")
             if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT}
    if through_agent:
        wrong = sorted(given & {"peers", "samples", "rate", "workers"})
        if wrong:
            raise click.UsageError(
                f"--through-agent times one agent's jobs: drop {_flags(wrong)} (use --jobs)"
            )
        _emit(agent_latency_bench.run(jobs, baseline=not no_polling, keep=keep,
                                      say=_say(obj)), as_json)
        return
    agent_only = sorted(given & {"jobs", "no_polling"})
    if agent_only:
        verb = "needs" if len(agent_only) == 1 else "need"
        raise click.UsageError(f"{_flags(agent_only)} {verb} --through-agent")
    threading.stack_size(SESSION_THREAD_STACK_BYTES)
    raise_open_file_limit(4 * peers + 1024)
    result = latency_bench.run(
        peers, samples, rate=rate, workers=workers, keep=keep, say=_say(obj)
    )
    _emit(result, as_json)


@bench.command()
@click.option("--count", type=click.IntRange(min=1), default=2000, show_default=True,
              help="Connections, each through a full handshake.")
@click.option("--window", type=click.IntRange(min=1), default=200, show_default=True,
              help="Handshakes in progress at once, per client process.")
@_repeat_option
@_workers_option
@_hubs_option
@_store_option
@_keep_option
@_json_option
@click.pass_obj
def handshakes(  # noqa: PLR0917 - one parameter per click option
    obj: CliContext, count: int, window: int, repeat: int, workers: int | None,
    hubs: int, store: str | None, keep: Path | None, as_json: bool,
) -> None:
    """Handshakes completed a second, vs the ed25519 verify rate (with --hubs N, N hubs
    on one PostgreSQL database vs one hub on it)."""
    if hubs > 1:
        result = cluster_bench.handshakes(
            _cluster_store(store), hubs, count, repeat, workers=workers, window=window,
            keep=keep, say=_say(obj),
        )
    else:
        result = handshakes_bench.run(
            count, repeat, workers=workers, window=window, keep=keep, say=_say(obj)
        )
    _emit(result, as_json)


@bench.command()
@click.option("--ops", type=click.IntRange(min=1), default=100_000, show_default=True,
              help="Operations the hub already holds (1000000 for the full target).")
@click.option("--changed", type=click.IntRange(min=0), default=10, show_default=True,
              help="Operations changed before each reconnect.")
@_repeat_option
@_keep_option
@_json_option
@click.pass_obj
def resync(  # noqa: PLR0917 - one parameter per click option
    obj: CliContext, ops: int, changed: int, repeat: int, keep: Path | None, as_json: bool,
) -> None:
    """Reconnect of a synced client with a few changes: bytes sent, vs the full id list."""
    result = resync_bench.run(ops, repeat, changed=changed, keep=keep, say=_say(obj))
    _emit(result, as_json)


@bench.command()
@click.option("--peers", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Authorized peers, two plans each.")
@click.option("--ops", type=click.IntRange(min=1), default=200_000, show_default=True,
              help="Operations in the hub's oplog (1000000 for the full target).")
@click.option("--repeat", type=click.IntRange(min=1), default=20, show_default=True,
              help="Requests timed per endpoint; figures are their medians.")
@_keep_option
@_json_option
@click.pass_obj
def web(  # noqa: PLR0917 - one parameter per click option
    obj: CliContext, peers: int, ops: int, repeat: int, keep: Path | None, as_json: bool,
) -> None:
    """The dashboard and the API of a hub with many peers and operations, vs raw SQL."""
    _emit(web_bench.run(peers, ops, repeat, keep=keep, say=_say(obj)), as_json)


# Which attacks each `bench hostile` option applies to; given for another, a usage error.
_HOSTILE_OPTION_ATTACKS: dict[str, tuple[str, ...]] = {
    "holders": ("hello-flood", "memory"),
    "sources": ("hello-flood", "memory"),
    "attempts": ("hello-flood",),
    "batches": ("revoke", "displace"),
    "diff_ids": ("fairness",),
    "depth": ("fairness",),
    "syncs": ("fairness",),
    "settle": ("memory",),
    "scale": ("memory",),
    "keep": ("hello-flood", "memory"),
}
_HOSTILE_ATTACKS = (*hostile_bench.ATTACKS, *hostile_writes_bench.ATTACKS,
                    *hostile_memory_bench.ATTACKS)


def _check_hostile_options(ctx: click.Context, attack: str) -> None:
    for name, attacks in _HOSTILE_OPTION_ATTACKS.items():
        source = ctx.get_parameter_source(name)
        if source is not None and source is not click.core.ParameterSource.DEFAULT \
                and attack not in attacks:
            flag = "--" + name.replace("_", "-")
            raise click.UsageError(
                f"{flag} applies to --attack {' or '.join(attacks)}, not {attack}")


@bench.command()
@click.option("--attack", type=click.Choice(_HOSTILE_ATTACKS), default="hello-flood",
              show_default=True, help="What the hostile clients do (docs/security.md).")
@click.option("--holders", type=click.IntRange(min=1), default=1000, show_default=True,
              help="hello-flood, memory: unauthenticated connections that each hold a HELLO.")
@click.option("--sources", type=click.IntRange(min=1, max=200), default=4, show_default=True,
              help="hello-flood, memory: loopback addresses the holders come from.")
@click.option("--attempts", type=click.IntRange(min=1), default=20, show_default=True,
              help="hello-flood: connects of the authorized client, one after another.")
@_write_attack_options
@click.option("--settle", type=click.FloatRange(min=0), default=60.0, show_default=True,
              metavar="SECONDS", help="memory: how long the hub's RSS is watched after "
              "the attack ended.")
@click.option("--scale", type=click.FloatRange(min=0, min_open=True, max=1), default=1.0,
              show_default=True, help="memory: the share of the full attack's volume sent "
              "(0.05 for a quick run).")
@click.option("--repeat", type=click.IntRange(min=1), default=1, show_default=True,
              help="Repetitions (each on a fresh hub); figures are their medians.")
@_keep_option
@_json_option
@click.pass_context
def hostile(  # noqa: PLR0917 - one parameter per click option
    ctx: click.Context, attack: str, holders: int, sources: int, attempts: int,
    batches: int, diff_ids: int, depth: int, syncs: int, settle: float, scale: float,
    repeat: int, keep: Path | None, as_json: bool,
) -> None:
    """What the hub still promises while hostile clients attack it, vs an idle hub:
    connects under a HELLO flood (hello-flood), revocation, displacement and fairness
    while one authorized key floods (revoke, displace, fairness), the hub's memory
    (memory)."""
    _check_hostile_options(ctx, attack)
    say = _say(ctx.obj)
    if attack in hostile_writes_bench.ATTACKS:
        params = hostile_writes_bench.Params(
            batches=batches, diff_ids=diff_ids, depth=depth, syncs=syncs)
        result = hostile_writes_bench.run(attack, params, repeat, say=say, scenario="hostile")
    elif attack in hostile_memory_bench.ATTACKS:
        result = hostile_memory_bench.run(
            hostile_memory_bench.Params(
                holders=holders, sources=sources, settle=settle, scale=scale),
            repeat, keep=keep, say=say,
        )
    else:
        result = hostile_bench.run(
            attack, holders=holders, sources=sources,
            attempts=attempts, repeat=repeat, keep=keep, say=say,
        )
    _emit(result, as_json)


@bench.command("hostile-writes")
@click.option("--attack", type=click.Choice(hostile_writes_bench.ATTACKS), required=True,
              help="What the hostile client holding an authorized key does.")
@_write_attack_options
@click.option("--repeat", type=click.IntRange(min=1), default=1, show_default=True,
              help="Repetitions (each on a fresh hub); figures are their medians.")
@_json_option
@click.pass_obj
def hostile_writes(  # noqa: PLR0917 - one parameter per click option
    obj: CliContext, attack: str, batches: int, diff_ids: int, depth: int, syncs: int,
    repeat: int, as_json: bool,
) -> None:
    """The same as `bench hostile --attack revoke|displace|fairness` (kept for scripts:
    same flags, figures and JSON, scenario "hostile-writes")."""
    params = hostile_writes_bench.Params(
        batches=batches, diff_ids=diff_ids, depth=depth, syncs=syncs)
    _emit(hostile_writes_bench.run(attack, params, repeat, say=_say(obj)), as_json)
