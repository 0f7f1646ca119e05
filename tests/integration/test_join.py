"""`synchub invite` and `synchub join` as real processes against `synchub start`.

On loopback first (the token's refusals), then across hosts: the hub and a client
each in a network namespace the test builds; the client joins with the token
alone and syncs, and nobody runs `synchub authorize`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from netns_support import PrivateNetwork, netns_unavailable_reason

from hub.config import load_config
from hub.identity import SigningIdentity, load_identity
from hub.pb import synchub_pb2 as pb
from hub.protocol import InvitationToken, Transcript, join_item
from hub.store import SqliteInvitationStore, SqliteOplogStore, oplog_path
from synchub_testing import (
    LAUNCHER,
    STRANGER,
    HubProcess,
    RawClient,
    client_handshake,
    free_tcp_port,
    wait_until,
)

pytestmark = pytest.mark.integration


def synchub(cwd: Path, *args: str, prefix: Sequence[str] = ()) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SYNCHUB_CONFIG"}
    return subprocess.run(
        [*prefix, sys.executable, str(LAUNCHER), *args], cwd=cwd, env=env,
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=90, check=False,
    )


def write_hub(root: Path, bind: str, extra: str = "") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / "synchub.toml"
    path.write_text(
        f'# the hub\ninstance = "hub-1"\ndata_dir = "data"\n\n[hub]\nbind = "{bind}"\n'
        "heartbeat_interval = 5\nhandshake_timeout = 5\n" + extra
        + '\n[web]\nbind = ""\n\n[[repos]]\nid = "nas"\nguid = "g-nas"\nuri = "sftp:nas"\n'
    )
    return path


def invite(hub_root: Path, *args: str, prefix: Sequence[str] = ()) -> str:
    made = synchub(hub_root, "invite", *args, prefix=prefix)
    assert made.returncode == 0, made.stderr
    [token] = made.stdout.splitlines()  # the token alone on stdout
    assert "synchub join TOKEN" in made.stderr
    return token


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[HubProcess]:
    config = write_hub(tmp_path / "hub", f"tcp://127.0.0.1:{free_tcp_port()}")
    assert synchub(config.parent, "keygen").returncode == 0
    process = HubProcess(config)
    try:
        process.wait_for_output("synchub hub hub-1 listening on")
        yield process
    finally:
        process.kill()


def authorized(hub: HubProcess, keyid: str) -> bool:
    return load_config(hub.config_path).authorized_client(keyid) is not None


def test_join_lets_a_new_client_in_and_it_syncs(hub: HubProcess, tmp_path: Path) -> None:
    hub_root = hub.config_path.parent
    token = invite(hub_root, "--instance", "web1", "--perm", "read_config:*", "--uses", "1")
    client = tmp_path / "web1"
    client.mkdir()
    joined = synchub(client, "join", token)
    assert joined.returncode == 0, joined.stderr
    assert "joined hub-1" in joined.stdout and "nas" in joined.stdout
    assert "created identity" in joined.stderr

    keyid = load_identity(client / "synchub-data").signing.keyid
    entry = load_config(hub.config_path).authorized_client(keyid)
    assert entry is not None and entry.keyid_verified and entry.instance_id == "web1"
    assert hub.config_path.read_text().startswith("# the hub\n")
    [host] = load_config(client / "synchub.toml").known_hosts
    assert host.instance_id == "hub-1"

    assert synchub(client, "run", "--", "true").returncode == 0
    synced = synchub(client, "agent", "--once", "--timeout", "30")
    assert synced.returncode == 0, synced.stderr
    ops = json.loads(synchub(hub_root, "ops", "--json", "--instance", "web1").stdout)
    assert [op["original_instance_keyid"] for op in ops] == [keyid]

    peers = json.loads(synchub(hub_root, "peers", "--json").stdout)
    assert [p["peer_instance_id"] for p in peers] == ["web1"]
    listed = json.loads(synchub(hub_root, "invite", "--list", "--json").stdout)
    assert [(i["state"], i["joined"]) for i in listed] == [("used up", [keyid])]

    # Used up: another client with the same token is refused, and nothing is authorized.
    other = tmp_path / "other"
    other.mkdir()
    again = synchub(other, "join", token)
    assert again.returncode == 1
    assert "ERROR_AUTH" in again.stderr and "used up" in again.stderr
    other_key = load_identity(other / "synchub-data").signing.keyid
    assert not authorized(hub, other_key)
    assert not (other / "synchub.toml").exists()


def test_wrong_expired_and_revoked_tokens_are_refused(hub: HubProcess, tmp_path: Path) -> None:
    hub_root = hub.config_path.parent
    good = InvitationToken.decode(invite(hub_root, "--instance", "web1"))
    wrong = InvitationToken(good.hub_instance_id, good.hub_keyid, good.curve_public_key,
                            good.endpoints, "web1", bytes(32))
    expired = InvitationToken.decode(invite(hub_root, "--instance", "web1"))
    store = SqliteInvitationStore(load_config(hub.config_path).data_dir)
    try:  # its expiry moved back to its creation, as if its hour had gone by
        store._connection().execute(
            "UPDATE invitations SET expires_ms = created_ms WHERE id = ?",
            (expired.invitation_id,))
    finally:
        store.close()
    revoked = InvitationToken.decode(invite(hub_root, "--instance", "web1"))
    done = synchub(hub_root, "invite", "--revoke", revoked.invitation_id)
    assert done.returncode == 0, done.stderr

    for token, reason in ((wrong, "is not known to this hub"), (expired, "has expired"),
                          (revoked, "was revoked")):
        client = tmp_path / reason.replace(" ", "-")
        client.mkdir()
        result = synchub(client, "join", token.encode())
        assert result.returncode == 1, result
        lines = result.stderr.strip().splitlines()
        assert lines[-1].startswith("synchub: error: hub hub-1 refused to join (ERROR_AUTH)")
        assert reason in lines[-1]
        assert not authorized(hub, load_identity(client / "synchub-data").signing.keyid)

    damaged = synchub(tmp_path, "join", good.encode()[:50])
    assert damaged.returncode == 1 and "damaged" in damaged.stderr
    assert "Traceback" not in hub.stderr


def test_a_recorded_join_replayed_on_another_connection_is_refused(hub: HubProcess) -> None:
    token = InvitationToken.decode(invite(hub.config_path.parent, "--instance", "new1",
                                          "--uses", "2"))
    endpoint = token.endpoints[0]
    recorded: list[pb.SyncStreamItem.Join] = []

    def dial(identity: SigningIdentity, make_join: object) -> pb.SyncStreamItem:
        raw = RawClient(endpoint, token.curve_public_key.encode())
        try:
            handshake = client_handshake(identity, "new1", None, token.hub_keyid)
            handshake.join = make_join  # type: ignore[assignment]
            raw.send(handshake.hello_frame())
            raw.send(handshake.proof_frame(raw.recv_action("handshake").handshake))
            answer = raw.recv()
        finally:
            raw.close()
        return answer

    def record(t: Transcript) -> pb.SyncStreamItem.Join:
        recorded.append(join_item(token.secret, t))
        return recorded[-1]

    assert dial(STRANGER, record).WhichOneof("action") == "send_config"
    newcomer = SigningIdentity.from_seed(bytes(range(160, 192)))
    answer = dial(newcomer, lambda _t: recorded[0])
    assert answer.error.state == pb.CONNECTION_STATE_ERROR_AUTH
    assert "was not proven" in answer.error.message
    assert not authorized(hub, newcomer.keyid)
    listed = json.loads(synchub(hub.config_path.parent, "invite", "--list", "--json").stdout)
    assert listed[0]["uses_left"] == 1


# -- across hosts ----------------------------------------------------------------------------


@pytest.fixture
def network() -> Iterator[PrivateNetwork]:
    reason = netns_unavailable_reason()
    if reason:
        pytest.skip(reason)
    net = PrivateNetwork()
    try:
        net.create(["hub", "web1"])
        yield net
    finally:
        net.destroy()


@pytest.mark.netns
def test_a_client_host_joins_a_hub_host_with_the_token_alone(
    tmp_path: Path, network: PrivateNetwork
) -> None:
    advertised = f"tcp://{network.address('hub')}:7470"
    hub_root = tmp_path / "hub"
    config = write_hub(hub_root, "tcp://0.0.0.0:7470", f'advertise = "{advertised}"\n')
    on_hub = network.command("hub", [])
    on_client = network.command("web1", [])
    assert synchub(hub_root, "keygen", prefix=on_hub).returncode == 0
    hub_process = subprocess.Popen(
        network.command("hub", [sys.executable, str(LAUNCHER), "--config", str(config),
                                "start"]),
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        token = invite(hub_root, "--instance", "web1", "--perm", "read_config:*",
                       prefix=on_hub)
        assert InvitationToken.decode(token).endpoints == (advertised,)
        client = tmp_path / "web1"
        client.mkdir()
        joined = synchub(client, "join", token, prefix=on_client)
        assert joined.returncode == 0, joined.stderr
        assert synchub(client, "run", "-m", "nightly backup", "--", "true",
                       prefix=on_client).returncode == 0
        synced = synchub(client, "agent", "--once", "--timeout", "30", prefix=on_client)
        assert synced.returncode == 0, synced.stderr
        keyid = load_identity(client / "synchub-data").signing.keyid

        def at_hub() -> list[str]:
            store = SqliteOplogStore(oplog_path(hub_root / "data"))
            try:
                found = store.query(pb.OpSelector(original_instance_keyid=keyid))
            finally:
                store.close()
            return [op.display_message for op in found]

        wait_until(lambda: at_hub() == ["nightly backup"], timeout=10,
                   what="the joined client's operation at the hub")
        entry = load_config(config).authorized_client(keyid)
        assert entry is not None and entry.keyid_verified
    finally:
        if hub_process.poll() is None:
            hub_process.send_signal(signal.SIGTERM)
        try:
            _, stderr = hub_process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            hub_process.kill()
            hub_process.communicate()
            raise
    assert hub_process.returncode == 0, stderr
