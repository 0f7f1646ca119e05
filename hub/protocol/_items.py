"""The items a client sends after the handshake, built in one place for every client.

The agent's ``ClientSession``, the bench's swarms and the tests' raw clients all
build their frames here (the handshake items are in ``_handshake``; heartbeats,
``send_config`` / ``list_resources`` and ``error`` items are the same in both
directions and live in ``_codec``):

- ``diff_item``: a diff of one selection (docs/protocol.md §6.2 (The client's
  order of work), step 4);
- ``ack_diff_frame``: the acknowledgement diff, ``ids = [0]`` and empty lists
  (§6.1 (Model)): its reply says the hub handled every frame sent before it;
- ``operations_item`` / ``serialized_operations_frame``: created or updated
  operations (§6.4 (`send_operations`)), the latter built from stored bytes
  without decoding anything (the ingest fast path);
- ``deleted_item``: deleted ids;
- ``closing_error_frame``: what a client sends before it closes a connected
  session on purpose (§9 (Errors)).

``decode_hub_item`` reads a hub's frame the way a client must: an item of an
action this version does not know is not an error (§6.2 (The client's order of
work) asks a client to log and ignore it).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Literal

from google.protobuf.message import DecodeError

from hub.errors import ProtocolError
from hub.pb import synchub_pb2 as pb
from hub.protocol._codec import encode_item, error_frame
from hub.protocol._scope import DiffSelection
from hub.store import SerializedOperation

OperationKind = Literal["created_operations", "updated_operations"]
"""The OperationEvent list a send_operations carries operations in."""

CLOSING_MESSAGE = "client agent closing the connection"


def diff_item(
    selection: DiffSelection, keyid: str, ids: Sequence[int], modnos: Sequence[int]
) -> pb.SyncStreamItem:
    """The diff_operations of one selection: the (id, modno) pairs of what this client has."""
    return pb.SyncStreamItem(
        diff_operations=pb.SyncStreamItem.DiffOperations(
            have_operations_selector=selection.selector(keyid),
            have_operation_ids=list(ids),
            have_operation_modnos=list(modnos),
        )
    )


def ack_diff_item(keyid: str) -> pb.SyncStreamItem:
    """The acknowledgement diff: it selects id 0, which no operation has.

    The hub requests nothing in reply, and its reply comes after it handled every
    frame sent before the diff.
    """
    return pb.SyncStreamItem(
        diff_operations=pb.SyncStreamItem.DiffOperations(
            have_operations_selector=pb.OpSelector(original_instance_keyid=keyid, ids=[0]),
        )
    )


def ack_diff_frame(keyid: str) -> bytes:
    return encode_item(ack_diff_item(keyid))


def operations_item(ops: Sequence[pb.Operation], kind: OperationKind) -> pb.SyncStreamItem:
    """A send_operations of ``kind`` created_operations or updated_operations."""
    listed = pb.OperationList(operations=list(ops))
    if kind == "created_operations":
        event = pb.OperationEvent(created_operations=listed)
    elif kind == "updated_operations":
        event = pb.OperationEvent(updated_operations=listed)
    else:
        raise ValueError(f"operations go in created_operations or updated_operations, not {kind}")
    return pb.SyncStreamItem(send_operations=pb.SyncStreamItem.SendOperations(event=event))


def deleted_item(ids: Sequence[int]) -> pb.SyncStreamItem:
    """A send_operations of deleted_operations: ids this client no longer has (or shares)."""
    event = pb.OperationEvent(deleted_operations=pb.Int64List(values=list(ids)))
    return pb.SyncStreamItem(send_operations=pb.SyncStreamItem.SendOperations(event=event))


def closing_error_frame(message: str = CLOSING_MESSAGE) -> bytes:
    """The DISCONNECTED error a client sends before closing a connected session."""
    return error_frame(pb.CONNECTION_STATE_DISCONNECTED, message)


def decode_hub_item(frame: bytes) -> pb.SyncStreamItem | None:
    """One frame from a hub as an item; None when its action is not one this client knows.

    ProtocolError when the frame is not a SyncStreamItem at all.
    """
    try:
        item = pb.SyncStreamItem.FromString(frame)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise ProtocolError(f"frame of {len(frame)} bytes is not a SyncStreamItem: {exc}") from exc
    if item.WhichOneof("action") is None:
        return None
    return item


# --- the serialized fast path -------------------------------------------------------------


def _field_number(message: type[object], name: str) -> int:
    number: int = message.DESCRIPTOR.fields_by_name[name].number  # type: ignore[attr-defined]
    return number


@functools.lru_cache(maxsize=4096)
def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _length_delimited(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


_OPERATION_TAG = _varint(_field_number(pb.OperationList, "operations") << 3 | 2)
_EVENT_FIELD = _field_number(pb.SyncStreamItem.SendOperations, "event")
_SEND_OPERATIONS_FIELD = _field_number(pb.SyncStreamItem, "send_operations")
_LIST_FIELDS = {
    kind: _field_number(pb.OperationEvent, kind)
    for kind in ("created_operations", "updated_operations")
}


def serialized_operations_frame(ops: Sequence[SerializedOperation], kind: OperationKind) -> bytes:
    """``operations_item(ops, kind)`` serialized, built from the stored bytes undecoded.

    Protobuf nests a message as its field tag, its length and its bytes, so the
    frame is the stored operations wrapped three times; no operation is parsed.
    """
    listing = b"".join(
        b"".join((_OPERATION_TAG, _varint(len(op.data)), op.data)) for op in ops
    )
    event = _length_delimited(_LIST_FIELDS[kind], listing)
    return _length_delimited(_SEND_OPERATIONS_FIELD, _length_delimited(_EVENT_FIELD, event))
