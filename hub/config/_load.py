"""Loading the TOML configuration: find the file, read it, validate it into the frozen model.

Loading turns every problem into a ConfigError naming the file, the key path
(``hub.heartbeat_interval``, ``authorized_clients[2].keyid``,
``known_hosts[0].permissions[1].scopes[0]``) and what was expected.
``CONFIG_KEYS`` is the one list of the keys each table may hold (a test checks
that docs/configuration.md describes every one). Key ids and CURVE keys are
checked by hub.identity, ids and permissions by hub.scopes; ``_edit`` validates
a changed file with ``parse_config_text`` before it writes it.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from hub.config._model import (
    CONFIG_ENV_VAR,
    DEFAULT_DATA_DIR,
    MAX_ERROR_OUTPUT_BYTES,
    AuthorizedClient,
    Config,
    HubSettings,
    KnownHost,
    PlanConfig,
    RepoConfig,
    RetentionSettings,
    RunSettings,
    StoreSettings,
    default_config,
)
from hub.config._web import ALERT_KEYS, WEB_KEYS, parse_alerts, parse_web
from hub.errors import ConfigError, PermissionsError
from hub.identity import is_valid_curve_public_key, is_valid_keyid
from hub.scopes import ID_PATTERN, ID_RULE, Permissions, parse_permissions
from hub.text import closest_match, one_line, redacted_url

_TCP_ENDPOINT = re.compile(r"tcp://(?P<host>\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]]+):(?P<port>\*|\d+)")

_TOP_KEYS = (
    "instance",
    "data_dir",
    "hub",
    "run",
    "store",
    "retention",
    "repos",
    "plans",
    "authorized_clients",
    "known_hosts",
    "web",
    "alerts",
)
_HUB_KEYS = (
    "bind",
    "curve",
    "heartbeat_interval",
    "handshake_timeout",
    "max_pending_handshakes",
    "max_frame_bytes",
    "node",
    "max_pending_per_source",
    "proof_timeout",
    "advertise",
    "resync",
)
_RUN_KEYS = ("error_output_bytes",)
_STORE_KEYS = ("url", "check_pages")
_RETENTION_KEYS = ("keep_days", "plans", "interval")
_REPO_KEYS = ("id", "guid", "uri")
_PLAN_KEYS = ("id", "repo", "paths", "excludes")
_CLIENT_KEYS = ("instance_id", "keyid", "keyid_verified", "permissions")
_HOST_KEYS = (
    "instance_id", "endpoint", "endpoints", "keyid", "curve_public_key", "permissions",
    "heartbeat_interval", "handshake_timeout", "max_frame_bytes", "resync",
)

CONFIG_KEYS: Mapping[str, tuple[str, ...]] = {
    "": _TOP_KEYS,
    "hub": _HUB_KEYS,
    "run": _RUN_KEYS,
    "store": _STORE_KEYS,
    "retention": _RETENTION_KEYS,
    "repos": _REPO_KEYS,
    "plans": _PLAN_KEYS,
    "authorized_clients": _CLIENT_KEYS,
    "known_hosts": _HOST_KEYS,
    "web": WEB_KEYS,
    "alerts": ALERT_KEYS,
}
"""The keys each table may hold ("" is the top level); anything else is refused."""


def resolve_config_path(cli_value: str | None, env: Mapping[str, str]) -> Path | None:
    """The config file to use: the CLI flag, else $SYNCHUB_CONFIG, else None (defaults)."""
    if cli_value:
        return Path(cli_value).expanduser()
    from_env = env.get(CONFIG_ENV_VAR)
    if from_env:
        return Path(from_env).expanduser()
    return None


def example_path() -> Path:
    """The commented example configuration shipped with the package."""
    return Path(__file__).with_name("example.toml")


def load_config(path: Path) -> Config:
    """Read and validate a config file; every problem is a ConfigError."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError as error:
        raise ConfigError(
            path,
            "",
            f"no such file; create it (a commented example of every key: {example_path()}) "
            f"or give no --config and no ${CONFIG_ENV_VAR} to run on the built-in defaults",
        ) from error
    except OSError as error:
        raise ConfigError(path, "", f"cannot read: {error.strerror or error}") from error
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(
            path, "", f"not UTF-8 text ({error.reason} at byte {error.start})"
        ) from error
    return parse_config_text(text, Path(path))


