"""PeerStateActor driven directly: its PeerStateStore, sessions and listeners are autospec
mocks, its clock a plain function the test moves.

The actor object is used without starting its thread (``on_start`` and ``on_stop``
called as pykka would). Each test checks which records the actor saved and when,
what it answered, and whom it told. The real-store tier is
``test_peer_state_actor.py``.
"""

from __future__ import annotations

from typing import Any
from unittest.mock import Mock, create_autospec

import pykka
import pytest

from actors import RESTART_STATUS_MESSAGE, PeerStateActor
from hub.errors import StoreError
from hub.pb import synchub_pb2 as pb
from hub.store import PeerStateStore

WEB1 = "ed25519.web1"
DB1 = "ed25519.db1"
CONNECTED = pb.CONNECTION_STATE_CONNECTED
DISCONNECTED = pb.CONNECTION_STATE_DISCONNECTED
ERROR_AUTH = pb.CONNECTION_STATE_ERROR_AUTH


def listener_spec(state: pb.PeerState) -> object:
    """The shape of a PeerStateListener."""
    return None


def store_factory_spec() -> PeerStateStore:
    raise NotImplementedError


class Rig:
    def __init__(self, loaded: dict[str, pb.PeerState] | None = None) -> None:
        self.now = 1_000.0
        self.store = create_autospec(PeerStateStore, instance=True)
        self.store.load_all.return_value = loaded or {}
        self.saved: list[list[tuple[str, int, int]]] = []
        self.store.save.side_effect = self._record_save
        self.factory: Mock = create_autospec(store_factory_spec, return_value=self.store)
        self.actor = PeerStateActor(self.factory, clock=lambda: self.now, flush_interval=30.0)
        self.listener = create_autospec(listener_spec)

    def _record_save(self, states: Any) -> None:
        # What was saved at that moment (the actor keeps changing its records later).
        self.saved.append([(s.peer_keyid, s.state, s.last_heartbeat_millis) for s in states])

    def started(self) -> PeerStateActor:
        self.actor.on_start()
        self.actor.subscribe(self.listener)
        self.saved.clear()
        return self.actor

    def announced(self) -> list[tuple[str, int, str]]:
        return [
            (c.args[0].peer_keyid, c.args[0].state, c.args[0].status_message)
            for c in self.listener.call_args_list
        ]


def live_session(alive: bool = True) -> Any:
    ref = create_autospec(pykka.ActorRef, instance=True)
    ref.is_alive.return_value = alive
    return ref


@pytest.fixture
def rig() -> Rig:
    return Rig()


def test_peers_live_when_the_hub_stopped_are_marked_disconnected_at_start() -> None:
    rig = Rig({
        WEB1: pb.PeerState(peer_keyid=WEB1, state=CONNECTED, last_heartbeat_millis=5),
        DB1: pb.PeerState(peer_keyid=DB1, state=ERROR_AUTH, status_message="bad key"),
    })

    rig.actor.on_start()

    rig.factory.assert_called_once_with()
    assert rig.saved == [[(WEB1, DISCONNECTED, 5)]]  # only the one that changed
    web1 = rig.actor.get(WEB1)
    assert web1 is not None and web1.status_message == RESTART_STATUS_MESSAGE
    db1 = rig.actor.get(DB1)
    assert db1 is not None and db1.status_message == "bad key"


def test_a_store_that_cannot_load_is_closed_and_the_start_fails(rig: Rig) -> None:
    rig.store.load_all.side_effect = StoreError("not a database")

    with pytest.raises(StoreError, match="not a database"):
        rig.actor.on_start()

    rig.store.close.assert_called_once_with()
    assert rig.actor.ping() is False


def test_a_connection_is_saved_and_announced_at_once(rig: Rig) -> None:
    actor = rig.started()

    actor.connected(WEB1, "web1", session_id="s-1", session=live_session())

    assert rig.saved == [[(WEB1, CONNECTED, 1_000_000)]]
    assert rig.announced() == [(WEB1, CONNECTED, "")]
    state = actor.get(WEB1)
    assert state is not None and state.peer_instance_id == "web1"


def test_heartbeats_wait_for_the_next_write_or_the_flush_interval(rig: Rig) -> None:
    actor = rig.started()
    actor.connected(WEB1, "web1", session_id="s-1")
    actor.connected(DB1, "db1", session_id="s-2")
    rig.saved.clear()

    rig.now = 1_010.0
    actor.heartbeat(WEB1)
    actor.tick(1_020.0)  # 20 s since the last write: not yet
    assert rig.saved == []
    state = actor.get(WEB1)
    assert state is not None and state.last_heartbeat_millis == 1_010_000

    actor.tick(1_030.0)
    assert rig.saved == [[(WEB1, CONNECTED, 1_010_000)]]
    actor.tick(1_100.0)  # nothing dirty: nothing written
    assert len(rig.saved) == 1

    rig.now = 1_101.0
    actor.heartbeat(WEB1)
    actor.disconnected(DB1, message="closed by the client", session_id="s-2")
    # The state change writes the pending heartbeat with it, in one save.
    assert rig.saved[-1] == [(DB1, DISCONNECTED, 1_000_000), (WEB1, CONNECTED, 1_101_000)]
    assert rig.listener.call_count == 3  # two connections and one disconnection


def test_a_heartbeat_from_an_unknown_peer_is_ignored(rig: Rig) -> None:
    actor = rig.started()

    actor.heartbeat(WEB1)
    actor.flush()

    assert actor.get(WEB1) is None
    rig.store.save.assert_not_called()


