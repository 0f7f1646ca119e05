"""What a hub may read: the diff plan of docs/protocol.md §6.2 (The client's order of work).

A client's ``read_operations`` permissions for one hub (its ``[[known_hosts]]``
entry) decide which of its own operations that hub sees:

- one diff per configured repo (by guid) the scopes cover, selecting
  ``repo_guid``; operations in it whose plan is explicitly excluded
  (``!plan:<id>`` in every entry that covers the repo) are left out;
- one diff per configured plan the scopes cover whose repo they do not,
  selecting ``repo_guid`` and ``plan_id``;
- operations with no repo (``repo_guid == ""``, e.g. recorded by
  ``synchub run`` outside any repo) go under one extra diff selecting
  ``repo_guid = ""``, present only when a ``read_operations`` entry has the
  ``*`` scope (explicitly excluded plans are left out there too).

Operations whose repo_guid names no configured repo are not sent: the hub
could not tell which permission covers them. Live changes are filtered by the
same rule (``SyncScope.allows``), and a diff request for an id the scope no
longer covers is answered as deleted, so a narrowed grant removes those
operations from the hub.

A grant narrowed so far that a whole selection is no longer diffed (``*`` dropped,
a repo no longer covered) would leave what the hub holds of it there, since the hub
never deletes unasked. So after the selections come the *withdrawals*
(``SyncScope.withdrawn``): one diff for each configured repo no selection covers in
full, selecting ``repo_guid`` and listing only the operations of the plans still
shared in it (none for a repo no longer shared at all), and, without ``*``, one for
the operations outside any repo, listing nothing. The hub asks for what it holds
beyond the lists, and the client answers those ids as deleted.

This lives in the protocol package, not the agent's, because the order and the
content of a client's diffs are part of the protocol and ``ClientSession``
builds its rounds of diffs and filters what it sends by these selections. A
``SyncScope`` is immutable and built once per known host.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from hub.config import Config
from hub.pb import synchub_pb2 as pb
from hub.scopes import (
    Permission,
    Permissions,
    PermissionType,
    ScopeKind,
    plan_resource,
    repo_resource,
)


class Placed(Protocol):
    """Where an operation belongs (a decoded Operation or a SerializedOperation)."""

    @property
    def repo_guid(self) -> str: ...

    @property
    def plan_id(self) -> str: ...


_Placed = TypeVar("_Placed", bound=Placed)


@dataclass(frozen=True, slots=True)
class DiffSelection:
    """One diff_operations selection of the node's own operations."""

    repo_guid: str
    plan_id: str | None = None
    excluded_plans: frozenset[str] = frozenset()
    only_plans: frozenset[str] | None = None
    """A withdrawal: the whole repo is diffed, listing only these plans' operations."""

    def selector(self, keyid: str) -> pb.OpSelector:
        """The have_operations_selector, naming the node's own keyid as the hub requires."""
        selector = pb.OpSelector(original_instance_keyid=keyid, repo_guid=self.repo_guid)
        if self.plan_id is not None:
            selector.plan_id = self.plan_id
        return selector

    def local_selector(self) -> pb.OpSelector:
        """The same selection in the local store: local operations have no original keyid."""
        selector = pb.OpSelector(original_instance_keyid="", repo_guid=self.repo_guid)
        if self.plan_id is not None:
            selector.plan_id = self.plan_id
        return selector

    def contains(self, repo_guid: str, plan_id: str) -> bool:
        if repo_guid != self.repo_guid:
            return False
        if self.plan_id is not None:
            return plan_id == self.plan_id
        if self.only_plans is not None:
            return plan_id in self.only_plans
        return plan_id not in self.excluded_plans

    def describe(self) -> str:
        repo = f"repo {self.repo_guid}" if self.repo_guid else "operations without a repo"
        if self.only_plans is not None:
            return f"{repo} (what is no longer shared)"
        return f"{repo}, plan {self.plan_id}" if self.plan_id is not None else repo


def _entries_of(permissions: Permissions, kind: PermissionType) -> tuple[Permission, ...]:
    return tuple(e for e in permissions.entries if e.type is kind)


