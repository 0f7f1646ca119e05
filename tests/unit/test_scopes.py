"""Permission scopes: parsing, coverage rules, and permission checks."""

from __future__ import annotations

import pytest

from hub.errors import PermissionsError
from hub.scopes import (
    Permission,
    Permissions,
    PermissionType,
    Scope,
    ScopeKind,
    ScopeSet,
    parse_permissions,
    parse_scope,
    plan_resource,
    repo_resource,
)

READ_OPS = PermissionType.READ_OPERATIONS
READ_CONFIG = PermissionType.READ_CONFIG
READ_WRITE = PermissionType.READ_WRITE_CONFIG


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("*", Scope(ScopeKind.ALL)),
        ("repo:nas", Scope(ScopeKind.REPO, "nas")),
        ("plan:nightly", Scope(ScopeKind.PLAN, "nightly")),
        ("!repo:nas", Scope(ScopeKind.REPO, "nas", exclude=True)),
        ("!plan:a.b_c-1", Scope(ScopeKind.PLAN, "a.b_c-1", exclude=True)),
    ],
)
def test_parse_scope_accepts_the_five_forms(text: str, expected: Scope) -> None:
    scope = parse_scope(text)
    assert scope == expected
    assert str(scope) == text


@pytest.mark.parametrize(
    "text",
    ["repo", "host:x", "!*", "", "plan:", "repo:", "!repo:", "*repo:x", "repo:a b", "Repo:x", 7],
)
def test_parse_scope_rejects_anything_else_listing_the_accepted_forms(text: object) -> None:
    with pytest.raises(ValueError, match=r"'\*', 'repo:<id>', 'plan:<id>'") as caught:
        parse_scope(text)
    assert repr(text) in str(caught.value)


@pytest.mark.parametrize(
    ("scopes", "resource", "covered"),
    [
        # * covers everything not excluded
        (["*"], "repo:nas", True),
        (["*"], "plan:nightly", True),
        # exclusions beat *
        (["*", "!plan:secret"], "plan:secret", False),
        (["*", "!plan:secret"], "plan:nightly", True),
        (["!plan:secret", "*"], "plan:secret", False),
        # exclusions beat explicit includes, whatever the order
        (["plan:secret", "!plan:secret"], "plan:secret", False),
        (["!plan:secret", "plan:secret"], "plan:secret", False),
        # explicit includes cover themselves and nothing else
        (["repo:nas"], "repo:nas", True),
        (["repo:nas"], "repo:nas2", False),
        (["repo:nas"], "plan:nas", False),
        (["plan:nas"], "repo:nas", False),
        # an exclusion of a repo says nothing about a plan of the same name
        (["*", "!repo:x"], "plan:x", True),
        # exclusions alone cover nothing
        (["!repo:x"], "repo:y", False),
        # an empty list covers nothing
        ([], "repo:nas", False),
    ],
)
def test_scope_set_coverage(scopes: list[str], resource: str, covered: bool) -> None:
    assert ScopeSet.parse(scopes).covers(resource) is covered


def test_resource_names() -> None:
    assert repo_resource("nas") == "repo:nas"
    assert plan_resource("nightly") == "plan:nightly"


def _perms(*entries: tuple[PermissionType, list[str]]) -> Permissions:
    return Permissions(tuple(Permission(t, ScopeSet.parse(s)) for t, s in entries))


