"""``/metrics``: the hub in the Prometheus text format, through prometheus-client.

Two kinds of figures:

- counted as they happen (``HubMetrics`` is the actors' ``Telemetry``): handshakes by
  outcome and refusal reason, operations received by instance and status, ingest
  batches and their apply time;
- read at each scrape (``HubCollector``, asking the actors with timeouts): peers by
  state, live sessions, pending handshakes, the front's backlog, the oplog's size,
  each plan's last successful run, firing alerts.

Plus prometheus-client's process, platform and garbage-collector collectors. Label
values come from fixed sets, the hub's configuration, or bounded tables (the
FleetState's plans), never from free peer text; instance labels of received
operations are capped at ``MAX_INSTANCE_LABELS`` (the rest count as ``_other``).
Each hub has its own registry, so several hubs in one process never mix.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Final

from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from hub.errors import ActorError
from hub.fleet import CONNECTION_STATE_NAMES, status_name
from hub.telemetry import HANDSHAKE_ACCEPTED, HANDSHAKE_REFUSED
from hub.web._http import Request, Response
from hub.web._sources import WebSources

log = logging.getLogger(__name__)

MAX_INSTANCE_LABELS: Final = 10_000
OTHER: Final = "_other"
REFUSAL_REASONS: Final = frozenset(
    {
        "unknown_key", "unverified", "instance_mismatch", "bad_signature", "bad_key",
        "protocol", "timeout", "disconnected", "internal", "auth", "busy",
    }
)
_BATCH_BUCKETS: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


class HubMetrics:
    """The registry of one hub; also its actors' ``Telemetry`` (thread-safe, never blocks)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._handshakes = Counter(
            "synchub_handshakes", "Handshakes ended, by outcome and refusal reason.",
            ["outcome", "reason"], registry=self.registry,
        )
        self._received = Counter(
            "synchub_operations_received", "Operations received from peers (created or "
            "updated), by the instance they belong to and their status.",
            ["instance", "status"], registry=self.registry,
        )
        self._batch_seconds = Histogram(
            "synchub_ingest_batch_apply_seconds", "Time to apply one peer batch to the oplog.",
            buckets=_BATCH_BUCKETS, registry=self.registry,
        )
        self._batch_operations = Counter(
            "synchub_ingest_operations", "Operations in applied peer batches.",
            registry=self.registry,
        )
        self._instances: set[str] = set()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self._handshakes.labels(HANDSHAKE_ACCEPTED, "")

    # -- Telemetry --------------------------------------------------------------------------

    def handshake(self, outcome: str, reason: str) -> None:
        if outcome == HANDSHAKE_REFUSED and reason not in REFUSAL_REASONS:
            reason = "other"
        self._handshakes.labels(outcome, reason).inc()

    def batch_applied(self, received: Mapping[tuple[str, int], int], seconds: float) -> None:
        # Called from the OplogActor's thread only, so the instance set has one writer.
        self._batch_seconds.observe(seconds)
        total = 0
        for (instance, status), count in received.items():
            total += count
            label = instance
            if instance not in self._instances:
                if len(self._instances) >= MAX_INSTANCE_LABELS:
                    label = OTHER
                else:
                    self._instances.add(instance)
            self._received.labels(label, status_name(status)).inc(count)
        self._batch_operations.inc(total)

    def watch(self, sources: WebSources) -> None:
        """Read the running hub at each scrape from now on."""
        self.registry.register(HubCollector(sources))


class HubCollector(Collector):
    """Figures read from the running hub at scrape time."""

    def __init__(self, sources: WebSources) -> None:
        self._sources = sources

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        for part in (self._front, self._peers, self._oplog, self._plans, self._alerts):
            try:
                yield from part()
            except ActorError as exc:
                log.warning("metrics: %s; skipping %s", exc, part.__name__.strip("_"))

    def _front(self) -> Iterator[Metric]:
        front = self._sources.hub_status().front
        yield _gauge("synchub_sessions", "Sessions the front knows, in any phase.", front.sessions)
        yield _gauge("synchub_pending_handshakes", "Sessions not yet authenticated.",
                     front.pending_handshakes)
        yield _gauge("synchub_front_backlog_frames",
                     "Inbound frames handed to sessions and not yet handled.", front.backlog_frames)
        yield _gauge("synchub_front_backlog_bytes",
                     "Bytes of inbound frames handed to sessions and not yet handled.",
                     front.backlog_bytes)
        refused = CounterMetricFamily(
            "synchub_front_refused", "New peers turned away: too many handshakes in progress.",
        )
        refused.add_metric([], front.refused)
        yield refused
        dropped = CounterMetricFamily(
            "synchub_front_dropped_frames", "Inbound frames discarded (session closing).",
        )
        dropped.add_metric([], front.dropped)
        yield dropped

    def _peers(self) -> Iterator[Metric]:
        states = self._sources.answer(self._sources.actors.peers.list(), "peer state")
        counts = dict.fromkeys(CONNECTION_STATE_NAMES.values(), 0)
        for state in states:
            name = CONNECTION_STATE_NAMES.get(state.state, "unknown")
            counts[name] = counts.get(name, 0) + 1
        family = GaugeMetricFamily("synchub_peers", "Known peers by connection state.",
                                   labels=["state"])
        for name, count in sorted(counts.items()):
            family.add_metric([name], count)
        yield family

    def _oplog(self) -> Iterator[Metric]:
        with self._sources.reader() as reader:
            operations, size = reader.count(), reader.size_bytes()
        yield _gauge("synchub_oplog_operations", "Operations in the oplog.", operations)
        yield _gauge("synchub_oplog_size_bytes", "The oplog's files on disk.", size)

    def _plans(self) -> Iterator[Metric]:
        fleet = self._sources.answer(self._sources.actors.fleet.snapshot(), "fleet")
        family = GaugeMetricFamily(
            "synchub_plan_last_success_timestamp_seconds",
            "When each (instance, plan)'s latest successful run ended (0: none known).",
            labels=["instance", "plan"],
        )
        for plan in fleet.plans:
            family.add_metric([plan.instance, plan.plan], plan.last_success_ms / 1000)
        yield family
        failures = GaugeMetricFamily(
            "synchub_failed_runs_24h", "Runs that ended in error in the last 24 hours.",
        )
        failures.add_metric([], len(fleet.failures))
        yield failures

    def _alerts(self) -> Iterator[Metric]:
        alerts = self._sources.actors.alerts
        if alerts is None:
            return
        active = self._sources.answer(alerts.active(), "alert")
        family = GaugeMetricFamily("synchub_alerts_firing", "Firing incidents by alert.",
                                   labels=["alert"])
        counts: dict[str, int] = {}
        for incident in active:
            counts[incident.alert] = counts.get(incident.alert, 0) + 1
        for name, count in sorted(counts.items()):
            family.add_metric([name], count)
        yield family


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def metrics_response(metrics: HubMetrics, request: Request) -> Response:
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(200, encoder(metrics.registry), content_type)
