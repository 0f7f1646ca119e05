"""The store contracts: what the hub, the client agent and the PeerStateActor need
from storage, and the immutable results stores hand back.

``OplogStore`` is the hub's side of an oplog store, exactly what the OplogActor
uses; ``LocalOplogStore`` is a node's own oplog and its change feed, what the
client agent and the local tools (``synchub run``, ``synchub ops``) use;
``PeerStateStore`` keeps the PeerState records the PeerStateActor owns. The
embedded default ``SqliteOplogStore`` implements both oplog contracts and
``PeerStore`` the peer-state one; for a hub with ``[store] url``,
``PostgresOplogStore`` implements ``OplogStore`` and ``PostgresPeerStateStore``
``PeerStateStore``. Every implementation runs the same contract suites
(``tests/contract/``).

Ids and flows
    The store assigns its own ids, increasing and never reused (a counter kept in
    the database, so a deleted highest id is not handed out again). Local and
    remote operations share that id space.

    Local operations (created on this node) have ``original_instance_keyid == ""``
    and ``original_id == original_flow_id == 0``; their flow id defaults to their
    own id.

    Remote operations (received from a peer with key id K) keep the peer's id and
    flow id in ``original_id`` / ``original_flow_id`` with
    ``original_instance_keyid = K``; the store maps them to local ids as
    docs/protocol.md §6.4 (`send_operations`) describes.

Modnos
    Local changes take the next value of one store-wide counter, so every local
    add, update or delete gets a modno greater than any modno handed out before (a
    peer's diff sees a change, and "local changes since modno N" is a single range).
    Remote operations keep the modno their owner gave them.

Peer instances
    A peer's operations are handed out (``query``, ``get``, ``apply_remote``'s
    results) with ``peer_instance_id`` set: the instance that peer authenticated
    as. The store keeps it beside the operation, never in its bytes. A selector's
    ``peer_instance_id`` selects by it, and matches a node's own operations by
    the ``instance_id`` they were recorded with (those are handed out exactly as
    stored, without it).

Threads
    A store may be bound to the thread that created it (a ``SqliteOplogStore`` owns
    one sqlite3 connection, usable only there; the PostgreSQL stores take a pooled
    connection for each call and may be used from any thread). The actors therefore build their
    store inside their own thread (in ``on_start``, from a factory they are given)
    and close it in ``on_stop``.

Results are always fresh objects that the store keeps no reference to.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple, Protocol, runtime_checkable

from hub.config import RetentionSettings
from hub.pb import synchub_pb2 as pb
from hub.store._sync import BucketDigest, Digests, SyncCursor


@dataclass(frozen=True, slots=True)
class OpMetadata:
    """The bookkeeping columns of one stored operation (no payload decoding)."""

    id: int
    flow_id: int
    modno: int
    original_instance_keyid: str
    original_id: int
    original_flow_id: int


class SerializedOperation(NamedTuple):
    """One stored operation as its serialized bytes, with the columns a sender filters on."""

    id: int
    repo_guid: str
    plan_id: str
    data: bytes


@dataclass(frozen=True, slots=True)
class LocalChanges:
    """Local changes past a mark: what a client streams to its hubs.

    ``operations`` were added or updated, ``deleted_ids`` deleted, all with a
    modno past the mark and at most ``mark``; pass ``mark`` next time.
    """

    operations: tuple[pb.Operation, ...]
    deleted_ids: tuple[int, ...]
    mark: int


@dataclass(frozen=True, slots=True)
class RemoteApplyResult:
    """What one remote batch changed, in local terms, after it was committed.

    ``created`` and ``updated`` are the stored operations (local ids and flow ids);
    ``deleted_ids`` are the local ids removed. The operations are fresh objects;
    whoever receives a result must treat them as read-only, since the same objects
    may be handed to several receivers.
    """

    created: tuple[pb.Operation, ...] = ()
    updated: tuple[pb.Operation, ...] = ()
    deleted_ids: tuple[int, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.created or self.updated or self.deleted_ids)


@runtime_checkable
class LocalWrites(Protocol):
    """What every oplog store offers for this node's own operations, hub or client."""

    def add_local(self, ops: Sequence[pb.Operation]) -> list[pb.Operation]:
        """Store new local operations (id 0); return the stored copies with ids, flows, modnos.

        An operation with an id other than 0 is a ValueError and nothing is stored.
        """
        ...

    def update_local(self, ops: Sequence[pb.Operation]) -> list[pb.Operation]:
        """Replace existing local operations by id; each gets a new, higher modno.

        An unknown id, or the id of a peer's operation, is a StoreError and
        nothing is changed.
        """
        ...

    def delete(self, ids: Sequence[int]) -> list[int]:
        """Delete operations by local id; return the ids that existed, ascending.

        Deleting a local operation leaves a tombstone with a new modno, so the
        deletion appears in ``local_changes_since``.
        """
        ...

    def query(
        self, selector: pb.OpSelector, *, limit: int | None = None, newest_first: bool = False
    ) -> list[pb.Operation]:
        """Stored operations matching ``selector`` (local ids), by id."""
        ...

    def close(self) -> None:
        """Release the store (closing twice is fine); further calls fail with StoreError."""
        ...