def load_config_or_defaults(path: Path | None, cwd: Path | None = None) -> Config:
    """load_config(path), or the built-in defaults when path is None."""
    return default_config(cwd) if path is None else load_config(path)


# --- reading --------------------------------------------------------------------------------


MISSING: Any = object()


def _describe(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return repr(value)
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return f"a {type(value).__name__}"


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = closest_match(word, choices)
    return f"did you mean {close!r}? " if close else ""


class _Table:
    """One TOML table being validated; knows its key path for error messages."""

    def __init__(self, path: Path, data: Mapping[str, Any], prefix: str) -> None:
        self.path = path
        self.data = data
        self.prefix = prefix

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def error(self, name: str, problem: str) -> ConfigError:
        return ConfigError(self.path, self.key(name), problem)

    def check_keys(self, allowed: tuple[str, ...]) -> None:
        for name in self.data:
            if name not in allowed:
                raise self.error(
                    name,
                    f"unknown key {name!r}; {_did_you_mean(name, allowed)}"
                    f"expected one of: {', '.join(allowed)}",
                )

    def _get(self, name: str, default: Any, expected: str) -> Any:
        if name in self.data:
            return self.data[name]
        if default is MISSING:
            raise self.error(name, f"missing; expected {expected}")
        return default

    def string(self, name: str, default: Any = MISSING, expected: str = "a string") -> str:
        value = self._get(name, default, expected)
        if not isinstance(value, str) or not value:
            raise self.error(name, f"expected {expected}, got {_describe(value)}")
        return value

    def ident(self, name: str) -> str:
        value = self.string(name, expected=f"an id ({ID_RULE})")
        if not ID_PATTERN.fullmatch(value):
            raise self.error(name, f"expected an id ({ID_RULE}), got {value!r}")
        return value

    def keyid(self, name: str) -> str:
        expected = "a key id 'ed25519.' + 43 base64url characters (see `synchub id`)"
        value = self.string(name, expected=expected)
        if not is_valid_keyid(value):
            raise self.error(name, f"expected {expected}, got {value!r}")
        return value

    def boolean(self, name: str, default: Any = MISSING) -> bool:
        value = self._get(name, default, "true or false")
        if not isinstance(value, bool):
            raise self.error(name, f"expected true or false, got {_describe(value)}")
        return value

    def seconds(self, name: str, default: float) -> float:
        value = self._get(name, default, "")
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value <= 0
        ):
            raise self.error(name, f"expected a number of seconds > 0, got {_describe(value)}")
        return float(value)

    def count(self, name: str, default: int) -> int:
        value = self._get(name, default, "")
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise self.error(name, f"expected a whole number > 0, got {_describe(value)}")
        return value

    def size(self, name: str, default: int, maximum: int) -> int:
        """A byte count from 0 (off) to ``maximum``."""
        value = self._get(name, default, "")
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
            raise self.error(
                name,
                f"expected a number of bytes from 0 (off) to {maximum}, got {_describe(value)}",
            )
        return value

    def strings(self, name: str) -> tuple[str, ...]:
        value = self._get(name, [], "")
        if not isinstance(value, list):
            raise self.error(name, f"expected an array of strings, got {_describe(value)}")
        for index, item in enumerate(value):
            if not isinstance(item, str):
                raise self.error(f"{name}[{index}]", f"expected a string, got {_describe(item)}")
        return tuple(value)

    def table(self, name: str) -> _Table | None:
        if name not in self.data:
            return None
        value = self.data[name]
        if not isinstance(value, dict):
            raise self.error(name, f"expected a table ([{name}]), got {_describe(value)}")
        return _Table(self.path, value, self.key(name))

    def tables(self, name: str) -> list[_Table]:
        value = self.data.get(name, [])
        if not isinstance(value, list):
            raise self.error(
                name, f"expected an array of tables ([[{name}]]), got {_describe(value)}"
            )
        result = []
        for index, item in enumerate(value):
            if not isinstance(item, dict):
                raise self.error(f"{name}[{index}]", f"expected a table, got {_describe(item)}")
            result.append(_Table(self.path, item, f"{self.key(name)}[{index}]"))
        return result

    def permissions(self, name: str) -> Permissions:
        try:
            return parse_permissions(self.data.get(name, []))
        except PermissionsError as error:
            raise ConfigError(self.path, self.key(name) + error.location, error.problem) from error


