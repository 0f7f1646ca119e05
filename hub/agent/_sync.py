"""The client agent's pure parts: what to diff, how to batch, when to retry, when to send.

Nothing here touches a socket, a clock or a database; the agent feeds in what it
read and the current time, so each piece is unit-tested on its own.

What a hub may read (the diff plan)
    The known_hosts entry's ``read_operations`` permissions decide which local
    operations the hub sees, per protocol.md section 5:

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
    could not tell which permission covers them.

    Live changes are filtered by the same rule (``SyncScope.allows``), and a diff
    request for an id the scope no longer covers is answered as deleted, so a
    narrowed grant removes those operations from the hub.
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
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
from hub.store import SerializedOperation

MAX_BATCH_OPERATIONS = 256
"""Operations per send_operations frame (protocol.md: 256 is a good default)."""

# Bytes a SyncStreamItem adds around its OperationList (oneof tags and lengths of
# the three nested messages), and around each operation (tag plus length varint).
FRAME_OVERHEAD_BYTES = 32
PER_OPERATION_OVERHEAD_BYTES = 6


# --- the diff plan ------------------------------------------------------------------------


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
        return plan_id not in self.excluded_plans

    def describe(self) -> str:
        repo = f"repo {self.repo_guid}" if self.repo_guid else "operations without a repo"
        return f"{repo}, plan {self.plan_id}" if self.plan_id is not None else repo


def _read_operation_entries(permissions: Permissions) -> tuple[Permission, ...]:
    return tuple(e for e in permissions.entries if e.type is PermissionType.READ_OPERATIONS)


def _excluded_plans(
    permissions: Permissions, covering: Sequence[Permission]
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
        if not permissions.can_read_operations(plan_resource(plan_id))
        and all(not e.scopes.covers(plan_resource(plan_id)) and any(
            s.exclude and s.kind is ScopeKind.PLAN and s.ident == plan_id
            for s in e.scopes.scopes
        ) for e in covering)
    )


@dataclass(frozen=True, slots=True)
class SyncScope:
    """The selections of local operations one hub may read, in diff order."""

    selections: tuple[DiffSelection, ...]

    @classmethod
    def for_host(cls, config: Config, permissions: Permissions) -> SyncScope:
        entries = _read_operation_entries(permissions)
        guid_of = {r.id: r.guid for r in config.repos}
        selections: list[DiffSelection] = []
        granted_repos: set[str] = set()
        for repo in config.repos:
            resource = repo_resource(repo.id)
            if permissions.can_read_operations(resource):
                granted_repos.add(repo.id)
                covering = [e for e in entries if e.scopes.covers(resource)]
                selections.append(
                    DiffSelection(repo.guid, excluded_plans=_excluded_plans(permissions, covering))
                )
        for plan in config.plans:
            if plan.repo not in granted_repos and permissions.can_read_operations(
                plan_resource(plan.id)
            ):
                selections.append(DiffSelection(guid_of[plan.repo], plan_id=plan.id))
        wildcard = [
            e for e in entries
            if any(s.kind is ScopeKind.ALL for s in e.scopes.scopes)
        ]
        if wildcard:
            selections.append(
                DiffSelection("", excluded_plans=_excluded_plans(permissions, wildcard))
            )
        return cls(tuple(selections))

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


# --- batching ---------------------------------------------------------------------------


def operation_frame_bytes(op: pb.Operation) -> int:
    """What one operation adds to a send_operations frame."""
    return op.ByteSize() + PER_OPERATION_OVERHEAD_BYTES


def serialized_frame_bytes(op: SerializedOperation) -> int:
    """What one stored operation adds to a send_operations frame."""
    return len(op.data) + PER_OPERATION_OVERHEAD_BYTES


_Op = TypeVar("_Op")


def batch_operations(
    ops: Iterable[pb.Operation],
    *,
    max_operations: int = MAX_BATCH_OPERATIONS,
    max_frame_bytes: int,
    on_oversized: Callable[[pb.Operation], None] | None = None,
) -> Iterator[list[pb.Operation]]:
    """Split ops, in order, into batches of at most max_operations that fit one frame.

    An operation too large for any frame on its own is passed to on_oversized and
    left out (sending it would only make the hub drop the connection).
    """
    return _batches(ops, operation_frame_bytes, max_operations, max_frame_bytes, on_oversized)


def batch_serialized(
    ops: Iterable[SerializedOperation],
    *,
    max_operations: int = MAX_BATCH_OPERATIONS,
    max_frame_bytes: int,
    on_oversized: Callable[[SerializedOperation], None] | None = None,
) -> Iterator[list[SerializedOperation]]:
    """batch_operations for stored operations (sized by their bytes)."""
    return _batches(ops, serialized_frame_bytes, max_operations, max_frame_bytes, on_oversized)


def _batches(
    ops: Iterable[_Op],
    size_of: Callable[[_Op], int],
    max_operations: int,
    max_frame_bytes: int,
    on_oversized: Callable[[_Op], None] | None,
) -> Iterator[list[_Op]]:
    if max_operations < 1:
        raise ValueError("max_operations must be at least 1")
    budget = max_frame_bytes - FRAME_OVERHEAD_BYTES
    batch: list[_Op] = []
    size = 0
    for op in ops:
        op_size = size_of(op)
        if op_size > budget:
            if on_oversized is not None:
                on_oversized(op)
            continue
        if batch and (len(batch) >= max_operations or size + op_size > budget):
            yield batch
            batch, size = [], 0
        batch.append(op)
        size += op_size
    if batch:
        yield batch


# --- reconnecting -----------------------------------------------------------------------


def backoff_delay(
    attempt: int,
    *,
    minimum: float = 1.0,
    maximum: float = 300.0,
    rand: Callable[[], float],
) -> float:
    """Seconds to wait before reconnect attempt number ``attempt`` (0 for the first retry).

    Exponential with jitter: the ceiling doubles from ``minimum`` up to ``maximum``
    and the delay is drawn uniformly from the upper half of it (never below
    ``minimum``), so peers that dropped together do not return together.
    """
    if minimum <= 0 or maximum < minimum:
        raise ValueError("need 0 < minimum <= maximum")
    ceiling = maximum if attempt >= 64 else min(maximum, minimum * 2 ** max(attempt, 0))
    floor = max(minimum, ceiling / 2)
    return floor + rand() * (ceiling - floor)


# --- the outbound queue -----------------------------------------------------------------


FrameSource = Iterator[bytes]
"""Frames produced lazily (a big diff answer is read from the store batch by batch)."""


class Outflow:
    """The data frames waiting to go to one hub, in order, honouring throttle.

    Entries are frames or lazy frame sources. While throttled nothing is taken,
    so no send_operations (and nothing queued behind one, to keep the order)
    leaves before the delay ends; heartbeats do not go through this queue.
    Used by one thread only.
    """

    def __init__(self) -> None:
        self._entries: deque[bytes | FrameSource] = deque()
        self._held: bytes | None = None
        self._throttled_until = 0.0

    def push(self, entry: bytes | FrameSource) -> None:
        self._entries.append(entry)

    def throttle(self, delay_ms: int, now: float) -> None:
        self._throttled_until = max(self._throttled_until, now + max(delay_ms, 0) / 1000)

    def throttled_until(self) -> float:
        return self._throttled_until

    def is_throttled(self, now: float) -> bool:
        return now < self._throttled_until

    def empty(self) -> bool:
        """Nothing left to send (lazy sources included, once drained)."""
        if self._held is not None:
            return False
        while self._entries:
            head = self._entries[0]
            if isinstance(head, bytes):
                return False
            frame = next(head, None)
            if frame is not None:
                self._held = frame
                return False
            self._entries.popleft()
        return True

    def peek(self, now: float) -> bytes | None:
        """The next frame to send now, or None (empty or throttled). Call taken() once sent."""
        if self.is_throttled(now) or self.empty():
            return None
        if self._held is None:
            head = self._entries[0]
            assert isinstance(head, bytes)
            self._held = head
            self._entries.popleft()
        return self._held

    def taken(self) -> None:
        self._held = None


def diff_item(
    selection: DiffSelection, keyid: str, ids: Sequence[int], modnos: Sequence[int]
) -> pb.SyncStreamItem:
    return pb.SyncStreamItem(
        diff_operations=pb.SyncStreamItem.DiffOperations(
            have_operations_selector=selection.selector(keyid),
            have_operation_ids=list(ids),
            have_operation_modnos=list(modnos),
        )
    )


def operations_item(ops: Sequence[pb.Operation], kind: str) -> pb.SyncStreamItem:
    """A send_operations of ``kind`` created_operations or updated_operations."""
    listed = pb.OperationList(operations=list(ops))
    event = (
        pb.OperationEvent(created_operations=listed)
        if kind == "created_operations"
        else pb.OperationEvent(updated_operations=listed)
    )
    return pb.SyncStreamItem(send_operations=pb.SyncStreamItem.SendOperations(event=event))


def _field_number(message: type[object], name: str) -> int:
    number: int = message.DESCRIPTOR.fields_by_name[name].number  # type: ignore[attr-defined]
    return number


@functools.lru_cache(maxsize=4096)
def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _length_delimited(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


_OPERATION_TAG = _varint(_field_number(pb.OperationList, "operations") << 3 | 2)
_EVENT_FIELD = _field_number(pb.SyncStreamItem.SendOperations, "event")
_SEND_OPERATIONS_FIELD = _field_number(pb.SyncStreamItem, "send_operations")
_LIST_FIELDS = {
    kind: _field_number(pb.OperationEvent, kind)
    for kind in ("created_operations", "updated_operations")
}


def serialized_operations_frame(ops: Sequence[SerializedOperation], kind: str) -> bytes:
    """``operations_item(ops, kind)`` serialized, built from the stored bytes undecoded.

    Protobuf nests a message as its field tag, its length and its bytes, so the
    frame is the stored operations wrapped three times; no operation is parsed.
    """
    listing = b"".join(
        b"".join((_OPERATION_TAG, _varint(len(op.data)), op.data)) for op in ops
    )
    event = _length_delimited(_LIST_FIELDS[kind], listing)
    return _length_delimited(_SEND_OPERATIONS_FIELD, _length_delimited(_EVENT_FIELD, event))


def deleted_item(ids: Sequence[int]) -> pb.SyncStreamItem:
    event = pb.OperationEvent(deleted_operations=pb.Int64List(values=list(ids)))
    return pb.SyncStreamItem(send_operations=pb.SyncStreamItem.SendOperations(event=event))
