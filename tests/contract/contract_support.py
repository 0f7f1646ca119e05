"""What the store contract suites share: the backend a fixture hands out, the
type of a store that is both a hub's and a node's oplog, and sample operations
and peer states (with the key ids of two peers)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from google.protobuf.internal import encoder

from hub.pb import synchub_pb2 as pb
from hub.store import LocalOplogStore, OplogStore

KEY_A = "ed25519.peer-a"
KEY_B = "ed25519.peer-b"


class Closable(Protocol):
    def close(self) -> None: ...


S = TypeVar("S", bound=Closable)


class Backend(Generic[S]):
    """Opens stores on one backing database, as many as a test needs, and closes them all."""

    def __init__(self, opener: Callable[[], S]) -> None:
        self._opener = opener
        self._opened: list[S] = []

    def open(self) -> S:
        store = self._opener()
        self._opened.append(store)
        return store

    def open_unmanaged(self) -> S:
        """A store the caller closes itself: one a thread opens, uses and closes."""
        return self._opener()

    def close_all(self) -> None:
        for store in self._opened:
            store.close()


class NodeOplogStore(OplogStore, LocalOplogStore, Protocol):
    """A store implementing both oplog protocols: the oplog of a node that is a hub and a client."""


def remote_op(
    op_id: int,
    flow_id: int = 0,
    modno: int = 1,
    *,
    repo_guid: str = "guid-nas",
    plan_id: str = "nightly",
    message: str = "",
) -> pb.Operation:
    """An operation as a peer sends it, in the peer's ids (flow id 0: its own flow)."""
    return pb.Operation(
        id=op_id,
        flow_id=flow_id or op_id,
        modno=modno,
        repo_id="nas",
        repo_guid=repo_guid,
        plan_id=plan_id,
        instance_id="web1",
        status=pb.STATUS_SUCCESS,
        display_message=message or f"op {op_id}",
    )


def local_op(message: str = "", flow_id: int = 0, *, plan_id: str = "nightly") -> pb.Operation:
    """A new operation of this node (id 0: the store assigns it)."""
    return pb.Operation(
        repo_id="nas", repo_guid="guid-nas", plan_id=plan_id, instance_id="hub-1",
        display_message=message, flow_id=flow_id,
    )


def length_delimited(field_number: int, payload: bytes) -> bytes:
    """A length-delimited field as protobuf encodes it: for unknown fields the schema lacks."""
    return encoder.TagBytes(field_number, 2) + encoder._VarintBytes(len(payload)) + payload


def peer_state(keyid: str = "ed25519.web1", instance: str = "web1") -> pb.PeerState:
    """A PeerState with every field set."""
    return pb.PeerState(
        peer_instance_id=instance,
        peer_keyid=keyid,
        state=pb.CONNECTION_STATE_ERROR_AUTH,
        status_message="key revoked",
        known_plans=["nightly", "hourly"],
        known_repos=["nas"],
        remote_config=pb.RemoteConfig(
            modno=7,
            version=3,
            repos=[pb.Repo(id="nas", uri="sftp:backup@nas:/srv/restic", guid="b8e1")],
            plans=[pb.Plan(id="nightly", repo="nas", paths=["/etc"], excludes=["*.tmp"])],
        ),
        last_heartbeat_millis=1_700_000_000_123,
    )
