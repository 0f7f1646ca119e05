"""The TOML configuration: load and validate it into frozen objects, and write it back.

One file serves a hub, a client, or a node that is both (docs/configuration.md
describes every key). Loading turns every problem into a ConfigError naming the
file, the key path (``hub.heartbeat_interval``, ``authorized_clients[2].keyid``,
``known_hosts[0].permissions[1].scopes[0]``) and what was expected.

Writing back (authorize, revoke, verify) edits the file with tomlkit so the
operator's comments and layout survive, refuses any change whose result would
not load, and replaces the file atomically.
"""

from __future__ import annotations

import base64
import contextlib
import difflib
import hashlib
import math
import os
import re
import socket
import struct
import tempfile
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomlkit
import tomlkit.exceptions
from tomlkit.items import AoT, Array, Comment, InlineTable, Table, Whitespace
from tomlkit.toml_document import TOMLDocument
from zmq.utils import z85

from hub.errors import ConfigError
from hub.pb import synchub_pb2 as pb
from hub.scopes import (
    ID_PATTERN,
    Permissions,
    PermissionsError,
    parse_permissions,
    plan_resource,
    repo_resource,
)

CONFIG_ENV_VAR = "SYNCHUB_CONFIG"
DEFAULT_DATA_DIR = "synchub-data"
DEFAULT_BIND = "tcp://127.0.0.1:7470"

REMOTE_CONFIG_VERSION = 1
"""The ``version`` of every RemoteConfig this hub sends (the RemoteConfig format)."""

KEYID_PATTERN = re.compile(r"ed25519\.[A-Za-z0-9_\-]{43}")
_TCP_ENDPOINT = re.compile(r"tcp://(?P<host>\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]]+):(?P<port>\*|\d+)")

_ID_RULE = "letters, digits, '_', '.' or '-'"
_TOP_KEYS = (
    "instance",
    "data_dir",
    "hub",
    "repos",
    "plans",
    "authorized_clients",
    "known_hosts",
)
_HUB_KEYS = (
    "bind",
    "curve",
    "heartbeat_interval",
    "handshake_timeout",
    "max_pending_handshakes",
    "max_frame_bytes",
)
_REPO_KEYS = ("id", "guid", "uri")
_PLAN_KEYS = ("id", "repo", "paths", "excludes")
_CLIENT_KEYS = ("instance_id", "keyid", "keyid_verified", "permissions")
_HOST_KEYS = ("instance_id", "endpoint", "keyid", "curve_public_key", "permissions")


@dataclass(frozen=True)
class HubSettings:
    bind: str = DEFAULT_BIND
    curve: bool = True
    heartbeat_interval: float = 15.0
    handshake_timeout: float = 10.0
    max_pending_handshakes: int = 1000
    max_frame_bytes: int = 16 * 1024 * 1024


@dataclass(frozen=True)
class RepoConfig:
    id: str
    guid: str
    uri: str


@dataclass(frozen=True)
class PlanConfig:
    id: str
    repo: str
    paths: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()


@dataclass(frozen=True)
class AuthorizedClient:
    instance_id: str
    keyid: str
    keyid_verified: bool = False
    permissions: Permissions = field(default_factory=Permissions)


@dataclass(frozen=True)
class KnownHost:
    instance_id: str
    endpoint: str
    keyid: str
    curve_public_key: str
    permissions: Permissions = field(default_factory=Permissions)