@runtime_checkable
class OplogStore(LocalWrites, Protocol):
    """The hub's oplog store: every operation it holds, its own and its peers'.

    Exactly what the OplogActor uses. ``tests/contract/test_oplog_store_contract.py``
    holds the behaviour every implementation must have.
    """

    def apply_remote(
        self,
        keyid: str,
        created_or_updated: Sequence[pb.Operation],
        deleted_original_ids: Sequence[int],
        *,
        reuse: bool = False,
        peer_instance_id: str = "",
    ) -> RemoteApplyResult:
        """Apply one batch from the peer with ``keyid`` atomically (send_operations).

        An operation with id <= 0 or flow id < 0 is a ProtocolError and nothing
        of the batch is stored. With ``reuse`` the caller gives the operations up:
        the store may change them and hand them back as its results instead of
        copying each one. Each operation is stored as sent (its ``instance_id``
        included) apart from the ids the store assigns; ``peer_instance_id``, the
        instance the peer authenticated as, is recorded beside it (never in it)
        and set on what the store hands out.
        """
        ...

    def diff(
        self,
        keyid: str,
        selector: pb.OpSelector,
        have_ids: Sequence[int],
        have_modnos: Sequence[int],
    ) -> list[int]:
        """The peer ids to request for a diff_operations, ascending.

        Lists of different lengths, or a selector naming another key id, are a
        ProtocolError.
        """
        ...

    def held_window(
        self,
        keyid: str,
        selector: pb.OpSelector,
        after: int | None,
        upto: int | None,
        limit: int,
    ) -> tuple[dict[int, int], int | None]:
        """One bounded step of a diff: the modnos, by peer id, of ``keyid``'s operations
        in the selection with a peer id above ``after`` and at most the window's end,
        and that end.

        The window ends at ``upto``, or sooner, at the ``limit``-th operation of
        ``keyid`` above ``after`` (whatever the selection), so a step costs at most
        ``limit`` rows (a selection listing at most ``limit`` ids is one step: no
        bound); None for the end means no bound (the last step). ``after``
        None means from the lowest id. A selector naming another key id is a
        ProtocolError.
        """
        ...

    def unretired(
        self,
        keyid: str,
        requested: Sequence[int],
        have_ids: Sequence[int],
        have_modnos: Sequence[int],
    ) -> list[int]:
        """``requested`` (one diff step's) without what retention removed at the modno
        the peer still lists, as ``diff`` leaves it out."""
        ...

    def query_metadata(self, selector: pb.OpSelector) -> list[OpMetadata]:
        """Bookkeeping columns of the operations matching ``selector``, by id."""
        ...

    def get(self, op_id: int) -> pb.Operation | None:
        """One operation by local id."""
        ...

    def count(self) -> int:
        """Number of stored operations."""
        ...

    def check_writable(self) -> None:
        """Commit a write that changes no operation; StoreError when the store takes none.

        What a health check asks: the store is open, reachable and accepts commits.
        """
        ...

    def sync_cursors(self, keyid: str) -> list[SyncCursor]:
        """The change cursors recorded for the peer ``keyid``, by selection."""
        ...

    def record_cursor(self, keyid: str, cursor: SyncCursor) -> None:
        """Record (replace) the cursor of one of ``keyid``'s selections, durably."""
        ...

    def peer_digest(
        self, keyid: str, selector: pb.OpSelector,
        built: Mapping[int, BucketDigest] | None = None,
    ) -> dict[int, BucketDigest]:
        """The bucket digests of ``keyid``'s operations in ``selector`` (repo_guid and at
        most plan_id), by their original ids; empty buckets are absent.

        The first call for a selection reads all of it, unless ``built`` gives its
        digests as read in steps (``peer_pairs_page``) after a ``peer_digest_refresh``
        of ``keyid`` and with no other ``peer_digest`` of ``keyid`` in between: those
        become the cache, and the buckets written to meanwhile are read again."""
        ...

    def peer_digests(
        self, keyid: str, selector: pb.OpSelector,
        built: Mapping[int, BucketDigest] | None = None,
    ) -> Digests:
        """As ``peer_digest``, read by range from the cache instead of loaded whole."""
        ...

    def peer_digest_refresh(self, keyid: str, selector: pb.OpSelector) -> bool:
        """Bring ``keyid``'s cached digests up to date with its writes; whether this
        selection is cached (so ``peer_digest`` of it reads only what changed)."""
        ...

    def peer_pairs_page(
        self, keyid: str, selector: pb.OpSelector, after_id: int, limit: int
    ) -> tuple[list[int], list[int]]:
        """The first ``limit`` (original id, modno) pairs of ``keyid``'s operations in
        ``selector`` with original id > ``after_id``, by id, as two lists."""
        ...

    def peer_pairs(
        self, keyid: str, selector: pb.OpSelector, first_id: int, last_id: int
    ) -> tuple[list[int], list[int]]:
        """The (original id, modno) pairs of ``keyid``'s operations in ``selector`` with
        ``first_id <= original id <= last_id``, by id, as two lists."""
        ...