def _endpoint_problem(value: str, *, bind: bool) -> str | None:
    if value.startswith("ipc://"):
        return None if len(value) > len("ipc://") else "an ipc:// endpoint needs a path"
    match = _TCP_ENDPOINT.fullmatch(value)
    if match is None:
        return "not of the form tcp://<host>:<port> or ipc://<path>"
    host, port = match["host"], match["port"]
    if bind:
        if port != "*" and int(port) > 65535:
            return "port must be 0-65535, or * (or 0) for any free port"
        return None
    if host == "*":
        return "a client endpoint needs a host name or address, not *"
    if port == "*" or not 0 < int(port) <= 65535:
        return "port must be 1-65535"
    return None


def _unique(table: _Table, name: str, value: str, seen: dict[str, str], what: str) -> None:
    if value in seen:
        raise table.error(name, f"duplicate {what} {value!r} (already used at {seen[value]})")
    seen[value] = table.key(name)


def parse_config_text(text: str, path: Path) -> Config:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(path, "", f"invalid TOML: {error}") from error
    top = _Table(path, data, "")
    top.check_keys(_TOP_KEYS)

    instance = top.ident("instance")
    data_dir = Path(top.string("data_dir", DEFAULT_DATA_DIR, "a directory path")).expanduser()
    config_path = Path(os.path.abspath(path))
    data_dir = Path(os.path.normpath(config_path.parent / data_dir))

    hub = None
    hub_table = top.table("hub")
    if hub_table is not None:
        hub = _parse_hub(hub_table)

    run_table = top.table("run")
    run = _parse_run(run_table) if run_table is not None else RunSettings()
    store = _parse_store(top, has_hub=hub is not None)
    retention = _parse_retention(top, has_hub=hub is not None, store=store)
    repos = _parse_repos(top)
    plans = _parse_plans(top, {repo.id for repo in repos})
    clients = _parse_clients(top)
    hosts = _parse_known_hosts(top)
    web = parse_web(top.table("web"))
    alerts = parse_alerts(top)

    return Config(
        path=config_path,
        instance=instance,
        data_dir=data_dir,
        hub=hub,
        run=run,
        store=store,
        retention=retention,
        repos=repos,
        plans=plans,
        authorized_clients=clients,
        known_hosts=hosts,
        web=web,
        alerts=alerts,
    )


def _parse_hub(table: _Table) -> HubSettings:
    table.check_keys(_HUB_KEYS)
    defaults = HubSettings()
    bind = table.string("bind", defaults.bind, "tcp://<address>:<port>")
    problem = _endpoint_problem(bind, bind=True)
    if problem:
        raise table.error("bind", f"expected tcp://<address>:<port>, got {bind!r}: {problem}")
    advertise = None
    if "advertise" in table.data:
        advertise = table.string("advertise", expected="the tcp://<host>:<port> clients dial")
        problem = _endpoint_problem(advertise, bind=False)
        if problem:
            raise table.error(
                "advertise",
                f"expected the tcp://<host>:<port> clients dial, got {advertise!r}: {problem}",
            )
    return HubSettings(
        advertise=advertise,
        bind=bind,
        curve=table.boolean("curve", defaults.curve),
        heartbeat_interval=table.seconds("heartbeat_interval", defaults.heartbeat_interval),
        handshake_timeout=table.seconds("handshake_timeout", defaults.handshake_timeout),
        max_pending_handshakes=table.count(
            "max_pending_handshakes", defaults.max_pending_handshakes
        ),
        max_frame_bytes=table.count("max_frame_bytes", defaults.max_frame_bytes),
        node=_node_name(table),
        max_pending_per_source=table.count(
            "max_pending_per_source", defaults.max_pending_per_source
        ),
        proof_timeout=table.seconds("proof_timeout", defaults.proof_timeout),
        resync=table.boolean("resync", defaults.resync),
    )


def _node_name(table: _Table) -> str:
    if "node" not in table.data:
        return ""
    node = table.string("node", expected="a name for this hub process, such as \"hub-a\"")
    if not node.isprintable() or len(node) > 200:
        raise table.error("node", f"expected a printable name of at most 200 characters, "
                                  f"got {node!r}")
    return node


