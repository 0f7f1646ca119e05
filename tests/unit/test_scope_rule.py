"""docs/protocol.md §6.2 (The client's order of work): which operations several
``read_operations`` permissions share, as the document states the rule, is what
the client's scope computes."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.config import Config
from hub.pb import synchub_pb2 as pb
from hub.protocol import SyncScope
from hub.scopes import Permission, ScopeKind, parse_permissions, plan_resource, repo_resource
from synchub_testing import write_config

REPOS = {"nas": "guid-nas", "cloud": "guid-cloud"}
PLANS = {"nightly": "nas", "secret": "nas", "offsite": "cloud"}
SCOPES = ["*", "repo:nas", "repo:cloud", "plan:nightly", "plan:secret", "plan:offsite",
          "plan:loose", "!repo:nas", "!repo:cloud", "!plan:nightly", "!plan:secret",
          "!plan:offsite", "!plan:loose"]
PLACES = [(guid, plan) for guid in ("guid-nas", "guid-cloud", "")
          for plan in ("nightly", "secret", "offsite", "loose", "")]


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    repos = "".join(f'[[repos]]\nid = "{r}"\nguid = "{g}"\nuri = "x:{r}"\n\n'
                    for r, g in REPOS.items())
    plans = "".join(f'[[plans]]\nid = "{p}"\nrepo = "{r}"\n\n' for p, r in PLANS.items())
    text = textwrap.dedent('instance = "web1"\n\n') + repos + plans
    return write_config(tmp_path_factory.mktemp("scope"), text)


def _excludes(entry: Permission, plan_id: str) -> bool:
    return any(s.exclude and s.kind is ScopeKind.PLAN and s.ident == plan_id
               for s in entry.scopes.scopes)


def _has_wildcard(entry: Permission) -> bool:
    return any(s.kind is ScopeKind.ALL for s in entry.scopes.scopes)


def documented_rule(entries: tuple[Permission, ...], repo_guid: str, plan_id: str) -> bool:
    """The rule exactly as docs/protocol.md §6.2 words it."""
    covers_plan = bool(plan_id) and any(e.scopes.covers(plan_resource(plan_id)) for e in entries)
    if repo_guid == "":
        return any(_has_wildcard(e) and (not _excludes(e, plan_id) or covers_plan)
                   for e in entries)
    repo_id = next((r for r, g in REPOS.items() if g == repo_guid), None)
    if repo_id is None:
        return False
    repo_covered = [e for e in entries if e.scopes.covers(repo_resource(repo_id))]
    if any(not _excludes(e, plan_id) for e in repo_covered):
        return True
    return covers_plan and (bool(repo_covered) or PLANS.get(plan_id) == repo_id)


permission_lists = st.lists(
    st.lists(st.sampled_from(SCOPES), min_size=1, max_size=4, unique=True),
    min_size=1, max_size=3,
)


@given(lists=permission_lists)
def test_several_permissions_share_what_the_document_says(
    config: Config, lists: list[list[str]]
) -> None:
    permissions = parse_permissions([{"type": "read_operations", "scopes": scopes}
                                     for scopes in lists])
    scope = SyncScope.for_host(config, permissions)
    for repo_guid, plan_id in PLACES:
        assert scope.covers(repo_guid, plan_id) == documented_rule(
            permissions.entries, repo_guid, plan_id
        ), (lists, repo_guid, plan_id)


@pytest.mark.parametrize(("lists", "repo_guid", "shared"), [
    ([["repo:nas"], ["*", "!plan:secret"]], "guid-nas", True),
    ([["repo:nas"], ["*", "!plan:secret"]], "guid-cloud", False),
    ([["*", "!plan:secret"]], "guid-nas", False),
    ([["*", "!plan:secret"], ["plan:secret"]], "guid-nas", True),
    ([["*", "!plan:secret"], ["plan:secret"]], "guid-cloud", True),
])
def test_the_documented_examples(
    config: Config, lists: list[list[str]], repo_guid: str, shared: bool
) -> None:
    permissions = parse_permissions([{"type": "read_operations", "scopes": scopes}
                                     for scopes in lists])
    assert SyncScope.for_host(config, permissions).covers(repo_guid, "secret") is shared


def test_the_examples_are_in_the_document() -> None:
    doc = " ".join((Path(__file__).resolve().parents[2] / "docs" / "protocol.md")
                   .read_text(encoding="utf-8").split())
    assert ('with the permissions `["repo:nas"]` and `["*", "!plan:secret"]` they are shared'
            in doc)
    assert 'with `["*", "!plan:secret"]` alone they are not' in doc
    assert 'with `["*", "!plan:secret"]` and `["plan:secret"]` they are, in every repo' in doc


def _scope(config: Config, *lists: list[str]) -> SyncScope:
    return SyncScope.for_host(config, parse_permissions(
        [{"type": "read_operations", "scopes": scopes} for scopes in lists]))


def test_withdrawals_cover_what_no_selection_diffs_any_more(config: Config) -> None:
    """docs/protocol.md §6.2: a selection no longer diffed is withdrawn, not left behind."""
    from hub.protocol import DiffSelection  # noqa: PLC0415

    assert _scope(config, ["*"]).withdrawn == ()
    narrowed = _scope(config, ["repo:nas", "plan:offsite"])
    assert narrowed.withdrawn == (
        DiffSelection("guid-cloud", only_plans=frozenset({"offsite"})),
        DiffSelection("", only_plans=frozenset()),
    )
    assert narrowed.diffs == narrowed.selections + narrowed.withdrawn
    nothing = _scope(config)
    assert nothing.selections == ()
    assert [w.repo_guid for w in nothing.withdrawn] == ["guid-nas", "guid-cloud", ""]
    # A withdrawal lists what is still shared in it, and covers nothing new.
    cloud = narrowed.withdrawn[0]
    assert cloud.contains("guid-cloud", "offsite") and not cloud.contains("guid-cloud", "x")
    assert cloud.selector("ed25519.k") == pb.OpSelector(original_instance_keyid="ed25519.k",
                                                        repo_guid="guid-cloud")
    for repo_guid, plan_id in PLACES:
        assert narrowed.covers(repo_guid, plan_id) == any(
            s.contains(repo_guid, plan_id) for s in narrowed.diffs)
