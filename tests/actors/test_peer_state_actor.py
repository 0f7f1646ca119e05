"""PeerStateActor against the real PeerStore, with injected time."""

from __future__ import annotations

import logging
import queue
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pykka
import pytest

from actors import RESTART_STATUS_MESSAGE, PeerStateActor, PendingKey, PendingKeys, RefusalLog
from hub.errors import StoreError
from hub.pb import synchub_pb2 as pb
from hub.store import PeerStore, read_peer_states

TIMEOUT = 5.0
WEB1 = "ed25519.web1"
DB1 = "ed25519.db1"


class FakeClock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class CountingStore(PeerStore):
    """The real store, recording each save (keyids per call) and able to fail on demand."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir)
        self.saves: list[list[str]] = []
        self.fail_saves = False
        self.closed = False

    def save(self, states: Iterable[pb.PeerState]) -> None:
        batch = list(states)
        if self.fail_saves:
            raise StoreError("disk full")
        super().save(batch)
        self.saves.append(sorted(s.peer_keyid for s in batch))

    def close(self) -> None:
        self.closed = True
        super().close()


class Harness:
    def __init__(self, data_dir: Path, clock: FakeClock) -> None:
        self.data_dir = data_dir
        self.clock = clock
        self.stores: list[CountingStore] = []

    def factory(self) -> CountingStore:
        store = CountingStore(self.data_dir)
        self.stores.append(store)
        return store

    @property
    def store(self) -> CountingStore:
        return self.stores[-1]

    @contextmanager
    def running(self, flush_interval: float = 30.0) -> Iterator[Any]:
        ref = PeerStateActor.start(self.factory, clock=self.clock, flush_interval=flush_interval)
        try:
            proxy = ref.proxy()
            assert proxy.ping().get(timeout=TIMEOUT) is True
            yield proxy
        finally:
            ref.stop(timeout=TIMEOUT)

    def stored(self) -> dict[str, pb.PeerState]:
        """What a fresh store on the same file sees."""
        fresh = PeerStore(self.data_dir)
        try:
            return fresh.load_all()
        finally:
            fresh.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def harness(tmp_path: Path, clock: FakeClock) -> Harness:
    return Harness(tmp_path, clock)


def sync(proxy: Any) -> None:
    """Wait until every message sent before this one has been handled."""
    assert proxy.ping().get(timeout=TIMEOUT) is True


def test_connected_is_persisted_at_once(harness: Harness, clock: FakeClock) -> None:
    with harness.running() as peers:
        peers.connected(WEB1, "web1").get(timeout=TIMEOUT)
        stored = harness.stored()[WEB1]
        assert stored.peer_instance_id == "web1"
        assert stored.state == pb.CONNECTION_STATE_CONNECTED
        assert stored.last_heartbeat_millis == 1_000_000
        assert peers.get(WEB1).get(timeout=TIMEOUT) == stored
    assert harness.store.closed


def test_connected_clears_status_message(harness: Harness) -> None:
    with harness.running() as peers:
        peers.disconnected(WEB1, pb.CONNECTION_STATE_ERROR_AUTH, "bad proof", "web1").get(
            timeout=TIMEOUT
        )
        peers.connected(WEB1, "web1").get(timeout=TIMEOUT)
        assert harness.stored()[WEB1].status_message == ""


def test_disconnected_keeps_heartbeat_and_persists(harness: Harness, clock: FakeClock) -> None:
    with harness.running() as peers:
        peers.connected(WEB1, "web1").get(timeout=TIMEOUT)
        clock.now = 1_010.5
        peers.heartbeat(WEB1).get(timeout=TIMEOUT)
        clock.now = 1_100.0
        peers.disconnected(WEB1, pb.CONNECTION_STATE_ERROR_PROTOCOL, "ids/modnos length").get(
            timeout=TIMEOUT
        )
        stored = harness.stored()[WEB1]
        assert stored.state == pb.CONNECTION_STATE_ERROR_PROTOCOL
        assert stored.status_message == "ids/modnos length"
        assert stored.last_heartbeat_millis == 1_010_500


def test_disconnected_unknown_keyid_creates_record(harness: Harness) -> None:
    with harness.running() as peers:
        peers.disconnected(DB1, pb.CONNECTION_STATE_ERROR_AUTH, "not authorized").get(
            timeout=TIMEOUT
        )
        peers.disconnected(WEB1, pb.CONNECTION_STATE_ERROR_AUTH, "revoked", "web1").get(
            timeout=TIMEOUT
        )
        stored = harness.stored()
        ended = int(harness.clock.now * 1000)
        assert stored[DB1] == pb.PeerState(
            peer_keyid=DB1, state=pb.CONNECTION_STATE_ERROR_AUTH, status_message="not authorized",
            last_disconnect_millis=ended, last_error="not authorized", last_error_millis=ended,
        )
        assert stored[WEB1].peer_instance_id == "web1"


def test_disconnected_rejects_live_or_unknown_states(harness: Harness) -> None:
    with harness.running() as peers:
        peers.disconnected.defer(WEB1, pb.CONNECTION_STATE_CONNECTED)
        peers.disconnected.defer(WEB1, 999)
        sync(peers)
        assert peers.get(WEB1).get(timeout=TIMEOUT) is None


def test_late_disconnect_from_replaced_session_is_ignored(harness: Harness) -> None:
    with harness.running() as peers:
        peers.connected(WEB1, "web1", session_id="old").get(timeout=TIMEOUT)
        peers.connected(WEB1, "web1", session_id="new").get(timeout=TIMEOUT)
        peers.disconnected(WEB1, session_id="old").get(timeout=TIMEOUT)
        assert peers.get(WEB1).get(timeout=TIMEOUT).state == pb.CONNECTION_STATE_CONNECTED
        peers.disconnected(WEB1, session_id="new").get(timeout=TIMEOUT)
        assert peers.get(WEB1).get(timeout=TIMEOUT).state == pb.CONNECTION_STATE_DISCONNECTED


class Nobody(pykka.ThreadingActor):
    """Stands in for a session: an actor whose ref the peer states hand out."""


def test_the_live_session_is_the_latest_connected_one(harness: Harness) -> None:
    old, new = Nobody.start(), Nobody.start()
    try:
        with harness.running() as peers:
            assert peers.live_session(WEB1).get(timeout=TIMEOUT) is None
            peers.connected(WEB1, "web1", session_id="old", session=old).get(timeout=TIMEOUT)
            assert peers.live_session(WEB1).get(timeout=TIMEOUT) is old
            peers.connected(WEB1, "web1", session_id="new", session=new).get(timeout=TIMEOUT)
            # A displaced session's late end changes nothing.
            peers.disconnected(WEB1, session_id="old").get(timeout=TIMEOUT)
            assert peers.live_session(WEB1).get(timeout=TIMEOUT) is new
            new.stop()
            assert peers.live_session(WEB1).get(timeout=TIMEOUT) is None
            peers.connected(WEB1, "web1", session_id="old", session=old).get(timeout=TIMEOUT)
            peers.disconnected(WEB1, session_id="old").get(timeout=TIMEOUT)
            assert peers.live_session(WEB1).get(timeout=TIMEOUT) is None
            assert peers.live_session(DB1).get(timeout=TIMEOUT) is None
    finally:
        old.stop()
        if new.is_alive():
            new.stop()


def test_restart_marks_live_peers_disconnected(harness: Harness, clock: FakeClock) -> None:
    with harness.running() as peers:
        peers.connected(WEB1, "web1").get(timeout=TIMEOUT)
        peers.disconnected(DB1, pb.CONNECTION_STATE_ERROR_AUTH, "revoked", "db1").get(
            timeout=TIMEOUT
        )
        clock.now = 1_007.0
        peers.heartbeat(WEB1).get(timeout=TIMEOUT)

    # on_stop wrote the pending heartbeat; the record still says CONNECTED on disk.
    assert harness.stored()[WEB1].state == pb.CONNECTION_STATE_CONNECTED

    clock.now = 5_000.0
    with harness.running() as peers:
        web1 = peers.get(WEB1).get(timeout=TIMEOUT)
        assert web1.state == pb.CONNECTION_STATE_DISCONNECTED
        assert web1.status_message == RESTART_STATUS_MESSAGE
        assert web1.last_heartbeat_millis == 1_007_000
        assert harness.stored()[WEB1] == web1
        db1 = peers.get(DB1).get(timeout=TIMEOUT)
        assert db1.state == pb.CONNECTION_STATE_ERROR_AUTH
        assert db1.status_message == "revoked"
        assert harness.store.saves == [[WEB1]]


def test_heartbeats_are_batched(harness: Harness, clock: FakeClock) -> None:
    with harness.running(flush_interval=30.0) as peers:
        peers.connected(WEB1, "web1").get(timeout=TIMEOUT)
        peers.connected(DB1, "db1").get(timeout=TIMEOUT)
        store = harness.store
        saves_before = len(store.saves)

        for i in range(1_000):
            clock.now = 1_000.0 + i * 0.01
            peers.heartbeat.defer(WEB1 if i % 2 else DB1)
        peers.tick.defer(1_029.9)
        sync(peers)
        assert len(store.saves) == saves_before
        assert harness.stored()[WEB1].last_heartbeat_millis == 1_000_000

        peers.tick(1_030.0).get(timeout=TIMEOUT)
        assert store.saves[saves_before:] == [[DB1, WEB1]]
        assert harness.stored()[WEB1].last_heartbeat_millis == 1_009_990

        peers.tick(2_000.0).get(timeout=TIMEOUT)
        assert len(store.saves) == saves_before + 1


def test_tick_interval_counts_from_last_write(harness: Harness, clock: FakeClock) -> None:
    with harness.running(flush_interval=10.0) as peers:
        peers.connected(WEB1, "web1").get(timeout=TIMEOUT)
        clock.now = 1_025.0
        peers.heartbeat(WEB1).get(timeout=TIMEOUT)
        peers.tick(1_025.0).get(timeout=TIMEOUT)
        saves = len(harness.store.saves)
        clock.now = 1_026.0
        peers.heartbeat(WEB1).get(timeout=TIMEOUT)
        peers.tick(1_030.0).get(timeout=TIMEOUT)
        assert len(harness.store.saves) == saves
        peers.tick(1_035.0).get(timeout=TIMEOUT)
        assert len(harness.store.saves) == saves + 1
        assert harness.stored()[WEB1].last_heartbeat_millis == 1_026_000


def test_state_change_writes_pending_heartbeats(harness: Harness, clock: FakeClock) -> None:
    with harness.running() as peers:
        peers.connected(WEB1, "web1").get(timeout=TIMEOUT)
        clock.now = 1_003.0
        peers.heartbeat(WEB1).get(timeout=TIMEOUT)
        peers.connected(DB1, "db1").get(timeout=TIMEOUT)
        assert harness.store.saves[-1] == [DB1, WEB1]
        assert harness.stored()[WEB1].last_heartbeat_millis == 1_003_000


def test_flush_writes_dirty_records(harness: Harness, clock: FakeClock) -> None:
    with harness.running() as peers:
        peers.connected(WEB1, "web1").get(timeout=TIMEOUT)
        clock.now = 1_002.0
        peers.heartbeat(WEB1).get(timeout=TIMEOUT)
        peers.flush().get(timeout=TIMEOUT)
        assert harness.stored()[WEB1].last_heartbeat_millis == 1_002_000
        saves = len(harness.store.saves)
        peers.flush().get(timeout=TIMEOUT)
        assert len(harness.store.saves) == saves


def test_heartbeat_from_unknown_peer_is_ignored(harness: Harness) -> None:
    with harness.running() as peers:
        peers.heartbeat(WEB1).get(timeout=TIMEOUT)
        peers.flush().get(timeout=TIMEOUT)
        assert peers.list().get(timeout=TIMEOUT) == []
        assert harness.store.saves == []


def test_remote_config_and_resources_persisted(harness: Harness) -> None:
    config = pb.RemoteConfig(
        modno=2, version=1, repos=[pb.Repo(id="nas", guid="b8e1")], plans=[pb.Plan(id="n")]
    )
    with harness.running() as peers:
        peers.connected(WEB1, "web1").get(timeout=TIMEOUT)
        peers.set_remote_config(WEB1, config).get(timeout=TIMEOUT)
        peers.set_resources(WEB1, ("nas", "usb"), ("nightly",)).get(timeout=TIMEOUT)
        stored = harness.stored()[WEB1]
        assert stored.remote_config == config
        assert list(stored.known_repos) == ["nas", "usb"]
        assert list(stored.known_plans) == ["nightly"]

        saves = len(harness.store.saves)
        peers.set_remote_config(
            WEB1, pb.RemoteConfig(modno=2, version=1, repos=config.repos, plans=config.plans)
        ).get(timeout=TIMEOUT)
        peers.set_resources(WEB1, ("nas", "usb"), ("nightly",)).get(timeout=TIMEOUT)
        assert len(harness.store.saves) == saves

        peers.set_resources(WEB1, (), ()).get(timeout=TIMEOUT)
        assert list(harness.stored()[WEB1].known_repos) == []


def test_resources_for_unknown_peer_are_ignored(harness: Harness) -> None:
    with harness.running() as peers:
        peers.set_remote_config(WEB1, pb.RemoteConfig(modno=1)).get(timeout=TIMEOUT)
        peers.set_resources(WEB1, ("nas",), ()).get(timeout=TIMEOUT)
        assert peers.get(WEB1).get(timeout=TIMEOUT) is None


def test_get_and_list_return_fresh_sorted_copies(harness: Harness) -> None:
    with harness.running() as peers:
        peers.connected("ed25519.b", "web1").get(timeout=TIMEOUT)
        peers.connected("ed25519.a", "web1").get(timeout=TIMEOUT)
        peers.connected("ed25519.z", "db1").get(timeout=TIMEOUT)
        listed = peers.list().get(timeout=TIMEOUT)
        assert [(s.peer_instance_id, s.peer_keyid) for s in listed] == [
            ("db1", "ed25519.z"),
            ("web1", "ed25519.a"),
            ("web1", "ed25519.b"),
        ]
        listed[0].state = pb.CONNECTION_STATE_ERROR_INTERNAL
        got = peers.get("ed25519.z").get(timeout=TIMEOUT)
        assert got.state == pb.CONNECTION_STATE_CONNECTED
        got.peer_instance_id = "changed"
        assert peers.get("ed25519.z").get(timeout=TIMEOUT).peer_instance_id == "db1"
        assert peers.get("ed25519.none").get(timeout=TIMEOUT) is None


def test_sender_mutating_config_after_send_changes_nothing(harness: Harness) -> None:
    with harness.running() as peers:
        peers.connected(WEB1, "web1").get(timeout=TIMEOUT)
        config = pb.RemoteConfig(modno=1)
        peers.set_remote_config(WEB1, config).get(timeout=TIMEOUT)
        config.modno = 99
        assert peers.get(WEB1).get(timeout=TIMEOUT).remote_config.modno == 1


def test_subscribers_notified_on_state_change_not_heartbeat(harness: Harness) -> None:
    received: queue.Queue[pb.PeerState] = queue.Queue()
    with harness.running() as peers:
        token = peers.subscribe(received.put).get(timeout=TIMEOUT)
        peers.connected(WEB1, "web1").get(timeout=TIMEOUT)
        assert received.get(timeout=TIMEOUT).state == pb.CONNECTION_STATE_CONNECTED

        for _ in range(10):
            peers.heartbeat.defer(WEB1)
        peers.tick.defer(10_000.0)
        sync(peers)
        assert received.empty()

        peers.set_remote_config(WEB1, pb.RemoteConfig(modno=3)).get(timeout=TIMEOUT)
        assert received.get(timeout=TIMEOUT).remote_config.modno == 3
        peers.set_resources(WEB1, ("nas",), ()).get(timeout=TIMEOUT)
        assert list(received.get(timeout=TIMEOUT).known_repos) == ["nas"]
        peers.disconnected(WEB1, message="silent for 45 s").get(timeout=TIMEOUT)
        note = received.get(timeout=TIMEOUT)
        assert (note.state, note.status_message) == (
            pb.CONNECTION_STATE_DISCONNECTED,
            "silent for 45 s",
        )

        peers.unsubscribe(token).get(timeout=TIMEOUT)
        peers.connected(WEB1, "web1").get(timeout=TIMEOUT)
        assert received.empty()


def test_listeners_get_their_own_copies(harness: Harness) -> None:
    first: queue.Queue[pb.PeerState] = queue.Queue()
    second: queue.Queue[pb.PeerState] = queue.Queue()

    def mutating(state: pb.PeerState) -> None:
        state.peer_instance_id = "mangled"
        first.put(state)

    with harness.running() as peers:
        peers.subscribe(mutating).get(timeout=TIMEOUT)
        peers.subscribe(second.put).get(timeout=TIMEOUT)
        peers.connected(WEB1, "web1").get(timeout=TIMEOUT)
        assert first.get(timeout=TIMEOUT).peer_instance_id == "mangled"
        assert second.get(timeout=TIMEOUT).peer_instance_id == "web1"
        assert peers.get(WEB1).get(timeout=TIMEOUT).peer_instance_id == "web1"


def test_raising_listener_does_not_break_actor_or_others(harness: Harness) -> None:
    received: queue.Queue[pb.PeerState] = queue.Queue()

    def broken(_state: pb.PeerState) -> None:
        raise RuntimeError("listener bug")

    with harness.running() as peers:
        peers.subscribe(broken).get(timeout=TIMEOUT)
        peers.subscribe(received.put).get(timeout=TIMEOUT)
        peers.connected.defer(WEB1, "web1")
        assert received.get(timeout=TIMEOUT).peer_keyid == WEB1
        peers.disconnected.defer(WEB1)
        assert received.get(timeout=TIMEOUT).state == pb.CONNECTION_STATE_DISCONNECTED
        sync(peers)
        assert harness.stored()[WEB1].state == pb.CONNECTION_STATE_DISCONNECTED


def test_failing_store_does_not_kill_actor_and_change_is_retried(
    harness: Harness, clock: FakeClock
) -> None:
    received: queue.Queue[pb.PeerState] = queue.Queue()
    with harness.running(flush_interval=30.0) as peers:
        peers.subscribe(received.put).get(timeout=TIMEOUT)
        harness.store.fail_saves = True
        peers.connected.defer(WEB1, "web1")
        peers.heartbeat.defer(WEB1)
        peers.set_resources.defer(WEB1, ("nas",), ())
        peers.tick.defer(5_000.0)
        sync(peers)
        assert received.get(timeout=TIMEOUT).state == pb.CONNECTION_STATE_CONNECTED
        assert harness.stored() == {}
        assert peers.get(WEB1).get(timeout=TIMEOUT).known_repos == ["nas"]
        with pytest.raises(StoreError, match="disk full"):
            peers.flush().get(timeout=TIMEOUT)

        harness.store.fail_saves = False
        peers.tick(5_001.0).get(timeout=TIMEOUT)
        assert harness.store.saves == [[WEB1]]
        stored = harness.stored()[WEB1]
        assert stored.state == pb.CONNECTION_STATE_CONNECTED
        assert list(stored.known_repos) == ["nas"]


def test_failed_write_retried_by_flush_and_on_stop(harness: Harness, clock: FakeClock) -> None:
    with harness.running() as peers:
        harness.store.fail_saves = True
        peers.connected(WEB1, "web1").get(timeout=TIMEOUT)
        harness.store.fail_saves = False
        peers.flush().get(timeout=TIMEOUT)
        assert WEB1 in harness.stored()

        harness.store.fail_saves = True
        peers.disconnected(WEB1, message="gone").get(timeout=TIMEOUT)
        harness.store.fail_saves = False
    assert harness.stored()[WEB1].status_message == "gone"
    assert read_peer_states(harness.data_dir)[0].status_message == "gone"


def test_store_that_cannot_open_stops_the_actor(tmp_path: Path) -> None:
    def broken_factory() -> PeerStore:
        raise StoreError("cannot open")

    ref = PeerStateActor.start(broken_factory)
    try:
        with pytest.raises(pykka.ActorDeadError):
            ref.proxy().ping().get(timeout=TIMEOUT)
    finally:
        ref.stop(block=False)


def test_real_clock_is_the_default(tmp_path: Path) -> None:
    def factory() -> PeerStore:
        return PeerStore(tmp_path)

    ref = PeerStateActor.start(factory)
    try:
        peers = ref.proxy()
        peers.connected(WEB1, "web1").get(timeout=TIMEOUT)
        assert peers.get(WEB1).get(timeout=TIMEOUT).last_heartbeat_millis > 1_600_000_000_000
    finally:
        ref.stop(timeout=TIMEOUT)


# -- refusals after a valid PROOF ------------------------------------------------------------


def test_refusals_after_a_valid_proof_are_warnings_at_most_once_a_minute_per_key(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with harness.running() as peers:
        for _ in range(50):
            peers.refused(WEB1, "web1", "client web1 is not verified").get(timeout=TIMEOUT)
        peers.refused(DB1, "db1", "client db1 is not authorized").get(timeout=TIMEOUT)
        harness.clock.now += 61
        peers.refused(WEB1, "web1", "client web1 is not verified").get(timeout=TIMEOUT)
        assert peers.get(WEB1).get(timeout=TIMEOUT) is None  # no state for a refused key
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"refused web1 ({WEB1}) after a valid PROOF: client web1 is not verified",
        f"refused db1 ({DB1}) after a valid PROOF: client db1 is not authorized",
        f"refused web1 ({WEB1}) after a valid PROOF: client web1 is not verified "
        "(49 more refusals of this key in the last 60s not logged)",
    ]


def test_the_refusal_log_forgets_old_keys_when_full() -> None:
    refusals = RefusalLog(window=60, max_keys=4)
    for index in range(4):
        assert refusals.refused(f"k{index}", "x", "no", now=float(index))
    assert not refusals.refused("k0", "x", "no", now=10.0)
    # Full of keys seen within the window: a new key still gets its line.
    assert refusals.refused("k9", "x", "no", now=11.0)
    assert refusals.refused("k0", "x", "no", now=70.0)


# -- keys waiting to be authorized (`synchub pending`) -----------------------------------------


def test_pending_keys_are_bounded_evict_the_least_recent_and_expire() -> None:
    keys = PendingKeys(max_keys=3, max_age=100.0)
    for index in range(3):
        keys.knock(f"k{index}", f"web{index}", f"10.0.0.{index}", "not authorized", float(index))
    keys.knock("k0", "web0", "", "not verified", 5.0)  # heard again: the most recent now
    assert [k.keyid for k in keys.entries(6.0)] == ["k0", "k2", "k1"]
    again = keys.entries(6.0)[0]
    assert (again.attempts, again.first_seen, again.last_seen) == (2, 0.0, 5.0)
    assert again.source == "10.0.0.0"  # an unknown address keeps the one known
    assert again.reason == "not verified"
    keys.knock("k3", "web3", "10.0.0.3", "not authorized", 7.0)  # full: k1 goes
    assert [k.keyid for k in keys.entries(7.0)] == ["k3", "k0", "k2"]
    assert [k.keyid for k in keys.entries(102.5)] == ["k3", "k0"]  # k2 last heard at 2
    keys.forget("k0")
    keys.forget("nobody")
    assert [k.keyid for k in keys.entries(102.5)] == ["k3"]
    assert keys.entries(500.0) == ()


def test_refusals_of_an_authorization_wait_until_the_key_connects(
    harness: Harness, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    with harness.running() as proxy:
        proxy.refused(WEB1, "web1", "client web1 (ed25519.web1) is not authorized",
                      source="10.0.0.5")
        proxy.refused(DB1, "db1", "the hub cannot reach its database")  # not an authorization
        sync(proxy)
        clock.now += 30
        proxy.refused(WEB1, "web1", "client web1 (ed25519.web1) is not verified", source="")
        [waiting] = proxy.pending().get(timeout=TIMEOUT)
        assert waiting == PendingKey(WEB1, "web1", "10.0.0.5", 2, 1000.0, 1030.0,
                                     "client web1 (ed25519.web1) is not verified")
        proxy.connected(WEB1, "web1", session_id="s1")
        assert proxy.pending().get(timeout=TIMEOUT) == ()
        assert harness.stored().keys() == {WEB1}  # the waiting list is not persisted
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"refused web1 ({WEB1}) after a valid PROOF: client web1 (ed25519.web1) is not "
        "authorized; `synchub pending` lists it",
        f"refused db1 ({DB1}) after a valid PROOF: the hub cannot reach its database",
    ]
