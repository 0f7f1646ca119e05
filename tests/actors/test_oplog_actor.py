"""OplogActor with a real SQLite store: asks, failures through futures, and events."""

from __future__ import annotations

import queue
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pykka
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors import (
    DiffStep,
    DiffStepResult,
    EndNotice,
    OplogActor,
    OplogEvent,
    RemoteBatch,
    backlog,
)
from hub.config import Config, load_config
from hub.errors import AuthError, ProtocolError, SessionDisplaced, StoreError
from hub.pb import synchub_pb2 as pb
from hub.protocol import DigestCheck, root_range
from hub.store import SqliteOplogStore, digest_pairs

KEY_A = "ed25519.peer-a"
TIMEOUT = 5.0


def op(op_id: int, flow_id: int = 0, modno: int = 1) -> pb.Operation:
    return pb.Operation(
        id=op_id, flow_id=flow_id or op_id, modno=modno, repo_guid="guid-nas",
        plan_id="nightly", display_message=f"op {op_id}",
    )


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "oplog.sqlite"


@pytest.fixture
def oplog_ref(db_path: Path) -> Iterator[pykka.ActorRef[OplogActor]]:
    ref = OplogActor.start(lambda: SqliteOplogStore(db_path))
    try:
        yield ref
    finally:
        ref.stop(block=True, timeout=TIMEOUT)


@pytest.fixture
def oplog(oplog_ref: pykka.ActorRef[OplogActor]) -> pykka.ActorProxy[OplogActor]:
    return oplog_ref.proxy()


class Collector:
    """A listener that hands events to the test thread through a queue."""

    def __init__(self) -> None:
        self.events: queue.Queue[OplogEvent] = queue.Queue()

    def __call__(self, event: OplogEvent) -> None:
        self.events.put(event)

    def next(self) -> OplogEvent:
        return self.events.get(timeout=TIMEOUT)


class Recorder(pykka.ThreadingActor):
    """Another actor subscribing one of its proxy methods (the usual listener)."""

    def __init__(self, sink: queue.Queue[OplogEvent]) -> None:
        super().__init__()
        self._sink = sink

    def on_event(self, event: OplogEvent) -> None:
        self._sink.put(event)


def test_ping_and_the_store_lives_in_the_actor_thread(
    oplog: pykka.ActorProxy[OplogActor], db_path: Path
) -> None:
    assert oplog.ping().get(timeout=TIMEOUT) is True
    assert db_path.exists()


def test_ask_a_remote_batch_and_see_the_result(oplog: pykka.ActorProxy[OplogActor]) -> None:
    oplog.add([pb.Operation(display_message="local"), pb.Operation()]).get(timeout=TIMEOUT)

    result = oplog.apply_remote(
        KEY_A, RemoteBatch(operations=(op(1, 1), op(2, 1), op(3, 2)))
    ).get(timeout=TIMEOUT)

    assert [(o.id, o.flow_id) for o in result.created] == [(3, 3), (4, 3), (5, 5)]
    assert oplog.count().get(timeout=TIMEOUT) == 5
    stored = oplog.get(4).get(timeout=TIMEOUT)
    assert stored is not None and stored.original_id == 2
    selector = pb.OpSelector(original_instance_keyid=KEY_A, repo_guid="guid-nas")
    assert oplog.diff(KEY_A, selector, [1, 2, 3], [1, 1, 7]).get(timeout=TIMEOUT) == (3,)
    metadata = oplog.query_metadata(selector).get(timeout=TIMEOUT)
    assert [m.original_id for m in metadata] == [1, 2, 3]
    newest = oplog.query(pb.OpSelector(), limit=1, newest_first=True).get(timeout=TIMEOUT)
    assert [o.id for o in newest] == [5]


def test_a_failing_batch_raises_through_the_future_and_the_actor_survives(
    oplog: pykka.ActorProxy[OplogActor],
) -> None:
    with pytest.raises(ProtocolError, match="batch rejected"):
        oplog.apply_remote(KEY_A, RemoteBatch(operations=(op(1), op(0)))).get(timeout=TIMEOUT)

    assert oplog.ping().get(timeout=TIMEOUT) is True
    assert oplog.count().get(timeout=TIMEOUT) == 0
    result = oplog.apply_remote(KEY_A, RemoteBatch(operations=(op(1),))).get(timeout=TIMEOUT)
    assert [o.id for o in result.created] == [1]


