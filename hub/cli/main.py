"""Entry point and shared plumbing of the ``synchub`` command line.

The global options (``--config``/``-c``, ``-v``) may come before or after the
command name (``hoist_global_options``). Every command reports a failure as one
line on stderr and a non-zero exit status; tracebacks appear only with ``-v -v``
(debug logging).
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import click

from hub.cli._signals import release_sighup
from hub.config import (
    DEFAULT_DATA_DIR,
    Config,
    HubSettings,
    default_config,
    load_config,
    resolve_config_path,
)
from hub.errors import ConfigError, SynchubError
from hub.text import inert, one_line

log = logging.getLogger("synchub")

EXIT_FAILURE = 1
EXIT_USAGE = 2


# With no --config and no $SYNCHUB_CONFIG, a file of this name in the current
# directory is used when present; `synchub authorize` creates it when absent.
LOCAL_CONFIG_NAME = "synchub.toml"


@dataclass(frozen=True)
class CliContext:
    config_path: Path | None
    verbosity: int

    @property
    def write_path(self) -> Path:
        """Where changes to the config go (the local file when running on defaults)."""
        return self.config_path or Path.cwd() / LOCAL_CONFIG_NAME

    def load(self) -> Config:
        if self.config_path is None:
            return default_config(Path.cwd())
        return load_config(self.config_path)

    def load_for_running_hub(self, *, warn: bool = True) -> Config:
        """The config, or, when the file no longer loads but a hub runs on the data_dir
        it names, just enough of it to reach that hub (with a warning on stderr).

        For commands that talk to a running hub (``status``, ``peers``, ``reload``): an
        operator fixing a typo can still look at the hub that runs on the old file.
        """
        try:
            return self.load()
        except ConfigError as exc:
            assert self.config_path is not None
            from hub.admin import hub_answers  # noqa: PLC0415 - the admin face is heavy

            data_dir = guess_data_dir(self.config_path)
            if data_dir is None or not hub_answers(data_dir):
                raise
            if not warn:  # the hub's own answer will name the file's error
                return Config(path=self.config_path, instance="", data_dir=data_dir,
                              hub=HubSettings())
            click.echo(
                f"synchub: warning: {exc}; the hub running on {data_dir} still uses the "
                "file it last loaded: fix the file, then `synchub reload`",
                err=True,
            )
            return Config(path=self.config_path, instance="", data_dir=data_dir,
                          hub=HubSettings())


_DATA_DIR_LINE = re.compile(r"""^\s*data_dir\s*=\s*(?:"([^"]*)"|'([^']*)')""", re.M)


