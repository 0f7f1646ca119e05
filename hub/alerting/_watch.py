"""What the AlertBook remembers of each plan and peer, to judge staleness and loss."""

from __future__ import annotations

from dataclasses import dataclass

from hub.fleet import PlanSummary, RunChange
from hub.pb import synchub_pb2 as pb


def describe_seconds(seconds: int) -> str:
    """``45s``, ``15m``, ``26h``, ``3d``: the largest unit that divides it, else minutes."""
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f}h"
    if seconds >= 60:
        return f"{seconds // 60}m"
    return f"{seconds}s"


@dataclass
class PlanWatch:
    repo_id: str = ""
    repo_guid: str = ""
    last_success_ms: int = 0
    first_seen_ms: int = 0
    last_op_id: int = 0
    last_status: int = pb.STATUS_UNKNOWN

    @classmethod
    def of(cls, summary: PlanSummary) -> PlanWatch:
        last = summary.last
        return cls(
            summary.repo_id, summary.repo_guid, summary.last_success_ms, summary.first_seen_ms,
            last.op_id if last else 0, last.status if last else pb.STATUS_UNKNOWN,
        )

    @property
    def repo(self) -> tuple[str, str]:
        return self.repo_id, self.repo_guid

    @property
    def reference_ms(self) -> int:
        """What staleness is counted from: the last success, else the first run seen."""
        return self.last_success_ms or self.first_seen_ms

    def update(self, change: RunChange) -> None:
        if change.repo_id or change.repo_guid:
            self.repo_id, self.repo_guid = change.repo_id, change.repo_guid
        start = change.start_ms
        if start > 0 and (self.first_seen_ms == 0 or start < self.first_seen_ms):
            self.first_seen_ms = start
        if change.status == pb.STATUS_SUCCESS:
            finished = change.end_ms if change.end_ms > 0 else change.start_ms
            self.last_success_ms = max(self.last_success_ms, finished)
        if change.op_id >= self.last_op_id:
            self.last_op_id, self.last_status = change.op_id, change.status


@dataclass
class PeerWatch:
    instance: str
    state: int
    since_ms: int
    """When it was last known connected (its last heartbeat)."""
    message: str = ""

    @property
    def connected(self) -> bool:
        return self.state == pb.CONNECTION_STATE_CONNECTED

    @classmethod
    def of(cls, state: pb.PeerState, now_ms: int) -> PeerWatch:
        return cls(
            state.peer_instance_id, state.state, state.last_heartbeat_millis or now_ms,
            state.status_message[:300],
        )

    def update(self, state: pb.PeerState, now_ms: int) -> None:
        was_connected = self.connected
        self.instance = state.peer_instance_id or self.instance
        self.state = state.state
        self.message = state.status_message[:300]
        if self.connected or was_connected:
            self.since_ms = state.last_heartbeat_millis or now_ms