@dataclass(frozen=True)
class Config:
    path: Path | None
    instance: str
    data_dir: Path
    hub: HubSettings | None = None
    repos: tuple[RepoConfig, ...] = ()
    plans: tuple[PlanConfig, ...] = ()
    authorized_clients: tuple[AuthorizedClient, ...] = ()
    known_hosts: tuple[KnownHost, ...] = ()
    _clients_by_keyid: dict[str, AuthorizedClient] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        # Every handshake looks its client up, and a hub may authorize thousands.
        index: dict[str, AuthorizedClient] = {}
        for client in self.authorized_clients:
            index.setdefault(client.keyid, client)
        object.__setattr__(self, "_clients_by_keyid", index)

    def authorized_client(self, keyid: str) -> AuthorizedClient | None:
        found: AuthorizedClient | None = self._clients_by_keyid.get(keyid)
        return found

    def known_host(self, instance_id: str) -> KnownHost | None:
        return next((h for h in self.known_hosts if h.instance_id == instance_id), None)

    def repo(self, repo_id: str) -> RepoConfig | None:
        return next((r for r in self.repos if r.id == repo_id), None)

    def plan(self, plan_id: str) -> PlanConfig | None:
        return next((p for p in self.plans if p.id == plan_id), None)

    def resource_ids_for(self, permissions: Permissions) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The repo ids and plan ids whose config the permissions may read, in file order.

        Each resource is checked on its own: a plan is shown when ``plan:<id>`` is
        covered, whatever the scopes say about its repo.
        """
        repo_ids = tuple(
            r.id for r in self.repos if permissions.can_read_config(repo_resource(r.id))
        )
        plan_ids = tuple(
            p.id for p in self.plans if permissions.can_read_config(plan_resource(p.id))
        )
        return repo_ids, plan_ids

    def remote_config_for(self, permissions: Permissions) -> pb.RemoteConfig:
        """A fresh RemoteConfig holding what the permissions may read (read_config or
        read_write_config).

        ``version`` is REMOTE_CONFIG_VERSION. ``modno`` is a digest of the content
        (the first 31 bits of SHA-256 over the deterministic encoding with modno 0),
        so equal views carry equal modnos and a changed view almost surely a new one.
        """
        repo_ids, plan_ids = self.resource_ids_for(permissions)
        remote = pb.RemoteConfig(version=REMOTE_CONFIG_VERSION)
        for repo in self.repos:
            if repo.id in repo_ids:
                remote.repos.add(id=repo.id, uri=repo.uri, guid=repo.guid)
        for plan in self.plans:
            if plan.id in plan_ids:
                remote.plans.add(
                    id=plan.id, repo=plan.repo, paths=plan.paths, excludes=plan.excludes
                )
        digest = hashlib.sha256(remote.SerializeToString(deterministic=True)).digest()
        remote.modno = int.from_bytes(digest[:4], "big") & 0x7FFFFFFF
        return remote


def default_config(cwd: Path | None = None) -> Config:
    """The built-in configuration used when no file is given: a hub on loopback."""
    base = Path(os.path.abspath(cwd if cwd is not None else Path.cwd()))
    return Config(
        path=None,
        instance=socket.gethostname(),
        data_dir=base / DEFAULT_DATA_DIR,
        hub=HubSettings(),
    )


def resolve_config_path(cli_value: str | None, env: Mapping[str, str]) -> Path | None:
    """The config file to use: the CLI flag, else $SYNCHUB_CONFIG, else None (defaults)."""
    if cli_value:
        return Path(cli_value).expanduser()
    from_env = env.get(CONFIG_ENV_VAR)
    if from_env:
        return Path(from_env).expanduser()
    return None


def load_config(path: Path) -> Config:
    """Read and validate a config file; every problem is a ConfigError."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError as error:
        raise ConfigError(
            path,
            "",
            "no such file; create it (config.example.toml is a starting point) or give "
            f"no --config and no ${CONFIG_ENV_VAR} to run on the built-in defaults",
        ) from error
    except OSError as error:
        raise ConfigError(path, "", f"cannot read: {error.strerror or error}") from error
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(
            path, "", f"not UTF-8 text ({error.reason} at byte {error.start})"
        ) from error
    return _parse_text(text, Path(path))


def load_config_or_defaults(path: Path | None, cwd: Path | None = None) -> Config:
    """load_config(path), or the built-in defaults when path is None."""
    return default_config(cwd) if path is None else load_config(path)


# --- reading --------------------------------------------------------------------------------


_MISSING: Any = object()


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
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"did you mean {close[0]!r}? " if close else ""


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
        if default is _MISSING:
            raise self.error(name, f"missing; expected {expected}")
        return default

    def string(self, name: str, default: Any = _MISSING, expected: str = "a string") -> Any:
        value = self._get(name, default, expected)
        if not isinstance(value, str) or not value:
            raise self.error(name, f"expected {expected}, got {_describe(value)}")
        return value

    def ident(self, name: str) -> str:
        value: str = self.string(name, expected=f"an id ({_ID_RULE})")
        if not ID_PATTERN.fullmatch(value):
            raise self.error(name, f"expected an id ({_ID_RULE}), got {value!r}")
        return value

    def keyid(self, name: str) -> str:
        expected = "a key id 'ed25519.' + 43 base64url characters (see `synchub id`)"
        value: str = self.string(name, expected=expected)
        if not _is_keyid(value):
            raise self.error(name, f"expected {expected}, got {value!r}")
        return value

    def boolean(self, name: str, default: Any = _MISSING) -> bool:
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