def test_a_store_error_raises_through_the_future(
    oplog: pykka.ActorProxy[OplogActor], db_path: Path
) -> None:
    assert oplog.ping().get(timeout=TIMEOUT)
    with sqlite3.connect(db_path) as db:
        db.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON operations "
            "BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
    with pytest.raises(StoreError, match="refused"):
        oplog.apply_remote(KEY_A, RemoteBatch(operations=(op(1),))).get(timeout=TIMEOUT)
    assert oplog.ping().get(timeout=TIMEOUT) is True


def test_listeners_get_events_after_commit(oplog: pykka.ActorProxy[OplogActor]) -> None:
    collector = Collector()
    oplog.subscribe(collector).get(timeout=TIMEOUT)

    (added,) = oplog.add([pb.Operation(display_message="job")]).get(timeout=TIMEOUT)
    event = collector.next()
    assert (event.kind, [o.id for o in event.operations]) == ("created", [added.id])

    changed = pb.Operation()
    changed.CopyFrom(added)
    changed.status = pb.STATUS_SUCCESS
    oplog.update([changed]).get(timeout=TIMEOUT)
    event = collector.next()
    assert event.kind == "updated" and event.operations[0].status == pb.STATUS_SUCCESS

    oplog.apply_remote(KEY_A, RemoteBatch(operations=(op(1),))).get(timeout=TIMEOUT)
    event = collector.next()
    assert event.kind == "created"
    assert (event.operations[0].id, event.operations[0].original_instance_keyid) == (2, KEY_A)
    oplog.apply_remote(KEY_A, RemoteBatch(operations=(op(1, modno=2),))).get(timeout=TIMEOUT)
    assert collector.next().kind == "updated"
    oplog.apply_remote(KEY_A, RemoteBatch(deleted_ids=(1, 99))).get(timeout=TIMEOUT)
    event = collector.next()
    assert (event.kind, event.deleted_ids) == ("deleted", (2,))

    oplog.delete([added.id]).get(timeout=TIMEOUT)
    event = collector.next()
    assert (event.kind, event.deleted_ids) == ("deleted", (added.id,))


def test_no_event_for_a_failed_batch_or_a_change_that_changed_nothing(
    oplog: pykka.ActorProxy[OplogActor],
) -> None:
    collector = Collector()
    oplog.subscribe(collector).get(timeout=TIMEOUT)

    with pytest.raises(ProtocolError):
        oplog.apply_remote(KEY_A, RemoteBatch(operations=(op(-1),))).get(timeout=TIMEOUT)
    oplog.apply_remote(KEY_A, RemoteBatch(deleted_ids=(5,))).get(timeout=TIMEOUT)
    oplog.apply_remote(KEY_A, RemoteBatch(operations=(op(3),))).get(timeout=TIMEOUT)

    # Events are delivered in order, so the first one seen must be the last batch's.
    event = collector.next()
    assert event.kind == "created" and event.operations[0].original_id == 3
    assert collector.events.empty()


def test_a_raising_listener_does_not_stop_the_others(
    oplog: pykka.ActorProxy[OplogActor],
) -> None:
    def broken(event: OplogEvent) -> None:
        raise RuntimeError("listener bug")

    collector = Collector()
    oplog.subscribe(broken).get(timeout=TIMEOUT)
    oplog.subscribe(collector).get(timeout=TIMEOUT)

    oplog.apply_remote(KEY_A, RemoteBatch(operations=(op(1),))).get(timeout=TIMEOUT)
    oplog.apply_remote(KEY_A, RemoteBatch(operations=(op(2),))).get(timeout=TIMEOUT)

    assert [collector.next().operations[0].original_id for _ in range(2)] == [1, 2]
    assert oplog.ping().get(timeout=TIMEOUT) is True


def test_unsubscribe_stops_delivery(oplog: pykka.ActorProxy[OplogActor]) -> None:
    first, second = Collector(), Collector()
    token = oplog.subscribe(first).get(timeout=TIMEOUT)
    oplog.subscribe(second).get(timeout=TIMEOUT)

    assert oplog.unsubscribe(token).get(timeout=TIMEOUT) is True
    assert oplog.unsubscribe(token).get(timeout=TIMEOUT) is False
    oplog.add([pb.Operation()]).get(timeout=TIMEOUT)

    assert second.next().kind == "created"
    assert first.events.empty()


