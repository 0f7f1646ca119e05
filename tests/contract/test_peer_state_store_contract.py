"""The PeerStateStore contract: PeerState records by peer keyid, kept across restarts.

What only the SQLite PeerStore does (its file, read-only snapshots for the CLI) is
in tests/unit/test_peer_store.py.
"""

from __future__ import annotations

import pytest
from contract_support import Backend, peer_state

from hub.errors import StoreError
from hub.pb import synchub_pb2 as pb
from hub.store import PeerStateStore


def test_implements_the_protocol(peer_state_store: PeerStateStore) -> None:
    assert isinstance(peer_state_store, PeerStateStore)


def test_round_trip_keeps_every_field(peer_state_backend: Backend[PeerStateStore]) -> None:
    store = peer_state_backend.open()
    web1 = peer_state()
    db1 = pb.PeerState(
        peer_instance_id="db1", peer_keyid="ed25519.db1", state=pb.CONNECTION_STATE_CONNECTED
    )
    store.save([web1, db1])

    assert store.load_all() == {"ed25519.web1": web1, "ed25519.db1": db1}
    store.close()
    loaded = peer_state_backend.open().load_all()
    assert loaded["ed25519.web1"] == web1
    assert loaded["ed25519.web1"].remote_config.plans[0].excludes == ["*.tmp"]
    assert loaded["ed25519.db1"] == db1


def test_save_upserts_by_keyid(peer_state_store: PeerStateStore) -> None:
    store = peer_state_store
    first = peer_state()
    store.save([first])
    updated = peer_state()
    updated.state = pb.CONNECTION_STATE_CONNECTED
    updated.status_message = ""
    del updated.known_plans[:]
    other = pb.PeerState(peer_instance_id="db1", peer_keyid="ed25519.db1")
    store.save([updated, other])

    loaded = store.load_all()
    assert set(loaded) == {"ed25519.web1", "ed25519.db1"}
    assert loaded["ed25519.web1"] == updated
    assert list(loaded["ed25519.web1"].known_plans) == []


def test_empty_save_is_a_no_op(peer_state_store: PeerStateStore) -> None:
    peer_state_store.save([])
    assert peer_state_store.load_all() == {}


def test_batch_with_a_keyless_state_saves_nothing(peer_state_store: PeerStateStore) -> None:
    with pytest.raises(StoreError, match="keyid"):
        peer_state_store.save([peer_state(), pb.PeerState(peer_instance_id="nokey")])
    assert peer_state_store.load_all() == {}


def test_saved_and_loaded_states_are_not_shared(peer_state_store: PeerStateStore) -> None:
    store = peer_state_store
    state = peer_state()
    store.save([state])
    state.status_message = "changed after saving"
    loaded = store.load_all()["ed25519.web1"]
    assert loaded == peer_state()
    loaded.status_message = "changed after loading"
    assert store.load_all()["ed25519.web1"] == peer_state()


def test_closed_store_raises_store_error(peer_state_store: PeerStateStore) -> None:
    store = peer_state_store
    store.close()
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.load_all()
    with pytest.raises(StoreError, match="closed"):
        store.save([peer_state()])