def _is_keyid(value: str) -> bool:
    if not KEYID_PATTERN.fullmatch(value):
        return False
    encoded = value.removeprefix("ed25519.")
    raw = base64.urlsafe_b64decode(encoded + "=")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode() == encoded


def _is_curve_key(value: str) -> bool:
    if len(value) != 40:
        return False
    try:
        return len(z85.decode(value)) == 32
    except (ValueError, KeyError, struct.error):
        return False


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


def _parse_text(text: str, path: Path) -> Config:
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

    repos = _parse_repos(top)
    plans = _parse_plans(top, {repo.id for repo in repos})
    clients = _parse_clients(top)
    hosts = _parse_known_hosts(top)

    return Config(
        path=config_path,
        instance=instance,
        data_dir=data_dir,
        hub=hub,
        repos=repos,
        plans=plans,
        authorized_clients=clients,
        known_hosts=hosts,
    )


def _parse_hub(table: _Table) -> HubSettings:
    table.check_keys(_HUB_KEYS)
    defaults = HubSettings()
    bind: str = table.string("bind", defaults.bind, "tcp://<address>:<port>")
    problem = _endpoint_problem(bind, bind=True)
    if problem:
        raise table.error("bind", f"expected tcp://<address>:<port>, got {bind!r}: {problem}")
    return HubSettings(
        bind=bind,
        curve=table.boolean("curve", defaults.curve),
        heartbeat_interval=table.seconds("heartbeat_interval", defaults.heartbeat_interval),
        handshake_timeout=table.seconds("handshake_timeout", defaults.handshake_timeout),
        max_pending_handshakes=table.count(
            "max_pending_handshakes", defaults.max_pending_handshakes
        ),
        max_frame_bytes=table.count("max_frame_bytes", defaults.max_frame_bytes),
    )


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


def _parse_known_hosts(top: _Table) -> tuple[KnownHost, ...]:
    hosts = []
    instance_ids: dict[str, str] = {}
    for table in top.tables("known_hosts"):
        table.check_keys(_HOST_KEYS)
        instance_id = table.ident("instance_id")
        _unique(table, "instance_id", instance_id, instance_ids, "known host instance_id")
        endpoint: str = table.string("endpoint", expected="tcp://<host>:<port>")
        problem = _endpoint_problem(endpoint, bind=False)
        if problem:
            raise table.error(
                "endpoint", f"expected tcp://<host>:<port>, got {endpoint!r}: {problem}"
            )
        expected_key = "the hub's 40-character Z85 CURVE public key (see `synchub id`)"
        curve_key: str = table.string("curve_public_key", expected=expected_key)
        if not _is_curve_key(curve_key):
            raise table.error("curve_public_key", f"expected {expected_key}, got {curve_key!r}")
        hosts.append(
            KnownHost(
                instance_id=instance_id,
                endpoint=endpoint,
                keyid=table.keyid("keyid"),
                curve_public_key=curve_key,
                permissions=table.permissions("permissions"),
            )
        )
    return tuple(hosts)


# --- writing back ---------------------------------------------------------------------------


def add_or_update_authorized_client(
    path: Path, client: AuthorizedClient, *, cwd: Path | None = None
) -> Config:
    """Add the client, or update the entry with its keyid (instance id, verified flag,
    permissions), keeping everything else in the file as it was.

    When the file does not exist (the node ran on built-in defaults) a new commented
    file is created at ``path`` holding those defaults plus the client; ``cwd`` is
    where the defaults put the data directory (the current directory by default).
    """
    path = Path(path)

    def change(doc: TOMLDocument) -> None:
        found = _find_client(path, doc, client.keyid)
        if found is None:
            _append_client(doc, client)
            return
        entry = found[1]
        _set_if_changed(entry, "instance_id", client.instance_id)
        _set_if_changed(entry, "keyid_verified", client.keyid_verified)
        new_permissions = client.permissions.to_toml()
        if entry.unwrap().get("permissions", []) != new_permissions:
            entry["permissions"] = _permissions_item(client.permissions)

    return _edit(path, change, new_document=lambda: _new_document(path, cwd))


def remove_authorized_client(path: Path, keyid: str) -> Config:
    """Remove the authorized client with this keyid; ConfigError if there is none.

    Comments inside the removed entry go with it. Comments between its last value
    and the next header (which TOML parsers attach to it, but which describe what
    follows) and comments above its header stay.
    """
    path = Path(path)

    def change(doc: TOMLDocument) -> None:
        found = _find_client(path, doc, keyid)
        if found is None:
            raise _no_such_client(path, keyid)
        _remove_client_entry(doc, doc["authorized_clients"], found[0])

    return _edit(path, change)


