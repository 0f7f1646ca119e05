"""The frame codec: one ZeroMQ frame is one serialized SyncStreamItem."""

from __future__ import annotations

from google.protobuf.message import DecodeError

from hub.errors import ProtocolError
from hub.pb import synchub_pb2 as pb

KNOWN_ACTIONS = frozenset(
    f.name for f in pb.SyncStreamItem.DESCRIPTOR.oneofs_by_name["action"].fields
)


def decode_item(frame: bytes) -> pb.SyncStreamItem:
    """Parse one frame; raise ProtocolError unless it holds exactly one known action."""
    try:
        item = pb.SyncStreamItem.FromString(frame)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise ProtocolError(f"frame of {len(frame)} bytes is not a SyncStreamItem: {exc}") from exc
    if item.WhichOneof("action") is None:
        raise ProtocolError(
            "frame carries no known action (empty, or a oneof this hub does not know)"
        )
    return item


def action_of(item: pb.SyncStreamItem) -> str:
    action = item.WhichOneof("action")
    assert action is not None, "decode_item guarantees an action"
    return str(action)


def encode_item(item: pb.SyncStreamItem) -> bytes:
    return item.SerializeToString()


def error_frame(state: pb.ConnectionState, message: str) -> bytes:
    return encode_item(
        pb.SyncStreamItem(error=pb.SyncStreamItem.Error(state=state, message=message))
    )


def heartbeat_frame() -> bytes:
    return encode_item(pb.SyncStreamItem(heartbeat=pb.SyncStreamItem.Heartbeat()))


def throttle_frame(delay_ms: int) -> bytes:
    return encode_item(pb.SyncStreamItem(throttle=pb.SyncStreamItem.Throttle(delay_ms=delay_ms)))


def diff_reply_frame(request_ids: list[int]) -> bytes:
    return encode_item(
        pb.SyncStreamItem(
            diff_operations=pb.SyncStreamItem.DiffOperations(request_operations=request_ids)
        )
    )


def config_frames(config: pb.RemoteConfig, repo_ids: list[str], plan_ids: list[str]) -> list[bytes]:
    """send_config then list_resources, the pair a peer sends after CONNECTED."""
    return [
        encode_item(pb.SyncStreamItem(send_config=pb.SyncStreamItem.SendConfig(config=config))),
        encode_item(
            pb.SyncStreamItem(
                list_resources=pb.SyncStreamItem.ListResources(
                    repo_ids=repo_ids, plan_ids=plan_ids
                )
            )
        ),
    ]