def _parse_run(table: _Table) -> RunSettings:
    table.check_keys(_RUN_KEYS)
    defaults = RunSettings()
    return RunSettings(
        error_output_bytes=table.size(
            "error_output_bytes", defaults.error_output_bytes, MAX_ERROR_OUTPUT_BYTES
        ),
    )
_STORE_URL_EXAMPLE = "postgresql://synchub@db.example.org:5432/synchub"


def _parse_store(top: _Table, *, has_hub: bool) -> StoreSettings:
    table = top.table("store")
    if table is None:
        return StoreSettings()
    table.check_keys(_STORE_KEYS)
    if not has_hub:
        raise top.error(
            "store", "only a hub keeps a store: add a [hub] section, or remove [store]"
        )
    check_pages = table.boolean("check_pages", True)
    if "url" not in table.data:
        return StoreSettings(check_pages=check_pages)
    url = table.string("url", expected=f"a postgresql:// URL such as {_STORE_URL_EXAMPLE!r}")
    problem = postgresql_url_problem(url)
    if problem:
        raise table.error(
            "url", f"{problem} (expected a URL such as {_STORE_URL_EXAMPLE!r}; leave [store] "
            "out to keep the embedded SQLite store)",
        )
    return StoreSettings(url=url, check_pages=check_pages)


# Ten years: a larger number is a typo more likely than a policy.
MAX_KEEP_DAYS = 3650


