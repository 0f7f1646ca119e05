"""The fleet page's model: problems first, then one tile per instance with its plans.

Built per request from immutable snapshots (the FleetActor's plans and failures, the
peer states, the firing alerts, the config). Each plan's row (last status, start,
duration, the run-history strip) is HTML made once per change of that plan and kept
(``PlanRows``, one per worker thread): a page of a thousand peers re-renders only the
rows whose plan changed since that thread last drew it.

What counts as a problem: a firing alert; a run that failed in the last 24 h; a plan
(with a plan id) without a success for longer than the ``after`` of a ``plan_stale``
alert covering it (else ``DEFAULT_STALE_SECONDS``); an authorized peer not connected
for longer than the ``after`` of a ``peer_lost`` alert covering it (else
``DEFAULT_LOST_SECONDS``).
"""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from markupsafe import Markup, escape

from hub.alerting import ActiveAlert
from hub.config import AlertRule, Config
from hub.fleet import Failure, FleetSnapshot, PlanSummary, Run, status_name
from hub.pb import synchub_pb2 as pb
from hub.web._format import duration, iso, status_class, when

DEFAULT_STALE_SECONDS: Final = 93_600
DEFAULT_LOST_SECONDS: Final = 900
FAILURES_SHOWN: Final = 20


@dataclass(frozen=True)
class StalePlan:
    plan: PlanSummary
    since_ms: int


@dataclass(frozen=True)
class LostPeer:
    state: pb.PeerState


@dataclass(frozen=True)
class Tile:
    instance: str
    is_hub: bool
    peers: tuple[pb.PeerState, ...]
    rows: tuple[Markup, ...]
    trouble: bool

    @property
    def state(self) -> int:
        live = [p.state for p in self.peers]
        if pb.CONNECTION_STATE_CONNECTED in live:
            return pb.CONNECTION_STATE_CONNECTED
        return live[0] if live else pb.CONNECTION_STATE_UNKNOWN

    @property
    def last_heard_ms(self) -> int:
        return max((p.last_heartbeat_millis for p in self.peers), default=0)

    @property
    def repos(self) -> list[str]:
        return sorted({r for p in self.peers for r in p.known_repos})

    @property
    def plans(self) -> list[str]:
        return sorted({r for p in self.peers for r in p.known_plans})


@dataclass(frozen=True)
class Dashboard:
    hub: str
    now_ms: int
    alerts: tuple[ActiveAlert, ...]
    failures: tuple[Failure, ...]
    failures_total: int
    stale: tuple[StalePlan, ...]
    lost: tuple[LostPeer, ...]
    tiles: tuple[Tile, ...]
    untracked: int

    @property
    def problems(self) -> int:
        return len(self.alerts) + self.failures_total + len(self.stale) + len(self.lost)


def _threshold(rules: Iterable[AlertRule], default: int) -> float:
    return min((rule.after or default for rule in rules), default=default)


def _stale_plans(
    fleet: FleetSnapshot, config: Config, now_ms: int
) -> tuple[StalePlan, ...]:
    rules = [r for r in config.alerts if r.when == "plan_stale"]
    found = []
    for plan in fleet.plans:
        if not plan.plan:
            continue
        covering = [r for r in rules if r.covers(plan.instance, plan.repo, plan.plan)]
        after = _threshold(covering, DEFAULT_STALE_SECONDS)
        reference = plan.last_success_ms or plan.first_seen_ms
        if reference and now_ms - reference > after * 1000:
            found.append(StalePlan(plan, reference))
    return tuple(found)


def _lost_peers(
    states: Sequence[pb.PeerState], config: Config, now_ms: int
) -> tuple[LostPeer, ...]:
    rules = [r for r in config.alerts if r.when == "peer_lost"]
    found = []
    for state in states:
        client = config.authorized_client(state.peer_keyid)
        if client is None or not client.keyid_verified:
            continue
        if state.state == pb.CONNECTION_STATE_CONNECTED:
            continue
        covering = [r for r in rules if not r.instances or state.peer_instance_id in r.instances]
        after = _threshold(covering, DEFAULT_LOST_SECONDS)
        if now_ms - state.last_heartbeat_millis > after * 1000:
            found.append(LostPeer(state))
    return tuple(found)