def guess_data_dir(path: Path) -> Path | None:
    """The data_dir a config file names, read from its text alone (None if unreadable)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    found = _DATA_DIR_LINE.search(text.split("\n[", 1)[0])
    value = next((g for g in found.groups() if g is not None), None) if found else None
    folder = Path(os.path.abspath(path)).parent
    return Path(os.path.normpath(folder / Path(value or DEFAULT_DATA_DIR).expanduser()))


_GLOBAL_VALUE_OPTIONS = ("-c", "--config")
_GLOBAL_FLAG_OPTIONS = ("-v", "--verbose")


def _value_options(command: click.Command) -> set[str]:
    """The option names of ``command`` (and of its subcommands) that take a value."""
    names: set[str] = set()
    for param in command.params:
        if isinstance(param, click.Option) and not param.is_flag and not param.count:
            names.update(param.opts + param.secondary_opts)
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            names |= _value_options(sub)
    return names


def _is_global(arg: str) -> bool:
    if arg in _GLOBAL_VALUE_OPTIONS or arg in _GLOBAL_FLAG_OPTIONS:
        return True
    if arg.startswith("--config="):
        return True
    # -vv, -vvv; -cPATH
    return (arg.startswith("-v") and set(arg[1:]) == {"v"}) or (
        arg.startswith("-c") and len(arg) > 2 and not arg.startswith("--")
    )


def hoist_global_options(group: click.Group, args: list[str]) -> list[str]:
    """``args`` with ``--config``/``-c`` and ``-v`` given after the command moved before it.

    ``synchub start --config hub.toml -v`` means ``synchub --config hub.toml -v start``.
    Nothing after ``--`` moves, nor anything after the first argument of a command
    that passes its arguments on (``synchub run CMD ARGS``); a value of the
    command's own options (``--message -v``) stays where it is.
    """
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--" or not arg.startswith("-") or arg == "-":
            break
        index += 2 if arg in _GLOBAL_VALUE_OPTIONS else 1
    if index >= len(args) or args[index] == "--":
        return args
    if args[index] in COMMAND_MODULES:
        importlib.import_module(f"hub.cli.{COMMAND_MODULES[args[index]]}")
    command = group.commands.get(args[index])
    if command is None:
        return args
    values = _value_options(command)
    interspersed = command.context_settings.get(
        "allow_interspersed_args", command.allow_interspersed_args
    )
    passes_on = not interspersed and not isinstance(command, click.Group)
    head, rest, hoisted = args[: index + 1], args[index + 1 :], []
    kept: list[str] = []
    position = 0
    while position < len(rest):
        arg = rest[position]
        if arg == "--" or (passes_on and not arg.startswith("-")):
            kept.extend(rest[position:])
            break
        if _is_global(arg):
            takes_value = arg in _GLOBAL_VALUE_OPTIONS
            hoisted.extend(rest[position : position + (2 if takes_value else 1)])
            position += 2 if takes_value else 1
            continue
        kept.append(arg)
        if arg in values and position + 1 < len(rest):
            kept.append(rest[position + 1])
            position += 1
        position += 1
    return head[:index] + hoisted + head[index:] + kept


class SynchubGroup(click.Group):
    """A group that turns synchub's own errors into one line and exit status 1.

    The top group imports a command's module (``COMMAND_MODULES``) only when that
    command runs, so ``synchub status`` does not load the hub, the web side and the
    benchmarks; the list for ``--help`` imports them all.
    """

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if ctx.parent is None and cmd_name not in self.commands and cmd_name in COMMAND_MODULES:
            importlib.import_module(f"hub.cli.{COMMAND_MODULES[cmd_name]}")
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        if ctx.parent is None:
            for module in sorted(set(COMMAND_MODULES.values())):
                importlib.import_module(f"hub.cli.{module}")
        return super().list_commands(ctx)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if ctx.parent is None:
            args = hoist_global_options(self, list(args))
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SynchubError as exc:
            _fail(str(exc), verbose=_verbosity(ctx))
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            _fail(f"{where}{exc.strerror or exc}", verbose=_verbosity(ctx))
        except (click.exceptions.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            log.debug("unexpected failure", exc_info=True)
            _fail(
                f"internal error: {type(exc).__name__}: {exc} (run with -vv for details "
                "and please report it)",
                verbose=_verbosity(ctx),
            )


def _verbosity(ctx: click.Context) -> int:
    obj = ctx.find_object(CliContext)
    return obj.verbosity if obj is not None else 0


def _fail(message: str, *, verbose: int) -> NoReturn:
    if verbose >= 2:
        log.debug("failure", exc_info=True)
    click.echo(f"synchub: error: {inert(message)}", err=True)
    sys.exit(EXIT_FAILURE)


_SYSLOG_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3}


class _SyslogPriority(logging.Filter):
    """Adds ``syslog_priority`` so journald files each line at its real level."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.syslog_priority = _SYSLOG_PRIORITY.get(
            record.levelno, 2 if record.levelno > logging.ERROR else 6
        )
        return True


def _stderr_is_journal() -> bool:
    """True when systemd connected stderr straight to the journal."""
    expected = os.environ.get("JOURNAL_STREAM", "")
    if not expected:
        return False
    try:
        st = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError):
        return False
    return expected == f"{st.st_dev}:{st.st_ino}"


