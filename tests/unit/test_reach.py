"""ReachWatch without sockets: the transport's events and times in, a verdict out.

The event sequences are those libzmq 4.3 reports on Linux for each case (the
integration tests in tests/integration/test_agent_reach.py see them on real sockets).
"""

from __future__ import annotations

import pytest

from hub.errors import HubUnavailable
from hub.pb import synchub_pb2 as pb
from hub.protocol import (
    NOTICE_AFTER_SECONDS,
    ClientHandshake,
    ClientSession,
    Endpoint,
    HubPin,
    LinkEvent,
    Reach,
    ReachWatch,
    SharedConfig,
    SyncScope,
    parse_endpoint,
)
from synchub_testing import CLIENT, HUB

T0 = 1000.0
WHO = "hub hub-1 at tcp://hub.example.org:7470"
E = LinkEvent


def watch(endpoint: str = "tcp://hub.example.org:7470") -> ReachWatch:
    return ReachWatch(WHO, endpoint, T0)


def feed(w: ReachWatch, *events: tuple[float, LinkEvent]) -> None:
    for at, event in events:
        w.event(event, T0 + at)


def test_endpoints_split_into_host_and_port() -> None:
    assert parse_endpoint("tcp://hub.example.org:7470") == Endpoint("hub.example.org", "7470", True)
    assert parse_endpoint("tcp://10.0.0.9:7470") == Endpoint("10.0.0.9", "7470", False)
    assert parse_endpoint("tcp://[::1]:7470") == Endpoint("::1", "7470", False)
    assert parse_endpoint("ipc:///run/hub.sock") is None
    assert parse_endpoint("tcp://hub.example.org") is None
    assert parse_endpoint("tcp://hub.example.org:notaport") is None
    assert watch().wants_lookup and not watch("tcp://127.0.0.1:1").wants_lookup


def test_a_closed_port_is_connection_refused_after_two_failed_connects() -> None:
    w = watch("tcp://127.0.0.1:7470")
    feed(w, (0.0, E.CONNECT_PENDING), (0.0, E.CONNECT_FAILED), (0.0, E.RETRY_SCHEDULED))
    assert w.check(T0 + 0.05) is None  # one refusal may be a hub restarting
    feed(w, (0.1, E.CONNECT_PENDING), (0.1, E.CONNECT_FAILED), (0.1, E.RETRY_SCHEDULED))
    verdict = w.check(T0 + 0.2)
    assert verdict is not None and verdict.reason is Reach.REFUSED
    assert verdict.message == (
        f"{WHO}: connection refused: nothing listens on port 7470 of 127.0.0.1, or there "
        "is no route to it (is the hub running, and is the port right?)"
    )
    assert w.current == verdict
    assert not w.noticeable(T0 + NOTICE_AFTER_SECONDS - 0.01)
    assert w.noticeable(T0 + NOTICE_AFTER_SECONDS)
    assert Reach.REFUSED.definitive


def test_a_name_that_does_not_resolve() -> None:
    # libzmq alone: retries, and never starts a TCP connection.
    w = watch()
    feed(w, (0.01, E.RETRY_SCHEDULED))
    assert w.check(T0 + 0.05) is None
    feed(w, (0.11, E.RETRY_SCHEDULED))
    verdict = w.check(T0 + 0.2)
    assert verdict is not None and verdict.reason is Reach.UNRESOLVED
    assert "cannot resolve the name hub.example.org (the resolver gave no address)" in (
        verdict.message
    )
    # The client's own lookup gives the resolver's words, at once.
    w = watch()
    w.looked_up("Name or service not known")
    verdict = w.check(T0)
    assert verdict is not None and verdict.reason is Reach.UNRESOLVED
    assert verdict.message.startswith(
        f"{WHO}: cannot resolve the name hub.example.org (Name or service not known): "
        "check the endpoint's host name"
    )
    # A lookup that succeeded says nothing.
    w = watch()
    w.looked_up(None)
    feed(w, (0.0, E.CONNECT_PENDING), (0.0, E.CONNECTED), (0.01, E.SECURED))
    assert w.check(T0 + 10) is None