def build_dashboard(
    *, hub: str, fleet: FleetSnapshot, states: Sequence[pb.PeerState],
    alerts: Sequence[ActiveAlert], config: Config, now_ms: int, rows: PlanRows,
) -> Dashboard:
    stale = _stale_plans(fleet, config, now_ms)
    lost = _lost_peers(states, config, now_ms)
    trouble = {s.plan.instance for s in stale} | {lost.state.peer_instance_id for lost in lost}
    trouble |= {f.instance for f in fleet.failures} | {a.instance for a in alerts if a.instance}
    plans_of: dict[str, list[PlanSummary]] = {}
    for plan in fleet.plans:
        plans_of.setdefault(plan.instance, []).append(plan)
    peers_of: dict[str, list[pb.PeerState]] = {}
    for state in states:
        peers_of.setdefault(state.peer_instance_id, []).append(state)
    instances = {hub, *plans_of, *peers_of}
    tiles = [
        Tile(
            instance, instance == hub, tuple(peers_of.get(instance, ())),
            tuple(rows.row(plan) for plan in plans_of.get(instance, ())),
            instance in trouble,
        )
        for instance in instances
    ]
    tiles.sort(key=lambda t: (not t.trouble, not t.is_hub, t.instance))
    rows.forget_all_but(len(fleet.plans))
    return Dashboard(
        hub, now_ms, tuple(alerts), fleet.failures[:FAILURES_SHOWN], len(fleet.failures),
        stale, lost, tuple(tiles), fleet.untracked,
    )


def _cell(run: Run) -> str:
    """One run of the strip: a coloured link whose title (its accessible name too) says
    which run, how it ended and when."""
    title = f"#{run.op_id} {status_name(run.status)} {when(run.start_ms)[:16]}"
    return (f'<a class="c {status_class(run.status)}" href="/operations/{run.op_id}" '
            f'title="{title}"></a>')


def plan_row(plan: PlanSummary) -> Markup:
    """One plan's row: name and repo, last status, start, duration, the history strip."""
    last = plan.last
    query = urllib.parse.urlencode({"instance": plan.instance, "plan": plan.plan})
    name = escape(plan.plan or "(no plan)")
    repo = escape(plan.repo_id or plan.repo_guid or "")
    if last is None:
        status = '<td>-</td><td>-</td><td>-</td>'
    else:
        label = status_name(last.status)
        status = (f'<td><a class="badge {status_class(last.status)}" '
                  f'href="/operations/{last.op_id}">{label}</a></td>'
                  f'<td><time datetime="{iso(last.start_ms)}">{when(last.start_ms)}</time></td>'
                  f'<td>{duration(last.duration_ms)}</td>')
    strip = "".join(_cell(run) for run in plan.runs)
    return Markup(  # noqa: S704 - every value in it was escaped
        f'<tr><th scope="row"><a href="/operations?{escape(query)}">{name}</a>'
        f'<small>{repo}</small></th>{status}<td class="strip">{strip}</td></tr>'
    )


class PlanRows:
    """Each plan's row HTML, made again only when the plan's summary changed.

    One per worker thread (``for_this_thread``): nothing is shared between threads.
    """

    _local = threading.local()

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], tuple[PlanSummary, Markup]] = {}

    @classmethod
    def for_this_thread(cls) -> PlanRows:
        rows: PlanRows | None = getattr(cls._local, "rows", None)
        if rows is None:
            rows = cls._local.rows = cls()
        return rows

    def row(self, plan: PlanSummary) -> Markup:
        key = (plan.instance, plan.plan)
        cached = self._rows.get(key)
        if cached is not None and cached[0] is plan:
            return cached[1]
        html = plan_row(plan)
        self._rows[key] = (plan, html)
        return html

    def forget_all_but(self, plans: int) -> None:
        """Drop rows of plans gone from the fleet, once they outnumber the live ones."""
        if len(self._rows) > 2 * plans + 64:
            self._rows.clear()