@pytest.mark.parametrize("tell", [False, True], ids=["proxy-call", "defer"])
def test_another_actors_proxy_method_as_listener(
    oplog: pykka.ActorProxy[OplogActor], tell: bool
) -> None:
    sink: queue.Queue[OplogEvent] = queue.Queue()
    recorder = Recorder.start(sink)
    try:
        method = recorder.proxy().on_event
        token = oplog.subscribe(method.defer if tell else method).get(timeout=TIMEOUT)
        oplog.apply_remote(KEY_A, RemoteBatch(operations=(op(1),))).get(timeout=TIMEOUT)
        assert sink.get(timeout=TIMEOUT).kind == "created"
    finally:
        recorder.stop(block=True, timeout=TIMEOUT)

    # The stopped actor's listener is dropped on the next change; the actor carries on.
    oplog.apply_remote(KEY_A, RemoteBatch(operations=(op(2),))).get(timeout=TIMEOUT)
    assert oplog.unsubscribe(token).get(timeout=TIMEOUT) is False
    assert oplog.count().get(timeout=TIMEOUT) == 2


def test_backlog_counts_waiting_messages(
    oplog_ref: pykka.ActorRef[OplogActor], oplog: pykka.ActorProxy[OplogActor]
) -> None:
    entered, release = threading.Event(), threading.Event()

    def hold(event: OplogEvent) -> None:
        entered.set()
        release.wait(timeout=TIMEOUT)

    oplog.subscribe(hold).get(timeout=TIMEOUT)
    try:
        busy = oplog.add([pb.Operation()])
        assert entered.wait(timeout=TIMEOUT)
        waiting = [oplog.ping() for _ in range(3)]
        assert backlog(oplog_ref) == 3
    finally:
        release.set()
    busy.get(timeout=TIMEOUT)
    assert all(f.get(timeout=TIMEOUT) for f in waiting)
    assert backlog(oplog_ref) == 0


def test_a_store_that_cannot_open_stops_the_actor(tmp_path: Path) -> None:
    ref = OplogActor.start(lambda: SqliteOplogStore(tmp_path / "missing" / "oplog.sqlite"))
    try:
        with pytest.raises(pykka.ActorDeadError):
            ref.proxy().ping().get(timeout=TIMEOUT)
    finally:
        ref.stop(block=True, timeout=TIMEOUT)


def test_stopping_closes_the_store(db_path: Path) -> None:
    stores: list[SqliteOplogStore] = []

    def factory() -> SqliteOplogStore:
        stores.append(SqliteOplogStore(db_path))
        return stores[-1]

    ref = OplogActor.start(factory)
    try:
        ref.proxy().ping().get(timeout=TIMEOUT)
    finally:
        ref.stop(block=True, timeout=TIMEOUT)
    with pytest.raises(StoreError, match="closed"):
        stores[0].count()


# -- the write gate (actors._gate) ---------------------------------------------------------


GATED_KEY = "ed25519." + "A" * 43


def gate_config(tmp_path: Path, *, verified: bool = True, instance: str = "web1") -> Config:
    text = (
        'instance = "hub-1"\ndata_dir = "data"\n[hub]\n\n[[authorized_clients]]\n'
        f'instance_id = "{instance}"\nkeyid = "{GATED_KEY}"\n'
        f"keyid_verified = {'true' if verified else 'false'}\n"
    )
    path = tmp_path / "hub.toml"
    path.write_text(text)
    return load_config(path)


def batch_of(session_id: str, *ops: pb.Operation) -> RemoteBatch:
    return RemoteBatch(operations=ops, peer_instance_id="web1", session_id=session_id)


def test_only_the_session_holding_the_key_may_write_and_a_newer_claim_ends_the_older(
    oplog: pykka.ActorProxy[OplogActor], tmp_path: Path
) -> None:
    oplog.admit(gate_config(tmp_path)).get(timeout=TIMEOUT)
    first, second = EndNotice(), EndNotice()
    oplog.claim(GATED_KEY, "web1", "s-1", first).get(timeout=TIMEOUT)
    oplog.apply_remote(GATED_KEY, batch_of("s-1", op(1))).get(timeout=TIMEOUT)
    oplog.claim(GATED_KEY, "web1", "s-2", second).get(timeout=TIMEOUT)
    assert first.reason() == (pb.CONNECTION_STATE_DISCONNECTED, "displaced by a newer connection")
    assert second.reason() is None
    with pytest.raises(SessionDisplaced):
        oplog.apply_remote(GATED_KEY, batch_of("s-1", op(1, modno=7))).get(timeout=TIMEOUT)
    step = DiffStep(pb.OpSelector(), (1,), (1,), "s-1", "web1")
    with pytest.raises(SessionDisplaced):
        oplog.diff_step(GATED_KEY, step).get(timeout=TIMEOUT)
    oplog.apply_remote(GATED_KEY, batch_of("s-2", op(2))).get(timeout=TIMEOUT)
    # The older session's end does not release the newer one's claim.
    oplog.release(GATED_KEY, "s-1").get(timeout=TIMEOUT)
    oplog.apply_remote(GATED_KEY, batch_of("s-2", op(3))).get(timeout=TIMEOUT)
    stored = oplog.query(pb.OpSelector(original_instance_keyid=GATED_KEY)).get(timeout=TIMEOUT)
    assert [(o.original_id, o.modno) for o in stored] == [(1, 1), (2, 1), (3, 1)]