def test_a_failed_save_is_logged_kept_dirty_and_retried(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    actor = rig.started()
    rig.store.save.side_effect = StoreError("disk full")

    actor.connected(WEB1, "web1")  # a told handler: it survives

    assert "will retry" in caplog.text
    assert rig.announced() == [(WEB1, CONNECTED, "")]
    with pytest.raises(StoreError, match="disk full"):
        actor.flush()  # asked: the asker sees the failure

    rig.store.save.side_effect = rig._record_save
    actor.flush()
    assert rig.saved == [[(WEB1, CONNECTED, 1_000_000)]]


def test_a_late_report_from_a_replaced_session_is_ignored(rig: Rig) -> None:
    actor = rig.started()
    newer = live_session()
    actor.connected(WEB1, "web1", session_id="s-1", session=live_session())
    actor.connected(WEB1, "web1", session_id="s-2", session=newer)

    actor.disconnected(WEB1, message="displaced", session_id="s-1")

    state = actor.get(WEB1)
    assert state is not None and state.state == CONNECTED
    assert actor.live_session(WEB1) is newer
    actor.disconnected(WEB1, ERROR_AUTH, "revoked", session_id="s-2")
    assert actor.live_session(WEB1) is None
    assert rig.announced()[-1] == (WEB1, ERROR_AUTH, "revoked")


def test_disconnected_refuses_a_live_state_and_survives(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    actor = rig.started()
    actor.connected(WEB1, "web1")

    actor.disconnected(WEB1, CONNECTED, "nonsense")

    assert "cannot set CONNECTION_STATE_CONNECTED" in caplog.text
    assert actor.ping() is True


def test_a_stopped_session_is_never_handed_out(rig: Rig) -> None:
    actor = rig.started()
    ended = live_session(alive=False)
    actor.connected(WEB1, "web1", session_id="s-1", session=ended)

    assert actor.live_session(WEB1) is None
    assert actor.live_session(DB1) is None
    ended.is_alive.assert_called_once_with()


def test_config_and_resources_are_saved_only_when_they_change(rig: Rig) -> None:
    actor = rig.started()
    actor.connected(WEB1, "web1")
    rig.saved.clear()
    config = pb.RemoteConfig(modno=3, version=1)

    actor.set_remote_config(WEB1, config)
    actor.set_remote_config(WEB1, pb.RemoteConfig(modno=3, version=1))
    actor.set_resources(WEB1, ("nas",), ("nightly",))
    actor.set_resources(WEB1, ("nas",), ("nightly",))
    actor.set_resources(DB1, ("nas",), ())  # unknown peer: ignored

    assert len(rig.saved) == 2
    state = actor.get(WEB1)
    assert state is not None
    assert state.remote_config == config
    assert list(state.known_repos) == ["nas"] and list(state.known_plans) == ["nightly"]
    assert actor.get(DB1) is None


def test_what_it_hands_out_are_copies_sorted_by_instance(rig: Rig) -> None:
    actor = rig.started()
    actor.connected(WEB1, "web1")
    actor.connected(DB1, "db1")

    listing = actor.list()
    listing[0].status_message = "changed by a reader"

    assert [s.peer_instance_id for s in listing] == ["db1", "web1"]
    db1 = actor.get(DB1)
    assert db1 is not None and db1.status_message == ""
    announced = rig.listener.call_args_list[0].args[0]
    announced.state = ERROR_AUTH
    web1 = actor.get(WEB1)
    assert web1 is not None and web1.state == CONNECTED


def test_stopping_writes_what_is_dirty_and_closes_the_store(rig: Rig) -> None:
    actor = rig.started()
    actor.connected(WEB1, "web1")
    rig.now = 1_005.0
    actor.heartbeat(WEB1)
    rig.saved.clear()

    actor.on_stop()

    assert rig.saved == [[(WEB1, CONNECTED, 1_005_000)]]
    rig.store.close.assert_called_once_with()
    assert actor.ping() is False


def test_a_listener_of_a_stopped_actor_is_dropped(rig: Rig) -> None:
    actor = rig.started()
    dead = create_autospec(listener_spec, side_effect=pykka.ActorDeadError("gone"))
    actor.subscribe(dead)

    actor.connected(WEB1, "web1")
    actor.connected(DB1, "db1")

    dead.assert_called_once()
    assert rig.listener.call_count == 2


def test_the_disconnect_reason_and_the_last_error_are_kept_apart(rig: Rig) -> None:
    actor = rig.started()
    actor.connected(WEB1, "web1", session_id="s-1")
    rig.now = 1_010.0
    actor.disconnected(WEB1, pb.CONNECTION_STATE_ERROR_PROTOCOL, "bad frame", session_id="s-1")
    rig.now = 1_020.0
    actor.connected(WEB1, "web1", session_id="s-2")
    rig.now = 1_030.0
    actor.disconnected(WEB1, DISCONNECTED, "peer reported: closing", session_id="s-2")

    state = actor.get(WEB1)
    assert state is not None
    assert (state.state, state.status_message, state.last_disconnect_millis) == (
        DISCONNECTED, "peer reported: closing", 1_030_000)
    assert (state.last_error, state.last_error_millis) == ("bad frame", 1_010_000)


def test_a_restart_is_a_disconnect_not_an_error() -> None:
    rig = Rig({WEB1: pb.PeerState(peer_keyid=WEB1, state=CONNECTED, last_error="old")})

    rig.actor.on_start()

    state = rig.actor.get(WEB1)
    assert state is not None
    assert state.status_message == RESTART_STATUS_MESSAGE
    assert state.last_disconnect_millis == 1_000_000
    assert state.last_error == "old"
