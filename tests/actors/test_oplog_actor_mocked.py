"""OplogActor driven directly: its OplogStore, Telemetry and listeners are autospec mocks.

The actor object is used without starting its thread (``on_start`` and ``on_stop``
are called as pykka would). Each test checks what the actor asked of its store,
what it reported to the telemetry, and which events its listeners got and when.
The real-store tier is ``test_oplog_actor.py``.
"""

from __future__ import annotations

from unittest.mock import Mock, call, create_autospec

import pykka
import pytest

from actors import OplogActor, OplogEvent, RemoteBatch
from hub.errors import ProtocolError, StoreError
from hub.pb import synchub_pb2 as pb
from hub.store import OplogStore, OpMetadata, RemoteApplyResult
from hub.telemetry import Telemetry

KEY_A = "ed25519.peer-a"
SUCCESS = pb.STATUS_SUCCESS
ERROR = pb.STATUS_ERROR


def listener_spec(event: OplogEvent) -> object:
    """The shape of an oplog Listener."""
    return None


def op(op_id: int, instance_id: str = "", status: int = SUCCESS) -> pb.Operation:
    return pb.Operation(id=op_id, flow_id=op_id, modno=1, instance_id=instance_id,
                        status=status, plan_id="nightly")  # type: ignore[arg-type]


class Rig:
    def __init__(self) -> None:
        self.store = create_autospec(OplogStore, instance=True)
        self.telemetry = create_autospec(Telemetry, instance=True)
        self.factory: Mock = create_autospec(self._factory_spec, return_value=self.store)
        self.actor = OplogActor(self.factory, telemetry=self.telemetry)
        self.listener = create_autospec(listener_spec)

    @staticmethod
    def _factory_spec() -> OplogStore:
        raise NotImplementedError

    def started(self) -> OplogActor:
        self.actor.on_start()
        self.actor.subscribe(self.listener)
        return self.actor

    def events(self) -> list[OplogEvent]:
        return [c.args[0] for c in self.listener.call_args_list]


@pytest.fixture
def rig() -> Rig:
    return Rig()


def test_the_store_is_built_when_the_actor_starts_and_closed_when_it_stops(rig: Rig) -> None:
    rig.factory.assert_not_called()  # not in the constructor: in the actor's thread
    assert rig.actor.ping() is False

    rig.actor.on_start()

    rig.factory.assert_called_once_with()
    assert rig.actor.ping() is True
    rig.actor.on_stop()
    rig.store.close.assert_called_once_with()
    assert rig.actor.ping() is False
    with pytest.raises(StoreError, match="not open"):
        rig.actor.count()