@pytest.mark.parametrize(
    ("change", "fragment"),
    [("revoked", "revoked by the operator"), ("unverified", "not verified"),
     ("moved", "as instance")],
)
def test_a_config_that_no_longer_admits_the_key_refuses_its_batches_at_once(
    oplog: pykka.ActorProxy[OplogActor], tmp_path: Path, change: str, fragment: str
) -> None:
    oplog.admit(gate_config(tmp_path)).get(timeout=TIMEOUT)
    notice = EndNotice()
    oplog.claim(GATED_KEY, "web1", "s-1", notice).get(timeout=TIMEOUT)
    oplog.apply_remote(GATED_KEY, batch_of("s-1", op(1))).get(timeout=TIMEOUT)
    if change == "revoked":
        (tmp_path / "hub.toml").write_text('instance = "hub-1"\ndata_dir = "data"\n[hub]\n')
        newer = load_config(tmp_path / "hub.toml")
    else:
        newer = gate_config(tmp_path, verified=change != "unverified",
                            instance="web2" if change == "moved" else "web1")
    oplog.admit(newer).get(timeout=TIMEOUT)
    reason = notice.reason()
    assert reason is not None and reason[0] == pb.CONNECTION_STATE_ERROR_AUTH
    assert fragment in reason[1]
    with pytest.raises(AuthError, match=fragment):
        oplog.apply_remote(GATED_KEY, batch_of("s-1", op(2))).get(timeout=TIMEOUT)
    with pytest.raises(AuthError):
        oplog.claim(GATED_KEY, "web1", "s-3", EndNotice()).get(timeout=TIMEOUT)
    assert oplog.count().get(timeout=TIMEOUT) == 1


def test_a_batch_without_a_session_is_not_gated(oplog: pykka.ActorProxy[OplogActor]) -> None:
    """Tools that write as a peer (no session) are not sessions: no claim, no gate."""
    oplog.apply_remote(GATED_KEY, RemoteBatch(operations=(op(1),))).get(timeout=TIMEOUT)
    assert oplog.count().get(timeout=TIMEOUT) == 1


# -- diffs in bounded steps --------------------------------------------------------------------


def diff_in_steps(
    oplog: pykka.ActorProxy[OplogActor], theirs: dict[int, int], selector: pb.OpSelector
) -> tuple[list[int], int]:
    ids = tuple(sorted(theirs))
    step = DiffStep(selector, ids, tuple(theirs[i] for i in ids), "s-1", "web1")
    requested: list[int] = []
    steps = 0
    while True:
        result: DiffStepResult = oplog.diff_step(GATED_KEY, step).get(timeout=TIMEOUT)
        steps += 1
        assert len(result.requested) <= 2 * STEP
        requested.extend(result.requested)
        if result.reached is None:
            return requested, steps
        step = replace(step, start=result.next_start, after=result.reached)


STEP = 4


@settings(max_examples=40, deadline=None)
@given(
    held=st.dictionaries(st.integers(1, 60), st.integers(1, 3), max_size=40),
    theirs=st.dictionaries(st.integers(1, 60), st.integers(1, 3), max_size=40),
    other_repo=st.sets(st.integers(1, 60), max_size=15),
)
def test_a_diff_answered_in_steps_is_the_whole_diff(
    tmp_path_factory: pytest.TempPathFactory,
    held: dict[int, int],
    theirs: dict[int, int],
    other_repo: set[int],
) -> None:
    path = tmp_path_factory.mktemp("steps") / "oplog.sqlite"
    ref = OplogActor.start(lambda: SqliteOplogStore(path), diff_step_ids=STEP)
    try:
        oplog = ref.proxy()
        oplog.admit(gate_config(path.parent)).get(timeout=TIMEOUT)
        oplog.claim(GATED_KEY, "web1", "s-1").get(timeout=TIMEOUT)
        ops = []
        for op_id, modno in sorted(held.items()):
            stored = op(op_id, modno=modno)
            if op_id in other_repo:
                stored.repo_guid = "guid-other"
            ops.append(stored)
        if ops:
            oplog.apply_remote(GATED_KEY, batch_of("s-1", *ops)).get(timeout=TIMEOUT)
        selector = pb.OpSelector(repo_guid="guid-nas")
        whole = oplog.diff(GATED_KEY, selector, list(theirs), list(theirs.values())).get(
            timeout=TIMEOUT)
        stepped, steps = diff_in_steps(oplog, theirs, selector)
        assert stepped == list(whole)
        # Each step covers up to STEP of the key's rows and STEP of the peer's ids.
        assert steps <= (len(held) + len(theirs)) // STEP + 1
    finally:
        ref.stop(block=True, timeout=TIMEOUT)


