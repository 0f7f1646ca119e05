"""FleetActor and AlertActor with the real Oplog, PeerState and Config actors on SQLite
files, and time told to them: what the fleet shows, what other processes wrote, the
run changes it publishes, and incidents recorded before their events go out."""

from __future__ import annotations

import contextlib
import dataclasses
import queue
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast
from unittest.mock import MagicMock, create_autospec

import pykka
import pytest

from actors import (
    AlertActor,
    AlertProxy,
    ConfigActor,
    ConfigProxy,
    FleetActor,
    FleetProxy,
    OplogActor,
    OplogProxy,
    PeerStateActor,
    PeerStateProxy,
    RunChanges,
    tell,
)
from hub.alerting import DeliveryJob
from hub.config import Config, load_config
from hub.pb import synchub_pb2 as pb
from hub.store import (
    AlertLeadership,
    PeerStore,
    SqliteAlertStore,
    SqliteOplogReader,
    SqliteOplogStore,
)
from synchub_testing import wait_until

TIMEOUT = 5.0
NOW = 1_700_000_000.0


def local(message: str, status: int = pb.STATUS_SUCCESS, plan: str = "nightly") -> pb.Operation:
    return pb.Operation(instance_id="hub-1", plan_id=plan, status=status,
                        unix_time_start_ms=int(NOW * 1000), display_message=message)


@dataclass
class Rig:
    config: ConfigProxy
    oplog: OplogProxy
    peers: PeerStateProxy
    fleet: FleetProxy
    deliveries: queue.Queue[DeliveryJob]
    path: Path

    def start_alerts(self) -> AlertProxy:
        ref = AlertActor.start(
            hub_instance="hub-1", config=self.config, fleet=self.fleet, peers=self.peers,
            store_factory=lambda: SqliteAlertStore(self.path), deliver=self.deliveries.put,
            clock=lambda: NOW, startup_grace=0,
        )
        proxy = cast(AlertProxy, ref.proxy())
        assert proxy.ping().get(timeout=TIMEOUT)  # subscribed and restored by now
        return proxy


def _config(tmp_path: Path) -> Config:
    path = tmp_path / "synchub.toml"
    path.write_text(f"""\
instance = "hub-1"
data_dir = "{tmp_path}"
[hub]
[[alerts]]
name = "backup-failed"
when = "operation_failed"
webhook = "http://127.0.0.1:9/hook"
command = ["/bin/true"]
""")
    return load_config(path)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    oplog_path = tmp_path / "oplog.sqlite"
    refs: list[pykka.ActorRef[pykka.Actor]] = []
    try:
        config = ConfigActor.start(_config(tmp_path))
        refs.append(config)
        oplog = OplogActor.start(lambda: SqliteOplogStore(oplog_path))
        refs.append(oplog)
        peers = PeerStateActor.start(lambda: PeerStore(tmp_path))
        refs.append(peers)
        oplog_proxy = cast(OplogProxy, oplog.proxy())
        peers_proxy = cast(PeerStateProxy, peers.proxy())
        oplog_proxy.ping().get(timeout=TIMEOUT)  # the schema exists once it answers
        fleet = FleetActor.start(
            oplog=oplog_proxy, peers=peers_proxy,
            reader_factory=lambda: SqliteOplogReader(oplog_path), clock=lambda: NOW,
        )
        refs.append(fleet)
        fleet_proxy = cast(FleetProxy, fleet.proxy())
        assert fleet_proxy.ping().get(timeout=TIMEOUT)  # built from the store by now
        yield Rig(cast(ConfigProxy, config.proxy()), oplog_proxy, peers_proxy, fleet_proxy,
                  queue.Queue(), tmp_path)
    finally:
        for ref in reversed(refs):
            with contextlib.suppress(pykka.ActorDeadError):
                ref.stop(block=True, timeout=TIMEOUT)
        pykka.ActorRegistry.stop_all(block=True, timeout=TIMEOUT)


def test_the_fleet_follows_the_oplog_and_publishes_run_changes(rig: Rig) -> None:
    changes: queue.Queue[RunChanges] = queue.Queue()
    rig.fleet.subscribe(changes.put).get(timeout=TIMEOUT)
    [first] = rig.oplog.add([local("started", pb.STATUS_INPROGRESS)]).get(timeout=TIMEOUT)
    [change] = changes.get(timeout=TIMEOUT)
    assert (change.op_id, change.status, change.previous) == (
        first.id, pb.STATUS_INPROGRESS, None)
    first.status = pb.STATUS_ERROR
    rig.oplog.update([first]).get(timeout=TIMEOUT)
    [change] = changes.get(timeout=TIMEOUT)
    assert (change.status, change.previous) == (pb.STATUS_ERROR, pb.STATUS_INPROGRESS)
    snapshot = rig.fleet.snapshot().get(timeout=TIMEOUT)
    [plan] = snapshot.plans
    assert [(r.op_id, r.status) for r in plan.runs] == [(first.id, pb.STATUS_ERROR)]
    assert [f.op_id for f in snapshot.failures] == [first.id]
    rig.oplog.delete([first.id]).get(timeout=TIMEOUT)
    wait_until(lambda: rig.fleet.snapshot().get(timeout=TIMEOUT).failures == (),
               what="the delete")


