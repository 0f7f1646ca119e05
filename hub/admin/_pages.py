"""Operations listed a page at a time, each page bounded in bytes.

``synchub ops`` asks the running hub for a page (the admin ``ops`` op) and, on a
node where no hub runs, reads its store the same way. A page holds operations newest
first until it holds ``limit`` of them or ``ANSWER_MAX_BYTES`` of serialized bytes
(the operation that crosses the bound is the page's last, so one operation larger
than the bound still has a page of its own); ``next_before_id`` then says where the
next page starts. The store is read one operation at a time through an
``OplogReader`` (its own connection, in the asking thread: no actor is kept busy), so
whoever serves a page holds at most one page and one operation in memory, whatever
the operations' sizes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Final

from hub.errors import RequestError
from hub.pb import synchub_pb2 as pb
from hub.store import OperationQuery, OplogReader

ANSWER_MAX_BYTES: Final = 4 * 1024 * 1024
"""Serialized operations in one page (plus the one that crosses the bound)."""

_UNPAGED_FIELDS: Final = ("ids", "snapshot_id", "flow_id", "original_instance_keyid")


@dataclass(frozen=True)
class OpsPage:
    operations: tuple[bytes, ...]
    next_before_id: int | None
    """Where the next page starts (ids below it), or None when nothing is left."""


def query_for(selector: pb.OpSelector, limit: int, before_id: int | None) -> OperationQuery:
    """The reader's query for an ``ops`` request's selector (the fields ``synchub ops``
    filters on); RequestError for a field a page cannot be selected by."""
    for name in _UNPAGED_FIELDS:
        if (name == "ids" and selector.ids) or (name != "ids" and selector.HasField(name)):
            raise RequestError(
                f"ops: selecting by {name!r} is not supported; select by instance "
                "(peer_instance_id), producer (instance_id), repo_guid or plan_id"
            )
    return OperationQuery(
        instance=selector.peer_instance_id if selector.HasField("peer_instance_id") else None,
        producer=selector.instance_id if selector.HasField("instance_id") else None,
        repo_guid=selector.repo_guid if selector.HasField("repo_guid") else None,
        plan_id=selector.plan_id if selector.HasField("plan_id") else None,
        before_id=before_id,
        limit=limit,
    )


def read_page(
    reader: OplogReader, query: OperationQuery, *, max_bytes: int = ANSWER_MAX_BYTES
) -> OpsPage:
    """Up to ``query.limit`` operations below ``query.before_id``, newest first, until
    ``max_bytes`` of them."""
    found: list[bytes] = []
    used = 0
    before = query.before_id
    while len(found) < query.limit:
        batch = reader.find(replace(query, before_id=before, limit=1))
        if not batch:
            return OpsPage(tuple(found), None)
        data = batch[0].SerializeToString()
        found.append(data)
        used += len(data)
        before = batch[0].id
        if used >= max_bytes:
            break
    more = len(found) < query.limit
    return OpsPage(tuple(found), before if more else None)


def iter_pages(
    reader: OplogReader, query: OperationQuery, *, max_bytes: int = ANSWER_MAX_BYTES
) -> Iterator[OpsPage]:
    """Every page of ``query`` in turn, ``query.limit`` operations in all."""
    left = query.limit
    before = query.before_id
    while left > 0:
        page = read_page(reader, replace(query, before_id=before, limit=left),
                         max_bytes=max_bytes)
        yield page
        left -= len(page.operations)
        if page.next_before_id is None:
            return
        before = page.next_before_id
