"""The client agent: syncs this node's own operations to every hub in ``known_hosts``.

``Agent`` runs one connection thread per known hub, each driving a
``hub.protocol.ClientSession`` over its own DEALER socket; ``LocalOplog`` is the
view of this node's own operations those sessions read. The protocol pieces a
client needs (item builders, batching, the diff plan, backoff) are in
``hub.protocol``. A running agent records its view of each hub in
``data_dir/agent-status.json`` (``read_status``), for ``synchub agent --status``,
and binds ``data_dir/agent.wake`` (``WakeListener``), where the oplog's writers
wake it as soon as they commit.
``join_hub`` joins a hub with an invitation (`synchub join`).
"""

from hub.agent._agent import (
    Agent,
    AgentSettings,
    HostStatus,
    Progress,
    SyncReport,
    within_hub_limits,
)
from hub.agent._join import Joined, join_hub
from hub.agent._local import LocalOplog
from hub.agent._status import AgentStatusRecord, read_status, status_path
from hub.agent._wake import WakeListener, WakeSignal

__all__ = [
    "Agent",
    "AgentSettings",
    "AgentStatusRecord",
    "HostStatus",
    "Joined",
    "LocalOplog",
    "Progress",
    "SyncReport",
    "WakeListener",
    "WakeSignal",
    "join_hub",
    "read_status",
    "status_path",
    "within_hub_limits",
]