# -- a first digest in bounded steps (actors._digests) ----------------------------------------

DIGEST_STEP = 200


def root_check(pairs: dict[int, int], selector: pb.OpSelector, sequence: int) -> DigestCheck:
    """The check_digest a client holding exactly ``pairs`` sends, with a cursor."""
    cursor = pb.SyncCursor(selection="sel", epoch=bytes(16), sequence=sequence)
    item = pb.SyncStreamItem.CheckDigest(
        selector=selector, ranges=[root_range(digest_pairs(sorted(pairs.items())))],
        cursor=cursor,
    )
    return DigestCheck.of(item, KEY_A)


def ask_until_answered(
    oplog: pykka.ActorProxy[OplogActor], check: DigestCheck
) -> tuple[pb.SyncStreamItem.CheckDigest, int]:
    calls = 0
    while True:
        calls += 1
        answer = oplog.check_digest(KEY_A, check).get(timeout=TIMEOUT)
        if answer is not None:
            return answer, calls
        assert calls < 100, "the digest never finished"


def test_a_first_digest_is_read_in_steps_and_meets_the_writes_made_between_them(
    tmp_path: Path,
) -> None:
    path = tmp_path / "oplog.sqlite"
    ref = OplogActor.start(lambda: SqliteOplogStore(path), diff_step_ids=DIGEST_STEP)
    try:
        oplog = ref.proxy()
        held = {i: 1 for i in range(1, 1001)}
        oplog.apply_remote(KEY_A, RemoteBatch(operations=tuple(op(i) for i in held))).get(
            timeout=TIMEOUT)
        repo = pb.OpSelector(original_instance_keyid=KEY_A, repo_guid="guid-nas")
        # Two steps of the repo's digest, then writes behind and ahead of where it is.
        first = root_check(held, repo, 1)
        assert oplog.check_digest(KEY_A, first).get(timeout=TIMEOUT) is None
        assert oplog.check_digest(KEY_A, first).get(timeout=TIMEOUT) is None
        oplog.apply_remote(KEY_A, RemoteBatch(
            operations=(op(5, modno=2), op(5000)), deleted_ids=(999,))).get(timeout=TIMEOUT)
        held.update({5: 2, 5000: 1})
        del held[999]
        check = root_check(held, repo, 2)
        answer, calls = ask_until_answered(oplog, check)
        # Pages of 200 pairs, of which the whole buckets count (192 ids here): ids 1-959
        # in five steps, the sixth reaches the end and answers.
        assert answer.in_sync and 2 + calls == 6
        assert oplog.sync_cursors(KEY_A).get(timeout=TIMEOUT)[0].sequence == 2

        # Another selection's digest between two steps refreshes the written buckets the
        # first build would need: that build starts over, and is still right.
        plan = pb.OpSelector(original_instance_keyid=KEY_A, repo_guid="guid-other")
        other = {i: 1 for i in range(2001, 2601)}
        batch = tuple(replace_repo(op(i), "guid-other") for i in other)
        oplog.apply_remote(KEY_A, RemoteBatch(operations=batch)).get(timeout=TIMEOUT)
        assert oplog.check_digest(KEY_A, root_check(other, plan, 3)).get(
            timeout=TIMEOUT) is None
        oplog.apply_remote(KEY_A, RemoteBatch(operations=(op(7, modno=5),))).get(
            timeout=TIMEOUT)
        held[7] = 5
        answer, _ = ask_until_answered(oplog, root_check(held, repo, 4))
        assert answer.in_sync  # cached: answered at once, with op 7's new modno
        answer, calls = ask_until_answered(oplog, root_check(other, plan, 5))
        assert answer.in_sync and calls >= 3
        # Cached from now on: one call, and a difference is still found.
        held[8] = 9
        answer, calls = ask_until_answered(oplog, root_check(held, repo, 6))
        assert calls == 1 and not answer.in_sync
    finally:
        ref.stop(block=True, timeout=TIMEOUT)


def replace_repo(operation: pb.Operation, repo_guid: str) -> pb.Operation:
    operation.repo_guid = repo_guid
    return operation
