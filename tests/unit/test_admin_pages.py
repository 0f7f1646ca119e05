"""The admin side bounded: ops pages bounded in bytes, permission lists bounded in size."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.admin import ANSWER_MAX_BYTES, iter_pages, query_for, read_page
from hub.errors import PermissionsError, RequestError
from hub.pb import synchub_pb2 as pb
from hub.scopes import MAX_PERMISSIONS, MAX_SCOPES, parse_permissions
from hub.store import OperationQuery, SqliteOplogReader, SqliteOplogStore

MIB = 1024 * 1024


def oplog_with(path: Path, sizes: list[int]) -> None:
    store = SqliteOplogStore(path)
    try:
        for index, size in enumerate(sizes):
            store.add_local([pb.Operation(
                instance_id="hub1", plan_id="even" if index % 2 == 0 else "odd",
                repo_guid="g", unix_time_start_ms=index + 1, display_message="x" * size,
            )])
    finally:
        store.close()


@pytest.fixture
def reader(tmp_path: Path) -> Iterator[SqliteOplogReader]:
    oplog_with(tmp_path / "oplog.sqlite", [MIB // 2] * 6 + [3 * MIB] * 2 + [100] * 30)
    opened = SqliteOplogReader(tmp_path / "oplog.sqlite")
    yield opened
    opened.close()


def test_a_page_stops_at_its_byte_bound_and_says_where_next_starts(
    reader: SqliteOplogReader,
) -> None:
    page = read_page(reader, OperationQuery(limit=100), max_bytes=2 * MIB)
    sizes = [len(raw) for raw in page.operations]
    assert sum(sizes[:-1]) < 2 * MIB <= sum(sizes)  # the crossing operation is the last
    ids = [pb.Operation.FromString(raw).id for raw in page.operations]
    assert ids == sorted(ids, reverse=True) and ids[0] == 38
    assert page.next_before_id == ids[-1]


def test_pages_together_are_the_whole_listing_exactly(reader: SqliteOplogReader) -> None:
    pages = list(iter_pages(reader, OperationQuery(limit=1000), max_bytes=MIB))
    assert all(sum(map(len, p.operations[:-1])) < MIB for p in pages)
    ids = [pb.Operation.FromString(raw).id for p in pages for raw in p.operations]
    assert ids == list(range(38, 0, -1))
    assert pages[-1].next_before_id is None
    assert len(pages) > 5


def test_one_operation_larger_than_the_bound_has_a_page_of_its_own(
    reader: SqliteOplogReader,
) -> None:
    page = read_page(reader, OperationQuery(before_id=9, limit=10), max_bytes=MIB)
    [raw] = page.operations
    assert pb.Operation.FromString(raw).id == 8 and len(raw) > 3 * MIB
    assert page.next_before_id == 8


def test_limit_and_filters_hold_across_pages(reader: SqliteOplogReader) -> None:
    query = query_for(pb.OpSelector(plan_id="odd"), 7, None)
    ops = [pb.Operation.FromString(raw) for p in iter_pages(reader, query, max_bytes=MIB)
           for raw in p.operations]
    assert len(ops) == 7 and {op.plan_id for op in ops} == {"odd"}
    assert ANSWER_MAX_BYTES == 4 * MIB


def test_a_selector_field_pages_cannot_select_by_is_refused() -> None:
    with pytest.raises(RequestError, match="'flow_id' is not supported"):
        query_for(pb.OpSelector(flow_id=3), 5, None)


def test_permission_lists_past_the_limits_are_refused_with_what_to_do() -> None:
    many = [{"type": "read_config", "scopes": [f"plan:p{i}" for i in range(100_000)]}]
    with pytest.raises(PermissionsError, match=f"more than {MAX_SCOPES} scopes"):
        parse_permissions(many)
    split = [{"type": "read_config", "scopes": [f"plan:p{i}" for i in range(200)]}] * 2
    with pytest.raises(PermissionsError, match=r"\[1\]\.scopes"):
        parse_permissions(split)
    entries = [{"type": "read_config", "scopes": ["*"]}] * (MAX_PERMISSIONS + 1)
    with pytest.raises(PermissionsError, match="one per type is enough"):
        parse_permissions(entries)
    at_limit = [{"type": "read_config", "scopes": [f"plan:p{i}" for i in range(MAX_SCOPES)]}]
    assert len(parse_permissions(at_limit).entries[0].scopes.scopes) == MAX_SCOPES