def test_a_failing_close_is_logged_not_raised(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    rig.actor.on_start()
    rig.store.close.side_effect = StoreError("disk gone")

    rig.actor.on_failure(RuntimeError, RuntimeError("boom"), None)

    rig.store.close.assert_called_once_with()
    assert "closing the oplog store failed" in caplog.text


def test_local_writes_go_to_the_store_and_are_announced_once_committed(rig: Rig) -> None:
    actor = rig.started()
    stored = [op(1), op(2)]
    rig.store.add_local.return_value = stored
    rig.store.update_local.return_value = [op(2)]
    rig.store.delete.return_value = [1]
    fresh = [pb.Operation(), pb.Operation()]

    assert actor.add(fresh) == tuple(stored)
    assert actor.update([op(2)]) == (op(2),)
    assert actor.delete([1, 99]) == (1,)

    rig.store.add_local.assert_called_once_with(fresh)
    rig.store.delete.assert_called_once_with([1, 99])
    assert rig.events() == [
        OplogEvent("created", tuple(stored)),
        OplogEvent("updated", (op(2),)),
        OplogEvent("deleted", deleted_ids=(1,)),
    ]


def test_a_change_that_changed_nothing_announces_nothing(rig: Rig) -> None:
    actor = rig.started()
    rig.store.delete.return_value = []
    rig.store.apply_remote.return_value = RemoteApplyResult()

    actor.delete([5])
    actor.apply_remote(KEY_A, RemoteBatch())

    rig.listener.assert_not_called()


def test_a_remote_batch_is_applied_whole_counted_by_its_peer_and_announced(rig: Rig) -> None:
    actor = rig.started()
    batch = RemoteBatch(operations=(op(7, "laptop"), op(8, "", ERROR), op(9)),
                        deleted_ids=(3,), peer_instance_id="web1")
    result = RemoteApplyResult(
        created=(op(20, "laptop"), op(21, "", ERROR)), updated=(op(12),), deleted_ids=(4,)
    )
    rig.store.apply_remote.return_value = result

    assert actor.apply_remote(KEY_A, batch) is result

    rig.store.apply_remote.assert_called_once_with(
        KEY_A, batch.operations, (3,), reuse=True, peer_instance_id="web1"
    )
    [(received, seconds)] = [c.args for c in rig.telemetry.batch_applied.call_args_list]
    # Counted under the instance the peer authenticated as, never the name it wrote.
    assert dict(received) == {("web1", SUCCESS): 2, ("web1", ERROR): 1}
    assert seconds >= 0
    assert rig.events() == [
        OplogEvent("deleted", deleted_ids=(4,)),
        OplogEvent("created", result.created),
        OplogEvent("updated", result.updated),
    ]


def test_a_batch_of_the_hubs_own_operations_is_counted_by_their_instance(rig: Rig) -> None:
    actor = rig.started()
    rig.store.apply_remote.return_value = RemoteApplyResult(created=(op(1, "hub1"),))

    actor.apply_remote(KEY_A, RemoteBatch(operations=(op(1, "hub1"),)))

    [(received, _)] = [c.args for c in rig.telemetry.batch_applied.call_args_list]
    assert dict(received) == {("hub1", SUCCESS): 1}


@pytest.mark.parametrize("error", [ProtocolError("batch rejected: id 0"), StoreError("full")])
def test_a_refused_batch_raises_to_the_asker_with_nothing_announced_or_counted(
    rig: Rig, error: Exception
) -> None:
    actor = rig.started()
    rig.store.apply_remote.side_effect = error

    with pytest.raises(type(error), match=str(error)):
        actor.apply_remote(KEY_A, RemoteBatch(operations=(op(1),)))

    rig.listener.assert_not_called()
    rig.telemetry.batch_applied.assert_not_called()
    assert actor.ping() is True


def test_reads_are_the_stores_answers(rig: Rig) -> None:
    actor = rig.started()
    selector = pb.OpSelector(original_instance_keyid=KEY_A)
    meta = OpMetadata(1, 1, 1, KEY_A, 5, 5)
    rig.store.diff.return_value = [5, 6]
    rig.store.query.return_value = [op(3)]
    rig.store.query_metadata.return_value = [meta]
    rig.store.get.return_value = op(3)
    rig.store.count.return_value = 42

    assert actor.diff(KEY_A, selector, [5, 6], [1, 1]) == (5, 6)
    assert actor.query(selector, limit=1, newest_first=True) == (op(3),)
    assert actor.query_metadata(selector) == (meta,)
    assert actor.get(3) == op(3)
    assert actor.count() == 42
    assert actor.check_writable() is True

    rig.store.diff.assert_called_once_with(KEY_A, selector, [5, 6], [1, 1])
    rig.store.query.assert_called_once_with(selector, limit=1, newest_first=True)
    rig.store.check_writable.assert_called_once_with()
    rig.listener.assert_not_called()


def test_a_store_that_takes_no_write_fails_the_health_check(rig: Rig) -> None:
    actor = rig.started()
    rig.store.check_writable.side_effect = StoreError("database is locked")

    with pytest.raises(StoreError, match="locked"):
        actor.check_writable()


def test_listeners_survive_their_errors_dead_ones_are_dropped(rig: Rig) -> None:
    actor = rig.started()
    failing = create_autospec(listener_spec, side_effect=RuntimeError("bug"))
    dead = create_autospec(listener_spec, side_effect=pykka.ActorDeadError("gone"))
    actor.subscribe(failing)
    actor.subscribe(dead)
    token = actor.subscribe(late := create_autospec(listener_spec))
    rig.store.add_local.side_effect = lambda ops: [op(n) for n in range(1, len(ops) + 1)]

    actor.add([pb.Operation()])
    assert actor.unsubscribe(token) is True
    actor.add([pb.Operation()])

    first = OplogEvent("created", (op(1),))
    assert failing.call_args_list == [call(first), call(first)]
    assert dead.call_args_list == [call(first)]
    assert late.call_args_list == [call(first)]
    assert rig.listener.call_count == 2

