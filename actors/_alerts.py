"""AlertActor: the alerts' incidents, decided, recorded, and handed out for delivery.

Who owns what: this actor owns an ``AlertBook`` (which incidents fire, from runs, peer
states, the config and time) and the ``AlertStateStore`` it records them in (opened in
its thread). At start it subscribes to the config, the peer states and the fleet's
run changes, then takes their snapshots (subscribe before snapshot), restores the
incidents that were firing when the hub stopped (they are not fired again) and hands
every undelivered event in the store's outbox to the deliveries again.

Each decision is recorded before its events leave: one ``commit`` holds the incidents
that fired or resolved and their deliveries, then each delivery goes to ``deliver``
(the Dispatcher's ``submit``, which never blocks). When a delivery is done (delivered,
or given up) the dispatcher tells ``delivered`` and it leaves the outbox. So a restart
neither fires an incident twice nor loses an event: at worst one is delivered twice.

Time arrives as ``tick(now)`` messages; runs and peer changes are judged at the
actor's clock.

On a store several hubs share (docs/cluster.md) one hub judges and delivers: the one
whose ``AlertLeadership`` holds the lead; only a hub with ``[[alerts]]`` in its
config takes it (and one that no longer has any leaves it). The others stand by: they judge nothing,
answer ``active`` from the store, and try to take the lead at every tick (at most
every ``retry_lead`` seconds). A hub that takes it starts as a hub that restarted
does: the incidents the last one recorded stay firing (not fired again), and every
event still in the outbox is handed to its deliveries, so a dead deliverer's events
are delivered by the next. A leader that loses its hold stands by again.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import cast

import pykka
from pykka.typing import ActorMemberMixin, proxy_method

from actors._calls import survives, tell
from actors._config import ConfigProxy
from actors._fleet import FleetProxy, RunChanges
from actors._peer_state import PeerStateProxy
from hub.alerting import (
    STARTUP_GRACE_SECONDS,
    ActiveAlert,
    AlertBook,
    DeliveryJob,
    Transition,
    encode_event,
    stored_alert,
    targets_of,
)
from hub.config import AlertRule, Config
from hub.errors import StoreError
from hub.pb import synchub_pb2 as pb
from hub.store import AlertLeadership, AlertStateStore, NewDelivery, StoredIncident

log = logging.getLogger(__name__)

ASK_TIMEOUT = 10.0
RETRY_LEAD = 2.0
"""How often a hub that stands by tries to take the alerts' lead, in seconds."""
UNRECORDED = -1
"""The delivery id of an event whose recording failed: delivered, not tracked."""


