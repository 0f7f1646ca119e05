"""The configuration model: frozen objects a loaded TOML file becomes, and the defaults.

One file serves a hub, a client, or a node that is both (docs/configuration.md
describes every key); ``hub.config`` loads it (``_load``) and writes changes
back (``_edit``). A ``Config`` also answers what a peer may see of it
(``resource_ids_for``, ``remote_config_for``).
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from hub.pb import synchub_pb2 as pb
from hub.scopes import Permissions, plan_resource, repo_resource

CONFIG_ENV_VAR = "SYNCHUB_CONFIG"
DEFAULT_DATA_DIR = "synchub-data"
DEFAULT_BIND = "tcp://127.0.0.1:7470"
DEFAULT_WEB_BIND = "127.0.0.1:7471"

REMOTE_CONFIG_VERSION = 1
"""The ``version`` of every RemoteConfig this hub sends (the RemoteConfig format)."""


@dataclass(frozen=True)
class HubSettings:
    bind: str = DEFAULT_BIND
    curve: bool = True
    heartbeat_interval: float = 15.0
    handshake_timeout: float = 10.0
    max_pending_handshakes: int = 1000
    max_frame_bytes: int = 16 * 1024 * 1024
    node: str = ""
    """This process's name among the hubs of one cluster (logs, ``peers``); "" until
    loaded: ``node_name`` gives the default, the host name and the bind port."""

    @property
    def node_name(self) -> str:
        if self.node:
            return self.node
        port = self.bind.rpartition(":")[2]
        if not port.isdigit() or port == "0":
            port = f"pid{os.getpid()}"  # a port chosen at bind time is not known yet
        return f"{socket.gethostname()}:{port}"
    max_pending_per_source: int = 64
    proof_timeout: float = 10.0
    advertise: str | None = None
    """The endpoint clients dial (``id``, invitations); None: derived from ``bind``."""
    resync: bool = True
    """Answer a client's offer of resumed sync (docs/protocol.md §6.8 (Resumed sync));
    False: every session does version 1's full diffs."""

    def client_endpoint(self) -> tuple[str, bool]:
        """The endpoint a client dials, and whether it is a guess.

        ``advertise`` when set. Otherwise ``bind``, except that a wildcard bind
        (0.0.0.0, *, ::) is not dialable: this host's fully qualified name stands
        in, and the flag says so, so callers can tell the operator to set
        ``advertise``.
        """
        if self.advertise:
            return self.advertise, False
        if not self.bind.startswith("tcp://"):
            return self.bind, False
        host, _, port = self.bind.removeprefix("tcp://").rpartition(":")
        host = host.strip("[]")
        guessed = host in {"0.0.0.0", "*", "::", ""}  # noqa: S104 - recognising, not binding
        if guessed:
            host = socket.getfqdn()
        elif ":" in host:
            host = f"[{host}]"
        return f"tcp://{host}:{port}", guessed


DEFAULT_ERROR_OUTPUT_BYTES = 8 * 1024
MAX_ERROR_OUTPUT_BYTES = 1024 * 1024
"""The most of a failed job's output an operation may carry (it travels in every diff
answer and is stored by every hub)."""


@dataclass(frozen=True)
class RunSettings:
    """``[run]``: how ``synchub run`` records jobs."""

    error_output_bytes: int = DEFAULT_ERROR_OUTPUT_BYTES
    """The last bytes of a failed job's output kept in its operation; 0 keeps none."""


@dataclass(frozen=True)
class WebSettings:
    """The hub's HTTP side (dashboard, /api, /metrics, /healthz): ``[web]``."""

    bind: str = DEFAULT_WEB_BIND
    """``host:port`` (IPv6 in brackets), or "" for no HTTP at all."""
    token: str | None = None
    """The bearer token every request but /healthz must carry; required off loopback."""
    bind_from_file: bool = False
    """True when ``bind`` was set in the file: then failing to bind it stops the start."""

    @property
    def enabled(self) -> bool:
        return bool(self.bind)

    @property
    def host(self) -> str:
        return split_host_port(self.bind)[0]

    @property
    def port(self) -> int:
        return split_host_port(self.bind)[1]

    @property
    def loopback(self) -> bool:
        return is_loopback_host(self.host)


def split_host_port(bind: str) -> tuple[str, int]:
    """``"127.0.0.1:7471"`` -> ("127.0.0.1", 7471); ``"[::1]:80"`` -> ("::1", 80).

    ValueError when ``bind`` is not of that form.
    """
    host, sep, port = bind.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"expected <address>:<port>, got {bind!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"put an IPv6 address in brackets, as [::1]:7471, not {bind!r}")
    if not host:
        raise ValueError(f"expected <address>:<port>, got {bind!r}")
    return host, int(port)


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and addresses in 127.0.0.0/8 or ::1."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


