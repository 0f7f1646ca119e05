"""FleetActor: what the fleet looks like, kept up to date as operations arrive.

Who owns what: this actor owns a ``FleetState`` (each (instance, plan)'s recent runs,
the failures of the last day), a ``PeerTimeline`` (each peer's recent state changes)
and a read-only ``OplogReader``, opened in its thread. At start it subscribes to the
OplogActor's committed changes and the PeerStateActor's state changes, then builds
the state once from the reader (subscribe before snapshot: nothing committed in
between is missed; an operation seen twice is the same upsert). After that it is
changed only by what arrives, never rebuilt by scanning the oplog:

- the OplogActor's events (every remote batch, every local write made in this process);
- on each ``tick``, the local change feed of the oplog file, for operations that other
  processes on this node wrote (``synchub run`` on the hub's machine);
- on a store several hubs share, what the others stored: ``stored_elsewhere`` (told by
  the ClusterLink, which hears each commit's ids) queues their ids, and the next
  ``tick`` reads them by id; ``catch_up`` (told when the link has been deaf a while)
  reads every id above the highest this actor has seen.

Each operation that is new or changed status is published to subscribers as a
``RunChange`` (the AlertActor listens). Readers (the web side) ask for an immutable
``FleetSnapshot``; asking never waits for more than a snapshot's rebuild of the plans
that changed.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import cast

import pykka
from pykka.typing import ActorMemberMixin, proxy_method

from actors._calls import survives, tell
from actors._oplog import OplogEvent, OplogProxy
from actors._peer_state import PeerStateProxy
from actors._subscribers import Subscribers
from hub.errors import StoreError
from hub.fleet import FleetSnapshot, FleetState, PeerEvent, PeerTimeline, PlanSummary, RunChange
from hub.pb import synchub_pb2 as pb
from hub.store import OperationQuery, OplogReader

log = logging.getLogger(__name__)

RunChanges = tuple[RunChange, ...]
RunListener = Callable[[RunChanges], object]

ASK_TIMEOUT = 10.0
_LOCAL_PAGE = 2_000
_QUEUED_RUNS = 10_000
"""Other hubs' id runs kept for the next tick; beyond, the oldest give way to a catch-up."""