@dataclass(frozen=True, slots=True)
class RetireBatch:
    """One retention batch: what it removed (local ids), where the pass goes on, if done."""

    removed: tuple[int, ...]
    next_after: int
    done: bool


@runtime_checkable
class RetentionStore(Protocol):
    """An oplog store that applies ``[retention]`` (the SQLite one; docs/operations.md).

    ``retire`` looks at up to ``limit`` operations after id ``after_id`` and removes
    peers' operations older than the settings keep, never the latest run of an
    (instance, plan); the peer's next diff does not ask for them again unless their
    modno changed. Called by the OplogActor, a batch per tick, off the ingest path.
    """

    def retire(
        self, settings: RetentionSettings, now_ms: int, *, after_id: int, limit: int
    ) -> RetireBatch: ...


@runtime_checkable
class LocalOplogStore(LocalWrites, Protocol):
    """A node's own oplog and its change feed: what a client streams to its hubs.

    Used by the client agent and the local tools; other processes may write to
    the same oplog meanwhile. ``tests/contract/test_local_oplog_contract.py``
    holds the behaviour every implementation must have.
    """

    def local_modno(self) -> int:
        """The modno of the latest local change (add, update or delete); 0 if none."""
        ...

    def local_changes_since(self, modno: int, *, limit: int = 10_000) -> LocalChanges:
        """Local changes with a modno past ``modno``, oldest first, at most ``limit``."""
        ...

    def data_version(self) -> int:
        """A number that changes when another connection commits (cheap to poll)."""
        ...

    def ids_and_modnos(self, selector: pb.OpSelector) -> tuple[list[int], list[int]]:
        """The (id, modno) pairs of the operations matching ``selector``, by id, as two lists.

        What a diff lists; cheaper than reading the operations.
        """
        ...

    def query_serialized(self, selector: pb.OpSelector) -> list[SerializedOperation]:
        """Like ``query``, without decoding: each operation's stored bytes, by id."""
        ...

    def store_epoch(self) -> bytes:
        """This store's epoch: random bytes made when the store was created, never changed."""
        ...

    def local_digest(
        self, selector: pb.OpSelector, excluded_plans: Collection[str] = ()
    ) -> dict[int, BucketDigest]:
        """The bucket digests of the local operations in ``selector`` (repo_guid and at
        most plan_id) whose plan is not in ``excluded_plans``; empty buckets absent."""
        ...

    def local_digests(
        self, selector: pb.OpSelector, excluded_plans: Collection[str] = ()
    ) -> Digests:
        """As ``local_digest``, read by range from the cache instead of loaded whole."""
        ...

    def local_pairs(
        self, selector: pb.OpSelector, excluded_plans: Collection[str],
        first_id: int, last_id: int,
    ) -> tuple[list[int], list[int]]:
        """The (id, modno) pairs of that selection with ``first_id <= id <= last_id``."""
        ...


