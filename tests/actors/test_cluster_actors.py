"""The PeerStateActor and the ConfigActor as one of several hubs on a shared store,
driven directly: the session leases and the client rows are autospec'd mocks of their
contracts (``SessionLeases``, ``AuthorizedClientStore``), the peer states a real
SQLite PeerStore, time injected.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest.mock import MagicMock, create_autospec

import pykka
import pytest

from actors import RESTART_STATUS_MESSAGE, ConfigActor, Displace, PeerStateActor
from hub.config import AuthorizedClient, Config
from hub.errors import ConfigError
from hub.pb import synchub_pb2 as pb
from hub.store import AuthorizedClientStore, LiveSession, PeerStore, SessionLeases
from synchub_testing import hub_config_text, write_config

TIMEOUT = 5.0
WEB1, DB1 = "ed25519.web1", "ed25519.db1"


class Recorder(pykka.ThreadingActor):
    """Stands in for a SessionActor: records the messages told to it."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[object] = []

    def on_receive(self, message: object) -> object:
        if message == "seen":
            return list(self.seen)
        self.seen.append(message)
        return None


def mock_leases(node: str = "hub-a") -> MagicMock:
    leases = create_autospec(SessionLeases, instance=True)
    leases.node = node
    leases.expire.return_value = []
    leases.holders.return_value = {}
    leases.renew.side_effect = lambda live: {s.keyid for s in live}
    return leases


@contextmanager
def peer_actor(tmp_path: Path, leases: MagicMock) -> Iterator[Any]:
    ref = PeerStateActor.start(
        lambda: PeerStore(tmp_path), clock=lambda: 1_000.0, node=leases.node,
        leases_factory=lambda: leases, renew_interval=1.0,
    )
    try:
        proxy = ref.proxy()
        assert proxy.ping().get(timeout=TIMEOUT)
        yield proxy
    finally:
        ref.stop(timeout=TIMEOUT)


@pytest.fixture
def session() -> Iterator[pykka.ActorRef[Recorder]]:
    ref = Recorder.start()
    try:
        yield ref
    finally:
        ref.stop()


def seen(ref: pykka.ActorRef[Recorder]) -> list[object]:
    answer: list[object] = ref.ask("seen", timeout=TIMEOUT)
    return answer


def test_a_session_claims_its_lease_and_releases_it(
    tmp_path: Path, session: pykka.ActorRef[Recorder]
) -> None:
    leases = mock_leases()
    leases.release.return_value = True
    with peer_actor(tmp_path, leases) as peers:
        peers.connected(WEB1, "web1", "s1", session).get(timeout=TIMEOUT)
        leases.claim.assert_called_once_with(LiveSession(WEB1, "s1", "web1"))
        peers.disconnected(WEB1, pb.CONNECTION_STATE_DISCONNECTED, "bye",
                           session_id="s1").get(timeout=TIMEOUT)
        leases.release.assert_called_once_with(WEB1, "s1")
        assert peers.get(WEB1).get(timeout=TIMEOUT).state == pb.CONNECTION_STATE_DISCONNECTED
    leases.close.assert_called_once()


def test_an_end_after_another_hub_took_the_key_leaves_its_state_alone(
    tmp_path: Path, session: pykka.ActorRef[Recorder]
) -> None:
    leases = mock_leases()
    leases.release.return_value = False
    leases.holders.return_value = {WEB1: "hub-b"}
    with peer_actor(tmp_path, leases) as peers:
        peers.connected(WEB1, "web1", "s1", session).get(timeout=TIMEOUT)
        peers.disconnected(WEB1, pb.CONNECTION_STATE_DISCONNECTED, "silent",
                           session_id="s1").get(timeout=TIMEOUT)
        assert peers.get(WEB1).get(timeout=TIMEOUT).state == pb.CONNECTION_STATE_CONNECTED


def test_a_claim_on_another_hub_displaces_the_session_here(
    tmp_path: Path, session: pykka.ActorRef[Recorder]
) -> None:
    leases = mock_leases()
    with peer_actor(tmp_path, leases) as peers:
        peers.connected(WEB1, "web1", "s1", session).get(timeout=TIMEOUT)
        peers.claimed(WEB1, "hub-a", "s9").get(timeout=TIMEOUT)  # this hub's own: the front's
        leases.holders.return_value = {WEB1: "hub-a"}
        peers.claimed(WEB1, "hub-b", "s2").get(timeout=TIMEOUT)  # older than this session
        assert seen(session) == []
        leases.holders.return_value = {WEB1: "hub-b"}
        peers.claimed(WEB1, "hub-b", "s2").get(timeout=TIMEOUT)
        assert seen(session) == [Displace()]
        assert peers.live_session(WEB1).get(timeout=TIMEOUT) is None
        # The displaced session's own end is not this hub's to report.
        peers.claimed(WEB1, "hub-b", "s2").get(timeout=TIMEOUT)
        assert seen(session) == [Displace()]


