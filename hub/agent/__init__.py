"""The client agent: syncs this node's own operations to every hub in ``known_hosts``."""

from hub.agent._agent import Agent, AgentSettings, HostStatus, Progress, SyncReport
from hub.agent._local import LocalOplog
from hub.agent._sync import (
    FRAME_OVERHEAD_BYTES,
    MAX_BATCH_OPERATIONS,
    PER_OPERATION_OVERHEAD_BYTES,
    DiffSelection,
    Outflow,
    SyncScope,
    backoff_delay,
    batch_operations,
    batch_serialized,
    deleted_item,
    diff_item,
    operation_frame_bytes,
    operations_item,
    serialized_frame_bytes,
    serialized_operations_frame,
)

__all__ = [
    "FRAME_OVERHEAD_BYTES",
    "MAX_BATCH_OPERATIONS",
    "PER_OPERATION_OVERHEAD_BYTES",
    "Agent",
    "AgentSettings",
    "DiffSelection",
    "HostStatus",
    "LocalOplog",
    "Outflow",
    "Progress",
    "SyncReport",
    "SyncScope",
    "backoff_delay",
    "batch_operations",
    "batch_serialized",
    "deleted_item",
    "diff_item",
    "operation_frame_bytes",
    "operations_item",
    "serialized_frame_bytes",
    "serialized_operations_frame",
]
