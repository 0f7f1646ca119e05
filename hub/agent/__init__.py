"""The client agent: syncs this node's own operations to every hub in ``known_hosts``.

``Agent`` runs one connection thread per known hub, each driving a
``hub.protocol.ClientSession`` over its own DEALER socket; ``LocalOplog`` is the
view of this node's own operations those sessions read. The protocol pieces a
client needs (item builders, batching, the diff plan, backoff) are in
``hub.protocol``. ``join_hub`` joins a hub with an invitation (`synchub join`).
"""

from hub.agent._agent import Agent, AgentSettings, HostStatus, Progress, SyncReport
from hub.agent._join import Joined, join_hub
from hub.agent._local import LocalOplog

__all__ = [
    "Agent",
    "AgentSettings",
    "HostStatus",
    "Joined",
    "LocalOplog",
    "Progress",
    "SyncReport",
    "join_hub",
]
