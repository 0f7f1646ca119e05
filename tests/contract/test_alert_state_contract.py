"""The AlertStateStore contract: firing incidents and the delivery outbox, kept across
restarts, each evaluation recorded all or nothing."""

from __future__ import annotations

import pytest
from contract_support import Backend

from hub.errors import StoreError
from hub.store import AlertStateStore, NewDelivery, StoredDelivery, StoredIncident

FIRING = StoredIncident("backup-failed", "web1/nightly", 1_700_000_000_000, '{"event":"firing"}')


def test_implements_the_protocol(alert_state_backend: Backend[AlertStateStore]) -> None:
    assert isinstance(alert_state_backend.open(), AlertStateStore)


def test_a_fresh_store_is_empty(alert_state_backend: Backend[AlertStateStore]) -> None:
    store = alert_state_backend.open()
    assert store.active() == []
    assert store.pending() == []
    assert store.commit() == []


def test_fired_incidents_and_deliveries_survive_a_reopen(
    alert_state_backend: Backend[AlertStateStore],
) -> None:
    store = alert_state_backend.open()
    queued = store.commit(
        fired=[FIRING],
        deliveries=[
            NewDelivery("backup-failed", "webhook", FIRING.event),
            NewDelivery("backup-failed", "command", FIRING.event),
        ],
    )
    assert [(d.target, d.event) for d in queued] == [
        ("webhook", FIRING.event), ("command", FIRING.event),
    ]
    assert queued[0].id != queued[1].id
    store.close()
    reopened = alert_state_backend.open()
    assert reopened.active() == [FIRING]
    assert reopened.pending() == queued


def test_firing_again_replaces_and_resolving_removes(
    alert_state_backend: Backend[AlertStateStore],
) -> None:
    store = alert_state_backend.open()
    other = StoredIncident("host-gone", "ed25519.x", 5, "{}")
    store.commit(fired=[FIRING, other])
    newer = StoredIncident(FIRING.alert, FIRING.key, FIRING.fired_ms + 1, '{"n":2}')
    store.commit(fired=[newer])
    assert store.active() == [newer, other]
    store.commit(resolved=[(FIRING.alert, FIRING.key), ("no-such", "thing")])
    assert store.active() == [other]


def test_done_takes_deliveries_out_and_ignores_unknown_ids(
    alert_state_backend: Backend[AlertStateStore],
) -> None:
    store = alert_state_backend.open()
    first, second = store.commit(
        deliveries=[NewDelivery("a", "webhook", "1"), NewDelivery("a", "webhook", "2")]
    )
    store.done([first.id, 999_999])
    assert store.pending() == [second]
    later = store.commit(deliveries=[NewDelivery("a", "webhook", "3")])
    assert later[0].id not in (first.id, second.id)
    assert store.pending() == [second, *later]


def test_a_commit_is_all_or_nothing(alert_state_backend: Backend[AlertStateStore]) -> None:
    store = alert_state_backend.open()
    bad = StoredIncident("a", "k", 1, None)  # type: ignore[arg-type]
    with pytest.raises((StoreError, TypeError, ValueError)):
        store.commit(fired=[FIRING, bad], deliveries=[NewDelivery("a", "webhook", "x")])
    assert store.active() == []
    assert store.pending() == []


def test_closed_store_refuses(alert_state_backend: Backend[AlertStateStore]) -> None:
    store = alert_state_backend.open()
    store.close()
    store.close()
    with pytest.raises(StoreError):
        store.active()
    assert isinstance(StoredDelivery(1, "a", "webhook", "{}"), StoredDelivery)