@runtime_checkable
class PeerStateStore(Protocol):
    """The PeerState records of every peer, keyed by peer keyid: what the PeerStateActor keeps.

    ``tests/contract/test_peer_state_store_contract.py`` holds the behaviour every
    implementation must have.
    """

    def load_all(self) -> dict[str, pb.PeerState]:
        """Every stored record by peer keyid, as fresh objects."""
        ...

    def save(self, states: Iterable[pb.PeerState]) -> None:
        """Insert or replace each state by its keyid, all or nothing.

        A state without a keyid is a StoreError and nothing is saved.
        """
        ...

    def close(self) -> None:
        """Release the store (closing twice is fine); further calls fail with StoreError."""
        ...


# -- reading the hub's oplog from other threads: the web side ------------------------------


@dataclass(frozen=True, slots=True)
class OperationQuery:
    """Which operations a reader lists, and in which order.

    ``order`` ``"id"`` lists by local id (the order they arrived in this store),
    ``"started"`` by start time (``unix_time_start_ms``, ties by id); newest first,
    oldest first with ``ascending``. Every set field narrows the list: ``instance``
    the instance an operation came from
    (its ``peer_instance_id``; a node's own operations by their ``instance_id``),
    ``producer`` the ``instance_id`` it was written with; ``since_ms`` / ``until_ms``
    bound the start time (``since`` inclusive, ``until`` exclusive); ``before_id`` pages:
    only ids below it.
    """

    instance: str | None = None
    producer: str | None = None
    repo_guid: str | None = None
    plan_id: str | None = None
    status: int | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    before_id: int | None = None
    limit: int = 100
    order: Literal["id", "started"] = "id"
    ascending: bool = False

    def order_sql(self) -> str:
        """The ORDER BY clause both SQL stores use for this query."""
        direction = "ASC" if self.ascending else "DESC"
        if self.order == "started":
            return f"unix_time_start_ms {direction}, id {direction}"
        return f"id {direction}"