def test_a_connection_pending_for_a_few_seconds_is_no_answer() -> None:
    w = watch("tcp://10.0.0.9:7470")
    feed(w, (0.0, E.CONNECT_PENDING))
    assert w.check(T0 + NOTICE_AFTER_SECONDS - 0.1) is None
    verdict = w.check(T0 + 4.2)
    assert verdict is not None and verdict.reason is Reach.NO_ANSWER
    assert "a TCP connection has been pending for 4s, so packets are dropped" in verdict.message
    assert not Reach.NO_ANSWER.definitive
    # TCP coming up ends it.
    feed(w, (4.5, E.CONNECTED))
    assert w.check(T0 + 4.6) is None


def test_tcp_up_but_no_zeromq_handshake_is_not_a_hubs_port() -> None:
    w = watch("tcp://127.0.0.1:8080")
    feed(w, (0.0, E.CONNECT_PENDING), (0.0, E.CONNECTED))
    assert w.check(T0 + 2.9) is None
    verdict = w.check(T0 + 3.5)
    assert verdict is not None and verdict.reason is Reach.NO_HANDSHAKE
    assert "TCP is connected but nothing has answered the ZeroMQ handshake for 4s" in (
        verdict.message
    )
    # A hub that answers (slowly) clears it; a secured link never has a verdict.
    feed(w, (3.6, E.SECURED))
    assert w.check(T0 + 60) is None
    feed(w, (61, E.DISCONNECTED), (61, E.RETRY_SCHEDULED), (62, E.CONNECT_FAILED),
         (63, E.CONNECT_FAILED))
    assert w.check(T0 + 64) is None


def test_curve_failures_and_a_hub_without_curve() -> None:
    w = watch()
    feed(w, (0.0, E.CONNECT_PENDING), (0.0, E.CONNECTED), (0.0, E.SECURING_FAILED),
         (0.0, E.DISCONNECTED), (0.0, E.RETRY_SCHEDULED))
    verdict = w.check(T0 + 0.1)
    assert verdict is not None and verdict.reason is Reach.CURVE_FAILED
    assert "check that known_hosts curve_public_key is the hub's" in verdict.message

    w = watch()
    feed(w, (0.0, E.CONNECT_PENDING), (0.0, E.CONNECTED), (0.0, E.PLAINTEXT),
         (0.0, E.DISCONNECTED))
    verdict = w.check(T0 + 0.1)
    assert verdict is not None and verdict.reason is Reach.CURVE_OFF
    assert "speaks ZeroMQ without CURVE encryption: the hub runs with curve = false" in (
        verdict.message
    )
    assert Reach.CURVE_OFF.definitive and not Reach.CURVE_FAILED.definitive


def test_the_sessions_timeout_says_the_verdict() -> None:
    w = watch("tcp://127.0.0.1:7470")
    session = ClientSession(
        ClientHandshake(CLIENT, "web1", HubPin("hub-1", HUB.keyid)),
        _NoOplog(), SyncScope(()), SharedConfig(pb.RemoteConfig(), (), ()),
        who=WHO, reach=w,
    )
    session.start(T0)
    for at in (0.0, 0.1):
        feed(w, (at, E.CONNECT_PENDING), (at, E.CONNECT_FAILED), (at, E.RETRY_SCHEDULED))
        session.link_event(E.CONNECT_FAILED)  # the session itself ignores these
    w.check(T0 + 1)
    with pytest.raises(HubUnavailable, match=r"connection refused: nothing listens on port "
                                             r"7470 .* \(not answered within 30s\)"):
        session.advance(T0 + 30)


class _NoOplog:
    def high_water(self) -> int:
        return 0
