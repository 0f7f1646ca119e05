"""What the fleet looks like: every (instance, plan)'s recent runs, kept incrementally.

``FleetState`` is built once from an ``OplogReader`` with bounded lookups and then
changed one operation at a time (``apply``, ``remove``); ``snapshot`` hands out an
immutable ``FleetSnapshot`` (``PlanSummary`` per plan, recent ``Failure`` s).
``apply`` reports each operation that is new or changed status as a ``RunChange``,
what alerts are evaluated on. ``PeerTimeline`` keeps each peer's recent state
changes. The FleetActor owns both; nothing here does I/O but reading the store.
"""

from hub.fleet._model import (
    CONNECTION_STATE_NAMES,
    FINISHED,
    HISTORY,
    STATUS_BY_NAME,
    STATUS_NAMES,
    Failure,
    FleetSnapshot,
    PeerEvent,
    PlanSummary,
    Run,
    RunChange,
    instance_of,
    status_name,
)
from hub.fleet._state import (
    FAILURE_WINDOW_MS,
    MAX_FAILURES,
    MAX_PLANS,
    MAX_PLANS_PER_INSTANCE,
    FleetState,
)
from hub.fleet._timeline import MAX_PEERS, PEER_EVENTS, PeerTimeline

__all__ = [
    "CONNECTION_STATE_NAMES",
    "FAILURE_WINDOW_MS",
    "FINISHED",
    "HISTORY",
    "MAX_FAILURES",
    "MAX_PEERS",
    "MAX_PLANS",
    "MAX_PLANS_PER_INSTANCE",
    "PEER_EVENTS",
    "STATUS_BY_NAME",
    "STATUS_NAMES",
    "Failure",
    "FleetSnapshot",
    "FleetState",
    "PeerEvent",
    "PeerTimeline",
    "PlanSummary",
    "Run",
    "RunChange",
    "instance_of",
    "status_name",
]
