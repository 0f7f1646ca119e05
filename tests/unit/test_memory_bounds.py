"""Bounds in bytes, on their own: a key's unread replies (a leaky bucket), a session's
inbound backlog in bytes, and the ids of one diff and of its answer."""

from __future__ import annotations

import pytest

from hub.errors import ProtocolError
from hub.pb import synchub_pb2 as pb
from hub.protocol import MAX_DIFF_IDS, check_diff, check_diff_answer
from hub.server import FrontSettings, Outbound, OutboundBudget, SessionTable

MIB = 1024 * 1024
SETTINGS = FrontSettings(
    bind="tcp://127.0.0.1:0",
    outbound_bytes_high=4 * MIB,
    outbound_bytes_max=8 * MIB,
    outbound_drain_per_second=1 * MIB,
    throttle_delay_ms=500,
    session_backlog_high=1000,
    session_backlog_bytes_high=2 * MIB,
    session_backlog_bytes_max=4 * MIB,
    total_backlog_high=10_000,
    total_backlog_bytes=1024 * MIB,
    early_drop_from=1.0,
)


def test_a_client_that_reads_stays_within_its_budget() -> None:
    budget = OutboundBudget(SETTINGS)
    # 1 MiB a second for a minute, drained at 1 MiB a second.
    assert all(budget.sent("k", MIB, float(t)) is Outbound.OK for t in range(60))


def test_unread_replies_throttle_then_end_the_session() -> None:
    budget = OutboundBudget(SETTINGS)
    verdicts = [budget.sent("k", MIB, 0.0) for _ in range(10)]
    assert verdicts[:4] == [Outbound.OK] * 4
    assert verdicts[4] is Outbound.THROTTLE  # at most one throttle per delay
    assert verdicts[5:8] == [Outbound.OK] * 3
    assert verdicts[8:] == [Outbound.OVER] * 2
    # Another key is not affected; the bucket drains with time and is then forgotten.
    assert budget.sent("other", MIB, 0.0) is Outbound.OK
    budget.sweep(100.0)
    assert budget.level("k", 100.0) == 0.0
    assert budget.sent("k", MIB, 100.0) is Outbound.OK


def test_the_unread_budget_spans_a_keys_sessions() -> None:
    budget = OutboundBudget(SETTINGS)
    for _ in range(7):
        budget.sent("k", MIB, 0.0)
    # A new session of the same key (the older one displaced) starts where it left off.
    assert budget.sent("k", 2 * MIB, 0.5) is Outbound.OVER


def test_a_sessions_inbound_backlog_is_bounded_in_bytes() -> None:
    table: SessionTable[str] = SessionTable(SETTINGS)
    assert table.admit_new("127.0.0.1", None).admit
    entry = table.open(table.reserve_serial(), b"r", None, "s", 0.0, source="127.0.0.1")
    table.authenticated(entry, "ed25519.k")
    assert table.delivered(entry, MIB, 0.0) is None
    assert table.delivered(entry, MIB, 0.0) is None
    assert table.delivered(entry, MIB, 0.0) == 500  # past 2 MiB: throttle
    assert table.check_inbound(entry, 1, 0.1).deliver
    assert table.delivered(entry, MIB, 0.1) is None
    verdict = table.check_inbound(entry, 1, 0.2)  # 4 MiB ahead, throttle ignored
    assert not verdict.deliver
    assert verdict.violation is not None and "MiB sent ahead" in verdict.violation
    # Cut: what the session still has queued is skipped, not applied, and it is closing.
    assert entry.cut and entry.closing
    table.forget(entry)
    assert table.counters().backlog_bytes == 0


def test_a_session_that_ends_otherwise_is_not_cut() -> None:
    table: SessionTable[str] = SessionTable(SETTINGS)
    assert table.admit_new("127.0.0.1", None).admit
    entry = table.open(table.reserve_serial(), b"r", None, "s", 0.0, source="127.0.0.1")
    table.gone(entry, 1.0)  # its actor stopped, or it said goodbye: its frames are its own
    assert entry.closing and not entry.cut


def diff(ids: int) -> pb.SyncStreamItem.DiffOperations:
    item = pb.SyncStreamItem.DiffOperations()
    item.have_operations_selector.original_instance_keyid = "ed25519.k"
    item.have_operation_ids.extend(range(1, ids + 1))
    item.have_operation_modnos.extend([1] * ids)
    return item


def test_diffs_and_their_answers_are_bounded_in_ids() -> None:
    check_diff(diff(MAX_DIFF_IDS), "ed25519.k")
    with pytest.raises(ProtocolError, match="split it by plan"):
        check_diff(diff(MAX_DIFF_IDS + 1), "ed25519.k")
    assert check_diff_answer(range(3)) == [0, 1, 2]
    with pytest.raises(ProtocolError, match="narrower selection"):
        check_diff_answer(range(MAX_DIFF_IDS + 1))
