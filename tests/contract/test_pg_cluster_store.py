"""The stores several hubs share on PostgreSQL: authorized clients as rows, the session
leases, the notices every hub hears, and which hub leads the alerts (docs/cluster.md).

Two nodes' views of one database stand for two hubs. Each test has a database of
its own; without a server they skip with the reason.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from contract_support import local_op
from postgres_support import database_name, fresh_database, terminate_connections

from hub.config import AuthorizedClient
from hub.errors import StoreError, StoreUnavailable
from hub.pb import synchub_pb2 as pb
from hub.scopes import parse_permissions
from hub.store import (
    ClientsChanged,
    ClusterNotices,
    LiveSession,
    OplogCommitted,
    PostgresAlertLeadership,
    PostgresClientStore,
    PostgresOplogStore,
    PostgresPeerStateStore,
    PostgresSessionLeases,
    SessionClaimed,
    import_clients,
)

KEY_A = "ed25519." + "A" * 43
KEY_B = "ed25519." + "B" * 43


@pytest.fixture
def url() -> Iterator[str]:
    with fresh_database() as fresh:
        yield fresh


@pytest.fixture
def notices(url: str) -> Iterator[ClusterNotices]:
    heard = ClusterNotices(url)
    heard.open()
    try:
        yield heard
    finally:
        heard.close()


def client(keyid: str, instance: str = "web1", *, verified: bool = True) -> AuthorizedClient:
    return AuthorizedClient(
        instance_id=instance, keyid=keyid, keyid_verified=verified,
        permissions=parse_permissions([{"type": "read_config", "scopes": ["*", "!plan:x"]}]),
    )


def connected(keyid: str) -> pb.PeerState:
    return pb.PeerState(peer_keyid=keyid, peer_instance_id="web1",
                        state=pb.CONNECTION_STATE_CONNECTED, last_heartbeat_millis=5)


def heard(notices: ClusterNotices, count: int) -> list[object]:
    found: list[object] = []
    for _ in range(50):
        found.extend(notices.wait(0.1))
        if len(found) >= count:
            return found
    raise AssertionError(f"heard {found}, expected {count} notices")


def test_clients_are_rows_every_change_announced(url: str, notices: ClusterNotices) -> None:
    store, other = PostgresClientStore(url), PostgresClientStore(url)
    try:
        assert store.load_all() == ()
        store.put(client(KEY_A))
        store.put(client(KEY_B, "db1", verified=False))
        assert other.load_all() == (client(KEY_A), client(KEY_B, "db1", verified=False))
        assert heard(notices, 2) == [ClientsChanged(KEY_A), ClientsChanged(KEY_B)]

        assert other.set_verified(KEY_B, True)
        assert not other.set_verified("ed25519.nobody", True)
        assert store.load_all()[1].keyid_verified
        assert store.remove(KEY_A)
        assert not store.remove(KEY_A)
        assert [c.keyid for c in other.load_all()] == [KEY_B]
        assert ClientsChanged(KEY_A) in heard(notices, 4)
    finally:
        store.close()
        other.close()


def test_importing_clients_is_all_or_nothing(url: str) -> None:
    assert import_clients(url, [client(KEY_A), client(KEY_B, "db1")]) == 2
    store = PostgresClientStore(url)
    try:
        assert [c.instance_id for c in store.load_all()] == ["web1", "db1"]
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("UPDATE authorized_clients SET permissions = '[{\"type\": 5}]'")
        with pytest.raises(StoreError, match="bad permissions"):
            store.load_all()
    finally:
        store.close()


def test_a_claim_moves_the_session_and_is_heard(url: str, notices: ClusterNotices) -> None:
    hub_a = PostgresSessionLeases(url, "hub-a", lease_seconds=30)
    hub_b = PostgresSessionLeases(url, "hub-b", lease_seconds=30)
    try:
        hub_a.claim(LiveSession(KEY_A, "s1", "web1"))
        assert hub_b.holders() == {KEY_A: "hub-a"}
        hub_b.claim(LiveSession(KEY_A, "s1", "web1"))  # the same routing id, another hub
        assert heard(notices, 2) == [
            SessionClaimed(KEY_A, "hub-a", "s1"), SessionClaimed(KEY_A, "hub-b", "s1")
        ]
        # hub-a's renewal shows its session was displaced; its release is refused.
        assert hub_a.renew([LiveSession(KEY_A, "s1", "web1")]) == set()
        assert not hub_a.release(KEY_A, "s1")
        assert hub_a.holders() == {KEY_A: "hub-b"}
        # A renewal puts back a lease that went missing (a hub that lost the database).
        assert hub_b.release(KEY_A, "s1")
        assert hub_b.renew([LiveSession(KEY_A, "s1", "web1")]) == {KEY_A}
        assert hub_a.holders() == {KEY_A: "hub-b"}
    finally:
        hub_a.close()
        hub_b.close()


def test_expired_leases_end_and_their_peers_are_marked_down(url: str) -> None:
    peers = PostgresPeerStateStore(url)
    dead = PostgresSessionLeases(url, "hub-a", lease_seconds=-1)  # already past
    alive = PostgresSessionLeases(url, "hub-b", lease_seconds=30)
    try:
        peers.save([connected(KEY_A), connected(KEY_B)])
        dead.claim(LiveSession(KEY_A, "s1", "web1"))
        alive.claim(LiveSession(KEY_B, "s2", "db1"))
        changed = alive.expire(lambda node: f"gone: {node}")
        assert [(s.peer_keyid, s.state, s.status_message) for s in changed] == [
            (KEY_A, pb.CONNECTION_STATE_DISCONNECTED, "gone: hub-a")
        ]
        assert alive.holders() == {KEY_B: "hub-b"}
        stored = peers.load_all()
        assert stored[KEY_A].state == pb.CONNECTION_STATE_DISCONNECTED
        assert stored[KEY_B].state == pb.CONNECTION_STATE_CONNECTED
        assert alive.expire(lambda node: "again") == []

        # A restarted hub ends its own leases from before, live or not.
        restarted = PostgresSessionLeases(url, "hub-b", lease_seconds=30)
        try:
            assert [s.peer_keyid for s in restarted.expire(lambda n: "restart",
                                                           restarted=True)] == [KEY_B]
            assert restarted.holders() == {}
        finally:
            restarted.close()
    finally:
        peers.close()
        dead.close()
        alive.close()


def test_a_lost_listening_connection_is_store_unavailable(
    url: str, notices: ClusterNotices
) -> None:
    terminate_connections(database_name(url))
    with pytest.raises(StoreUnavailable, match="lost the connection"):
        for _ in range(50):
            notices.wait(0.1)
    notices.open()
    store = PostgresClientStore(url)
    try:
        store.put(client(KEY_A))
    finally:
        store.close()
    assert heard(notices, 1) == [ClientsChanged(KEY_A)]


def test_one_hub_at_a_time_leads_the_alerts_and_a_lost_lead_is_taken_over(url: str) -> None:
    first, second = PostgresAlertLeadership(url), PostgresAlertLeadership(url)
    try:
        assert not first.still_leading()
        assert first.try_lead() and first.try_lead() and first.still_leading()
        assert not second.try_lead() and not second.still_leading()
        first.close()  # a hub that stops (or dies: its connection goes) lets it go
        assert second.try_lead() and second.still_leading()
        assert not first.try_lead()
        terminate_connections(database_name(url))  # the database restarted, say
        assert not second.still_leading()
        assert first.try_lead() and not second.try_lead()
    finally:
        first.close()
        second.close()


def test_what_a_hub_stores_is_announced_as_runs_of_ids_with_its_name(
    url: str, notices: ClusterNotices
) -> None:
    store = PostgresOplogStore(url, origin="synchub hub-a")
    try:
        created = store.add_local([local_op(f"op {n}") for n in range(5)])
        ids = [op.id for op in created]
        assert heard(notices, 1) == [OplogCommitted("synchub hub-a", ((ids[0], ids[-1]),))]
        changed = []
        for op in (created[0], created[2], created[3]):
            copy = pb.Operation()
            copy.CopyFrom(op)
            copy.display_message = "changed"
            changed.append(copy)
        store.update_local(changed)
        assert heard(notices, 1) == [
            OplogCommitted("synchub hub-a", ((ids[0], ids[0]), (ids[2], ids[3])))
        ]
        # Many runs (every other id): split over notices of at most ~7 kB each.
        many = store.add_local([local_op(f"more {n}") for n in range(3000)])
        assert len(heard(notices, 1)) == 1
        sparse = []
        for op in many[::2]:
            copy = pb.Operation()
            copy.CopyFrom(op)
            copy.display_message = "sparse"
            sparse.append(copy)
        store.update_local(sparse)
        parts: list[OplogCommitted] = []
        while sum(len(p.runs) for p in parts) < len(sparse):
            parts.extend(n for n in heard(notices, 1) if isinstance(n, OplogCommitted))
        assert len(parts) > 1 and all(p.writer == "synchub hub-a" for p in parts)
        assert [first for p in parts for first, _ in p.runs] == [op.id for op in sparse]
    finally:
        store.close()