def _keep_days(table: _Table, name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_KEEP_DAYS:
        raise table.error(name, f"expected a whole number of days from 0 (keep forever) to "
                          f"{MAX_KEEP_DAYS}, got {_describe(value)}")
    return value


def _parse_retention(top: _Table, *, has_hub: bool, store: StoreSettings) -> RetentionSettings:
    table = top.table("retention")
    if table is None:
        return RetentionSettings()
    table.check_keys(_RETENTION_KEYS)
    if not has_hub:
        raise top.error("retention", "retention applies to a hub's oplog: add a [hub] "
                        "section, or remove [retention]")
    keep_days = _keep_days(table, "keep_days", table.data.get("keep_days", 0))
    plans: list[tuple[str, int]] = []
    per_plan = table.table("plans")
    if per_plan is not None:
        for plan_id, days in per_plan.data.items():
            if not ID_PATTERN.fullmatch(plan_id):
                raise per_plan.error(plan_id, f"expected a plan id ({ID_RULE}) as the key")
            plans.append((plan_id, _keep_days(per_plan, plan_id, days)))
    settings = RetentionSettings(
        keep_days=keep_days, plans=tuple(plans),
        interval=table.seconds("interval", RetentionSettings().interval),
    )
    if settings.enabled and store.postgresql:
        raise top.error("retention", "retention runs on the embedded SQLite store only, "
                        "for now: remove [retention] or [store] url")
    return settings


def postgresql_url_problem(url: str) -> str | None:
    """Why ``url`` is not a PostgreSQL URL libpq accepts, or None when it is one."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("postgresql", "postgres"):
        return f"{redacted_url(url)!r} is not a postgresql:// URL"
    hosts = rest.split("/", 1)[0].split("?", 1)[0].rpartition("@")[2]
    for host in hosts.split(",") if hosts else ():
        port = host.rpartition("]")[2].rpartition(":")[2] if ":" in host else ""
        if port and not (port.isdigit() and 0 < int(port) <= 65535):
            return f"port {port!r} in {redacted_url(url)!r} is not a port number (1-65535)"
    # libpq itself checks the rest (query parameters, percent-escapes), as it would connect.
    from psycopg import ProgrammingError  # noqa: PLC0415 - only hubs with [store] need it
    from psycopg.conninfo import conninfo_to_dict  # noqa: PLC0415

    try:
        conninfo_to_dict(url)
    except ProgrammingError as error:
        return f"{redacted_url(url)!r} is not a valid PostgreSQL URL: {one_line(str(error))}"
    return None


def _parse_repos(top: _Table) -> tuple[RepoConfig, ...]:
    repos = []
    repo_ids: dict[str, str] = {}
    guids: dict[str, str] = {}
    for table in top.tables("repos"):
        table.check_keys(_REPO_KEYS)
        repo = RepoConfig(
            id=table.ident("id"),
            guid=table.string("guid", expected="a non-empty globally unique id"),
            uri=table.string("uri", expected="a non-empty repository URI"),
        )
        _unique(table, "id", repo.id, repo_ids, "repo id")
        _unique(table, "guid", repo.guid, guids, "repo guid")
        repos.append(repo)
    return tuple(repos)


def _parse_plans(top: _Table, repo_ids: set[str]) -> tuple[PlanConfig, ...]:
    plans = []
    plan_ids: dict[str, str] = {}
    for table in top.tables("plans"):
        table.check_keys(_PLAN_KEYS)
        plan = PlanConfig(
            id=table.ident("id"),
            repo=table.string("repo", expected="the id of a repo defined in [[repos]]"),
            paths=table.strings("paths"),
            excludes=table.strings("excludes"),
        )
        _unique(table, "id", plan.id, plan_ids, "plan id")
        if plan.repo not in repo_ids:
            known = ", ".join(repr(r) for r in sorted(repo_ids)) or "none are defined"
            raise table.error(
                "repo",
                f"refers to repo {plan.repo!r}, which is not in [[repos]] (repo ids: {known})",
            )
        plans.append(plan)
    return tuple(plans)


def _parse_clients(top: _Table) -> tuple[AuthorizedClient, ...]:
    clients = []
    keyids: dict[str, str] = {}
    for table in top.tables("authorized_clients"):
        table.check_keys(_CLIENT_KEYS)
        client = AuthorizedClient(
            instance_id=table.ident("instance_id"),
            keyid=table.keyid("keyid"),
            keyid_verified=table.boolean("keyid_verified", False),
            permissions=table.permissions("permissions"),
        )
        _unique(table, "keyid", client.keyid, keyids, "authorized client keyid")
        clients.append(client)
    return tuple(clients)


def _host_endpoints(table: _Table) -> tuple[str, ...]:
    """``endpoint = "..."`` or ``endpoints = [...]`` (one of them, at least one address)."""
    if "endpoints" in table.data and "endpoint" in table.data:
        raise table.error(
            "endpoints", "give either endpoint (one address) or endpoints (a list), not both"
        )
    if "endpoints" in table.data:
        endpoints = table.strings("endpoints")
        if not endpoints:
            raise table.error("endpoints", "expected at least one tcp://<host>:<port>")
        names = [f"endpoints[{i}]" for i in range(len(endpoints))]
    else:
        endpoints = (table.string("endpoint", expected="tcp://<host>:<port>"),)
        names = ["endpoint"]
    for name, endpoint in zip(names, endpoints, strict=True):
        problem = _endpoint_problem(endpoint, bind=False)
        if problem:
            raise table.error(
                name, f"expected tcp://<host>:<port>, got {endpoint!r}: {problem}"
            )
    if len(set(endpoints)) != len(endpoints):
        raise table.error("endpoints", "the same address is listed twice")
    return endpoints


def _parse_known_hosts(top: _Table) -> tuple[KnownHost, ...]:
    hosts = []
    instance_ids: dict[str, str] = {}
    for table in top.tables("known_hosts"):
        table.check_keys(_HOST_KEYS)
        instance_id = table.ident("instance_id")
        _unique(table, "instance_id", instance_id, instance_ids, "known host instance_id")
        endpoints = _host_endpoints(table)
        expected_key = "the hub's 40-character Z85 CURVE public key (see `synchub id`)"
        curve_key = table.string("curve_public_key", expected=expected_key)
        if not is_valid_curve_public_key(curve_key):
            raise table.error("curve_public_key", f"expected {expected_key}, got {curve_key!r}")
        hosts.append(
            KnownHost(
                instance_id=instance_id,
                endpoint=endpoints[0],
                endpoints=endpoints if "endpoints" in table.data else (),
                keyid=table.keyid("keyid"),
                curve_public_key=curve_key,
                permissions=table.permissions("permissions"),
                heartbeat_interval=_optional_seconds(table, "heartbeat_interval"),
                handshake_timeout=_optional_seconds(table, "handshake_timeout"),
                max_frame_bytes=(table.count("max_frame_bytes", 0)
                                 if "max_frame_bytes" in table.data else None),
                resync=table.boolean("resync", True),
            )
        )
    return tuple(hosts)


def _optional_seconds(table: _Table, name: str) -> float | None:
    return table.seconds(name, 0.0) if name in table.data else None