class InertFormatter(logging.Formatter):
    """One line per record, peer text inert.

    A record's message is shown ``inert``: whatever text from a peer a log line
    quotes, its control characters appear as escapes and cannot act on the terminal
    or forge lines. Without ``tracebacks`` (below ``-vv``) a record that carries an
    exception stays one line too, ending with the exception's type and message; with
    it the traceback follows on its own lines.
    """

    def __init__(self, fmt: str, *, tracebacks: bool = False) -> None:
        super().__init__(fmt)
        self._tracebacks = tracebacks

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = inert(record.message)
        return super().formatMessage(record)

    def format(self, record: logging.LogRecord) -> str:
        if self._tracebacks or not (record.exc_info or record.stack_info):
            return super().format(record)
        record.message = record.getMessage()
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        line = self.formatMessage(record)
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None:
            line += f" [{type(exc).__name__}: {inert(one_line(str(exc)))}; -vv shows the traceback]"
        return line


def setup_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    tracebacks = verbosity >= 2
    handler = logging.StreamHandler(sys.stderr)
    if _stderr_is_journal():
        # journald adds its own timestamp; "<N>" sets the line's priority.
        handler.setFormatter(InertFormatter(
            "<%(syslog_priority)d>%(name)s: %(message)s", tracebacks=tracebacks
        ))
        handler.addFilter(_SyslogPriority())
    else:
        handler.setFormatter(InertFormatter(
            "%(asctime)s %(levelname)s %(name)s: %(message)s", tracebacks=tracebacks
        ))
    logging.basicConfig(level=level, handlers=[handler])
    # pykka logs every exception an actor hands back to its caller at INFO, with its
    # traceback; the caller reports the failure itself (one line), so below -vv only
    # pykka's warnings and errors are shown.
    logging.getLogger("pykka").setLevel(logging.DEBUG if tracebacks else logging.WARNING)


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=False))


@click.group(cls=SynchubGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-c",
    "--config",
    "config_option",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Config file (default: $SYNCHUB_CONFIG, else ./synchub.toml if present, "
    "else the embedded defaults).",
)
@click.option("-v", "--verbose", count=True, help="More logging: -v info, -vv debug.")
@click.version_option(package_name="synchub")
@click.pass_context
def cli(ctx: click.Context, config_option: Path | None, verbose: int) -> None:
    """synchub: one trustworthy place that knows what ran where, when, and how it ended.

    A hub (`synchub start`) keeps the merged operation log of every machine whose
    agent (`synchub agent`) syncs to it over authenticated, encrypted ZeroMQ.
    """
    setup_logging(verbose)
    if ctx.invoked_subcommand != "start":
        release_sighup()  # held only until `synchub start` has its handler
    path = resolve_config_path(str(config_option) if config_option else None, os.environ)
    if path is None and (Path.cwd() / LOCAL_CONFIG_NAME).is_file():
        path = Path.cwd() / LOCAL_CONFIG_NAME
    ctx.obj = CliContext(config_path=path, verbosity=verbose)


def main() -> None:
    cli(prog_name="synchub")


# Command modules register themselves on ``cli`` when imported (``SynchubGroup``).
COMMAND_MODULES: dict[str, str] = {
    "agent": "agent_cmds",
    "alerts": "alerts_cmds",
    "authorize": "admin_cmds",
    "backup": "data_cmds",
    "bench": "bench_cmds",
    "check": "data_cmds",
    "demo": "demo_cmds",
    "id": "identity_cmds",
    "invite": "invite_cmds",
    "join": "invite_cmds",
    "keygen": "identity_cmds",
    "logs": "logs_cmds",
    "ops": "ops_cmds",
    "peers": "admin_cmds",
    "pending": "admin_cmds",
    "reload": "admin_cmds",
    "revoke": "admin_cmds",
    "run": "run_cmds",
    "start": "hub_cmds",
    "status": "admin_cmds",
    "store": "store_cmds",
}
