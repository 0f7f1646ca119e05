"""AlertBook on its own, time passed in: when incidents fire, once, and when they resolve."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.alerting import AlertBook, Transition, encode_event
from hub.config import AlertRule, AuthorizedClient, Config
from hub.fleet import PlanSummary, Run, RunChange
from hub.pb import synchub_pb2 as pb
from hub.store import StoredIncident

HUB = "hub-1"
KEY = "ed25519.web1"
START = 1_700_000_000_000
FAILED = AlertRule("backup-failed", "operation_failed", webhook="http://127.0.0.1:9/x",
                   plans=("nightly",))
STALE = AlertRule("nightly-missing", "plan_stale", after=3600, webhook="http://127.0.0.1:9/x")
LOST = AlertRule("host-gone", "peer_lost", after=900, webhook="http://127.0.0.1:9/x")


def config(*rules: AlertRule, verified: bool = True, instance: str = "web1") -> Config:
    return Config(
        path=None, instance=HUB, data_dir=Path("/nonexistent"), alerts=rules,
        authorized_clients=(AuthorizedClient(instance, KEY, keyid_verified=verified),),
    )


def change(op_id: int, status: int, *, previous: int | None = None, plan: str = "nightly",
           instance: str = "web1", at: int = START) -> RunChange:
    return RunChange(op_id, instance, plan, "nas", "guid-nas", status, previous, at, at + 1000,
                     f"run {op_id}")


def book(*rules: AlertRule, started: int = START, grace: float = 300.0) -> AlertBook:
    alerts = AlertBook(HUB, started, grace)
    alerts.configure(config(*rules), started)
    return alerts


def kinds(transitions: list[Transition]) -> list[tuple[str, str, str]]:
    return [(t.rule.name, t.kind, t.subject.key) for t in transitions]


def test_a_failure_fires_once_per_incident_and_a_success_resolves_it() -> None:
    alerts = book(FAILED)
    fired = alerts.on_run(change(1, pb.STATUS_ERROR), START + 10)
    assert kinds(fired) == [("backup-failed", "firing", "web1/nightly")]
    event = fired[0].event
    assert (event["operation_id"], event["status"], event["instance"]) == (1, "error", "web1")
    assert event["time"] == "2023-11-14T22:13:20Z"
    assert alerts.on_run(change(2, pb.STATUS_ERROR), START + 20) == []
    assert alerts.on_run(change(1, pb.STATUS_ERROR, previous=pb.STATUS_INPROGRESS), START) == []
    assert [a.key for a in alerts.active()] == ["web1/nightly"]
    resolved = alerts.on_run(change(3, pb.STATUS_SUCCESS), START + 30)
    assert kinds(resolved) == [("backup-failed", "resolved", "web1/nightly")]
    assert resolved[0].event["since"] == "2023-11-14T22:13:20Z"
    assert alerts.active() == []
    assert kinds(alerts.on_run(change(4, pb.STATUS_ERROR), START + 40))[0][1] == "firing"


def test_filters_and_authorization_decide_what_is_watched() -> None:
    alerts = book(FAILED)
    assert alerts.on_run(change(1, pb.STATUS_ERROR, plan="hourly"), START) == []
    assert alerts.on_run(change(2, pb.STATUS_ERROR, instance="stranger"), START) == []
    assert alerts.on_run(change(3, pb.STATUS_ERROR, instance=HUB), START) != []  # the hub itself
    only_db = AlertRule("db", "operation_failed", instances=("db1",), repos=("nas",),
                        webhook="http://x")
    assert book(only_db).on_run(change(4, pb.STATUS_ERROR), START) == []


def test_plan_stale_fires_after_its_time_counting_from_the_last_success() -> None:
    alerts = book(STALE, grace=0)
    alerts.on_run(change(1, pb.STATUS_SUCCESS, at=START), START)
    deadline = START + 1000 + 3600 * 1000
    assert alerts.on_tick(deadline - 1) == []
    fired = alerts.on_tick(deadline)
    assert kinds(fired) == [("nightly-missing", "firing", "web1/nightly")]
    assert "has not succeeded for 1h" in fired[0].event["message"]
    assert alerts.on_tick(deadline + 60_000) == []
    resolved = alerts.on_run(change(2, pb.STATUS_SUCCESS, at=deadline + 60_000), deadline)
    assert kinds(resolved) == [("nightly-missing", "resolved", "web1/nightly")]


def test_a_plan_that_never_succeeded_is_stale_from_its_first_run() -> None:
    alerts = book(STALE, grace=0)
    alerts.on_run(change(1, pb.STATUS_ERROR, at=START), START)
    assert alerts.on_tick(START + 3600 * 1000 - 1) == []
    assert "never succeeded" in alerts.on_tick(START + 3600 * 1000)[0].event["message"]


def test_the_hubs_downtime_does_not_count() -> None:
    summary = PlanSummary("web1", "nightly", "nas", "guid-nas",
                          (Run(1, pb.STATUS_SUCCESS, START, START, ""),), START, START)
    restarted = START + 10 * 3600 * 1000  # the hub was down for 10 hours
    alerts = AlertBook(HUB, restarted, 300)
    alerts.seed([summary], [pb.PeerState(peer_keyid=KEY, peer_instance_id="web1",
                                         state=pb.CONNECTION_STATE_DISCONNECTED,
                                         last_heartbeat_millis=START)])
    alerts.configure(config(STALE, LOST), restarted)
    assert alerts.on_tick(restarted + 299_999) == []
    late = alerts.on_tick(restarted + 300_000)
    assert sorted(kinds(late)) == [("host-gone", "firing", KEY),
                                   ("nightly-missing", "firing", "web1/nightly")]


def test_peer_lost_fires_after_its_time_and_resolves_on_connect() -> None:
    alerts = book(LOST, grace=0)
    connected = pb.PeerState(peer_keyid=KEY, peer_instance_id="web1",
                             state=pb.CONNECTION_STATE_CONNECTED, last_heartbeat_millis=START)
    assert alerts.on_peer(connected, START) == []
    gone = pb.PeerState()
    gone.CopyFrom(connected)
    gone.state = pb.CONNECTION_STATE_DISCONNECTED
    gone.status_message = "no frame for 45s"
    assert alerts.on_peer(gone, START + 5_000) == []
    assert alerts.on_tick(START + 899_999) == []
    fired = alerts.on_tick(START + 900_000)
    assert kinds(fired) == [("host-gone", "firing", KEY)]
    assert fired[0].event["status"] == "disconnected"
    assert "no frame for 45s" in fired[0].event["message"]
    assert alerts.on_tick(START + 2_000_000) == []
    back = alerts.on_peer(connected, START + 2_000_000)
    assert kinds(back) == [("host-gone", "resolved", KEY)]


def test_restored_incidents_stay_firing_and_still_resolve() -> None:
    event = encode_event({"instance": "web1", "plan": "nightly", "repo": "nas",
                          "message": "operation 1 failed"})
    alerts = AlertBook(HUB, START, 300)
    alerts.restore([StoredIncident("backup-failed", "web1/nightly", START - 5, event)])
    assert alerts.configure(config(FAILED), START) == []
    assert [a.message for a in alerts.active()] == ["operation 1 failed"]
    assert alerts.on_run(change(2, pb.STATUS_ERROR), START) == []
    assert kinds(alerts.on_run(change(3, pb.STATUS_SUCCESS), START)) == [
        ("backup-failed", "resolved", "web1/nightly")]


def test_config_changes_resolve_or_forget_what_is_no_longer_watched() -> None:
    alerts = book(FAILED, LOST, grace=0)
    alerts.on_run(change(1, pb.STATUS_ERROR), START)
    alerts.on_peer(pb.PeerState(peer_keyid=KEY, peer_instance_id="web1",
                                state=pb.CONNECTION_STATE_DISCONNECTED,
                                last_heartbeat_millis=START), START)
    assert len(alerts.on_tick(START + 900_000)) == 1
    revoked = alerts.configure(config(FAILED, LOST, verified=False), START + 1)
    assert sorted(kinds(revoked)) == [("backup-failed", "resolved", "web1/nightly"),
                                      ("host-gone", "resolved", KEY)]
    assert all("no longer covered" in t.event["message"] for t in revoked)
    alerts = book(FAILED)
    alerts.on_run(change(1, pb.STATUS_ERROR), START)
    removed = alerts.configure(config(), START + 1)
    assert [(t.quiet, t.subject.key) for t in removed] == [(True, "web1/nightly")]
    assert alerts.active() == []


@pytest.mark.parametrize("rule", [FAILED, STALE, LOST])
def test_every_event_has_the_documented_fields(rule: AlertRule) -> None:
    alerts = book(rule, grace=0)
    alerts.on_peer(pb.PeerState(peer_keyid=KEY, peer_instance_id="web1",
                                state=pb.CONNECTION_STATE_DISCONNECTED,
                                last_heartbeat_millis=START), START)
    fired = alerts.on_run(change(1, pb.STATUS_ERROR), START) + alerts.on_tick(START + 10**8)
    [event] = [t.event for t in fired if t.rule.name == rule.name]
    assert set(event) == {"alert", "event", "when", "instance", "repo", "plan", "operation_id",
                          "status", "message", "hub", "time", "incident", "since", "test"}
    assert (event["alert"], event["event"], event["when"], event["hub"]) == (
        rule.name, "firing", rule.when, HUB)
