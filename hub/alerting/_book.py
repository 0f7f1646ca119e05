"""AlertBook: which incidents are firing, decided from runs, peer states, config and time.

No I/O and no clock of its own: every input carries its time (``now_ms``), so tests
drive it without waiting. Each input returns the ``Transition`` s it caused; the
AlertActor records them and hands their events to the deliveries.

Incidents (one per alert and subject, fired once, resolved once):

- ``operation_failed``, subject (instance, plan): fires when one of its operations
  reaches STATUS_ERROR, resolves at the plan's next STATUS_SUCCESS.
- ``plan_stale``, subject (instance, plan) with a plan id: fires when the plan has had
  no success for ``after`` (counted from its last success, or from its first run when
  it never succeeded), resolves at its next success.
- ``peer_lost``, subject a peer's keyid: fires when an authorized peer has not been
  connected for ``after`` (counted from its last heartbeat), resolves when it connects.

The hub's own downtime does not count: no deadline falls earlier than the hub's
start plus ``grace`` (``min(after, startup_grace)``), so peers have time to reconnect
and deliver what they ran before anything is judged stale or lost. A subject that
leaves an alert's reach (filters changed, client revoked) resolves; an incident whose
alert is removed from the configuration is dropped without an event.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from hub.alerting._events import EventKind, Subject, alert_event, rfc3339, subject_of
from hub.alerting._watch import PeerWatch, PlanWatch, describe_seconds
from hub.config import AlertRule, Config
from hub.fleet import CONNECTION_STATE_NAMES, PlanSummary, RunChange, status_name
from hub.pb import synchub_pb2 as pb
from hub.store import StoredIncident

STARTUP_GRACE_SECONDS: Final = 300.0


@dataclass(frozen=True, slots=True)
class Transition:
    """An incident that fired or resolved; ``quiet`` ones are only forgotten (no event)."""

    rule: AlertRule
    subject: Subject
    kind: EventKind
    event: dict[str, Any]
    time_ms: int
    quiet: bool = False


@dataclass(frozen=True, slots=True)
class ActiveAlert:
    """A firing incident, as ``synchub alerts`` and the dashboard show it."""

    alert: str
    when: str
    key: str
    fired_ms: int
    instance: str | None
    repo: str | None
    plan: str | None
    message: str


def active_alert_dict(alert: ActiveAlert) -> dict[str, Any]:
    """A firing incident as ``synchub alerts --json`` and ``/api/alerts`` show it."""
    return {
        "alert": alert.alert, "when": alert.when, "incident": alert.key,
        "since": rfc3339(alert.fired_ms), "instance": alert.instance, "repo": alert.repo,
        "plan": alert.plan, "message": alert.message,
    }


def stored_alert(stored: StoredIncident, rules: Iterable[AlertRule]) -> ActiveAlert:
    """A firing incident as the alert store keeps it (for reading without a running hub)."""
    subject = subject_of(stored.event, stored.key)
    when = next((r.when for r in rules if r.name == stored.alert), "")
    return ActiveAlert(stored.alert, when, stored.key, stored.fired_ms, subject.instance,
                       subject.repo, subject.plan, _message_of(stored.event))


@dataclass
class _Incident:
    rule_name: str
    subject: Subject
    fired_ms: int
    message: str


class AlertBook:
    def __init__(
        self, hub_instance: str, started_ms: int,
        startup_grace: float = STARTUP_GRACE_SECONDS,
    ) -> None:
        self._hub = hub_instance
        self._started_ms = started_ms
        self._grace = startup_grace
        self._rules: dict[str, AlertRule] = {}
        self._incidents: dict[tuple[str, str], _Incident] = {}
        self._plans: dict[tuple[str, str], PlanWatch] = {}
        self._peers: dict[str, PeerWatch] = {}
        self._keyids: frozenset[str] = frozenset()
        self._instances: frozenset[str] = frozenset({hub_instance})

    # -- what it starts from ------------------------------------------------------------

    def restore(self, incidents: Iterable[StoredIncident]) -> None:
        """The incidents firing when the hub last stopped: they stay firing, not re-fired."""
        for stored in incidents:
            subject = subject_of(stored.event, stored.key)
            message = _message_of(stored.event)
            self._incidents[(stored.alert, stored.key)] = _Incident(
                stored.alert, subject, stored.fired_ms, message
            )

    def seed(self, plans: Iterable[PlanSummary], peers: Iterable[pb.PeerState]) -> None:
        for summary in plans:
            self._plans[(summary.instance, summary.plan)] = PlanWatch.of(summary)
        for state in peers:
            self._peers[state.peer_keyid] = PeerWatch.of(state, self._started_ms)

    def configure(self, config: Config, now_ms: int) -> list[Transition]:
        """Take new rules and authorized clients; resolve what they no longer cover."""
        self._rules = {rule.name: rule for rule in config.alerts}
        verified = [c for c in config.authorized_clients if c.keyid_verified]
        self._keyids = frozenset(c.keyid for c in verified)
        self._instances = frozenset({self._hub, *(c.instance_id for c in verified)})
        transitions: list[Transition] = []
        for (name, key), incident in list(self._incidents.items()):
            rule = self._rules.get(name)
            if rule is None:
                del self._incidents[(name, key)]
                transitions.append(
                    Transition(_removed_rule(name), incident.subject, "resolved", {}, now_ms, True)
                )
            elif not self._still_covers(rule, key, incident.subject):
                transitions.append(self._resolve(
                    rule, incident.subject, now_ms, "no longer covered by the alert",
                ))
        return transitions

    # -- inputs ---------------------------------------------------------------------------

    def on_run(self, change: RunChange, now_ms: int) -> list[Transition]:
        key = (change.instance, change.plan)
        watch = self._plans.get(key)
        if watch is None:
            watch = self._plans[key] = PlanWatch(change.repo_id, change.repo_guid)
        watch.update(change)
        subject = _plan_subject(change.instance, change.repo_id or change.repo_guid, change.plan)
        transitions: list[Transition] = []
        for rule in self._rules.values():
            if rule.when == "peer_lost" or not self._covers_plan(rule, change.instance, watch,
                                                                 change.plan):
                continue
            active = (rule.name, subject.key) in self._incidents
            if change.status == pb.STATUS_SUCCESS and active:
                transitions.append(self._resolve(
                    rule, subject, now_ms, f"operation {change.op_id} succeeded",
                    operation_id=change.op_id, status="success",
                ))
            elif (rule.when == "operation_failed" and change.status == pb.STATUS_ERROR
                  and change.previous != pb.STATUS_ERROR and not active):
                message = (f"operation {change.op_id} of plan {change.plan or '(none)'} on "
                           f"{change.instance} failed: {change.message or 'no message'}")
                transitions.append(self._fire(
                    rule, subject, now_ms, message,
                    operation_id=change.op_id, status="error",
                ))
        return transitions

    def on_peer(self, state: pb.PeerState, now_ms: int) -> list[Transition]:
        watch = self._peers.get(state.peer_keyid)
        if watch is None:
            watch = self._peers[state.peer_keyid] = PeerWatch.of(state, now_ms)
        watch.update(state, now_ms)
        if state.state != pb.CONNECTION_STATE_CONNECTED:
            return []
        transitions = []
        for rule in self._rules.values():
            incident = self._incidents.get((rule.name, state.peer_keyid))
            if rule.when == "peer_lost" and incident is not None:
                transitions.append(self._resolve(
                    rule, incident.subject, now_ms, f"peer {watch.instance} connected again",
                    status="connected",
                ))
        return transitions

    def on_tick(self, now_ms: int) -> list[Transition]:
        """Fire every plan_stale and peer_lost incident whose deadline has passed."""
        transitions: list[Transition] = []
        for rule in self._rules.values():
            if rule.when == "plan_stale":
                transitions.extend(self._stale_plans(rule, now_ms))
            elif rule.when == "peer_lost":
                transitions.extend(self._lost_peers(rule, now_ms))
        return transitions

    # -- reading --------------------------------------------------------------------------

    def active(self) -> list[ActiveAlert]:
        found = []
        for (name, key), incident in sorted(self._incidents.items()):
            rule = self._rules.get(name)
            subject = incident.subject
            found.append(ActiveAlert(
                name, rule.when if rule else "", key, incident.fired_ms,
                subject.instance, subject.repo, subject.plan, incident.message,
            ))
        return found

    def rule(self, name: str) -> AlertRule | None:
        return self._rules.get(name)

    # -- deadlines ------------------------------------------------------------------------

    def _deadline(self, rule: AlertRule, reference_ms: int) -> int:
        after = rule.after or 0.0
        grace = min(after, self._grace)
        return max(reference_ms + int(after * 1000), self._started_ms + int(grace * 1000))

    def _stale_plans(self, rule: AlertRule, now_ms: int) -> Iterable[Transition]:
        for (instance, plan), watch in self._plans.items():
            if not plan or not self._covers_plan(rule, instance, watch, plan):
                continue
            subject = _plan_subject(instance, watch.repo_id or watch.repo_guid, plan)
            if (rule.name, subject.key) in self._incidents:
                continue
            if now_ms < self._deadline(rule, watch.reference_ms):
                continue
            last = (f"last success {describe_seconds((now_ms - watch.last_success_ms) // 1000)}"
                    " ago" if watch.last_success_ms else "never succeeded")
            yield self._fire(
                rule, subject, now_ms,
                f"plan {plan} on {instance} has not succeeded for "
                f"{describe_seconds(int(rule.after or 0))} ({last})",
                operation_id=watch.last_op_id or None,
                status=status_name(watch.last_status) if watch.last_op_id else None,
            )

    def _lost_peers(self, rule: AlertRule, now_ms: int) -> Iterable[Transition]:
        for keyid, watch in self._peers.items():
            if watch.connected or keyid not in self._keyids:
                continue
            if rule.instances and watch.instance not in rule.instances:
                continue
            if (rule.name, keyid) in self._incidents:
                continue
            if now_ms < self._deadline(rule, watch.since_ms):
                continue
            state = CONNECTION_STATE_NAMES.get(watch.state, str(watch.state))
            detail = f": {watch.message}" if watch.message else ""
            yield self._fire(
                rule, Subject(keyid, instance=watch.instance), now_ms,
                f"peer {watch.instance} has not been connected for "
                f"{describe_seconds(int(rule.after or 0))} ({state}{detail})",
                status=state,
            )

    # -- coverage ---------------------------------------------------------------------------

    def _covers_plan(self, rule: AlertRule, instance: str, watch: PlanWatch, plan: str) -> bool:
        return instance in self._instances and rule.covers(instance, watch.repo, plan)

    def _still_covers(self, rule: AlertRule, key: str, subject: Subject) -> bool:
        if rule.when == "peer_lost":
            return key in self._keyids and (
                not rule.instances or subject.instance in rule.instances
            )
        instance, _, plan = key.partition("/")
        watch = self._plans.get((instance, plan))
        repo = watch.repo if watch is not None else (subject.repo or "", "")
        return instance in self._instances and rule.covers(instance, repo, plan)

    # -- transitions ------------------------------------------------------------------------

    def _fire(
        self, rule: AlertRule, subject: Subject, now_ms: int, message: str,
        *, operation_id: int | None = None, status: str | None = None,
    ) -> Transition:
        self._incidents[(rule.name, subject.key)] = _Incident(rule.name, subject, now_ms, message)
        return self._transition(rule, subject, "firing", now_ms, since_ms=now_ms,
                                message=message, operation_id=operation_id, status=status)

    def _resolve(
        self, rule: AlertRule, subject: Subject, now_ms: int, message: str,
        *, operation_id: int | None = None, status: str | None = None,
    ) -> Transition:
        incident = self._incidents.pop((rule.name, subject.key))
        return self._transition(rule, incident.subject, "resolved", now_ms,
                                since_ms=incident.fired_ms, message=message,
                                operation_id=operation_id, status=status)

    def _transition(
        self, rule: AlertRule, subject: Subject, kind: EventKind, now_ms: int, *,
        since_ms: int, message: str, operation_id: int | None, status: str | None,
    ) -> Transition:
        event = alert_event(
            rule, kind, subject, hub=self._hub, now_ms=now_ms, since_ms=since_ms,
            message=message, operation_id=operation_id, status=status,
        )
        return Transition(rule, subject, kind, event, now_ms)


def _plan_subject(instance: str, repo: str, plan: str) -> Subject:
    return Subject(f"{instance}/{plan}", instance=instance, repo=repo or None, plan=plan or None)


def _removed_rule(name: str) -> AlertRule:
    return AlertRule(name=name, when="operation_failed")


def _message_of(event_json: str) -> str:
    try:
        event = json.loads(event_json)
    except ValueError:
        return ""
    message = event.get("message") if isinstance(event, dict) else None
    return message if isinstance(message, str) else ""
