"""The SessionTable's admission of new peers before authentication (no lockout): per
source, per admitted key, and random early drop, with a seeded random source."""

from __future__ import annotations

import random

from hub.server import FrontSettings, SessionEntry, SessionTable

ADMITTED = "ed25519.admitted"


def settings(**overrides: object) -> FrontSettings:
    values: dict[str, object] = {
        "bind": "tcp://127.0.0.1:0",
        "max_pending_handshakes": 100,
        "max_pending_per_source": 10,
        "max_pending_per_key": 2,
        "early_drop_from": 1.0,
    }
    values.update(overrides)
    return FrontSettings(**values)  # type: ignore[arg-type]


def start(
    table: SessionTable[str], source: str, claimed: str | None = None
) -> SessionEntry[str] | None:
    admission = table.admit_new(source, claimed)
    if not admission.admit:
        return None
    if admission.supersede is not None:
        table.gone(admission.supersede, 0.0)
    serial = table.reserve_serial()
    return table.open(
        serial, f"rid-{serial}".encode(), None, f"s{serial}", 0.0,
        source=source, claimed_key=claimed,
    )


def test_one_source_cannot_take_more_than_its_share() -> None:
    table: SessionTable[str] = SessionTable(settings())
    assert all(start(table, "10.0.0.1") for _ in range(10))
    refusal = table.admit_new("10.0.0.1", None)
    assert not refusal.admit
    assert "from this address" in refusal.refusal
    assert start(table, "10.0.0.2") is not None
    assert table.counters().pending_handshakes == 11


def test_an_admitted_key_gets_in_when_every_slot_is_held() -> None:
    table: SessionTable[str] = SessionTable(settings(max_pending_handshakes=20))
    for index in range(20):
        assert start(table, f"10.0.0.{index % 5}") is not None
    assert not table.admit_new("10.0.0.99", None).admit
    entry = start(table, "10.0.0.1", ADMITTED)
    assert entry is not None
    older = table.authenticated(entry, ADMITTED)
    assert older is None
    assert table.counters().pending_handshakes == 20


def test_holders_of_an_admitted_key_give_way_oldest_first() -> None:
    table: SessionTable[str] = SessionTable(settings())
    first = start(table, "10.0.0.1", ADMITTED)
    second = start(table, "10.0.0.1", ADMITTED)
    assert first is not None and second is not None
    admission = table.admit_new("10.0.0.1", ADMITTED)
    assert admission.admit and admission.supersede is first
    table.gone(first, 1.0)
    third = start(table, "10.0.0.1", ADMITTED)
    assert third is not None
    assert table.admit_new("10.0.0.1", ADMITTED).supersede is second
    # Holders on one address never make a handshake of the key from another give way.
    elsewhere = table.admit_new("10.0.0.2", ADMITTED)
    assert elsewhere.admit and elsewhere.supersede is None
    # Pending admitted-key handshakes do not use the room of any address.
    assert all(start(table, "10.0.0.1") for _ in range(10))


def test_early_drop_refuses_at_random_above_the_mark_and_always_at_the_limit() -> None:
    table: SessionTable[str] = SessionTable(
        settings(max_pending_handshakes=100, max_pending_per_source=1000,
                 early_drop_from=0.5, early_drop_rate=0.3),
        rng=random.Random(7),
    )
    refused_below = 0
    for _ in range(50):
        refused_below += start(table, "10.0.0.1") is None
    assert refused_below == 0
    attempts = 0
    while table.counters().pending_handshakes < 100:
        attempts += 1
        start(table, "10.0.0.1")
    # 50 admitted above the mark took several times as many attempts: early drop.
    assert attempts > 100
    assert all(not table.admit_new("10.0.0.1", None).admit for _ in range(20))


def test_an_ending_pending_session_frees_its_slot_at_once() -> None:
    table: SessionTable[str] = SessionTable(settings(max_pending_per_source=1))
    entry = start(table, "10.0.0.1")
    assert entry is not None
    assert not table.admit_new("10.0.0.1", None).admit
    table.gone(entry, 1.0)
    assert table.admit_new("10.0.0.1", None).admit
    table.forget(entry)
    assert table.counters().pending_handshakes == 0


def test_refusals_are_told_at_most_ten_a_second_per_address() -> None:
    table: SessionTable[str] = SessionTable(settings(max_pending_per_source=1))
    assert start(table, "10.0.0.1") is not None
    told = [table.admit_new("10.0.0.1", None, now=5.0).refusal != "" for _ in range(30)]
    assert told == [True] * 10 + [False] * 20
    assert table.counters().refused == 30
    # Another address, and the next second, are told again.
    assert table.admit_new("10.0.0.2", None, now=5.0).admit
    assert table.admit_new("10.0.0.1", None, now=6.0).refusal