class FleetActor(pykka.ThreadingActor):
    def __init__(
        self,
        *,
        oplog: OplogProxy,
        peers: PeerStateProxy,
        reader_factory: Callable[[], OplogReader],
        clock: Callable[[], float] = time.time,
        ask_timeout: float = ASK_TIMEOUT,
    ) -> None:
        super().__init__()
        self._oplog = oplog
        self._peers = peers
        self._reader_factory = reader_factory
        self._clock = clock
        self._ask_timeout = ask_timeout
        self._reader: OplogReader | None = None
        self._state = FleetState()
        self._timeline = PeerTimeline()
        self._subscribers: Subscribers[RunChanges] = Subscribers("fleet")
        self._tokens: list[tuple[Callable[[int], pykka.Future[bool]], int]] = []
        self._local_mark = 0
        self._data_version = -1
        self._peer_changes = 0
        self._elsewhere: list[tuple[int, int]] = []
        self._highest_id = 0
        self._behind = False

    # -- lifecycle ------------------------------------------------------------------------

    def on_start(self) -> None:
        reader = self._reader = self._reader_factory()
        me = cast(FleetProxy, self.actor_ref.proxy())
        oplog_token = self._oplog.subscribe(me.on_oplog).get(timeout=self._ask_timeout)
        self._tokens.append((self._oplog.unsubscribe, oplog_token))
        peers_token = self._peers.subscribe(me.on_peer).get(timeout=self._ask_timeout)
        self._tokens.append((self._peers.unsubscribe, peers_token))
        states = self._peers.list().get(timeout=self._ask_timeout)
        now_ms = self._now_ms()
        started = time.perf_counter()
        self._local_mark = reader.local_modno()
        self._data_version = reader.data_version()
        newest = reader.find(OperationQuery(limit=1))
        self._highest_id = newest[0].id if newest else 0
        self._state.load(reader, now_ms)
        for state in states:
            self._timeline.record(state, state.last_heartbeat_millis or now_ms)
        log.info(
            "fleet: %d plans from the oplog in %.2fs",
            len(self._state.snapshot(now_ms).plans), time.perf_counter() - started,
        )

    def on_stop(self) -> None:
        self._release()

    def on_failure(self, *_exc_info: object) -> None:
        self._release()

    def _release(self) -> None:
        for unsubscribe, token in self._tokens:
            with contextlib.suppress(pykka.ActorDeadError):
                tell(unsubscribe, token)
        self._tokens.clear()
        reader, self._reader = self._reader, None
        if reader is not None:
            try:
                reader.close()
            except StoreError:
                log.exception("fleet: closing the oplog reader failed")

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    # -- what arrives -----------------------------------------------------------------------

    def ping(self) -> bool:
        return self._reader is not None

    @survives("fleet")
    def on_oplog(self, event: OplogEvent) -> None:
        """A committed change from the OplogActor."""
        now_ms = self._now_ms()
        if event.kind == "deleted":
            for op_id in event.deleted_ids:
                self._state.remove(op_id)
            return
        self._take(event.operations, now_ms)

    @survives("fleet")
    def on_peer(self, state: pb.PeerState) -> None:
        if self._timeline.record(state, self._now_ms()):
            self._peer_changes += 1

    @survives("fleet")
    def stored_elsewhere(self, runs: tuple[tuple[int, int], ...]) -> None:
        """Another hub stored (created or changed) the operations with these ids."""
        self._elsewhere.extend(runs)
        if len(self._elsewhere) > _QUEUED_RUNS:
            self._elsewhere.clear()
            self._behind = True

    @survives("fleet")
    def catch_up(self) -> None:
        """Notices may have been missed: read every id above the highest seen, next tick."""
        self._behind = True

    @survives("fleet")
    def tick(self, now: float) -> None:
        """Take in what other processes wrote to the oplog file since the last tick, and
        what other hubs stored."""
        if self._reader is None:
            return
        self._read_elsewhere(int(now * 1000))
        version = self._reader.data_version()
        if version == self._data_version:
            return
        self._data_version = version
        while True:
            changes = self._reader.local_changes_since(self._local_mark, limit=_LOCAL_PAGE)
            self._local_mark = changes.mark
            for op_id in changes.deleted_ids:
                self._state.remove(op_id)
            self._take(changes.operations, int(now * 1000))
            if len(changes.operations) + len(changes.deleted_ids) < _LOCAL_PAGE:
                return

    def _read_elsewhere(self, now_ms: int) -> None:
        assert self._reader is not None
        runs, self._elsewhere = sorted(self._elsewhere), []
        if self._behind:
            self._behind = False
            runs = [(self._highest_id + 1, 2**63 - 1)]
        for first, last in runs:
            start = first
            while start <= last:
                page = self._reader.stored_between(start, last, limit=_LOCAL_PAGE)
                self._take(tuple(page), now_ms)
                if len(page) < _LOCAL_PAGE:
                    break
                start = page[-1].id + 1

    def _take(self, operations: tuple[pb.Operation, ...], now_ms: int) -> None:
        if operations:
            self._highest_id = max(self._highest_id, *(op.id for op in operations))
        changes = self._state.apply_all(operations, now_ms)
        if changes:
            published = tuple(changes)
            self._subscribers.publish(lambda: published)

    # -- reading ----------------------------------------------------------------------------

    def snapshot(self) -> FleetSnapshot:
        return self._state.snapshot(self._now_ms())

    def version(self) -> int:
        """Changes whenever a plan, a recent failure or a peer's state does."""
        return self._state.version + self._peer_changes

    def plan(self, instance: str, plan: str) -> PlanSummary | None:
        return self._state.plan(instance, plan)

    def peer_history(self, keyid: str) -> tuple[PeerEvent, ...]:
        """The peer's state changes since the hub started, newest first."""
        return self._timeline.history(keyid)

    def subscribe(self, listener: RunListener) -> int:
        """Call ``listener`` with the RunChanges of each change from now on; returns a token."""
        return self._subscribers.add(listener)

    def unsubscribe(self, token: int) -> bool:
        return self._subscribers.remove(token)


class FleetProxy(ActorMemberMixin, pykka.ActorProxy[FleetActor]):
    """``FleetActor.start(...).proxy()`` as mypy should see it: each call returns a future."""

    ping = proxy_method(FleetActor.ping)
    on_oplog = proxy_method(FleetActor.on_oplog)
    on_peer = proxy_method(FleetActor.on_peer)
    tick = proxy_method(FleetActor.tick)
    stored_elsewhere = proxy_method(FleetActor.stored_elsewhere)
    catch_up = proxy_method(FleetActor.catch_up)
    snapshot = proxy_method(FleetActor.snapshot)
    version = proxy_method(FleetActor.version)
    plan = proxy_method(FleetActor.plan)
    peer_history = proxy_method(FleetActor.peer_history)
    subscribe = proxy_method(FleetActor.subscribe)
    unsubscribe = proxy_method(FleetActor.unsubscribe)
