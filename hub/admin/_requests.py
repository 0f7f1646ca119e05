"""Checks of request fields, shared by the CLI and the admin service: key ids,
instance ids, fingerprints and permission flags."""

from __future__ import annotations

from typing import Any

from hub.config import AuthorizedClient
from hub.errors import PermissionsError, RequestError
from hub.identity import keyid_problem
from hub.scopes import ID_PATTERN, ID_RULE, Permissions, parse_permissions


def check_keyid(text: str) -> str:
    """The key id ``text`` names; RequestError saying what one looks like.

    Surrounding whitespace is dropped, and the grouped fingerprint that `synchub id`
    prints (``Ab3d efgh ...``, with or without the ``ed25519.`` prefix) is taken as
    the key id it groups: it is the key id's body, nothing is lost.
    """
    keyid = text.strip()
    if not keyid.startswith("ed25519.") and " " in keyid:
        keyid = "ed25519." + "".join(keyid.split())
    elif keyid.startswith("ed25519.") and " " in keyid:
        keyid = "".join(keyid.split())
    problem = keyid_problem(keyid)
    if problem is not None:
        raise RequestError(f"malformed key id {text!r}: {problem}")
    return keyid


def check_instance_id(text: str) -> str:
    if not ID_PATTERN.fullmatch(text):
        raise RequestError(
            f"bad instance id {text!r}: use {ID_RULE}"
        )
    return text


def keyid_fingerprint(keyid: str) -> str:
    """The key id's 43 characters in groups of four, easy to read aloud and compare."""
    body = keyid.removeprefix("ed25519.")
    return " ".join(body[i : i + 4] for i in range(0, len(body), 4))


def short_keyid(keyid: str, chars: int = 12) -> str:
    body = keyid.removeprefix("ed25519.")
    return body[:chars] if body else "-"


def permissions_from_flags(flags: tuple[str, ...] | list[str]) -> list[dict[str, Any]]:
    """``TYPE:SCOPE`` flags grouped by type, in order of first appearance (config form)."""
    grouped: dict[str, list[str]] = {}
    for flag in flags:
        kind, sep, scope = flag.partition(":")
        if not sep or not kind or not scope:
            raise RequestError(
                f"bad --perm {flag!r}: expected TYPE:SCOPE, e.g. read_config:* or "
                "read_operations:repo:nas"
            )
        grouped.setdefault(kind, []).append(scope)
    return [{"type": kind, "scopes": scopes} for kind, scopes in grouped.items()]


def parse_permission_list(raw: object) -> Permissions:
    try:
        return parse_permissions(raw)
    except PermissionsError as exc:
        raise RequestError(f"bad permissions: {exc}") from exc


def client_summary(client: AuthorizedClient) -> dict[str, Any]:
    return {
        "instance_id": client.instance_id,
        "keyid": client.keyid,
        "keyid_verified": client.keyid_verified,
        "permissions": client.permissions.to_toml(),
    }
