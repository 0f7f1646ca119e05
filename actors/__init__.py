"""The hub's actors: each owns one piece of state and changes it only from its mailbox.

``SessionActor`` serves one connected peer; ``OplogActor`` is the sole writer of
the oplog store; ``PeerStateActor`` keeps every peer's live state;
``ConfigActor`` owns the configuration and every change to it.
"""

from actors._config import ConfigActor, ConfigListener
from actors._oplog import Listener, OplogActor, OplogEvent, RemoteBatch, backlog
from actors._peer_state import RESTART_STATUS_MESSAGE, PeerStateActor, PeerStateListener
from actors._session import (
    HubIdentity,
    Outbox,
    Phase,
    SessionActor,
    SessionSettings,
    printable,
    tell_call,
)

__all__ = [
    "RESTART_STATUS_MESSAGE",
    "ConfigActor",
    "ConfigListener",
    "HubIdentity",
    "Listener",
    "OplogActor",
    "OplogEvent",
    "Outbox",
    "PeerStateActor",
    "PeerStateListener",
    "Phase",
    "RemoteBatch",
    "SessionActor",
    "SessionSettings",
    "backlog",
    "printable",
    "tell_call",
]
