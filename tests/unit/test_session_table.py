"""The front's SessionTable on its own: every decision, with explicit times and no sockets.

Handles are plain strings here; in the hub they are the sessions' ActorRefs.
"""

from __future__ import annotations

import dataclasses

import pytest

from hub.server import FrontSettings, SessionEntry, SessionTable
from hub.status import FrontCounters

SETTINGS = FrontSettings(
    bind="tcp://127.0.0.1:0",
    max_pending_handshakes=2,
    early_drop_from=1.0,  # no early drop: these tests count refusals exactly
    session_backlog_high=3,
    total_backlog_high=6,
    total_backlog_bytes=1000,
    pending_backlog_high=2,
    throttle_delay_ms=500,
    closed_grace=2.0,
    heartbeat_interval=10.0,
)
CURVE_A = b"curve-key-a"
CURVE_B = b"curve-key-b"
SOURCE = "127.0.0.1"


@pytest.fixture
def table() -> SessionTable[str]:
    return SessionTable(SETTINGS)


def open_session(
    table: SessionTable[str], rid: bytes = b"rid-1", connection: bytes | None = CURVE_A,
    now: float = 0.0,
) -> SessionEntry[str]:
    assert table.admit_new(SOURCE, None).admit
    serial = table.reserve_serial()
    return table.open(serial, rid, connection, f"session-{serial}", now, source=SOURCE)


def authenticated(
    table: SessionTable[str], rid: bytes, keyid: str, now: float = 0.0
) -> SessionEntry[str]:
    entry = open_session(table, rid, now=now)
    table.authenticated(entry, keyid)
    return entry


def deliver(table: SessionTable[str], entry: SessionEntry[str], size: int = 10,
            now: float = 0.0) -> int | None:
    verdict = table.check_inbound(entry, 1, now)
    assert verdict.deliver, verdict
    return table.delivered(entry, size, now)


# -- opening sessions -------------------------------------------------------------------


def test_a_new_session_is_current_for_its_routing_id_and_pending(table: SessionTable[str]) -> None:
    entry = open_session(table)
    assert table.current(b"rid-1") is entry
    assert table.get(entry.serial) is entry
    assert len(table) == 1
    assert table.counters() == FrontCounters(
        sessions=1, sessions_started=1, pending_handshakes=1, pending_high_water=1,
        backlog_frames=0, backlog_bytes=0, refused=0, dropped=0,
    )


def test_serials_are_never_reused(table: SessionTable[str]) -> None:
    first = open_session(table, b"a")
    table.forget(first)
    skipped = table.reserve_serial()  # a session that failed to start
    second = open_session(table, b"a")
    assert len({first.serial, skipped, second.serial}) == 3


def test_new_peers_are_refused_while_max_pending_handshakes_are_pending(
    table: SessionTable[str],
) -> None:
    open_session(table, b"a")
    second = open_session(table, b"b")
    assert not table.admit_new(SOURCE, None).admit
    assert not table.admit_new("127.0.0.9", None).admit
    assert table.counters().refused == 2
    table.authenticated(second, "ed25519.two")  # no longer pending
    assert table.admit_new(SOURCE, None).admit
    assert table.counters().pending_high_water == 2


# -- inbound frames ---------------------------------------------------------------------------


def test_one_frame_messages_are_delivered_and_counted_as_backlog(table: SessionTable[str]) -> None:
    entry = open_session(table)
    assert deliver(table, entry, size=100, now=1.5) is None
    assert (entry.in_flight, entry.last_in) == (1, 1.5)
    assert table.counters().backlog == (1, 100)
    table.frame_done(entry)
    assert table.counters().backlog == (0, 0)


def test_a_multi_frame_message_is_a_violation_and_the_session_closes(
    table: SessionTable[str],
) -> None:
    entry = open_session(table)
    verdict = table.check_inbound(entry, 2, now=3.0)
    assert not verdict.deliver
    assert verdict.violation == "a message must be exactly one frame, got 2"
    assert entry.closing_since == 3.0
    # Whatever follows for a closing session is dropped, without a second violation.
    later = table.check_inbound(entry, 1, now=4.0)
    assert (later.deliver, later.violation) == (False, None)
    assert table.counters().dropped == 2