def test_operations_other_processes_wrote_arrive_on_a_tick(rig: Rig) -> None:
    other = SqliteOplogStore(rig.path / "oplog.sqlite")
    try:
        [written] = other.add_local([local("synchub run on the hub's machine")])
    finally:
        other.close()
    version = rig.fleet.version().get(timeout=TIMEOUT)
    assert rig.fleet.snapshot().get(timeout=TIMEOUT).plans == ()
    tell(rig.fleet.tick, NOW)
    wait_until(lambda: rig.fleet.version().get(timeout=TIMEOUT) > version, what="the tick")
    [plan] = rig.fleet.snapshot().get(timeout=TIMEOUT).plans
    assert [r.op_id for r in plan.runs] == [written.id]


def test_what_other_hubs_stored_is_read_by_id_on_the_next_tick(rig: Rig) -> None:
    """Another hub's writes: a second writer on the same store, and the ids its notices
    would carry, told as the ClusterLink tells them."""
    changes: queue.Queue[RunChanges] = queue.Queue()
    rig.fleet.subscribe(changes.put).get(timeout=TIMEOUT)

    def peer_op(op_id: int, status: int, modno: int = 1) -> pb.Operation:
        return pb.Operation(id=op_id, flow_id=op_id, modno=modno, instance_id="web1",
                            plan_id="nightly", repo_guid="g", status=status,
                            unix_time_start_ms=int(NOW * 1000), display_message=f"op {op_id}")

    other = SqliteOplogStore(rig.path / "oplog.sqlite")
    try:
        first = other.apply_remote("ed25519.web1", [peer_op(1, pb.STATUS_INPROGRESS),
                                                   peer_op(2, pb.STATUS_SUCCESS)], [],
                                   peer_instance_id="web1").created
        tell(rig.fleet.tick, NOW)  # the local feed has none of a peer's operations
        assert rig.fleet.snapshot().get(timeout=TIMEOUT).plans == ()
        tell(rig.fleet.stored_elsewhere, ((first[0].id, first[1].id),))
        tell(rig.fleet.tick, NOW)
        [plan] = rig.fleet.snapshot().get(timeout=TIMEOUT).plans
        assert (plan.instance, sorted(r.op_id for r in plan.runs)) == (
            "web1", sorted(op.id for op in first))
        assert len(changes.get(timeout=TIMEOUT)) == 2

        # A change of status, announced by id: the alerts hear it as a run change.
        other.apply_remote("ed25519.web1", [peer_op(1, pb.STATUS_ERROR, modno=2)], [],
                           peer_instance_id="web1")
        tell(rig.fleet.stored_elsewhere, ((first[0].id, first[0].id),))
        tell(rig.fleet.tick, NOW)
        [change] = changes.get(timeout=TIMEOUT)
        assert (change.op_id, change.status, change.previous) == (
            first[0].id, pb.STATUS_ERROR, pb.STATUS_INPROGRESS)

        # Notices missed (the link was deaf): a catch-up reads every id above the highest.
        later = other.apply_remote("ed25519.web1", [peer_op(3, pb.STATUS_ERROR)], [],
                                   peer_instance_id="web1").created
        tell(rig.fleet.catch_up)
        tell(rig.fleet.tick, NOW)
        [change] = changes.get(timeout=TIMEOUT)
        assert (change.op_id, change.status) == (later[0].id, pb.STATUS_ERROR)
        assert changes.empty()
    finally:
        other.close()


def test_the_fleet_is_built_from_the_store_at_start(rig: Rig, tmp_path: Path) -> None:
    rig.oplog.add([local(f"run {n}") for n in range(3)]).get(timeout=TIMEOUT)
    second = FleetActor.start(
        oplog=rig.oplog, peers=rig.peers,
        reader_factory=lambda: SqliteOplogReader(tmp_path / "oplog.sqlite"), clock=lambda: NOW,
    )
    try:
        [plan] = cast(FleetProxy, second.proxy()).snapshot().get(timeout=TIMEOUT).plans
        assert len(plan.runs) == 3
    finally:
        second.stop(block=True, timeout=TIMEOUT)


