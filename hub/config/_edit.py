"""Writing configuration changes back (authorize, revoke, verify, join).

The file is edited with tomlkit so the operator's comments and layout survive;
a change whose result would not load is refused, and the file is replaced
atomically.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import tomlkit
import tomlkit.exceptions
from tomlkit.items import AoT, Array, Comment, InlineTable, Table, Whitespace
from tomlkit.toml_document import TOMLDocument

from hub.config._load import MISSING, parse_config_text
from hub.config._model import (
    DEFAULT_BIND,
    DEFAULT_DATA_DIR,
    AuthorizedClient,
    Config,
    KnownHost,
    default_config,
)
from hub.errors import ConfigError
from hub.scopes import Permissions


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
        entry = found.table
        _set_if_changed(entry, "instance_id", client.instance_id)
        _set_if_changed(entry, "keyid_verified", client.keyid_verified)
        new_permissions = client.permissions.to_toml()
        if entry.unwrap().get("permissions", []) != new_permissions:
            entry["permissions"] = _permissions_item(client.permissions)

    return _edit(path, change, new_document=lambda: _new_document(path, cwd))


def add_or_update_known_host(path: Path, host: KnownHost, *, instance: str) -> Config:
    """Pin a hub: add its ``[[known_hosts]]`` entry, or set the endpoint, key id and
    CURVE key of the entry with its instance id; the rest of the file is kept.

    A file that does not exist is created for a client named ``instance`` (`synchub
    join` on a new node); its data is ``synchub-data`` beside it.
    """
    path = Path(path)

    def change(doc: TOMLDocument) -> None:
        hosts = doc.get("known_hosts")
        if isinstance(hosts, AoT | Array):
            for entry in hosts:
                if isinstance(entry, Table | InlineTable) and (
                    entry.get("instance_id") == host.instance_id
                ):
                    _set_if_changed(entry, "endpoint", host.endpoint)
                    _set_if_changed(entry, "keyid", host.keyid)
                    _set_if_changed(entry, "curve_public_key", host.curve_public_key)
                    return
        table = tomlkit.table()
        for key, value in (
            ("instance_id", host.instance_id), ("endpoint", host.endpoint),
            ("keyid", host.keyid), ("curve_public_key", host.curve_public_key),
        ):
            table.add(key, value)
        if host.permissions.entries:
            table.add("permissions", _permissions_item(host.permissions))
        if not doc.as_string().endswith("\n\n"):
            table.trivia.indent = "\n"
        if isinstance(hosts, AoT):
            hosts.append(table)
        else:
            doc.append("known_hosts", tomlkit.aot())
            known = doc["known_hosts"]
            assert isinstance(known, AoT)
            known.append(table)

    def new_client() -> TOMLDocument:
        return tomlkit.parse(
            "# synchub configuration, started by `synchub join`. Every key is described\n"
            "# in docs/configuration.md; relative paths are resolved against this folder.\n"
            "\n"
            f"instance = {tomlkit.item(instance).as_string()}  # this node's instance id\n"
            f"data_dir = {tomlkit.item(DEFAULT_DATA_DIR).as_string()}  # identity, oplog\n"
            "\n"
            "# Hubs this node syncs to: `synchub join` adds them.\n"
        )

    return _edit(path, change, new_document=new_client)


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
        _remove_client_entry(doc, found.container, found.position)

    return _edit(path, change)


def set_keyid_verified(path: Path, keyid: str, verified: bool) -> Config:
    """Set ``keyid_verified`` of the authorized client with this keyid."""
    path = Path(path)

    def change(doc: TOMLDocument) -> None:
        found = _find_client(path, doc, keyid)
        if found is None:
            raise _no_such_client(path, keyid)
        _set_if_changed(found.table, "keyid_verified", verified)

    return _edit(path, change)


def _no_such_client(path: Path, keyid: str) -> ConfigError:
    return ConfigError(path, "authorized_clients", f"no authorized client has keyid {keyid!r}")


class _Entry(NamedTuple):
    """One [[authorized_clients]] entry, where it sits in the document."""

    container: AoT | Array
    position: int
    table: Table | InlineTable


def _find_client(path: Path, doc: TOMLDocument, keyid: str) -> _Entry | None:
    container = doc.get("authorized_clients")
    if container is None:
        return None
    if not isinstance(container, AoT | Array):
        raise ConfigError(
            path, "authorized_clients", "expected an array of tables ([[authorized_clients]])"
        )
    for index, entry in enumerate(container):
        if isinstance(entry, Table | InlineTable) and entry.get("keyid") == keyid:
            return _Entry(container, index, entry)
    return None


def _set_if_changed(entry: Table | InlineTable, key: str, value: object) -> None:
    current = entry.unwrap().get(key, MISSING)
    if current is MISSING or current != value or type(current) is not type(value):
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


def _remove_client_entry(doc: TOMLDocument, container: AoT | Array, index: int) -> None:
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
        config = parse_config_text(text, path)
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