def test_a_peer_far_ahead_before_its_handshake_is_refused(table: SessionTable[str]) -> None:
    entry = open_session(table)
    deliver(table, entry)
    deliver(table, entry)
    verdict = table.check_inbound(entry, 1, now=0.0)
    assert verdict.violation == "more than 2 frames before the handshake completed"
    assert entry.closing


def test_an_authenticated_session_may_run_further_ahead(table: SessionTable[str]) -> None:
    entry = authenticated(table, b"a", "ed25519.one")
    for _ in range(SETTINGS.pending_backlog_high + 1):
        deliver(table, entry)
    assert entry.in_flight == 3


def test_a_session_too_far_behind_gets_one_throttle_per_delay(table: SessionTable[str]) -> None:
    entry = authenticated(table, b"a", "ed25519.one")
    assert [deliver(table, entry, now=0.0) for _ in range(3)] == [None, None, None]
    assert deliver(table, entry, now=0.0) == 500  # the fourth is over session_backlog_high
    assert deliver(table, entry, now=0.4) is None  # still within the delay
    assert deliver(table, entry, now=0.5) == 500


def test_the_router_is_not_read_while_all_sessions_together_are_too_far_behind(
    table: SessionTable[str],
) -> None:
    first = authenticated(table, b"a", "ed25519.one")
    second = authenticated(table, b"b", "ed25519.two")
    for _ in range(3):
        deliver(table, first)
        deliver(table, second)
    assert table.over_backlog()  # 6 frames
    table.frame_done(first)
    assert not table.over_backlog()
    deliver(table, second, size=1000)  # by bytes
    assert table.over_backlog()


def test_a_frame_that_cannot_be_handed_over_is_dropped_and_the_session_closes(
    table: SessionTable[str],
) -> None:
    entry = open_session(table)
    table.undelivered(entry, now=2.0)
    assert entry.closing_since == 2.0
    assert table.counters().dropped == 1
    assert table.counters().backlog == (0, 0)


# -- connections and routing ids --------------------------------------------------------------


def test_a_routing_id_taken_over_by_another_connection_detaches_the_old_session(
    table: SessionTable[str],
) -> None:
    old = authenticated(table, b"rid", "ed25519.one")
    assert table.pinned_elsewhere(b"rid", CURVE_A) is None
    assert table.pinned_elsewhere(b"rid", CURVE_B) is old
    assert table.detach(old, now=5.0)  # tell it its peer vanished
    assert old.closing_since == 5.0
    assert table.current(b"rid") is None
    assert not table.detach(old, now=6.0)  # told once
    assert not table.outgoing(old, now=6.0)  # nothing more goes to its routing id
    newcomer = open_session(table, b"rid", CURVE_B)
    assert table.current(b"rid") is newcomer


def test_without_curve_every_frame_has_the_same_connection(table: SessionTable[str]) -> None:
    open_session(table, b"rid", connection=None)
    assert table.pinned_elsewhere(b"rid", None) is None


def test_outgoing_frames_note_the_time(table: SessionTable[str]) -> None:
    entry = open_session(table)
    assert table.outgoing(entry, now=7.0)
    assert entry.last_out == 7.0


def test_a_failed_send_is_reported_unless_the_session_is_closing(table: SessionTable[str]) -> None:
    entry = open_session(table)
    assert table.send_failed(entry)
    table.gone(entry, now=1.0)
    assert not table.send_failed(entry)


# -- authentication and displacement ----------------------------------------------------------


def test_authentication_ends_pending_and_displaces_the_older_session_of_the_key(
    table: SessionTable[str],
) -> None:
    old = authenticated(table, b"a", "ed25519.one")
    new = open_session(table, b"b")
    assert table.counters().pending_handshakes == 1
    assert table.authenticated(new, "ed25519.one") is old
    assert table.counters().pending_handshakes == 0
    assert table.authenticated(new, "ed25519.one") is None  # reported once
    assert table.counters().pending_handshakes == 0


def test_a_closing_older_session_is_not_displaced_again(table: SessionTable[str]) -> None:
    old = authenticated(table, b"a", "ed25519.one")
    table.gone(old, now=1.0)
    assert table.authenticated(open_session(table, b"b"), "ed25519.one") is None


