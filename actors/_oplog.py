"""OplogActor: the sole writer of the oplog store.

Every change to the oplog goes through this actor's mailbox, so the store (and its
sqlite3 connection) only ever runs in this actor's thread. Writers ask
(``proxy.apply_remote(keyid, batch).get(timeout=...)``) and see failures: a
ProtocolError or StoreError raised here reaches the caller through the future, the
batch is not stored, and the actor keeps serving.

Listeners subscribed with ``subscribe`` are called in this actor's thread after a
change has been committed, never for a failed change. They must not block: the
usual listener is a proxy method of another actor, which only enqueues a message.
A listener that raises is logged and kept; one whose actor has stopped (a proxy
method, or its ``defer``, of a stopped actor) is dropped.

Operations handed out (results and events) are fresh objects the store no longer
holds, but the same objects go to the caller and to every listener of that change:
treat them as read-only, and copy before changing one.

A session's batches and diff steps carry its session id, and the actor's
``WriteGate`` (``actors._gate``) decides, right before the store runs, whether that
session may still change its key's operations: the config the actor last took must
authorize the key, and no newer session of the key may have claimed it. So a revoked
or displaced session's queued requests are refused where they would be applied.

No request holds the actor long: a diff is answered in steps (``diff_step``) of at
most ``DIFF_STEP_IDS`` ids on either side, each a message of its own, so the requests
of other sessions queued meanwhile are served between two steps of a large diff.
Each session has at most one request here at a time (it waits for the answer), so
sessions take turns.
"""

from __future__ import annotations

import logging
import time
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

import pykka
from pykka.typing import ActorMemberMixin, proxy_method

from actors._calls import survives
from actors._digests import DigestBuilds
from actors._gate import EndNotice, WriteGate
from actors._retention import RetentionPass
from actors._subscribers import Subscribers
from hub.config import Config
from hub.errors import StoreError
from hub.pb import synchub_pb2 as pb
from hub.protocol import DigestCheck
from hub.store import (
    OplogStore,
    OpMetadata,
    RemoteApplyResult,
    RetentionStore,
    SyncCursor,
    requested_ids,
)
from hub.telemetry import NO_TELEMETRY, Telemetry

logger = logging.getLogger(__name__)

EventKind = Literal["created", "updated", "deleted"]

DIFF_STEP_IDS = 10_000
"""At most this many of the hub's and of the peer's ids are compared in one diff step."""


@dataclass(frozen=True, slots=True)
class RemoteBatch:
    """One send_operations batch from a peer, as the session decoded it.

    ``operations`` are created or updated operations in the peer's ids;
    ``deleted_ids`` are peer ids it deleted; ``peer_instance_id`` is the instance
    the peer authenticated as. The key id is the session's, passed separately,
    never taken from the operations. The operations are handed over with the
    batch, as every message's content is: the OplogActor stores them with its own
    ids set on them and publishes those same objects.
    """

    operations: tuple[pb.Operation, ...] = ()
    deleted_ids: tuple[int, ...] = ()
    peer_instance_id: str = ""
    session_id: str = ""
    """The session that sent it: checked against the ``WriteGate`` when set (every
    session sets it; callers outside a session, such as tools, leave it empty)."""


@dataclass(frozen=True, slots=True)
class DiffStep:
    """One step of a peer's diff_operations: its (id, modno) pairs, ascending and unique
    (the whole diff's; the step compares those from index ``start`` on), and the ids
    already answered (up to ``after``, None before the first step)."""

    selector: pb.OpSelector
    ids: tuple[int, ...]
    modnos: tuple[int, ...]
    session_id: str
    peer_instance_id: str
    start: int = 0
    after: int | None = None


@dataclass(frozen=True, slots=True)
class DiffStepResult:
    """The ids to request in this step's window; ``reached`` None when the diff is done,
    else the next step starts after it, at the peer's pair ``next_start``."""

    requested: tuple[int, ...]
    reached: int | None
    next_start: int


@dataclass(frozen=True, slots=True)
class OplogEvent:
    """A committed change, in local ids: operations for created / updated, ids for deleted."""

    kind: EventKind
    operations: tuple[pb.Operation, ...] = ()
    deleted_ids: tuple[int, ...] = ()


Listener = Callable[[OplogEvent], object]

A = TypeVar("A", bound=pykka.Actor)


def backlog(ref: pykka.ActorRef[A]) -> int:
    """Messages waiting in an actor's mailbox, read without asking the actor.

    Meant for throttling decisions by the actor's callers (a session deciding to
    send ``throttle``); an ask would only be answered after the backlog drained.
    """
    qsize = getattr(ref.actor_inbox, "qsize", None)
    return int(qsize()) if callable(qsize) else 0