AlertWhen = Literal["operation_failed", "plan_stale", "peer_lost"]
ALERT_CONDITIONS: tuple[AlertWhen, ...] = ("operation_failed", "plan_stale", "peer_lost")


@dataclass(frozen=True)
class AlertRule:
    """One ``[[alerts]]`` entry: when it fires, what it watches, where it is delivered."""

    name: str
    when: AlertWhen
    after: float | None = None
    """Seconds; set for plan_stale and peer_lost, None for operation_failed."""
    instances: tuple[str, ...] = ()
    repos: tuple[str, ...] = ()
    plans: tuple[str, ...] = ()
    webhook: str | None = None
    command: tuple[str, ...] = ()

    def covers(self, instance: str, repo: tuple[str, str] = ("", ""), plan: str = "") -> bool:
        """Whether the filters admit this instance, repo (id, guid) and plan; empty = all."""
        if self.instances and instance not in self.instances:
            return False
        if self.repos and not any(r and r in self.repos for r in repo):
            return False
        return not self.plans or plan in self.plans


@dataclass(frozen=True)
class StoreSettings:
    """Where a hub keeps its oplog and peer states: ``url`` None is SQLite in data_dir.

    ``url`` is a ``postgresql://`` URL (libpq's form, checked when the file is
    loaded); several hubs given the same one share one store.
    """

    url: str | None = None
    check_pages: bool = True
    """At start, read every page of the SQLite stores (``PRAGMA quick_check``)."""

    @property
    def postgresql(self) -> bool:
        return self.url is not None


@dataclass(frozen=True)
class RetentionSettings:
    """How long a hub keeps its peers' operations: ``[retention]``.

    ``keep_days`` 0 keeps them forever; ``plans`` overrides it per plan id (0 there
    keeps that plan's forever). The latest run of each (instance, plan) is always
    kept (docs/operations.md, "Retention").
    """

    keep_days: int = 0
    plans: tuple[tuple[str, int], ...] = ()
    interval: float = 600.0
    """Seconds from the end of one retention pass to the start of the next."""

    @property
    def enabled(self) -> bool:
        return self.keep_days > 0 or any(days > 0 for _, days in self.plans)

    def days_for(self, plan_id: str) -> int:
        """The days a plan's operations are kept; 0 = forever."""
        for plan, days in self.plans:
            if plan == plan_id:
                return days
        return self.keep_days


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
    heartbeat_interval: float | None = None
    """The hub's own settings, as its `synchub id` prints them (None: not given); the
    agent heartbeats at least this often, answers within the handshake timeout and
    keeps its frames under the frame limit (docs/protocol.md §7.1 (Heartbeats))."""
    handshake_timeout: float | None = None
    max_frame_bytes: int | None = None
    endpoints: tuple[str, ...] = ()
    """Every address of the hub (the hubs of one cluster); ``endpoint`` is the first.
    Empty means ``(endpoint,)``: read ``addresses``."""
    resync: bool = True
    """Offer that hub resumed sync (docs/protocol.md §6.8 (Resumed sync)); False: full
    diffs on every connection."""

    @property
    def addresses(self) -> tuple[str, ...]:
        return self.endpoints or (self.endpoint,)


@dataclass(frozen=True)
class Config:
    path: Path | None
    instance: str
    data_dir: Path
    hub: HubSettings | None = None
    run: RunSettings = field(default_factory=RunSettings)
    store: StoreSettings = StoreSettings()
    retention: RetentionSettings = RetentionSettings()
    repos: tuple[RepoConfig, ...] = ()
    plans: tuple[PlanConfig, ...] = ()
    authorized_clients: tuple[AuthorizedClient, ...] = ()
    known_hosts: tuple[KnownHost, ...] = ()
    web: WebSettings = field(default_factory=WebSettings)
    alerts: tuple[AlertRule, ...] = ()
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

    def alert(self, name: str) -> AlertRule | None:
        return next((a for a in self.alerts if a.name == name), None)

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
        read_write_config), as docs/protocol.md §6.6 (Configuration and resources) says.

        ``version`` is REMOTE_CONFIG_VERSION. ``modno`` is a digest of the content
        (the first 4 bytes of SHA-256 over the deterministic encoding with modno 0,
        big-endian, top bit cleared: docs/protocol.md §6.6 (Configuration and resources)),
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