def test_ticks_renew_displace_what_moved_and_expire_other_hubs_leases(
    tmp_path: Path, session: pykka.ActorRef[Recorder]
) -> None:
    leases = mock_leases()
    lost = pb.PeerState(peer_keyid=DB1, peer_instance_id="db1",
                        state=pb.CONNECTION_STATE_DISCONNECTED, status_message="hub-c gone")
    with peer_actor(tmp_path, leases) as peers:
        heard: list[pb.PeerState] = []
        peers.subscribe(heard.append).get(timeout=TIMEOUT)
        peers.connected(WEB1, "web1", "s1", session).get(timeout=TIMEOUT)
        heard.clear()
        leases.renew.side_effect = None
        leases.renew.return_value = set()  # another hub holds it now
        leases.expire.return_value = [lost]
        peers.tick(1_001.0).get(timeout=TIMEOUT)
        leases.renew.assert_called_once_with([LiveSession(WEB1, "s1", "web1")])
        assert seen(session) == [Displace()]
        assert peers.get(DB1).get(timeout=TIMEOUT) == lost
        assert heard == [lost]
        peers.tick(1_001.5).get(timeout=TIMEOUT)  # not due yet
        assert leases.renew.call_count == 1


def test_a_restart_resets_only_the_peers_no_other_hub_serves(tmp_path: Path) -> None:
    store = PeerStore(tmp_path)
    store.save([pb.PeerState(peer_keyid=k, state=pb.CONNECTION_STATE_CONNECTED)
                for k in (WEB1, DB1)])
    store.close()
    leases = mock_leases()
    leases.holders.return_value = {DB1: "hub-b"}
    with peer_actor(tmp_path, leases) as peers:
        leases.expire.assert_called_once()
        assert leases.expire.call_args.kwargs == {"restarted": True}
        web1, db1 = (peers.get(k).get(timeout=TIMEOUT) for k in (WEB1, DB1))
        assert (web1.state, web1.status_message) == (
            pb.CONNECTION_STATE_DISCONNECTED, RESTART_STATUS_MESSAGE
        )
        assert db1.state == pb.CONNECTION_STATE_CONNECTED
        assert peers.holders().get(timeout=TIMEOUT) == {DB1: "hub-b"}


# -- the ConfigActor with the clients in the store --------------------------------------


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return write_config(tmp_path, hub_config_text())


def test_clients_come_from_the_store_and_changes_go_there(config: Config) -> None:
    stored = [AuthorizedClient("web1", WEB1, True)]
    clients = create_autospec(AuthorizedClientStore, instance=True)
    clients.load_all.side_effect = lambda: tuple(stored)
    file_text = config.path.read_text() if config.path else ""
    ref = ConfigActor.start(config, clients_factory=lambda: clients)
    try:
        actor = ref.proxy()
        heard: list[Config] = []
        actor.subscribe(heard.append).get(timeout=TIMEOUT)
        assert actor.get().get(timeout=TIMEOUT).authorized_clients == tuple(stored)

        db1 = AuthorizedClient("db1", DB1, True)
        clients.put.side_effect = stored.append
        updated = actor.authorize(db1).get(timeout=TIMEOUT)
        clients.put.assert_called_once_with(db1)
        assert updated.authorized_client(DB1) == db1

        # Another hub revoked web1: the notice makes this hub read the rows again.
        del stored[0]
        actor.clients_changed().get(timeout=TIMEOUT)
        assert actor.get().get(timeout=TIMEOUT).authorized_client(WEB1) is None
        assert [len(c.authorized_clients) for c in heard] == [2, 1]
        actor.clients_changed().get(timeout=TIMEOUT)  # nothing changed: nothing published
        assert len(heard) == 2

        clients.remove.return_value = True
        actor.revoke(DB1).get(timeout=TIMEOUT)
        clients.remove.assert_called_once_with(DB1)
        assert config.path is not None and config.path.read_text() == file_text
    finally:
        ref.stop(timeout=TIMEOUT)
    clients.close.assert_called_once()


def test_a_reload_whose_file_gained_clients_is_refused_and_the_old_config_kept(
    tmp_path: Path,
) -> None:
    store = '\n[store]\nurl = "postgresql://synchub@db.example.org/synchub"\n'
    text = hub_config_text().split("[[authorized_clients]]")[0] + store
    config = write_config(tmp_path, text)
    assert config.path is not None and not config.authorized_clients
    clients = create_autospec(AuthorizedClientStore, instance=True)
    clients.load_all.return_value = (AuthorizedClient("db1", DB1, True),)
    ref = ConfigActor.start(config, clients_factory=lambda: clients)
    try:
        actor = ref.proxy()
        running = actor.get().get(timeout=TIMEOUT)
        config.path.write_text(hub_config_text() + store)  # [[authorized_clients]] again
        with pytest.raises(ConfigError) as refused:
            actor.reload().get(timeout=TIMEOUT)
        assert str(refused.value) == (
            f"{config.path}: authorized_clients: 3 client(s) here, but a hub on a "
            "PostgreSQL store reads them from the database: run `synchub store migrate "
            "--clients-only --to postgresql://synchub@db.example.org/synchub` to move "
            "them there, then delete them from this file"
        )
        assert actor.get().get(timeout=TIMEOUT) is running

        config.path.write_text(text.replace("heartbeat_interval = 10", "heartbeat_interval = 7"))
        reloaded = actor.reload().get(timeout=TIMEOUT)
        assert reloaded.hub.heartbeat_interval == 7
        assert reloaded.authorized_clients == (AuthorizedClient("db1", DB1, True),)
    finally:
        ref.stop(timeout=TIMEOUT)
