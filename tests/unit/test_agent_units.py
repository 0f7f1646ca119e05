"""The client side's pure parts: backoff, batching, the diff plan, throttled sending, and
the agent's view of its local oplog."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hub.agent import LocalOplog
from hub.cli.progress import BarProgress, LoggedProgress
from hub.config import Config
from hub.pb import synchub_pb2 as pb
from hub.protocol import (
    FRAME_OVERHEAD_BYTES,
    DiffSelection,
    Outflow,
    SyncScope,
    backoff_delay,
    batch_operations,
    diff_item,
    operation_frame_bytes,
    operations_item,
)
from hub.scopes import parse_permissions
from hub.store import LocalChanges, SqliteOplogStore
from synchub_testing import write_config

KEYID = "ed25519." + "A" * 43


# --- backoff ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempt", "low", "high"),
    [(0, 1.0, 1.0), (1, 1.0, 2.0), (2, 2.0, 4.0), (3, 4.0, 8.0), (8, 128.0, 256.0)],
)
def test_backoff_doubles_with_jitter_in_the_upper_half(
    attempt: int, low: float, high: float
) -> None:
    assert backoff_delay(attempt, rand=lambda: 0.0) == low
    assert backoff_delay(attempt, rand=lambda: 1.0) == high
    assert low <= backoff_delay(attempt, rand=lambda: 0.5) <= high


def test_backoff_is_capped_and_never_below_the_minimum() -> None:
    for attempt in (9, 10, 50, 1000):
        assert 150.0 <= backoff_delay(attempt, rand=lambda: 0.3) <= 300.0
        assert backoff_delay(attempt, rand=lambda: 1.0) == 300.0
    assert backoff_delay(-3, rand=lambda: 0.9) == 1.0
    assert backoff_delay(5, minimum=0.05, maximum=0.5, rand=lambda: 1.0) == 0.5


def test_backoff_spreads_peers_that_dropped_together() -> None:
    draws = iter([0.1, 0.6, 0.9])
    delays = {backoff_delay(4, rand=lambda: next(draws)) for _ in range(3)}
    assert len(delays) == 3


def test_backoff_rejects_nonsense_bounds() -> None:
    with pytest.raises(ValueError, match="minimum"):
        backoff_delay(1, minimum=0.0, rand=lambda: 0.5)
    with pytest.raises(ValueError, match="minimum"):
        backoff_delay(1, minimum=5.0, maximum=1.0, rand=lambda: 0.5)


# --- batching -----------------------------------------------------------------------------


def _op(op_id: int, payload: int = 0) -> pb.Operation:
    return pb.Operation(id=op_id, modno=op_id, display_message="x" * payload)


def test_batches_hold_at_most_256_operations_in_order() -> None:
    ops = [_op(i) for i in range(1, 601)]
    batches = list(batch_operations(ops, max_frame_bytes=16 * 1024 * 1024))
    assert [len(b) for b in batches] == [256, 256, 88]
    assert [op.id for b in batches for op in b] == list(range(1, 601))


def test_batches_fit_the_frame_size() -> None:
    ops = [_op(i, payload=1000) for i in range(1, 21)]
    limit = 5 * operation_frame_bytes(ops[0]) + FRAME_OVERHEAD_BYTES
    batches = list(batch_operations(ops, max_frame_bytes=limit))
    assert [len(b) for b in batches] == [5, 5, 5, 5]
    for batch in batches:
        assert len(operations_item(batch, "created_operations").SerializeToString()) <= limit


def test_an_operation_too_big_for_any_frame_is_reported_and_skipped() -> None:
    skipped: list[int] = []
    ops = [_op(1, 10), _op(2, 5000), _op(3, 10)]
    batches = list(
        batch_operations(ops, max_frame_bytes=1000, on_oversized=lambda op: skipped.append(op.id))
    )
    assert [[op.id for op in b] for b in batches] == [[1, 3]]
    assert skipped == [2]


def test_no_operations_no_batches() -> None:
    assert list(batch_operations([], max_frame_bytes=1000)) == []
    with pytest.raises(ValueError, match="max_operations"):
        list(batch_operations([_op(1)], max_operations=0, max_frame_bytes=1000))


# --- the diff plan ------------------------------------------------------------------------


def _config(tmp_path: Path) -> Config:
    text = textwrap.dedent(
        """\
        instance = "web1"

        [[repos]]
        id = "nas"
        guid = "guid-nas"
        uri = "sftp:nas"

        [[repos]]
        id = "cloud"
        guid = "guid-cloud"
        uri = "s3:cloud"

        [[plans]]
        id = "nightly"
        repo = "nas"

        [[plans]]
        id = "secret"
        repo = "nas"

        [[plans]]
        id = "offsite"
        repo = "cloud"
        """
    )
    return write_config(tmp_path, text)


def _scope(tmp_path: Path, *permissions: tuple[str, list[str]]) -> SyncScope:
    parsed = parse_permissions([{"type": kind, "scopes": scopes} for kind, scopes in permissions])
    return SyncScope.for_host(_config(tmp_path), parsed)


def test_wildcard_diffs_every_repo_and_the_operations_without_a_repo(tmp_path: Path) -> None:
    scope = _scope(tmp_path, ("read_operations", ["*"]))
    assert scope.selections == (
        DiffSelection("guid-nas"),
        DiffSelection("guid-cloud"),
        DiffSelection(""),
    )


def test_a_plan_granted_without_its_repo_gets_its_own_diff(tmp_path: Path) -> None:
    scope = _scope(tmp_path, ("read_operations", ["repo:nas", "plan:offsite"]))
    assert scope.selections == (
        DiffSelection("guid-nas"),
        DiffSelection("guid-cloud", plan_id="offsite"),
    )
    assert scope.allows(pb.Operation(repo_guid="guid-nas", plan_id="anything"))
    assert scope.allows(pb.Operation(repo_guid="guid-cloud", plan_id="offsite"))
    assert not scope.allows(pb.Operation(repo_guid="guid-cloud", plan_id="other"))
    assert not scope.allows(pb.Operation(repo_guid="", plan_id=""))


def test_excluded_plans_and_repos_stay_out(tmp_path: Path) -> None:
    scope = _scope(tmp_path, ("read_operations", ["*", "!plan:secret", "!repo:cloud"]))
    assert scope.selections == (
        DiffSelection("guid-nas", excluded_plans=frozenset({"secret"})),
        # Each resource is checked on its own (as for config): "*" still covers the
        # plan offsite, so its operations go under a plan diff.
        DiffSelection("guid-cloud", plan_id="offsite"),
        DiffSelection("", excluded_plans=frozenset({"secret"})),
    )
    assert scope.allows(pb.Operation(repo_guid="guid-nas", plan_id="nightly"))
    assert not scope.allows(pb.Operation(repo_guid="guid-nas", plan_id="secret"))
    assert scope.allows(pb.Operation(repo_guid="guid-cloud", plan_id="offsite"))
    assert not scope.allows(pb.Operation(repo_guid="guid-cloud", plan_id=""))
    assert not scope.allows(pb.Operation(repo_guid="", plan_id="secret"))
    assert not scope.allows(pb.Operation(repo_guid="guid-unknown"))


def test_excluding_a_repo_and_its_plans_keeps_all_of_it_out(tmp_path: Path) -> None:
    scope = _scope(tmp_path, ("read_operations", ["*", "!repo:cloud", "!plan:offsite"]))
    assert scope.selections == (
        DiffSelection("guid-nas", excluded_plans=frozenset({"offsite"})),
        DiffSelection("", excluded_plans=frozenset({"offsite"})),
    )
    assert not scope.allows(pb.Operation(repo_guid="guid-cloud", plan_id="offsite"))


def test_a_plan_excluded_in_one_entry_but_granted_in_another_is_sent(tmp_path: Path) -> None:
    scope = _scope(
        tmp_path,
        ("read_operations", ["repo:nas", "!plan:secret"]),
        ("read_operations", ["plan:secret"]),
    )
    assert scope.selections == (DiffSelection("guid-nas"),)


def test_only_read_operations_grants_count(tmp_path: Path) -> None:
    scope = _scope(tmp_path, ("read_config", ["*"]), ("read_write_config", ["*"]))
    assert scope.selections == ()
    assert not scope.allows(pb.Operation(repo_guid="guid-nas"))


def test_diff_items_name_the_own_keyid_and_the_selection() -> None:
    item = diff_item(DiffSelection("guid-cloud", plan_id="offsite"), KEYID, [1, 4], [7, 9])
    diff = item.diff_operations
    selector = diff.have_operations_selector
    assert selector.original_instance_keyid == KEYID
    assert selector.repo_guid == "guid-cloud"
    assert selector.HasField("plan_id") and selector.plan_id == "offsite"
    assert list(diff.have_operation_ids) == [1, 4]
    assert list(diff.have_operation_modnos) == [7, 9]
    no_repo = diff_item(DiffSelection(""), KEYID, [], []).diff_operations.have_operations_selector
    assert no_repo.HasField("repo_guid") and no_repo.repo_guid == ""
    assert not no_repo.HasField("plan_id")
    local = DiffSelection("guid-nas").local_selector()
    assert local.HasField("original_instance_keyid") and local.original_instance_keyid == ""


# --- throttled sending --------------------------------------------------------------------


def _drain(flow: Outflow, now: float) -> list[bytes]:
    sent = []
    while (frame := flow.peek(now)) is not None:
        sent.append(frame)
        flow.taken()
    return sent


def test_outflow_keeps_order_and_reads_lazy_sources_when_sending() -> None:
    reads: list[int] = []

    def source() -> object:
        for n in (1, 2):
            reads.append(n)
            yield f"batch{n}".encode()

    flow = Outflow()
    flow.push(b"first")
    flow.push(source())  # type: ignore[arg-type]
    flow.push(b"last")
    assert reads == []
    assert flow.peek(0.0) == b"first"
    assert reads == []
    flow.taken()
    assert _drain(flow, 0.0) == [b"batch1", b"batch2", b"last"]
    assert flow.empty()


def test_throttle_holds_data_for_the_delay() -> None:
    flow = Outflow()
    flow.push(b"ops-1")
    flow.push(b"ops-2")
    assert flow.peek(10.0) == b"ops-1"
    flow.taken()
    flow.throttle(500, now=10.0)
    assert flow.is_throttled(10.0)
    assert flow.peek(10.0) is None
    assert flow.peek(10.499) is None
    assert not flow.empty()
    assert flow.throttled_until() == pytest.approx(10.5)
    assert _drain(flow, 10.5) == [b"ops-2"]


def test_a_shorter_throttle_does_not_cut_a_longer_one() -> None:
    flow = Outflow()
    flow.push(b"ops")
    flow.throttle(1000, now=0.0)
    flow.throttle(100, now=0.5)
    assert flow.peek(0.9) is None
    assert flow.peek(1.0) == b"ops"
    flow.throttle(-5, now=2.0)
    assert not flow.is_throttled(2.0)


def test_an_exhausted_source_leaves_the_flow_empty() -> None:
    flow = Outflow()
    flow.push(iter([]))
    assert flow.empty()
    assert flow.peek(0.0) is None


# --- the local oplog view -----------------------------------------------------------------


def _local(message: str, *, repo_guid: str = "guid-nas", plan_id: str = "nightly") -> pb.Operation:
    return pb.Operation(repo_guid=repo_guid, plan_id=plan_id, display_message=message)


def test_local_oplog_feeds_changes_past_the_mark_in_modno_order(tmp_path: Path) -> None:
    path = tmp_path / "oplog.sqlite"
    writer = SqliteOplogStore(path)  # stands in for `synchub run` in another process
    local = LocalOplog(path)
    try:
        first, second = writer.add_local([_local("a"), _local("b")])
        writer.apply_remote(KEYID, [pb.Operation(id=1, modno=1)], [])  # a peer's: never sent
        mark = local.high_water()
        assert mark == second.modno
        assert local.changes_since(mark) == LocalChanges((), (), mark)

        changed = pb.Operation()
        changed.CopyFrom(first)
        changed.display_message = "a, again"
        writer.update_local([changed])
        (third,) = writer.add_local([_local("c", repo_guid="")])
        writer.delete([second.id])
        changes = local.changes_since(mark)
        assert [(op.id, op.display_message) for op in changes.operations] == [
            (first.id, "a, again"),
            (third.id, "c"),
        ]
        assert changes.deleted_ids == (second.id,)
        assert changes.mark == writer.local_modno()
        assert local.changes_since(changes.mark) == LocalChanges((), (), changes.mark)
    finally:
        local.close()
        writer.close()


def test_local_oplog_lists_a_selection_and_loads_only_own_operations(tmp_path: Path) -> None:
    path = tmp_path / "oplog.sqlite"
    writer = SqliteOplogStore(path)
    local = LocalOplog(path)
    try:
        a, b, c, d = writer.add_local([
            _local("a"), _local("b", plan_id="secret"), _local("c"), _local("d", repo_guid=""),
        ])
        writer.apply_remote(KEYID, [pb.Operation(id=1, modno=1, repo_guid="guid-nas")], [])
        ids, modnos = local.have(DiffSelection("guid-nas", excluded_plans=frozenset({"secret"})))
        assert ids == [a.id, c.id] and modnos == [a.modno, c.modno]
        assert local.have(DiffSelection("guid-nas", plan_id="secret"))[0] == [b.id]
        assert local.have(DiffSelection(""))[0] == [d.id]
        remote_id = 5
        loaded = local.load([c.id, remote_id, a.id, 99, c.id])
        assert [op.id for op in loaded] == [a.id, c.id]
    finally:
        local.close()
        writer.close()


# --- progress of a long sync -------------------------------------------------------------


def test_bars_show_only_large_syncs_one_per_hub_and_leave_no_thread() -> None:
    out = io.StringIO()
    progress = BarProgress(out)
    progress("hub-1", 10, 20)
    progress.close()
    assert out.getvalue() == ""

    progress = BarProgress(out)
    try:
        progress("hub-1", 256, 2000)
        progress("hub-2\x1b[2J", 100, 5000)
        progress("hub-1", 2000, 2000)
    finally:
        progress.close()
    shown = out.getvalue()
    assert "hub-1" in shown and "2000/2000" in shown
    assert "hub-2\\x1b[2J" in shown and "100/5000" in shown  # shown, never raw escapes
    assert "\x1b[2J" not in shown


def test_rich_is_imported_only_to_draw_bars() -> None:
    """Every synchub command imports the CLI; only a terminal's bars need rich."""
    code = (
        "import sys, io; import hub.cli.main; assert 'rich' not in sys.modules, 'early'; "
        "from hub.cli.progress import BarProgress; BarProgress(io.StringIO()).close(); "
        "assert 'rich' in sys.modules"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr


def test_without_a_terminal_progress_is_logged_every_few_seconds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    now = [100.0]
    progress = LoggedProgress(logging.getLogger("synchub.agent"), interval=5.0,
                              clock=lambda: now[0])
    progress("hub-1", 100, 200)  # small: nothing
    for sent in range(0, 20_001, 1000):  # 1000 a second for 20 s
        progress("hub-1", sent, 20_000)
        now[0] += 1.0
    progress("hub-1", 20_000, 20_000)  # reported once only

    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "syncing to hub-1: 5000/20000 operations sent, 1000/s, about 15s left",
        "syncing to hub-1: 10000/20000 operations sent, 1000/s, about 10s left",
        "syncing to hub-1: 15000/20000 operations sent, 1000/s, about 5s left",
        "syncing to hub-1: 20000/20000 operations sent in 20s",
    ]


