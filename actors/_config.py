"""ConfigActor: owns the loaded configuration and every change to it.

``get()`` returns the current immutable snapshot. ``authorize``, ``revoke``,
``set_verified`` and ``reload`` validate first, write the TOML file back
atomically with its comments kept, and only then swap the snapshot and notify
subscribers; a change that fails to validate leaves the old config in force and
raises ConfigError to the asker.

The file itself is reached through a ``ConfigFile`` (the comment-keeping
write-back and the loader of ``hub.config``), given to the constructor so the
actor can be driven with a stand-in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pykka
from pykka.typing import ActorMemberMixin, proxy_method

from actors._subscribers import Subscribers
from hub import config as config_file
from hub.config import AuthorizedClient, Config
from hub.errors import ConfigError

log = logging.getLogger(__name__)

ConfigListener = Callable[[Config], object]


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
    ) -> None:
        """``write_path`` is where changes go when the config came from no file."""
        super().__init__()
        self._config = config
        self._write_path = config.path or write_path
        self._files = files if files is not None else ConfigFile()
        self._subscribers: Subscribers[Config] = Subscribers("config")

    def ping(self) -> bool:
        return True

    def get(self) -> Config:
        return self._config

    def subscribe(self, listener: ConfigListener) -> int:
        """Call ``listener`` with every new config snapshot; returns a token."""
        return self._subscribers.add(listener)

    def unsubscribe(self, token: int) -> bool:
        return self._subscribers.remove(token)

    def authorize(self, client: AuthorizedClient) -> Config:
        return self._install(self._files.authorize(self._path(), client))

    def revoke(self, keyid: str) -> Config:
        return self._install(self._files.revoke(self._path(), keyid))

    def set_verified(self, keyid: str, verified: bool) -> Config:
        return self._install(self._files.set_verified(self._path(), keyid, verified))

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
        log.info("reloaded %s", self._config.path)
        return self._install(fresh)

    def _path(self) -> Path:
        if self._write_path is None:
            raise ConfigError(
                "<embedded defaults>", "", "no config file to write: start with --config PATH"
            )
        return self._write_path

    def _install(self, config: Config) -> Config:
        self._config = config
        self._subscribers.publish(lambda: config)
        return config


class ConfigProxy(ActorMemberMixin, pykka.ActorProxy[ConfigActor]):
    """``ConfigActor.start(...).proxy()`` as mypy should see it: each call returns a future."""

    ping = proxy_method(ConfigActor.ping)
    get = proxy_method(ConfigActor.get)
    subscribe = proxy_method(ConfigActor.subscribe)
    unsubscribe = proxy_method(ConfigActor.unsubscribe)
    authorize = proxy_method(ConfigActor.authorize)
    revoke = proxy_method(ConfigActor.revoke)
    set_verified = proxy_method(ConfigActor.set_verified)
    reload = proxy_method(ConfigActor.reload)
