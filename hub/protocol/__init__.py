"""The wire protocol (docs/protocol.md), without I/O.

One ZeroMQ frame is one serialized ``SyncStreamItem``. Everything here takes
bytes, items and times and returns items, bytes and decisions; the hub's
sessions and the clients (the agent, the bench's swarms, the tests' raw clients)
drive it over real sockets.

- the frame codec and the items both sides send (``_codec``);
- the handshake, both sides, and ``ClientHandshake`` (``_handshake``);
- a client's side: the items it sends (``_items``), batching (``_batching``),
  the diff plan (``_scope``), flow control (``_flow``), the frames of operations
  (``_outgoing``), rounds of diffs (``_rounds``), the reconnect backoff
  (``_backoff``), and ``ClientSession``, which ties them into one session
  (``_client``);
- logs on demand, both sides (``_logs``): the hub's open requests
  (``LogRequests``) and the client's answers (``LogServer``).
"""

from hub.protocol._backoff import backoff_delay
from hub.protocol._batching import (
    FRAME_OVERHEAD_BYTES,
    MAX_BATCH_OPERATIONS,
    PER_OPERATION_OVERHEAD_BYTES,
    batch_operations,
    batch_serialized,
    operation_frame_bytes,
    serialized_frame_bytes,
)
from hub.protocol._client import (
    ClientPhase,
    ClientSession,
    ClientSessionSettings,
    LinkEvent,
    SessionListener,
    SharedConfig,
    SyncTotals,
)
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
from hub.protocol._flow import Outflow, SendWindow
from hub.protocol._handshake import (
    LABEL_CLIENT,
    LABEL_HUB,
    MAX_INSTANCE_ID_BYTES,
    NONCE_BYTES,
    PROTOCOL_VERSION,
    Challenge,
    ClientHandshake,
    Hello,
    HubPin,
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
from hub.protocol._hub import (
    ConfigView,
    HubHandshake,
    SentOperations,
    authorize_client,
    check_diff,
    sent_operations,
)
from hub.protocol._items import (
    CLOSING_MESSAGE,
    OperationKind,
    ack_diff_frame,
    ack_diff_item,
    closing_error_frame,
    decode_hub_item,
    deleted_item,
    diff_item,
    operations_item,
    serialized_operations_frame,
)
from hub.protocol._logs import (
    LOG_ANSWERS_AT_ONCE,
    LOG_CHUNK_BYTES,
    LOG_REPLIES_QUEUED,
    LOG_REQUEST_MAX_BYTES,
    LOG_REQUEST_TIMEOUT,
    LOG_REQUESTS_PER_SESSION,
    LocalLog,
    LogAnswer,
    LogQuery,
    LogRequests,
    LogServer,
    LogSource,
    log_data_item,
    request_log_item,
)
from hub.protocol._outgoing import DELETED_IDS_PER_FRAME, ClientOplog
from hub.protocol._rounds import CONFIRM_ROUNDS, MAX_ONCE_ROUNDS
from hub.protocol._scope import DiffSelection, SyncScope

__all__ = [
    "CLOSING_MESSAGE",
    "CONFIRM_ROUNDS",
    "DELETED_IDS_PER_FRAME",
    "FRAME_OVERHEAD_BYTES",
    "KNOWN_ACTIONS",
    "LABEL_CLIENT",
    "LABEL_HUB",
    "LOG_ANSWERS_AT_ONCE",
    "LOG_CHUNK_BYTES",
    "LOG_REPLIES_QUEUED",
    "LOG_REQUESTS_PER_SESSION",
    "LOG_REQUEST_MAX_BYTES",
    "LOG_REQUEST_TIMEOUT",
    "MAX_BATCH_OPERATIONS",
    "MAX_INSTANCE_ID_BYTES",
    "MAX_ONCE_ROUNDS",
    "NONCE_BYTES",
    "PER_OPERATION_OVERHEAD_BYTES",
    "PROTOCOL_VERSION",
    "Challenge",
    "ClientHandshake",
    "ClientOplog",
    "ClientPhase",
    "ClientSession",
    "ClientSessionSettings",
    "ConfigView",
    "DiffSelection",
    "Hello",
    "HubHandshake",
    "HubPin",
    "LinkEvent",
    "LocalLog",
    "LogAnswer",
    "LogQuery",
    "LogRequests",
    "LogServer",
    "LogSource",
    "OperationKind",
    "Outflow",
    "SendWindow",
    "SentOperations",
    "SessionListener",
    "SharedConfig",
    "SyncScope",
    "SyncTotals",
    "Transcript",
    "ack_diff_frame",
    "ack_diff_item",
    "action_of",
    "authorize_client",
    "backoff_delay",
    "batch_operations",
    "batch_serialized",
    "challenge_item",
    "check_diff",
    "closing_error_frame",
    "config_frames",
    "decode_hub_item",
    "decode_item",
    "deleted_item",
    "diff_item",
    "diff_reply_frame",
    "encode_item",
    "error_frame",
    "heartbeat_frame",
    "hello_item",
    "hub_transcript",
    "log_data_item",
    "new_nonce",
    "operation_frame_bytes",
    "operations_item",
    "proof_item",
    "request_log_item",
    "sent_operations",
    "serialized_frame_bytes",
    "serialized_operations_frame",
    "sign_challenge",
    "sign_proof",
    "throttle_frame",
    "validate_challenge",
    "validate_hello",
    "validate_proof",
    "verify_challenge",
    "verify_proof",
]
