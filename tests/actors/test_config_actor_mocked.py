"""ConfigActor driven directly: its ConfigFile and its listeners are autospec mocks.

The actor object is used without starting its thread; each test calls its methods
as its mailbox would and checks what it asked of the file, what it answered, and
whom it told.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any
from unittest.mock import call, create_autospec

import pykka
import pytest

from actors import ConfigActor, ConfigFile
from hub.config import AuthorizedClient, Config, default_config
from hub.errors import ConfigError
from hub.scopes import Permissions

KEYID = "ed25519.web1"


def listener_spec(config: Config) -> object:
    """The shape of a ConfigListener."""
    return None


def snapshot(tmp_path: Path, name: str, *, from_file: bool = True) -> Config:
    """A distinct Config per name (its instance), read from ``hub.toml`` or from no file."""
    base = default_config(tmp_path)
    path = tmp_path / "hub.toml" if from_file else None
    return dataclasses.replace(base, instance=name, path=path)


@pytest.fixture
def files() -> Any:
    return create_autospec(ConfigFile, instance=True)


def client() -> AuthorizedClient:
    return AuthorizedClient(
        instance_id="web1", keyid=KEYID, keyid_verified=True, permissions=Permissions()
    )


def test_get_is_the_snapshot_it_was_given(tmp_path: Path, files: Any) -> None:
    config = snapshot(tmp_path, "first")
    actor = ConfigActor(config, files=files)

    assert actor.ping() is True
    assert actor.get() is config
    assert files.method_calls == []


def test_authorize_writes_the_file_then_installs_and_announces_the_result(
    tmp_path: Path, files: Any
) -> None:
    old, new = snapshot(tmp_path, "old"), snapshot(tmp_path, "new")
    files.authorize.return_value = new
    listener = create_autospec(listener_spec)
    actor = ConfigActor(old, files=files)
    actor.subscribe(listener)

    assert actor.authorize(client()) is new

    files.authorize.assert_called_once_with(tmp_path / "hub.toml", client())
    assert actor.get() is new
    listener.assert_called_once_with(new)


@pytest.mark.parametrize(
    ("method", "args", "file_method"),
    [
        ("revoke", (KEYID,), "revoke"),
        ("set_verified", (KEYID, False), "set_verified"),
    ],
)
def test_revoke_and_set_verified_go_through_the_file(
    tmp_path: Path, files: Any, method: str, args: tuple[object, ...], file_method: str
) -> None:
    old, new = snapshot(tmp_path, "old"), snapshot(tmp_path, "new")
    getattr(files, file_method).return_value = new
    listener = create_autospec(listener_spec)
    actor = ConfigActor(old, files=files)
    actor.subscribe(listener)

    assert getattr(actor, method)(*args) is new

    getattr(files, file_method).assert_called_once_with(tmp_path / "hub.toml", *args)
    assert actor.get() is new
    listener.assert_called_once_with(new)


def test_a_change_the_file_refuses_keeps_the_old_config_and_tells_no_one(
    tmp_path: Path, files: Any
) -> None:
    old = snapshot(tmp_path, "old")
    refusal = ConfigError(tmp_path / "hub.toml", "authorized_clients", "duplicate instance")
    files.authorize.side_effect = refusal
    listener = create_autospec(listener_spec)
    actor = ConfigActor(old, files=files)
    actor.subscribe(listener)

    with pytest.raises(ConfigError, match="duplicate instance"):
        actor.authorize(client())

    assert actor.get() is old
    listener.assert_not_called()


def test_changes_go_to_write_path_when_the_config_came_from_no_file(
    tmp_path: Path, files: Any
) -> None:
    target = tmp_path / "written.toml"
    new = snapshot(tmp_path, "new")
    files.revoke.return_value = new
    actor = ConfigActor(snapshot(tmp_path, "defaults", from_file=False),
                        write_path=target, files=files)

    actor.revoke(KEYID)

    files.revoke.assert_called_once_with(target, KEYID)


def test_without_any_file_a_change_is_refused_before_touching_anything(
    tmp_path: Path, files: Any
) -> None:
    defaults = snapshot(tmp_path, "defaults", from_file=False)
    actor = ConfigActor(defaults, files=files)

    with pytest.raises(ConfigError, match="start with --config PATH"):
        actor.authorize(client())

    assert files.method_calls == []
    assert actor.get() is defaults


def test_reload_reads_the_file_and_announces_it(tmp_path: Path, files: Any) -> None:
    old, fresh = snapshot(tmp_path, "old"), snapshot(tmp_path, "fresh")
    files.load.return_value = fresh
    listener = create_autospec(listener_spec)
    actor = ConfigActor(old, files=files)
    actor.subscribe(listener)

    assert actor.reload() is fresh

    files.load.assert_called_once_with(tmp_path / "hub.toml")
    listener.assert_called_once_with(fresh)


def test_a_reload_that_fails_keeps_the_running_config(
    tmp_path: Path, files: Any
) -> None:
    old = snapshot(tmp_path, "old")
    files.load.side_effect = ConfigError(tmp_path / "hub.toml", "hub.bind", "not an endpoint")
    listener = create_autospec(listener_spec)
    actor = ConfigActor(old, files=files)
    actor.subscribe(listener)

    with pytest.raises(ConfigError, match="not an endpoint"):
        actor.reload()

    assert actor.get() is old
    listener.assert_not_called()


def test_reload_without_a_file_is_a_no_op(tmp_path: Path, files: Any) -> None:
    defaults = snapshot(tmp_path, "defaults", from_file=False)
    actor = ConfigActor(defaults, files=files)

    assert actor.reload() is defaults
    files.load.assert_not_called()


def test_listeners_unsubscribe_survive_their_errors_and_are_dropped_when_dead(
    tmp_path: Path, files: Any
) -> None:
    configs = [snapshot(tmp_path, f"c{n}") for n in range(3)]
    files.authorize.side_effect = configs
    failing = create_autospec(listener_spec, side_effect=RuntimeError("listener bug"))
    dead = create_autospec(listener_spec, side_effect=pykka.ActorDeadError("gone"))
    leaving = create_autospec(listener_spec)
    actor = ConfigActor(snapshot(tmp_path, "old"), files=files)
    actor.subscribe(failing)
    actor.subscribe(dead)
    token = actor.subscribe(leaving)

    actor.authorize(client())
    assert actor.unsubscribe(token) is True
    assert actor.unsubscribe(token) is False
    actor.authorize(client())
    actor.authorize(client())

    assert failing.call_args_list == [call(c) for c in configs]  # kept despite raising
    dead.assert_called_once_with(configs[0])  # dropped after its actor was found dead
    leaving.assert_called_once_with(configs[0])
    assert actor.get() is configs[2]