def test_a_session_about_to_end_does_not_displace_a_live_one(table: SessionTable[str]) -> None:
    live = authenticated(table, b"a", "ed25519.one")
    ending = open_session(table, b"b")
    table.gone(ending, now=1.0)
    assert table.authenticated(ending, "ed25519.one") is None
    # The live session still owns the key: a third session displaces it, not the ending one.
    assert table.authenticated(open_session(table, b"c"), "ed25519.one") is live


def test_a_detached_session_does_not_displace(table: SessionTable[str]) -> None:
    live = authenticated(table, b"a", "ed25519.one")
    detached = open_session(table, b"b")
    table.detach(detached, now=1.0)
    assert table.authenticated(detached, "ed25519.one") is None
    assert table.authenticated(open_session(table, b"c"), "ed25519.one") is live


# -- forgetting -------------------------------------------------------------------------------


def test_forgetting_a_session_returns_its_backlog_credit(table: SessionTable[str]) -> None:
    entry = authenticated(table, b"a", "ed25519.one")
    deliver(table, entry, size=30)
    deliver(table, entry, size=40)
    table.forget(entry)
    assert table.counters().backlog == (0, 0)
    assert table.current(b"a") is None
    assert len(table) == 0
    table.forget(entry)  # a late close notice changes nothing
    assert table.counters().backlog == (0, 0)
    # The key is free: a new session of it displaces nobody.
    assert table.authenticated(open_session(table, b"b"), "ed25519.one") is None


def test_forgetting_a_pending_session_frees_its_handshake_slot(table: SessionTable[str]) -> None:
    entry = open_session(table)
    table.forget(entry)
    assert table.counters().pending_handshakes == 0
    assert table.counters().sessions_started == 1


def test_a_forgotten_session_does_not_take_the_routing_id_of_its_successor(
    table: SessionTable[str],
) -> None:
    old = open_session(table, b"rid", CURVE_A)
    table.detach(old, now=1.0)
    new = open_session(table, b"rid", CURVE_B)
    table.forget(old)
    assert table.current(b"rid") is new


# -- time ---------------------------------------------------------------------------------------


def test_pending_sessions_are_ticked_every_time(table: SessionTable[str]) -> None:
    entry = open_session(table, now=0.0)
    assert table.sweep(0.5).due == [entry]
    assert table.sweep(1.0).due == [entry]


def test_pending_sessions_are_ticked_once_their_handshake_could_have_timed_out() -> None:
    settings = dataclasses.replace(SETTINGS, handshake_deadline=5.0)
    table: SessionTable[str] = SessionTable(settings)
    entry = open_session(table, now=10.0)
    table.delivered(entry, 100, now=12.0)  # its HELLO arriving does not move the deadline
    assert table.sweep(14.9).due == []
    assert table.sweep(15.0).due == [entry]
    assert table.sweep(15.5).due == [entry]


def test_authenticated_sessions_are_ticked_when_a_heartbeat_or_the_silence_limit_is_due(
    table: SessionTable[str],
) -> None:
    entry = authenticated(table, b"a", "ed25519.one", now=0.0)
    assert table.sweep(9.9).due == []
    assert table.sweep(10.0).due == [entry]  # a heartbeat is due
    table.outgoing(entry, now=10.0)
    assert table.sweep(15.0).due == []
    table.outgoing(entry, now=25.0)
    assert table.sweep(29.9).due == []
    assert table.sweep(30.0).due == [entry]  # nothing received for 3 intervals


def test_without_a_heartbeat_interval_every_session_is_ticked() -> None:
    table: SessionTable[str] = SessionTable(FrontSettings(bind="tcp://127.0.0.1:0"))
    entry = authenticated(table, b"a", "ed25519.one")
    assert table.sweep(0.1).due == [entry]


def test_closing_sessions_are_not_ticked_and_are_overdue_after_the_grace(
    table: SessionTable[str],
) -> None:
    entry = open_session(table)
    table.gone(entry, now=1.0)
    assert table.sweep(2.9) == ([], [])
    assert table.sweep(3.0) == ([], [entry])


def test_close_all_marks_every_session_closing(table: SessionTable[str]) -> None:
    entries = [open_session(table, b"a"), authenticated(table, b"b", "ed25519.two")]
    assert table.close_all(now=4.0) == entries
    assert all(entry.closing_since == 4.0 for entry in entries)
