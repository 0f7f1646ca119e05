"""ConfigActor: owns the loaded configuration and every change to it.

``get()`` returns the current immutable snapshot. ``authorize``, ``revoke``,
``set_verified`` and ``reload`` validate first, write the TOML file back
atomically with its comments kept, and only then swap the snapshot and notify
subscribers; a change that fails to validate leaves the old config in force and
raises ConfigError to the asker.

Gates (``attach_gate``: the OplogActor's write gate) get every new config before the
change returns, and the actor waits until each has taken it: once ``revoke``,
``set_verified`` or ``reload`` has returned, no batch of a key the new config no
longer admits is applied (``actors._gate``). A gate is told, never asked back, so
this waits on no cycle.

``redeem`` lets a client in with an invitation (docs/protocol.md §5.7 (Joining with an
invitation)): the claim checked against the stored invitation, one use taken, then
the client authorized as a verified key, all in this one mailbox. The invitations
are rows of an ``InvitationStore``, opened in this actor's thread on first use (on a
shared store, the database's rows: a use is taken once across every hub).

On a store several hubs share (docs/cluster.md) the authorized clients are rows in
the database (``AuthorizedClientStore``, opened in this actor's thread), not the
file's ``[[authorized_clients]]``: ``authorize``, ``revoke`` and ``set_verified``
change the rows (every hub hears of it), and ``clients_changed`` (told when another
hub changed them) reads them again; every snapshot carries the rows as its
``authorized_clients``. A reload whose file lists ``[[authorized_clients]]`` is
refused as the start refuses it (``cluster_clients_refusal``).

The file itself is reached through a ``ConfigFile`` (the comment-keeping
write-back and the loader of ``hub.config``), given to the constructor so the
actor can be driven with a stand-in.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

import pykka
from pykka.typing import ActorMemberMixin, proxy_method

from actors._calls import survives
from actors._subscribers import Subscribers
from hub import config as config_file
from hub.config import AuthorizedClient, Config
from hub.errors import AuthError, ConfigError, PermissionsError, StoreError
from hub.protocol import JoinClaim
from hub.scopes import Permissions, parse_permissions
from hub.store import AuthorizedClientStore, Invitation, InvitationStore

log = logging.getLogger(__name__)

ConfigListener = Callable[[Config], object]
ConfigGate = Callable[[Config], "pykka.Future[bool]"]

GATE_WAIT: Final = 10.0
"""How long a change waits for a gate to take it before returning anyway (logged)."""


class ConfigFile:
    """The config file as the ConfigActor changes it: each write returns the new config.

    Every method raises ConfigError (the file unchanged) when the result would not
    validate.
    """

    def authorize(self, path: Path, client: AuthorizedClient) -> Config:
        return config_file.add_or_update_authorized_client(path, client)

    def revoke(self, path: Path, keyid: str) -> Config:
        return config_file.remove_authorized_client(path, keyid)

    def set_verified(self, path: Path, keyid: str, verified: bool) -> Config:
        return config_file.set_keyid_verified(path, keyid, verified)

    def load(self, path: Path) -> Config:
        return config_file.load_config(path)


class ConfigActor(pykka.ThreadingActor):
    def __init__(
        self,
        config: Config,
        *,
        write_path: Path | None = None,
        files: ConfigFile | None = None,
        invitations: Callable[[], InvitationStore] | None = None,
        clock: Callable[[], float] = time.time,
        clients_factory: Callable[[], AuthorizedClientStore | None] | None = None,
    ) -> None:
        """``write_path`` is where changes go when the config came from no file;
        ``invitations`` opens the invitation store (none: this hub takes no joins);
        ``clients_factory``, when it gives a store, is where the authorized clients are."""
        super().__init__()
        self._config = config
        self._write_path = config.path or write_path
        self._files = files if files is not None else ConfigFile()
        self._subscribers: Subscribers[Config] = Subscribers("config")
        self._gates: dict[int, ConfigGate] = {}
        self._invitations_factory = invitations
        self._invitations: InvitationStore | None = None
        self._clock = clock
        self._clients_factory = clients_factory
        self._clients: AuthorizedClientStore | None = None

    def on_start(self) -> None:
        if self._clients_factory is not None:
            self._clients = self._clients_factory()
        if self._clients is not None:
            self._config = self._with_stored_clients(self._config)

    def on_stop(self) -> None:
        store, self._invitations = self._invitations, None
        if store is not None:
            store.close()
        clients, self._clients = self._clients, None
        if clients is not None:
            clients.close()

    def ping(self) -> bool:
        return True

    def get(self) -> Config:
        return self._config

    def subscribe(self, listener: ConfigListener) -> int:
        """Call ``listener`` with every new config snapshot; returns a token."""
        return self._subscribers.add(listener)

    def unsubscribe(self, token: int) -> bool:
        return self._subscribers.remove(token)

    def attach_gate(self, gate: ConfigGate) -> int:
        """Hand ``gate`` the current config now, and every new one before the change
        returns, waiting each time until it has taken it; returns a token."""
        token = max(self._gates, default=0) + 1
        self._gates[token] = gate
        self._pass_gate(token, gate, self._config)
        return token

    def authorize(self, client: AuthorizedClient) -> Config:
        if self._clients is not None:
            self._clients.put(client)
            return self._install(self._with_stored_clients(self._config))
        return self._install(self._files.authorize(self._path(), client))

    def revoke(self, keyid: str) -> Config:
        if self._clients is not None:
            self._clients.remove(keyid)
            return self._install(self._with_stored_clients(self._config))
        return self._install(self._files.revoke(self._path(), keyid))

    def set_verified(self, keyid: str, verified: bool) -> Config:
        if self._clients is not None:
            if not self._clients.set_verified(keyid, verified):
                raise ConfigError("authorized_clients", "", f"no authorized client {keyid}")
            return self._install(self._with_stored_clients(self._config))
        return self._install(self._files.set_verified(self._path(), keyid, verified))

    @survives("config")
    def clients_changed(self) -> None:
        """Another hub changed the authorized clients (or may have, while this one could
        not hear): read them again; sessions re-check their clients."""
        if self._clients is None:
            return
        try:
            fresh = self._with_stored_clients(self._config)
        except StoreError:
            log.exception("reading the authorized clients failed; keeping the ones in force")
            return
        if fresh.authorized_clients != self._config.authorized_clients:
            log.info("authorized clients changed: %d now", len(fresh.authorized_clients))
            self._install(fresh)

    def redeem(self, claim: JoinClaim) -> Config:
        """Authorize the claim's client with its invitation's instance and permissions.

        AuthError (nothing changed) when the invitation is unknown, its proof does not
        verify, it is revoked, expired or used up, or it is for another instance.
        """
        store = self._invitation_store(claim)
        now_ms = int(self._clock() * 1000)
        invitation = store.get(claim.invitation_id)
        if invitation is None:
            raise claim.refused(
                "is not known to this hub (mistyped, revoked long ago, or from another hub)",
                "invitation_unknown",
            )
        if not claim.verified_by(invitation.verifier):
            raise claim.refused(
                "was not proven: the token's secret is wrong, or the proof was made for "
                "another connection", "invitation_bad_proof",
            )
        self._check_open(claim, invitation, now_ms)
        used = store.use(claim.invitation_id, claim.client_keyid, now_ms)
        if used is None:
            raise claim.refused("was used up or expired a moment ago", "invitation_used_up")
        config = self.authorize(AuthorizedClient(
            instance_id=invitation.instance_id,
            keyid=claim.client_keyid,
            keyid_verified=True,
            permissions=_permissions_of(invitation),
        ))
        log.info(
            "client %s (%s) joined with invitation %s (%d of %d uses left)",
            claim.client_instance_id, claim.client_keyid, claim.invitation_id,
            used.uses_left, used.uses,
        )
        return config

    def _invitation_store(self, claim: JoinClaim) -> InvitationStore:
        if self._invitations is None:
            if self._invitations_factory is None:
                raise claim.refused("cannot be used: this hub takes no invitations", "invitation")
            self._invitations = self._invitations_factory()
        return self._invitations

    @staticmethod
    def _check_open(claim: JoinClaim, invitation: Invitation, now_ms: int) -> None:
        state = invitation.state(now_ms)
        if state == "revoked":
            raise claim.refused("was revoked", "invitation_revoked")
        if state == "used up":
            raise claim.refused(
                f"has been used up ({invitation.uses} of {invitation.uses})",
                "invitation_used_up",
            )
        if state == "expired":
            raise claim.refused("has expired: ask for a new one", "invitation_expired")
        if claim.client_instance_id != invitation.instance_id:
            raise claim.refused(
                f"is for instance {invitation.instance_id!r}, not "
                f"{claim.client_instance_id!r}", "instance_mismatch",
            )

    def reload(self) -> Config:
        """Re-read the file; on any error keep the running config and raise why."""
        if self._config.path is None:
            return self._config
        try:
            fresh = self._files.load(self._config.path)
        except ConfigError as exc:
            log.error(
                "reload refused, the hub keeps its running config: %s; fix the file and "
                "reload again (SIGHUP or `synchub reload`)", exc,
            )
            raise
        if self._clients is not None:
            refusal = config_file.cluster_clients_refusal(fresh)
            if refusal is not None:
                log.error("reload refused, the hub keeps its running config: %s", refusal)
                raise refusal
            fresh = self._with_stored_clients(fresh)
        log.info("reloaded %s", self._config.path)
        return self._install(fresh)

    def _with_stored_clients(self, config: Config) -> Config:
        assert self._clients is not None
        return dataclasses.replace(config, authorized_clients=self._clients.load_all())

    def _path(self) -> Path:
        if self._write_path is None:
            raise ConfigError(
                "<embedded defaults>", "", "no config file to write: start with --config PATH"
            )
        return self._write_path

    def _install(self, config: Config) -> Config:
        self._config = config
        for token, gate in list(self._gates.items()):
            self._pass_gate(token, gate, config)
        self._subscribers.publish(lambda: config)
        return config

    def detach_gate(self, token: int) -> bool:
        return self._gates.pop(token, None) is not None

    def _pass_gate(self, token: int, gate: ConfigGate, config: Config) -> None:
        try:
            gate(config).get(timeout=GATE_WAIT)
        except pykka.ActorDeadError:
            self._gates.pop(token, None)
        except pykka.Timeout:
            log.error(
                "the oplog did not take the new config within %.0fs; "
                "it refuses revoked keys once it does", GATE_WAIT,
            )
        except Exception:
            log.exception("a config gate failed")


def _permissions_of(invitation: Invitation) -> Permissions:
    try:
        return parse_permissions(json.loads(invitation.permissions))
    except (ValueError, PermissionsError) as exc:
        raise AuthError(
            f"invitation {invitation.id} holds unreadable permissions; revoke it and "
            "make a new one", reason="invitation",
        ) from exc


class ConfigProxy(ActorMemberMixin, pykka.ActorProxy[ConfigActor]):
    """``ConfigActor.start(...).proxy()`` as mypy should see it: each call returns a future."""

    ping = proxy_method(ConfigActor.ping)
    get = proxy_method(ConfigActor.get)
    subscribe = proxy_method(ConfigActor.subscribe)
    unsubscribe = proxy_method(ConfigActor.unsubscribe)
    attach_gate = proxy_method(ConfigActor.attach_gate)
    detach_gate = proxy_method(ConfigActor.detach_gate)
    authorize = proxy_method(ConfigActor.authorize)
    revoke = proxy_method(ConfigActor.revoke)
    set_verified = proxy_method(ConfigActor.set_verified)
    reload = proxy_method(ConfigActor.reload)
    redeem = proxy_method(ConfigActor.redeem)
    clients_changed = proxy_method(ConfigActor.clients_changed)