class OplogActor(pykka.ThreadingActor):
    """Owns the oplog store; the store is built by ``store_factory`` in this actor's thread."""

    def __init__(
        self,
        store_factory: Callable[[], OplogStore],
        telemetry: Telemetry = NO_TELEMETRY,
        *,
        diff_step_ids: int = DIFF_STEP_IDS,
    ) -> None:
        super().__init__()
        self._store_factory = store_factory
        self._telemetry = telemetry
        self._opened: OplogStore | None = None
        self._subscribers: Subscribers[OplogEvent] = Subscribers("oplog")
        self._gate = WriteGate()
        self._diff_step_ids = max(1, diff_step_ids)
        self._digests = DigestBuilds(diff_step_ids)
        self._retention = RetentionPass()

    # -- lifecycle -----------------------------------------------------------------------

    def on_start(self) -> None:
        self._opened = self._store_factory()

    def on_stop(self) -> None:
        self._close_store()

    def on_failure(self, *_exc_info: object) -> None:
        self._close_store()

    def _close_store(self) -> None:
        store, self._opened = self._opened, None
        if store is not None:
            try:
                store.close()
            except StoreError:
                logger.exception("closing the oplog store failed")

    @property
    def _store(self) -> OplogStore:
        if self._opened is None:
            raise StoreError("the oplog store is not open")
        return self._opened

    # -- public interface ----------------------------------------------------------------

    def ping(self) -> bool:
        return self._opened is not None

    def add(self, ops: Sequence[pb.Operation]) -> tuple[pb.Operation, ...]:
        """Store new local operations; returns them with their ids, flow ids and modnos."""
        stored = tuple(self._store.add_local(ops))
        self._publish("created", stored)
        return stored

    def update(self, ops: Sequence[pb.Operation]) -> tuple[pb.Operation, ...]:
        stored = tuple(self._store.update_local(ops))
        self._publish("updated", stored)
        return stored

    def delete(self, ids: Sequence[int]) -> tuple[int, ...]:
        deleted = tuple(self._store.delete(ids))
        self._publish("deleted", deleted_ids=deleted)
        return deleted

    # -- who may write (actors._gate) ------------------------------------------------------

    def admit(self, config: Config) -> bool:
        """Take the config's authorized clients; sessions of keys it no longer admits
        are refused from now on (the ConfigActor waits for this before a change returns)."""
        self._gate.admit(config)
        return True

    def claim(
        self, keyid: str, instance_id: str, session_id: str, notice: EndNotice | None = None
    ) -> bool:
        """``session_id`` speaks for ``keyid`` from now on; AuthError when the key is not
        admitted. The older session's requests are refused and its ``notice`` raised."""
        self._gate.claim(keyid, instance_id, session_id, notice)
        return True

    def release(self, keyid: str, session_id: str) -> None:
        """A session ended: its claim on ``keyid``, if it still holds it, goes, and so
        do the key's digest builds."""
        self._gate.release(keyid, session_id)
        self._digests.forget(keyid)

    def apply_remote(self, keyid: str, batch: RemoteBatch) -> RemoteApplyResult:
        """Apply one batch from peer ``keyid`` atomically; see SqliteOplogStore.apply_remote.

        AuthError or SessionDisplaced, and nothing stored, when the batch's session may
        no longer write (``actors._gate``).
        """
        if batch.session_id:
            self._gate.check(keyid, batch.peer_instance_id, batch.session_id)
        # The batch came through the mailbox: its operations are this actor's now.
        started = time.perf_counter()
        result = self._store.apply_remote(
            keyid, batch.operations, batch.deleted_ids, reuse=True,
            peer_instance_id=batch.peer_instance_id,
        )
        # Counted by the instance the peer authenticated as, never a name it sent.
        peer = batch.peer_instance_id
        received: Counter[tuple[str, int]] = Counter(
            (peer or op.instance_id, int(op.status))
            for op in (*result.created, *result.updated)
        )
        self._telemetry.batch_applied(received, time.perf_counter() - started)
        self._publish("deleted", deleted_ids=result.deleted_ids)
        self._publish("created", result.created)
        self._publish("updated", result.updated)
        return result

    def diff(
        self,
        keyid: str,
        selector: pb.OpSelector,
        have_ids: Sequence[int],
        have_modnos: Sequence[int],
    ) -> tuple[int, ...]:
        return tuple(self._store.diff(keyid, selector, have_ids, have_modnos))

    def sync_cursors(self, keyid: str) -> tuple[SyncCursor, ...]:
        """The change cursors recorded for peer ``keyid`` (docs/protocol.md §6.8 (Resumed
        sync))."""
        return tuple(self._store.sync_cursors(keyid))

    def check_digest(
        self, keyid: str, check: DigestCheck
    ) -> pb.SyncStreamItem.CheckDigest | None:
        """Answer a peer's check_digest; record its cursor when every range matched.

        None: the selection's first digest is being read in steps (``actors._digests``,
        at most ``diff_step_ids`` pairs a call); ask again. The answer is a fresh
        message the caller owns.
        """
        answer = self._digests.answer(self._store, keyid, check)
        if answer is not None and answer.in_sync and check.cursor is not None:
            self._store.record_cursor(keyid, check.cursor)
        return answer
    def diff_step(self, keyid: str, step: DiffStep) -> DiffStepResult:
        """One bounded step of a session's diff (see ``DiffStep``); the session asks for
        the next one, so other requests are served in between."""
        self._gate.check(keyid, step.peer_instance_id, step.session_id)
        limit = self._diff_step_ids
        start = step.start
        last = start + limit - 1
        upto = step.ids[last] if last < len(step.ids) else None
        held, reached = self._store.held_window(keyid, step.selector, step.after, upto, limit)
        end = len(step.ids) if reached is None else bisect_right(step.ids, reached, lo=start)
        ids, modnos = step.ids[start:end], step.modnos[start:end]
        requested = self._store.unretired(keyid, requested_ids(held, ids, modnos), ids, modnos)
        return DiffStepResult(tuple(requested), reached, end)

    def query(
        self, selector: pb.OpSelector, *, limit: int | None = None, newest_first: bool = False
    ) -> tuple[pb.Operation, ...]:
        return tuple(self._store.query(selector, limit=limit, newest_first=newest_first))

    def query_metadata(self, selector: pb.OpSelector) -> tuple[OpMetadata, ...]:
        return tuple(self._store.query_metadata(selector))

    def get(self, op_id: int) -> pb.Operation | None:
        return self._store.get(op_id)

    def count(self) -> int:
        return self._store.count()

    def check_writable(self) -> bool:
        """True once a write that changes nothing was committed; StoreError otherwise."""
        self._store.check_writable()
        return True

    @survives("oplog")
    def configure(self, config: Config) -> None:
        """Take what this actor needs from a (new) config: the ``[retention]`` settings."""
        self._retention.configure(config.retention)

    @survives("oplog")
    def retention_tick(self, now: float) -> None:
        """Run the retention batch due at ``now``, if any (``actors._retention``)."""
        store = self._store
        if not isinstance(store, RetentionStore):
            return
        batch = self._retention.step(store, now)
        if batch is not None:
            self._publish("deleted", deleted_ids=batch.removed)

    def subscribe(self, listener: Listener) -> int:
        """Call ``listener`` with every committed change from now on; returns a token."""
        return self._subscribers.add(listener)

    def unsubscribe(self, token: int) -> bool:
        """Stop calling a listener; False when the token was not (or no longer) subscribed."""
        return self._subscribers.remove(token)

    # -- events --------------------------------------------------------------------------

    def _publish(
        self,
        kind: EventKind,
        operations: tuple[pb.Operation, ...] = (),
        deleted_ids: tuple[int, ...] = (),
    ) -> None:
        if not operations and not deleted_ids:
            return
        event = OplogEvent(kind, operations, deleted_ids)
        self._subscribers.publish(lambda: event)