def test_alerts_are_recorded_before_they_go_out_and_survive_a_restart(rig: Rig) -> None:
    alerts = rig.start_alerts()
    rig.oplog.add([local("broke", pb.STATUS_ERROR)]).get(timeout=TIMEOUT)
    jobs = sorted((rig.deliveries.get(timeout=TIMEOUT), rig.deliveries.get(timeout=TIMEOUT)),
                  key=lambda j: j.target)
    assert [j.target for j in jobs] == ["command", "webhook"]
    assert all('"event":"firing"' in j.event for j in jobs)
    store = SqliteAlertStore(rig.path)
    try:
        assert [i.key for i in store.active()] == ["hub-1/nightly"]
        assert sorted(d.id for d in store.pending()) == sorted(j.delivery_id for j in jobs)
    finally:
        store.close()
    tell(alerts.delivered, jobs[0].delivery_id, True)
    [active] = alerts.active().get(timeout=TIMEOUT)  # the mailbox is in order
    assert active.alert == "backup-failed"
    alerts.actor_ref.stop(block=True, timeout=TIMEOUT)

    restarted = rig.start_alerts()
    [again] = [rig.deliveries.get(timeout=TIMEOUT)]  # only the undelivered one, once more
    assert (again.delivery_id, again.target) == (jobs[1].delivery_id, jobs[1].target)
    rig.oplog.add([local("broke again", pb.STATUS_ERROR)]).get(timeout=TIMEOUT)
    [firing] = restarted.active().get(timeout=TIMEOUT)
    assert firing.key == "hub-1/nightly"
    assert rig.deliveries.empty()
    rig.oplog.add([local("fixed", pb.STATUS_SUCCESS)]).get(timeout=TIMEOUT)
    resolved = rig.deliveries.get(timeout=TIMEOUT)
    assert '"event":"resolved"' in resolved.event


def test_one_hub_of_a_cluster_delivers_and_another_takes_over_what_it_left(
    rig: Rig,
) -> None:
    """Two hubs' AlertActors on one alert store; which leads is an autospec'd
    AlertLeadership each."""

    def start(name: str, leadership: MagicMock) -> AlertProxy:
        ref = AlertActor.start(
            hub_instance="hub-1", config=rig.config, fleet=rig.fleet, peers=rig.peers,
            store_factory=lambda: SqliteAlertStore(rig.path),
            deliver=lambda job: rig.deliveries.put(dataclasses.replace(
                job, target=f"{name}:{job.target}")),
            clock=lambda: NOW, startup_grace=0, leadership_factory=lambda: leadership,
            retry_lead=5.0,
        )
        proxy = cast(AlertProxy, ref.proxy())
        assert proxy.ping().get(timeout=TIMEOUT)
        return proxy

    lead_a, lead_b = (create_autospec(AlertLeadership, instance=True) for _ in "ab")
    lead_a.try_lead.return_value, lead_b.try_lead.return_value = True, False
    lead_a.still_leading.return_value = True
    hub_a, hub_b = start("a", lead_a), start("b", lead_b)
    assert hub_a.leading().get(timeout=TIMEOUT) and not hub_b.leading().get(timeout=TIMEOUT)

    rig.oplog.add([local("broke", pb.STATUS_ERROR)]).get(timeout=TIMEOUT)
    jobs = sorted((rig.deliveries.get(timeout=TIMEOUT), rig.deliveries.get(timeout=TIMEOUT)),
                  key=lambda j: j.target)
    assert [j.target for j in jobs] == ["a:command", "a:webhook"]  # hub b judged nothing
    [shown] = hub_b.active().get(timeout=TIMEOUT)  # what hub a recorded
    assert (shown.alert, shown.key, shown.when) == ("backup-failed", "hub-1/nightly",
                                                    "operation_failed")
    tell(hub_a.delivered, jobs[0].delivery_id, True)
    hub_a.active().get(timeout=TIMEOUT)  # the mailbox is in order: delivered is done
    hub_a.actor_ref.stop(block=True, timeout=TIMEOUT)  # the webhook's still in the outbox
    lead_a.close.assert_called_once()

    lead_b.try_lead.return_value = True
    lead_b.still_leading.return_value = True
    tell(hub_b.tick, NOW + 1)
    [again] = [rig.deliveries.get(timeout=TIMEOUT)]
    assert (again.delivery_id, again.target) == (jobs[1].delivery_id, "b:webhook")
    assert hub_b.leading().get(timeout=TIMEOUT)
    rig.oplog.add([local("broke again", pb.STATUS_ERROR)]).get(timeout=TIMEOUT)
    [firing] = hub_b.active().get(timeout=TIMEOUT)
    assert firing.key == "hub-1/nightly" and rig.deliveries.empty()  # not fired twice

    lead_b.still_leading.return_value = False  # e.g. the database restarted
    tell(hub_b.tick, NOW + 2)
    assert not hub_b.leading().get(timeout=TIMEOUT)
    rig.oplog.add([local("fixed", pb.STATUS_SUCCESS)]).get(timeout=TIMEOUT)
    hub_b.active().get(timeout=TIMEOUT)
    assert rig.deliveries.empty()  # standing by, it delivers nothing
    assert lead_b.try_lead.call_count == 2  # at start, then at its first standby tick