@runtime_checkable
class OplogReader(Protocol):
    """A read-only view of the hub's oplog, for threads other than the OplogActor's.

    Each reader holds its own connection to the store the OplogActor writes and sees
    every committed change; it never writes. Used by one thread at a time (a reader
    may be handed from thread to thread, never shared at once).
    ``tests/contract/test_oplog_reader_contract.py`` holds the behaviour every
    implementation must have.
    """

    def find(self, query: OperationQuery) -> list[pb.Operation]:
        """The operations matching ``query`` in its order, at most ``query.limit``.

        Every operation read has ``peer_instance_id`` set as ``OplogStore.query`` sets it.
        """
        ...

    def get(self, op_id: int) -> pb.Operation | None:
        """One operation by local id."""
        ...

    def plan_keys(self) -> list[tuple[str, str]]:
        """Every (instance, plan_id) pair some stored operation has, sorted; the instance is
        the one it came from (``OperationQuery.instance``)."""
        ...

    def latest_runs(self, instance: str, plan_id: str, limit: int) -> list[pb.Operation]:
        """The operations of one (instance, plan), highest id first, at most ``limit``."""
        ...

    def stored_between(
        self, first_id: int, last_id: int, *, limit: int
    ) -> list[pb.Operation]:
        """The operations with ids from ``first_id`` to ``last_id`` (inclusive), by id, at
        most ``limit``: what another hub's notice announced (``OplogCommitted``)."""
        ...

    def latest_with_status(
        self, instance: str, plan_id: str, status: int
    ) -> pb.Operation | None:
        """The highest-id operation of one (instance, plan) with ``status``."""
        ...

    def local_modno(self) -> int:
        """As ``LocalOplogStore.local_modno``: the latest local change's modno."""
        ...

    def local_changes_since(self, modno: int, *, limit: int = 10_000) -> LocalChanges:
        """As ``LocalOplogStore.local_changes_since``: changes written by any process."""
        ...

    def data_version(self) -> int:
        """A number that changes when another connection commits (cheap to poll)."""
        ...

    def count(self) -> int:
        """Number of stored operations."""
        ...

    def size_bytes(self) -> int:
        """The store's size on disk (0 where it has no files of its own)."""
        ...

    def close(self) -> None:
        """Release the reader (closing twice is fine); further calls fail with StoreError."""
        ...


# -- the alerts' state ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredIncident:
    """An alert firing for one subject: ``key`` says which (``web1/nightly``, a peer's keyid).

    ``event`` is the firing event as delivered (JSON text); the store does not read it.
    """

    alert: str
    key: str
    fired_ms: int
    event: str


@dataclass(frozen=True, slots=True)
class NewDelivery:
    """An event to deliver to one of an alert's targets (``webhook`` or ``command``)."""

    alert: str
    target: str
    event: str


@dataclass(frozen=True, slots=True)
class StoredDelivery:
    """A delivery waiting in the outbox, with the id the store gave it."""

    id: int
    alert: str
    target: str
    event: str


@runtime_checkable
class AlertStateStore(Protocol):
    """What the AlertActor keeps across restarts: firing incidents and undelivered events.

    Incidents are keyed by (alert, key). ``commit`` records what one evaluation decided
    in one transaction, so a restart finds either all of it or none: no incident
    without its deliveries, no delivery of an incident that was not recorded.
    ``tests/contract/test_alert_state_contract.py`` holds the behaviour every
    implementation must have.
    """

    def active(self) -> list[StoredIncident]:
        """Every firing incident, sorted by (alert, key)."""
        ...

    def pending(self) -> list[StoredDelivery]:
        """Every delivery not yet marked done, oldest first."""
        ...

    def commit(
        self,
        *,
        fired: Sequence[StoredIncident] = (),
        resolved: Sequence[tuple[str, str]] = (),
        deliveries: Sequence[NewDelivery] = (),
    ) -> list[StoredDelivery]:
        """Record incidents that fired (replacing one of the same key), remove resolved
        (alert, key) pairs (unknown ones are ignored), and queue deliveries; all or nothing.

        Returns the queued deliveries with their ids, in the order given.
        """
        ...

    def done(self, delivery_ids: Sequence[int]) -> None:
        """Take deliveries out of the outbox (delivered, or given up); unknown ids are ignored."""
        ...

    def close(self) -> None:
        """Release the store (closing twice is fine); further calls fail with StoreError."""
        ...