class OplogProxy(ActorMemberMixin, pykka.ActorProxy[OplogActor]):
    """``OplogActor.start(...).proxy()`` as mypy should see it: each call returns a future."""

    ping = proxy_method(OplogActor.ping)
    add = proxy_method(OplogActor.add)
    update = proxy_method(OplogActor.update)
    delete = proxy_method(OplogActor.delete)
    apply_remote = proxy_method(OplogActor.apply_remote)
    diff = proxy_method(OplogActor.diff)
    sync_cursors = proxy_method(OplogActor.sync_cursors)
    check_digest = proxy_method(OplogActor.check_digest)
    diff_step = proxy_method(OplogActor.diff_step)
    admit = proxy_method(OplogActor.admit)
    claim = proxy_method(OplogActor.claim)
    release = proxy_method(OplogActor.release)
    query = proxy_method(OplogActor.query)
    query_metadata = proxy_method(OplogActor.query_metadata)
    get = proxy_method(OplogActor.get)
    count = proxy_method(OplogActor.count)
    check_writable = proxy_method(OplogActor.check_writable)
    subscribe = proxy_method(OplogActor.subscribe)
    unsubscribe = proxy_method(OplogActor.unsubscribe)
    configure = proxy_method(OplogActor.configure)
    retention_tick = proxy_method(OplogActor.retention_tick)
