"""What the fleet looks like, as immutable values: runs, plans, failures, peer events.

These cross actor mailboxes (the FleetActor hands them to the web side and the
AlertActor), so every one is frozen and holds only tuples, strings and numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from hub.pb import synchub_pb2 as pb

HISTORY: Final = 50
"""Runs kept per (instance, plan): the dashboard's run-history strip."""

STATUS_NAMES: Final[dict[int, str]] = {
    value: name.removeprefix("STATUS_").lower() for name, value in pb.OperationStatus.items()
}
"""Operation status by its lower-case name, as the CLI prints it: ``error``, ``success``..."""

STATUS_BY_NAME: Final[dict[str, int]] = {name: value for value, name in STATUS_NAMES.items()}

CONNECTION_STATE_NAMES: Final[dict[int, str]] = {
    value: name.removeprefix("CONNECTION_STATE_").lower()
    for name, value in pb.ConnectionState.items()
}

FINISHED: Final = frozenset(
    {
        pb.STATUS_SUCCESS,
        pb.STATUS_ERROR,
        pb.STATUS_WARNING,
        pb.STATUS_USER_CANCELLED,
        pb.STATUS_SYSTEM_CANCELLED,
    }
)


def status_name(status: int) -> str:
    return STATUS_NAMES.get(status, str(status))


def instance_of(op: pb.Operation) -> str:
    """The instance an operation is shown and filtered under: the peer it came from (a
    node's own operations: the instance they were recorded with)."""
    return op.peer_instance_id or op.instance_id


@dataclass(frozen=True, slots=True)
class Run:
    """One operation as a cell of a plan's history."""

    op_id: int
    status: int
    start_ms: int
    end_ms: int
    message: str

    @property
    def duration_ms(self) -> int | None:
        if self.end_ms <= 0 or self.start_ms <= 0 or self.end_ms < self.start_ms:
            return None
        return self.end_ms - self.start_ms

    @property
    def finished_ms(self) -> int:
        """When it ended, or started when the end is not known."""
        return self.end_ms if self.end_ms > 0 else self.start_ms


@dataclass(frozen=True, slots=True)
class PlanSummary:
    """One (instance, plan): its last runs (oldest first) and when it last succeeded."""

    instance: str
    plan: str
    repo_id: str
    repo_guid: str
    runs: tuple[Run, ...]
    last_success_ms: int
    """When the latest successful run ended (0: none known)."""
    first_seen_ms: int
    """The start of the earliest run this hub has seen of the plan."""

    @property
    def last(self) -> Run | None:
        return self.runs[-1] if self.runs else None

    @property
    def repo(self) -> tuple[str, str]:
        return self.repo_id, self.repo_guid


@dataclass(frozen=True, slots=True)
class Failure:
    """A run that ended in STATUS_ERROR, for the dashboard's problems."""

    op_id: int
    instance: str
    plan: str
    repo_id: str
    start_ms: int
    message: str


@dataclass(frozen=True, slots=True)
class RunChange:
    """An operation that is new or changed status: what alerts are evaluated on."""

    op_id: int
    instance: str
    plan: str
    repo_id: str
    repo_guid: str
    status: int
    previous: int | None
    """Its status before this change; None when it is new to the hub."""
    start_ms: int
    end_ms: int
    message: str

    @property
    def repo(self) -> tuple[str, str]:
        return self.repo_id, self.repo_guid


@dataclass(frozen=True, slots=True)
class PeerEvent:
    """One change of a peer's connection state, as the hub saw it."""

    time_ms: int
    state: int
    message: str


@dataclass(frozen=True, slots=True)
class FleetSnapshot:
    """Every tracked plan (sorted by instance, plan) and the failures of the last day.

    ``version`` changes whenever anything in it does.
    """

    version: int
    plans: tuple[PlanSummary, ...]
    failures: tuple[Failure, ...]
    """Newest first."""
    untracked: int
    """Operations not shown because their instance or the hub has too many plans."""