def set_keyid_verified(path: Path, keyid: str, verified: bool) -> Config:
    """Set ``keyid_verified`` of the authorized client with this keyid."""
    path = Path(path)

    def change(doc: TOMLDocument) -> None:
        found = _find_client(path, doc, keyid)
        if found is None:
            raise _no_such_client(path, keyid)
        _set_if_changed(found[1], "keyid_verified", verified)

    return _edit(path, change)


def _no_such_client(path: Path, keyid: str) -> ConfigError:
    return ConfigError(path, "authorized_clients", f"no authorized client has keyid {keyid!r}")


def _find_client(path: Path, doc: TOMLDocument, keyid: str) -> tuple[int, Any] | None:
    container = doc.get("authorized_clients")
    if container is None:
        return None
    if not isinstance(container, AoT | Array):
        raise ConfigError(
            path, "authorized_clients", "expected an array of tables ([[authorized_clients]])"
        )
    for index, entry in enumerate(container):
        if isinstance(entry, Table | InlineTable) and entry.get("keyid") == keyid:
            return index, entry
    return None


def _set_if_changed(entry: Any, key: str, value: object) -> None:
    current = entry.unwrap().get(key, _MISSING)
    if current is _MISSING or current != value or type(current) is not type(value):
        entry[key] = value


def _permissions_item(permissions: Permissions) -> Array:
    array = tomlkit.array()
    for element in permissions.to_toml():
        inline = tomlkit.inline_table()
        inline.update(element)
        array.append(inline)
    return array


def _append_client(doc: TOMLDocument, client: AuthorizedClient) -> None:
    container = doc.get("authorized_clients")
    if isinstance(container, Array):
        inline = tomlkit.inline_table()
        inline.update(
            {
                "instance_id": client.instance_id,
                "keyid": client.keyid,
                "keyid_verified": client.keyid_verified,
                "permissions": client.permissions.to_toml(),
            }
        )
        container.append(inline)
        return
    table = tomlkit.table()
    table.add("instance_id", client.instance_id)
    table.add("keyid", client.keyid)
    table.add("keyid_verified", client.keyid_verified)
    if client.permissions.entries:
        table.add("permissions", _permissions_item(client.permissions))
    moved: list[Comment | Whitespace] = []
    if container is None:
        container = tomlkit.aot()
        preceding = doc.as_string()
        doc.append("authorized_clients", container)
    elif len(container):
        moved = _trailing_trivia(container[-1], take=True)
        preceding = container[-1].as_string()
    else:
        preceding = ""
    if not preceding.endswith("\n\n"):
        table.trivia.indent = "\n"
    if moved or list(doc.keys())[-1] != "authorized_clients":
        table.add(tomlkit.nl())
    for item in moved:
        table.add(item)
    container.append(table)


def _trailing_trivia(table: Table, *, take: bool = False) -> list[Comment | Whitespace]:
    """The comments that follow a table's last value after a blank line, with the
    whitespace around them: they sit above the next header and describe what follows.

    Comments right below the last value belong to the table. With ``take`` the
    trailing comments are removed from the table; the blank line stays as its separator.
    """
    body = table.value.body
    start = len(body)
    while start > 0 and body[start - 1][0] is None:
        start -= 1
    while start < len(body) and not isinstance(body[start][1], Whitespace):
        start += 1
    while start < len(body) and isinstance(body[start][1], Whitespace):
        start += 1
    items = [item for _, item in body[start:] if isinstance(item, Comment | Whitespace)]
    if len(items) < len(body) - start or not any(isinstance(i, Comment) for i in items):
        return []
    if take:
        del body[start:]
    return items


def _comments_above_header(table: Table) -> list[Comment | Whitespace]:
    """Comments placed in a header's indent by _put_above_header, as items again."""
    if not table.trivia.indent.strip():
        return []
    items = [item for _, item in tomlkit.parse(table.trivia.indent).body]
    return [item for item in items if isinstance(item, Comment | Whitespace)]