@pytest.mark.parametrize(
    ("permissions", "types", "resource", "allowed"),
    [
        (_perms((READ_CONFIG, ["*"])), READ_CONFIG, "repo:a", True),
        (_perms((READ_CONFIG, ["*"])), READ_OPS, "repo:a", False),
        (_perms((READ_CONFIG, ["*"])), [READ_OPS, READ_CONFIG], "repo:a", True),
        # any asked type's scope set may pass the check
        (
            _perms((READ_CONFIG, ["repo:a"]), (READ_WRITE, ["repo:b"])),
            [READ_CONFIG, READ_WRITE],
            "repo:b",
            True,
        ),
        # an exclusion in one entry does not veto another entry of an asked type
        (
            _perms((READ_CONFIG, ["*", "!repo:a"]), (READ_WRITE, ["repo:a"])),
            [READ_CONFIG, READ_WRITE],
            "repo:a",
            True,
        ),
        (
            _perms((READ_CONFIG, ["*", "!repo:a"]), (READ_WRITE, ["repo:a"])),
            READ_CONFIG,
            "repo:a",
            False,
        ),
        (_perms(), READ_CONFIG, "repo:a", False),
        (_perms((READ_OPS, [])), READ_OPS, "repo:a", False),
        (_perms((READ_OPS, ["plan:p"])), READ_OPS, "plan:p", True),
        (_perms((READ_OPS, ["plan:p"])), READ_OPS, "repo:p", False),
    ],
)
def test_permissions_allows(
    permissions: Permissions,
    types: PermissionType | list[PermissionType],
    resource: str,
    allowed: bool,
) -> None:
    assert permissions.allows(types, resource) is allowed


def test_convenience_checks() -> None:
    read_write = _perms((READ_WRITE, ["repo:a"]))
    assert read_write.can_read_config("repo:a")
    assert read_write.can_write_config("repo:a")
    assert not read_write.can_read_operations("repo:a")

    read_only = _perms((READ_CONFIG, ["repo:a"]), (READ_OPS, ["*", "!plan:x"]))
    assert read_only.can_read_config("repo:a")
    assert not read_only.can_write_config("repo:a")
    assert read_only.can_read_operations("plan:y")
    assert not read_only.can_read_operations("plan:x")


def test_parse_permissions_round_trips_through_toml_form() -> None:
    raw = [
        {"type": "read_config", "scopes": ["*", "!plan:secret"]},
        {"type": "read_operations", "scopes": []},
        {"type": "read_write_config", "scopes": ["repo:nas"]},
    ]
    permissions = parse_permissions(raw)
    assert [p.type for p in permissions.entries] == [READ_CONFIG, READ_OPS, READ_WRITE]
    assert permissions.to_toml() == raw
    assert parse_permissions(permissions.to_toml()) == permissions
    assert parse_permissions([]) == Permissions()


@pytest.mark.parametrize(
    ("raw", "location", "fragment"),
    [
        ("read_config", "", "expected an array"),
        (["read_config"], "[0]", "expected a table"),
        ([{"type": "read_everything", "scopes": ["*"]}], "[0].type", "unknown permission type"),
        ([{"type": "read_confg", "scopes": ["*"]}], "[0].type", "did you mean 'read_config'"),
        ([{"type": 3, "scopes": ["*"]}], "[0].type", "expected one of 'read_operations'"),
        ([{"scopes": ["*"]}], "[0].type", "missing"),
        ([{"type": "read_config"}], "[0].scopes", "missing"),
        ([{"type": "read_config", "scopes": "*"}], "[0].scopes", "expected an array"),
        (
            [{"type": "read_config", "scopes": ["*"], "scope": ["*"]}],
            "[0].scope",
            "did you mean 'scopes'",
        ),
        (
            [
                {"type": "read_operations", "scopes": ["*"]},
                {"type": "read_config", "scopes": ["*", "host:x"]},
            ],
            "[1].scopes[1]",
            "unknown scope 'host:x'",
        ),
        ([{"type": "read_config", "scopes": ["plan:"]}], "[0].scopes[0]", "bad id"),
    ],
)
def test_parse_permissions_names_the_bad_element(raw: object, location: str, fragment: str) -> None:
    with pytest.raises(PermissionsError) as caught:
        parse_permissions(raw)
    assert isinstance(caught.value, ValueError)
    assert caught.value.location == location
    assert fragment in caught.value.problem
    assert str(caught.value).startswith(f"permissions{location}: ")