class AlertActor(pykka.ThreadingActor):
    def __init__(
        self,
        *,
        hub_instance: str,
        config: ConfigProxy,
        fleet: FleetProxy,
        peers: PeerStateProxy,
        store_factory: Callable[[], AlertStateStore],
        deliver: Callable[[DeliveryJob], object],
        clock: Callable[[], float] = time.time,
        startup_grace: float = STARTUP_GRACE_SECONDS,
        ask_timeout: float = ASK_TIMEOUT,
        leadership_factory: Callable[[], AlertLeadership | None] | None = None,
        retry_lead: float = RETRY_LEAD,
    ) -> None:
        """``leadership_factory``, when it gives one, says whether this hub is the one of
        its cluster that judges and delivers (none: it always is)."""
        super().__init__()
        self._leadership_factory = leadership_factory
        self._leadership: AlertLeadership | None = None
        self._leading = False
        self._retry_lead = retry_lead
        self._next_try = 0.0
        self._standby_config: Config | None = None
        self._hub_instance = hub_instance
        self._config = config
        self._fleet = fleet
        self._peers = peers
        self._store_factory = store_factory
        self._deliver = deliver
        self._clock = clock
        self._startup_grace = startup_grace
        self._ask_timeout = ask_timeout
        self._store: AlertStateStore | None = None
        self._book = AlertBook(hub_instance, self._now_ms(), startup_grace)
        self._tokens: list[tuple[Callable[[int], pykka.Future[bool]], int]] = []

    # -- lifecycle ------------------------------------------------------------------------

    def on_start(self) -> None:
        store = self._store = self._store_factory()
        me = cast(AlertProxy, self.actor_ref.proxy())
        self._subscribe(self._config.subscribe(me.on_config), self._config.unsubscribe)
        self._subscribe(self._peers.subscribe(me.on_peer), self._peers.unsubscribe)
        self._subscribe(self._fleet.subscribe(me.on_runs), self._fleet.unsubscribe)
        if self._leadership_factory is not None:
            self._leadership = self._leadership_factory()
        config = self._config.get().get(timeout=self._ask_timeout)
        if self._leadership is None or (config.alerts and self._leadership.try_lead()):
            self._lead(store)
        else:
            self._standby_config = config
            log.info("alerts: %s; this hub stands by", "another hub of the cluster judges "
                     "and delivers them" if config.alerts else "none in this hub's config")

    def _lead(self, store: AlertStateStore) -> None:
        """Judge from here on, starting from what the store recorded."""
        config = self._config.get().get(timeout=self._ask_timeout)
        fleet = self._fleet.snapshot().get(timeout=self._ask_timeout)
        states = self._peers.list().get(timeout=self._ask_timeout)
        self._book = AlertBook(self._hub_instance, self._now_ms(), self._startup_grace)
        self._book.restore(store.active())
        self._book.seed(fleet.plans, states)
        self._leading, self._standby_config = True, None
        self._record(self._book.configure(config, self._now_ms()))
        self._resend(config, store)

    def _follow_lead(self, now: float) -> None:
        """Take the lead when it is free, or stand by when this hub lost it."""
        leadership, store = self._leadership, self._store
        if leadership is None or store is None:
            return
        if self._leading:
            if not leadership.still_leading():
                log.warning("alerts: this hub no longer holds the lead; standing by")
                self._leading = False
                self._standby_config = self._config.get().get(timeout=self._ask_timeout)
            return
        if now < self._next_try or not (self._standby_config and self._standby_config.alerts):
            return
        self._next_try = now + self._retry_lead
        if leadership.try_lead():
            log.warning("alerts: this hub took the lead (the hub that had it stopped or "
                        "lost the database); it judges and delivers them now")
            self._lead(store)

    def _subscribe(
        self, token: pykka.Future[int], unsubscribe: Callable[[int], pykka.Future[bool]]
    ) -> None:
        self._tokens.append((unsubscribe, token.get(timeout=self._ask_timeout)))

    def _resend(self, config: Config, store: AlertStateStore) -> None:
        gone = []
        for pending in store.pending():
            rule = config.alert(pending.alert)
            if rule is None or pending.target not in targets_of(rule):
                log.warning("alert %s: dropping an undelivered event: the alert or its %s "
                            "is no longer configured", pending.alert, pending.target)
                gone.append(pending.id)
                continue
            self._deliver(DeliveryJob(pending.id, rule, pending.target, pending.event))
        store.done(gone)

    def on_stop(self) -> None:
        self._release()

    def on_failure(self, *_exc_info: object) -> None:
        self._release()

    def _release(self) -> None:
        for unsubscribe, token in self._tokens:
            with contextlib.suppress(pykka.ActorDeadError):
                tell(unsubscribe, token)
        self._tokens.clear()
        leadership, self._leadership, self._leading = self._leadership, None, False
        if leadership is not None:
            leadership.close()
        store, self._store = self._store, None
        if store is not None:
            try:
                store.close()
            except StoreError:
                log.exception("alerts: closing the alert store failed")

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    # -- what arrives -----------------------------------------------------------------------

    def ping(self) -> bool:
        return self._store is not None

    @survives("alerts")
    def tick(self, now: float) -> None:
        self._follow_lead(now)
        if self._leading:
            self._record(self._book.on_tick(int(now * 1000)))

    @survives("alerts")
    def on_runs(self, changes: RunChanges) -> None:
        if not self._leading:
            return
        now_ms = self._now_ms()
        self._record([t for change in changes for t in self._book.on_run(change, now_ms)])

    @survives("alerts")
    def on_peer(self, state: pb.PeerState) -> None:
        if self._leading:
            self._record(self._book.on_peer(state, self._now_ms()))

    @survives("alerts")
    def on_config(self, config: Config) -> None:
        if self._leading and self._leadership is not None and not config.alerts:
            # Leave the incidents to a hub that has the alerts (not resolved by this one).
            log.info("alerts: none in this hub's config any more; leaving the lead")
            self._leadership.close()
            self._leading = False
        if not self._leading:
            self._standby_config = config
            return
        self._record(self._book.configure(config, self._now_ms()))

    @survives("alerts")
    def delivered(self, delivery_id: int, ok: bool) -> None:
        """A delivery is over (``ok``: delivered; else given up): it leaves the outbox."""
        if delivery_id != UNRECORDED and self._store is not None:
            self._store.done([delivery_id])

    def active(self) -> tuple[ActiveAlert, ...]:
        """The firing incidents: this hub's judgement, or, standing by, what the hub
        that leads recorded."""
        if self._leading or self._store is None:
            return tuple(self._book.active())
        rules = self._standby_config.alerts if self._standby_config is not None else ()
        return tuple(stored_alert(stored, rules) for stored in self._store.active())

    def leading(self) -> bool:
        """Whether this hub judges and delivers the alerts (always, alone on its store)."""
        return self._leading

    # -- recording --------------------------------------------------------------------------

    def _record(self, transitions: Sequence[Transition]) -> None:
        if not transitions:
            return
        if self._store is None:
            raise StoreError("the alert store is not open")
        fired: list[StoredIncident] = []
        resolved: list[tuple[str, str]] = []
        deliveries: list[NewDelivery] = []
        rules: dict[str, AlertRule] = {}
        for t in transitions:
            if t.kind == "firing":
                fired.append(StoredIncident(t.rule.name, t.subject.key, t.time_ms,
                                            encode_event(t.event)))
            else:
                resolved.append((t.rule.name, t.subject.key))
            if t.quiet:
                log.info("alert %s: forgetting %s (the alert was removed)", t.rule.name,
                         t.subject.key)
                continue
            log.info("alert %s %s: %s", t.rule.name, t.kind, t.event.get("message"))
            rules[t.rule.name] = t.rule
            deliveries.extend(
                NewDelivery(t.rule.name, target, encode_event(t.event))
                for target in targets_of(t.rule)
            )
        try:
            queued = self._store.commit(fired=fired, resolved=resolved, deliveries=deliveries)
        except StoreError:
            log.exception("alerts: recording %d change(s) failed; delivering them untracked",
                          len(transitions))
            for d in deliveries:
                self._deliver(DeliveryJob(UNRECORDED, rules[d.alert], d.target, d.event))
            return
        for stored in queued:
            self._deliver(DeliveryJob(stored.id, rules[stored.alert], stored.target, stored.event))


class AlertProxy(ActorMemberMixin, pykka.ActorProxy[AlertActor]):
    """``AlertActor.start(...).proxy()`` as mypy should see it: each call returns a future."""

    ping = proxy_method(AlertActor.ping)
    tick = proxy_method(AlertActor.tick)
    on_runs = proxy_method(AlertActor.on_runs)
    on_peer = proxy_method(AlertActor.on_peer)
    on_config = proxy_method(AlertActor.on_config)
    delivered = proxy_method(AlertActor.delivered)
    active = proxy_method(AlertActor.active)
    leading = proxy_method(AlertActor.leading)