def _remove_client_entry(doc: TOMLDocument, container: Any, index: int) -> None:
    """Delete one entry, keeping the comments that describe its neighbours in place."""
    if isinstance(container, Array):
        del container[index]
        if len(container) == 0:
            del doc["authorized_clients"]
        return
    removed = container[index]
    kept = _comments_above_header(removed) + _trailing_trivia(removed)
    preceding = container[index - 1] if index > 0 else _neighbour(doc, "authorized_clients", -1)
    following = (
        container[index + 1]
        if index + 1 < len(container)
        else _neighbour(doc, "authorized_clients", +1)
    )
    del container[index]
    if len(container) == 0:
        del doc["authorized_clients"]
    if not kept:
        return
    if preceding is not None:
        for item in kept:
            preceding.add(item)
    elif following is not None:
        _put_above_header(following, kept)
    else:
        for item in kept:
            doc.add(item)


def _neighbour(doc: TOMLDocument, key: str, step: int) -> Table | None:
    """The table rendered right before (step -1) or after (+1) the array of tables at key,
    or None when top-level values or the document's edge are there instead."""
    body = doc.body
    for position, (item_key, _) in enumerate(body):
        if item_key is not None and item_key.key == key:
            other = position + step
            if not 0 <= other < len(body) or body[other][0] is None:
                return None
            item = body[other][1]
            if isinstance(item, AoT):
                return item[-1 if step < 0 else 0] if len(item) else None
            if isinstance(item, Table) and not (step > 0 and item.is_super_table()):
                return item
            return None
    return None


def _put_above_header(table: Table, items: list[Comment | Whitespace]) -> None:
    """Render the items just above the table's header, through the header's indent."""
    table.trivia.indent = "".join(item.as_string() for item in items) + table.trivia.indent


def _new_document(path: Path, cwd: Path | None) -> TOMLDocument:
    defaults = default_config(cwd)
    data_dir_path = defaults.data_dir
    try:
        same_folder = path.absolute().parent.resolve() == data_dir_path.parent.resolve()
    except OSError:
        same_folder = False
    data_dir = DEFAULT_DATA_DIR if same_folder else str(data_dir_path)
    text = (
        "# synchub configuration, started from the built-in defaults by `synchub authorize`.\n"
        "# Every key is described in docs/configuration.md. Relative paths are resolved\n"
        "# against this file's folder; durations are in seconds.\n"
        "\n"
        f"instance = {tomlkit.item(defaults.instance).as_string()}  # this node's instance id\n"
        f"data_dir = {tomlkit.item(data_dir).as_string()}  # identity, oplog, peer states\n"
        "\n"
        "[hub]  # this node accepts clients\n"
        f"bind = {tomlkit.item(DEFAULT_BIND).as_string()}\n"
        "\n"
        "# Clients allowed to connect: `synchub authorize` adds them, `synchub revoke`\n"
        "# removes them.\n"
    )
    return tomlkit.parse(text)


def _edit(
    path: Path,
    change: Callable[[TOMLDocument], None],
    new_document: Callable[[], TOMLDocument] | None = None,
) -> Config:
    target = Path(os.path.realpath(path))
    mode = 0o644
    owner: tuple[int, int] | None = None
    try:
        original = target.read_bytes()
    except FileNotFoundError as error:
        if new_document is None:
            raise ConfigError(path, "", "no such file") from error
        doc = new_document()
    except OSError as error:
        raise ConfigError(path, "", f"cannot read: {error.strerror or error}") from error
    else:
        status = target.stat()
        mode = status.st_mode & 0o7777
        owner = (status.st_uid, status.st_gid)
        try:
            doc = tomlkit.parse(original.decode("utf-8"))
        except UnicodeDecodeError as error:
            raise ConfigError(path, "", f"not UTF-8 text ({error.reason})") from error
        except tomlkit.exceptions.TOMLKitError as error:
            raise ConfigError(path, "", f"invalid TOML: {error}") from error

    change(doc)
    text = doc.as_string()
    try:
        config = _parse_text(text, path)
    except ConfigError as error:
        raise ConfigError(
            error.path, error.key, f"{error.problem} (refused: the file was not changed)"
        ) from error
    try:
        _write_atomically(target, text.encode("utf-8"), mode, owner)
    except OSError as error:
        raise ConfigError(
            path, "", f"cannot write: {error.strerror or error} (the file was not changed)"
        ) from error
    return config


def _write_atomically(target: Path, data: bytes, mode: int, owner: tuple[int, int] | None) -> None:
    """Write to a temp file beside target, fsync, rename over target, fsync the folder."""
    directory = target.parent
    fd, temp_name = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            if owner is not None:
                with contextlib.suppress(OSError):
                    os.fchown(handle.fileno(), *owner)
            os.fsync(handle.fileno())
        os.replace(temp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
    # The rename is done; some filesystems refuse fsync on a directory.
    with contextlib.suppress(OSError):
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
