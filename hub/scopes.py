"""Permission scopes: which repos and plans a peer may see or touch.

A permission pairs a type (``read_operations``, ``read_config``,
``read_write_config``, ``read_logs``) with a list of scopes:

    *               every repo and plan not excluded
    repo:<id>       the repo with that id
    plan:<id>       the plan with that id
    !repo:<id>      never that repo, whatever else the list says
    !plan:<id>      never that plan, whatever else the list says

Resources are named ``repo:<id>`` and ``plan:<id>``. A check for a resource
passes if any of the asked types has a scope set covering it (docs/protocol.md
§8 (Permission scopes)). This module is pure: no I/O, no config file knowledge;
hub.config reports its errors with the key path in the file. ``ID_PATTERN`` and
``ID_RULE`` are the one definition of a repo, plan or instance id.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from hub.errors import PermissionsError
from hub.text import closest_match

ID_PATTERN = re.compile(r"[A-Za-z0-9_.\-]+")
"""Repo, plan and instance ids: letters, digits, '_', '.', '-' (as in backrest)."""

ID_RULE = "letters, digits, '_', '.' or '-'"
"""What ``ID_PATTERN`` accepts, as error messages say it."""

ACCEPTED_SCOPE_FORMS = "'*', 'repo:<id>', 'plan:<id>', '!repo:<id>' or '!plan:<id>'"

_PERMISSION_KEYS = ("type", "scopes")

MAX_PERMISSIONS = 64
"""Permission entries one client may have."""
MAX_SCOPES = 256
"""Scopes one client may have, over all its permission entries."""


class PermissionType(enum.Enum):
    READ_OPERATIONS = "read_operations"
    READ_CONFIG = "read_config"
    READ_WRITE_CONFIG = "read_write_config"
    READ_LOGS = "read_logs"
    """Granted to a known hub: it may fetch the logs of the operations in scope."""


class ScopeKind(enum.Enum):
    ALL = "*"
    REPO = "repo"
    PLAN = "plan"


def repo_resource(repo_id: str) -> str:
    """The resource name of a repo, as scopes refer to it."""
    return f"repo:{repo_id}"


def plan_resource(plan_id: str) -> str:
    """The resource name of a plan, as scopes refer to it."""
    return f"plan:{plan_id}"


@dataclass(frozen=True)
class Scope:
    kind: ScopeKind
    ident: str = ""
    exclude: bool = False

    def matches(self, resource: str) -> bool:
        """True if this scope names the resource (``*`` names every resource)."""
        if self.kind is ScopeKind.ALL:
            return True
        return resource == f"{self.kind.value}:{self.ident}"

    def __str__(self) -> str:
        if self.kind is ScopeKind.ALL:
            return "*"
        return f"{'!' if self.exclude else ''}{self.kind.value}:{self.ident}"


def parse_scope(text: object) -> Scope:
    """Parse one scope string; ValueError says which forms are accepted."""
    if not isinstance(text, str):
        raise ValueError(f"expected a scope string ({ACCEPTED_SCOPE_FORMS}), got {text!r}")
    if text == "*":
        return Scope(ScopeKind.ALL)
    body = text[1:] if text.startswith("!") else text
    kind_text, sep, ident = body.partition(":")
    kinds = {ScopeKind.REPO.value: ScopeKind.REPO, ScopeKind.PLAN.value: ScopeKind.PLAN}
    if not sep or kind_text not in kinds:
        raise ValueError(f"unknown scope {text!r}; expected {ACCEPTED_SCOPE_FORMS}")
    if not ID_PATTERN.fullmatch(ident):
        raise ValueError(
            f"bad id in scope {text!r}; expected {ACCEPTED_SCOPE_FORMS} where <id> is {ID_RULE}"
        )
    return Scope(kinds[kind_text], ident, exclude=text.startswith("!"))


@dataclass(frozen=True)
class ScopeSet:
    scopes: tuple[Scope, ...] = ()

    @classmethod
    def parse(cls, texts: Iterable[str]) -> ScopeSet:
        return cls(tuple(parse_scope(text) for text in texts))

    def covers(self, resource: str) -> bool:
        """An exclusion wins over everything; ``*`` and explicit includes cover the rest."""
        covered = False
        for scope in self.scopes:
            if scope.matches(resource):
                if scope.exclude:
                    return False
                covered = True
        return covered

    def to_strings(self) -> list[str]:
        return [str(scope) for scope in self.scopes]


@dataclass(frozen=True)
class Permission:
    type: PermissionType
    scopes: ScopeSet


@dataclass(frozen=True)
class Permissions:
    entries: tuple[Permission, ...] = ()

    def allows(self, types: Iterable[PermissionType] | PermissionType, resource: str) -> bool:
        """True if any entry of any asked type covers the resource."""
        wanted = {types} if isinstance(types, PermissionType) else set(types)
        return any(entry.type in wanted and entry.scopes.covers(resource) for entry in self.entries)

    def can_read_config(self, resource: str) -> bool:
        return self.allows((PermissionType.READ_CONFIG, PermissionType.READ_WRITE_CONFIG), resource)

    def can_write_config(self, resource: str) -> bool:
        return self.allows(PermissionType.READ_WRITE_CONFIG, resource)

    def can_read_operations(self, resource: str) -> bool:
        return self.allows(PermissionType.READ_OPERATIONS, resource)

    def can_read_logs(self, resource: str) -> bool:
        return self.allows(PermissionType.READ_LOGS, resource)

    def to_toml(self) -> list[dict[str, str | list[str]]]:
        """The config-file form: ``[{type = "...", scopes = ["...", ...]}, ...]``."""
        return [
            {"type": entry.type.value, "scopes": entry.scopes.to_strings()}
            for entry in self.entries
        ]


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = closest_match(word, choices)
    return f"; did you mean {close!r}?" if close else ""


def _check_counts(raw: list[object]) -> None:
    """PermissionsError past MAX_PERMISSIONS entries or MAX_SCOPES scopes in all."""
    if len(raw) > MAX_PERMISSIONS:
        raise PermissionsError(
            "", f"{len(raw)} permission entries; a client may have at most {MAX_PERMISSIONS} "
            "(one per type is enough: put its scopes in one list)"
        )
    count = 0
    for index, element in enumerate(raw):
        scopes = element.get("scopes") if isinstance(element, Mapping) else None
        count += len(scopes) if isinstance(scopes, list) else 0
        if count > MAX_SCOPES:
            raise PermissionsError(
                f"[{index}].scopes",
                f"more than {MAX_SCOPES} scopes for one client; use '*' with '!repo:<id>' or "
                "'!plan:<id>' exclusions, or fewer, broader scopes",
            )


def parse_permissions(raw: object) -> Permissions:
    """Parse the config-file form (a list of ``{type, scopes}`` tables).

    Raises PermissionsError (a ValueError) naming the bad element.
    """
    if not isinstance(raw, list):
        raise PermissionsError(
            "", f"expected an array of {{type = ..., scopes = [...]}} tables, got {raw!r}"
        )
    _check_counts(raw)
    type_names = [t.value for t in PermissionType]
    entries = []
    for index, element in enumerate(raw):
        here = f"[{index}]"
        if not isinstance(element, Mapping):
            raise PermissionsError(
                here, f"expected a table {{type = ..., scopes = [...]}}, got {element!r}"
            )
        for key in element:
            if key not in _PERMISSION_KEYS:
                raise PermissionsError(
                    f"{here}.{key}",
                    f"unknown key {key!r}{_did_you_mean(str(key), _PERMISSION_KEYS)} "
                    "(a permission has 'type' and 'scopes')",
                )
        for key in _PERMISSION_KEYS:
            if key not in element:
                raise PermissionsError(f"{here}.{key}", "missing; a permission needs it")
        type_text = element["type"]
        if type_text not in type_names:
            hint = _did_you_mean(type_text, type_names) if isinstance(type_text, str) else ""
            raise PermissionsError(
                f"{here}.type",
                f"unknown permission type {type_text!r}{hint}; expected one of "
                + ", ".join(repr(name) for name in type_names),
            )
        scope_texts = element["scopes"]
        if not isinstance(scope_texts, list):
            raise PermissionsError(
                f"{here}.scopes", f"expected an array of scope strings, got {scope_texts!r}"
            )
        scopes = []
        for scope_index, text in enumerate(scope_texts):
            try:
                scopes.append(parse_scope(text))
            except ValueError as error:
                raise PermissionsError(f"{here}.scopes[{scope_index}]", str(error)) from error
        entries.append(Permission(PermissionType(type_text), ScopeSet(tuple(scopes))))
    return Permissions(tuple(entries))
