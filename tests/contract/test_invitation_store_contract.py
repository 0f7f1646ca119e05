"""The InvitationStore contract, on SQLite (a hub of its own) and PostgreSQL (every hub
of a cluster): rows kept as given, revocation, uses taken once, expiry, what another
connection sees, and writers racing for the last use, of whom exactly one wins."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from contract_support import Backend

from hub.errors import StoreError
from hub.store import Invitation, InvitationStore

NOW = 1_800_000_000_000
HOUR = 3600 * 1000
WEEK = 7 * 24 * HOUR


def invitation(ident: str = "inv1", *, uses: int = 1, created: int = NOW,
               expires_in: int = HOUR) -> Invitation:
    return Invitation(
        id=ident, instance_id="new1",
        permissions='[{"type": "read_config", "scopes": ["repo:nas"]}]',
        verifier=bytes(range(32)), created_ms=created, expires_ms=created + expires_in,
        uses=uses, uses_left=uses,
    )


def test_an_invitation_is_kept_as_given_and_listed_oldest_first(
    invitation_backend: Backend[InvitationStore],
) -> None:
    store = invitation_backend.open()
    assert store.get("inv1") is None and store.all() == []
    second, first = invitation("inv2", created=NOW + 1), invitation("inv1", uses=3)
    store.add(second, NOW + 1)
    store.add(first, NOW + 1)
    assert store.get("inv1") == first
    assert store.all() == [first, second]
    with pytest.raises(StoreError):
        store.add(first, NOW + 2)  # ids are unique
    assert invitation_backend.open().all() == [first, second]  # another connection


def test_uses_are_taken_one_at_a_time_until_none_is_left(
    invitation_backend: Backend[InvitationStore],
) -> None:
    store, other = invitation_backend.open(), invitation_backend.open()
    store.add(invitation(uses=2), NOW)
    used = store.use("inv1", "ed25519.a", NOW + 1)
    assert used is not None and (used.uses_left, used.joined) == (1, ("ed25519.a",))
    last = other.use("inv1", "ed25519.b", NOW + 2)
    assert last is not None and (last.uses_left, last.joined) == (0, ("ed25519.a", "ed25519.b"))
    assert store.use("inv1", "ed25519.c", NOW + 3) is None
    kept = store.get("inv1")
    assert kept is not None and kept.state(NOW + 3) == "used up"
    assert kept.joined == ("ed25519.a", "ed25519.b")
    assert store.use("unknown", "ed25519.c", NOW) is None


def test_a_revoked_or_expired_invitation_has_no_use_left(
    invitation_backend: Backend[InvitationStore],
) -> None:
    store = invitation_backend.open()
    store.add(invitation("inv1"), NOW)
    store.add(invitation("inv2"), NOW)
    assert store.revoke("inv1", NOW + 1)
    assert not invitation_backend.open().revoke("inv1", NOW + 2)
    assert not store.revoke("unknown", NOW + 2)
    assert store.use("inv1", "ed25519.a", NOW + 2) is None
    revoked = store.get("inv1")
    assert revoked is not None and revoked.state(NOW + 2) == "revoked"
    assert store.use("inv2", "ed25519.a", NOW + HOUR) is None  # expiry is exclusive
    expired = store.get("inv2")
    assert expired is not None and expired.state(NOW + HOUR) == "expired"
    assert expired.uses_left == 1


def test_finished_invitations_go_a_week_later(
    invitation_backend: Backend[InvitationStore],
) -> None:
    store = invitation_backend.open()
    store.add(invitation("used", created=NOW - 2 * WEEK, expires_in=4 * WEEK), NOW - 2 * WEEK)
    store.add(invitation("open", created=NOW - 2 * WEEK, expires_in=4 * WEEK), NOW - 2 * WEEK)
    store.add(invitation("stale", created=NOW - 3 * WEEK), NOW - 3 * WEEK)
    assert store.use("used", "ed25519.a", NOW - WEEK - 1) is not None
    store.add(invitation("new"), NOW)
    assert [i.id for i in store.all()] == ["open", "new"]


def test_of_writers_racing_for_the_last_use_exactly_one_wins(
    invitation_backend: Backend[InvitationStore],
) -> None:
    racers = 6
    invitation_backend.open().add(invitation(uses=1), NOW)
    start = threading.Barrier(racers, timeout=10)

    def race(index: int) -> Invitation | None:
        store = invitation_backend.open_unmanaged()  # SQLite: one connection per thread
        try:
            start.wait()
            return store.use("inv1", f"ed25519.k{index}", NOW + 1)
        finally:
            store.close()

    with ThreadPoolExecutor(racers) as pool:
        results = list(pool.map(race, range(racers), timeout=30))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    kept = invitation_backend.open().get("inv1")
    assert kept is not None and kept.uses_left == 0 and kept.joined == winners[0].joined


def test_a_closed_store_says_so(invitation_backend: Backend[InvitationStore]) -> None:
    store = invitation_backend.open()
    store.close()
    with pytest.raises(StoreError):
        store.all()