def _excluded_plans(
    permissions: Permissions, covering: Sequence[Permission], kind: PermissionType
) -> frozenset[str]:
    """Plans left out of a selection the ``covering`` entries grant.

    Only a plan named in a ``!plan:<id>`` scope can be left out: it is, when every
    covering entry excludes it and no entry grants the plan itself.
    """
    named = {
        s.ident
        for e in covering
        for s in e.scopes.scopes
        if s.exclude and s.kind is ScopeKind.PLAN
    }
    return frozenset(
        plan_id
        for plan_id in named
        if not permissions.allows(kind, plan_resource(plan_id))
        and all(not e.scopes.covers(plan_resource(plan_id)) and any(
            s.exclude and s.kind is ScopeKind.PLAN and s.ident == plan_id
            for s in e.scopes.scopes
        ) for e in covering)
    )


def _withdrawals(
    config: Config, selections: Sequence[DiffSelection], *, wildcard: bool
) -> tuple[DiffSelection, ...]:
    whole = {s.repo_guid for s in selections if s.plan_id is None}
    withdrawn = [
        DiffSelection(repo.guid, only_plans=frozenset(
            s.plan_id for s in selections if s.repo_guid == repo.guid and s.plan_id is not None
        ))
        for repo in config.repos
        if repo.guid not in whole
    ]
    if not wildcard:
        withdrawn.append(DiffSelection("", only_plans=frozenset()))
    return tuple(withdrawn)


@dataclass(frozen=True, slots=True)
class SyncScope:
    """The selections of local operations one hub may read, in diff order."""

    selections: tuple[DiffSelection, ...]
    withdrawn: tuple[DiffSelection, ...] = ()
    """Diffs that take back what the selections no longer cover (the module docstring)."""

    @property
    def diffs(self) -> tuple[DiffSelection, ...]:
        """Every diff of a round, in order: the selections, then the withdrawals."""
        return self.selections + self.withdrawn

    @classmethod
    def for_host(
        cls,
        config: Config,
        permissions: Permissions,
        kind: PermissionType = PermissionType.READ_OPERATIONS,
    ) -> SyncScope:
        """The selections ``kind`` permissions cover: by default what a hub may read
        (``read_operations``); ``read_logs`` gives the operations whose logs it may
        fetch, by the same rules."""
        entries = _entries_of(permissions, kind)
        guid_of = {r.id: r.guid for r in config.repos}
        selections: list[DiffSelection] = []
        granted_repos: set[str] = set()
        for repo in config.repos:
            resource = repo_resource(repo.id)
            if permissions.allows(kind, resource):
                granted_repos.add(repo.id)
                covering = [e for e in entries if e.scopes.covers(resource)]
                excluded = _excluded_plans(permissions, covering, kind)
                selections.append(DiffSelection(repo.guid, excluded_plans=excluded))
        for plan in config.plans:
            if plan.repo not in granted_repos and permissions.allows(
                kind, plan_resource(plan.id)
            ):
                selections.append(DiffSelection(guid_of[plan.repo], plan_id=plan.id))
        wildcard = [
            e for e in entries
            if any(s.kind is ScopeKind.ALL for s in e.scopes.scopes)
        ]
        if wildcard:
            excluded = _excluded_plans(permissions, wildcard, kind)
            selections.append(DiffSelection("", excluded_plans=excluded))
        withdrawn = (
            _withdrawals(config, selections, wildcard=bool(wildcard))
            if kind is PermissionType.READ_OPERATIONS else ()
        )
        return cls(tuple(selections), withdrawn)

    def allows(self, op: Placed) -> bool:
        """Whether the hub may read this local operation."""
        return self.covers(op.repo_guid, op.plan_id)

    def covers(self, repo_guid: str, plan_id: str) -> bool:
        return any(s.contains(repo_guid, plan_id) for s in self.selections)

    def filter(self, ops: Iterable[_Placed]) -> list[_Placed]:
        """The operations the hub may read, in order (one check per repo and plan)."""
        verdicts: dict[tuple[str, str], bool] = {}
        kept: list[_Placed] = []
        for op in ops:
            place = (op.repo_guid, op.plan_id)
            verdict = verdicts.get(place)
            if verdict is None:
                verdict = verdicts[place] = self.covers(*place)
            if verdict:
                kept.append(op)
        return kept
