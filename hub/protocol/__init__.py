"""The wire protocol (docs/protocol.md), without I/O: the frame codec and the handshake.

One ZeroMQ frame is one serialized ``SyncStreamItem``. Everything here takes
bytes, items and times and returns items, bytes and decisions; the hub's
sessions and the client agent drive it over real sockets.
"""

from hub.protocol._codec import (
    KNOWN_ACTIONS,
    action_of,
    config_frames,
    decode_item,
    diff_reply_frame,
    encode_item,
    error_frame,
    heartbeat_frame,
    throttle_frame,
)
from hub.protocol._handshake import (
    LABEL_CLIENT,
    LABEL_HUB,
    MAX_INSTANCE_ID_BYTES,
    NONCE_BYTES,
    PROTOCOL_VERSION,
    Challenge,
    Hello,
    Transcript,
    challenge_item,
    hello_item,
    hub_transcript,
    new_nonce,
    proof_item,
    sign_challenge,
    sign_proof,
    validate_challenge,
    validate_hello,
    validate_proof,
    verify_challenge,
    verify_proof,
)

__all__ = [
    "KNOWN_ACTIONS",
    "LABEL_CLIENT",
    "LABEL_HUB",
    "MAX_INSTANCE_ID_BYTES",
    "NONCE_BYTES",
    "PROTOCOL_VERSION",
    "Challenge",
    "Hello",
    "Transcript",
    "action_of",
    "challenge_item",
    "config_frames",
    "decode_item",
    "diff_reply_frame",
    "encode_item",
    "error_frame",
    "heartbeat_frame",
    "hello_item",
    "hub_transcript",
    "new_nonce",
    "proof_item",
    "sign_challenge",
    "sign_proof",
    "throttle_frame",
    "validate_challenge",
    "validate_hello",
    "validate_proof",
    "verify_challenge",
    "verify_proof",
]
