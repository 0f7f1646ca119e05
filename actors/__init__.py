"""The hub's actors: each owns one piece of state and changes it only from its mailbox.

``SessionActor`` serves one connected peer; ``OplogActor`` is the sole writer of
the oplog store; ``PeerStateActor`` keeps every peer's live state;
``ConfigActor`` owns the configuration and every change to it.

Callers hold the state-owning actors through typed proxies (``ConfigProxy``,
``OplogProxy``, ``PeerStateProxy``): asks return typed futures, and ``tell(proxy.method,
*args)`` is a fire-and-forget call with its arguments checked. The front talks to a
session by telling its ActorRef the immutable messages ``InboundFrame``, ``Tick``,
``ProtocolViolation``, ``PeerVanished``, ``Displace`` (and the config actor
``ConfigChanged``); the session answers through its ``Outbox``. A reader reaches a
client through its live session (``PeerStateProxy.live_session``) by telling it a
``FetchLog``, whose ``LogReply`` it then waits on (``actors._logs``).

For the web side: ``FleetActor`` keeps what the fleet looks like (each plan's recent
runs, kept as operations arrive) and publishes each run that changes status;
``AlertActor`` decides and records the alerts' incidents and hands their events to
the deliveries (``FleetProxy``, ``AlertProxy``).
"""

from actors._alerts import AlertActor, AlertProxy
from actors._calls import survives, tell
from actors._config import ConfigActor, ConfigFile, ConfigListener, ConfigProxy
from actors._fleet import FleetActor, FleetProxy, RunChanges, RunListener
from actors._front_messages import (
    ConfigChanged,
    Displace,
    ExpireHandshake,
    FrontMessage,
    InboundFrame,
    Outbox,
    PeerVanished,
    ProtocolViolation,
    Tick,
)
from actors._gate import EndNotice
from actors._leases import RESTART_STATUS_MESSAGE
from actors._logs import FetchLog, LogReply
from actors._oplog import (
    DIFF_STEP_IDS,
    DiffStep,
    DiffStepResult,
    Listener,
    OplogActor,
    OplogEvent,
    OplogProxy,
    RemoteBatch,
    backlog,
)
from actors._peer_state import (
    PeerStateActor,
    PeerStateListener,
    PeerStateProxy,
)
from actors._refusals import (
    MAX_PENDING_KEYS,
    PENDING_MAX_AGE,
    PendingKey,
    PendingKeys,
    RefusalLog,
)
from actors._retention import RetentionPass
from actors._session import HubIdentity, Phase, SessionActor, SessionSettings

__all__ = [
    "DIFF_STEP_IDS",
    "MAX_PENDING_KEYS",
    "PENDING_MAX_AGE",
    "RESTART_STATUS_MESSAGE",
    "AlertActor",
    "AlertProxy",
    "ConfigActor",
    "ConfigChanged",
    "ConfigFile",
    "ConfigListener",
    "ConfigProxy",
    "DiffStep",
    "DiffStepResult",
    "Displace",
    "EndNotice",
    "ExpireHandshake",
    "FetchLog",
    "FleetActor",
    "FleetProxy",
    "FrontMessage",
    "HubIdentity",
    "InboundFrame",
    "Listener",
    "LogReply",
    "OplogActor",
    "OplogEvent",
    "OplogProxy",
    "Outbox",
    "PeerStateActor",
    "PeerStateListener",
    "PeerStateProxy",
    "PeerVanished",
    "PendingKey",
    "PendingKeys",
    "Phase",
    "ProtocolViolation",
    "RefusalLog",
    "RemoteBatch",
    "RetentionPass",
    "RunChanges",
    "RunListener",
    "SessionActor",
    "SessionSettings",
    "Tick",
    "backlog",
    "survives",
    "tell",
]
