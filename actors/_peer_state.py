"""PeerStateActor: the live state of every peer the hub knows, kept in a PeerStateStore.

Sessions report connection changes, heartbeats and what their client told it
(remote config, known repos and plans). It also knows each connected peer's live
session (``live_session``), so a reader can reach a client through it (a log
request, ``actors._logs``); a displaced or ended session is never handed out.
State changes are written at once; heartbeats only mark a record dirty, and
dirty records are written together by the next state change, by ``flush()``, by
a ``tick`` once ``flush_interval`` has passed since the last write, and on stop.
Time arrives as ``tick(now)`` messages.

Every message handler that callers fire and forget logs its errors and keeps
the actor alive; a failed write leaves the records dirty so the next write
retries them.

On a store several hubs share, each key's one live session is recorded under a
lease (``actors._leases``): ``connected`` claims it, a claim by another hub ends the
session here (``claimed``), ticks renew this node's leases and end those other
nodes stopped renewing; the records of peers other hubs serve are read from the
store (``list``).
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import logging
import time
from collections.abc import Callable
from typing import Any, ParamSpec, cast

import pykka
from pykka.typing import ActorMemberMixin, proxy_method

from actors._front_messages import Displace
from actors._leases import RESTART_STATUS_MESSAGE, ClusterSessions
from actors._refusals import PendingKey, RefusalLog
from actors._subscribers import Subscribers
from hub.errors import StoreError
from hub.pb import synchub_pb2 as pb
from hub.store import LiveSession, PeerStateStore, SessionLeases

logger = logging.getLogger(__name__)

_P = ParamSpec("_P")

PeerStateListener = Callable[[pb.PeerState], object]

_LIVE_STATES = frozenset({pb.CONNECTION_STATE_CONNECTED, pb.CONNECTION_STATE_PENDING})
# A session that ended in one of these failed: its message is also the peer's last error.
_ERROR_STATES = frozenset({
    pb.CONNECTION_STATE_ERROR_AUTH,
    pb.CONNECTION_STATE_ERROR_PROTOCOL,
    pb.CONNECTION_STATE_ERROR_INTERNAL,
})



def _survives(handler: Callable[_P, None]) -> Callable[_P, None]:
    """Log any error from a fire-and-forget handler instead of letting it kill the actor."""

    @functools.wraps(handler)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> None:
        try:
            handler(*args, **kwargs)
        except Exception:
            logger.exception("peer state: %s failed", handler.__name__)

    return wrapper


def _copy(state: pb.PeerState) -> pb.PeerState:
    fresh = pb.PeerState()
    fresh.CopyFrom(state)
    return fresh


class PeerStateActor(pykka.ThreadingActor):
    def __init__(
        self,
        store_factory: Callable[[], PeerStateStore],
        clock: Callable[[], float] = time.time,
        flush_interval: float = 30.0,
        *,
        node: str = "",
        leases_factory: Callable[[], SessionLeases | None] | None = None,
        renew_interval: float = 1.0,
    ) -> None:
        """``node`` names this hub in ``holders``; ``leases_factory``, when it gives
        leases, makes this hub one of several on a shared store."""
        super().__init__()
        self._node = node
        self._leases_factory = leases_factory
        self._renew_interval = renew_interval
        self._cluster: ClusterSessions | None = None
        self._store_factory = store_factory
        self._clock = clock
        self._flush_interval = flush_interval
        self._store: PeerStateStore | None = None
        self._states: dict[str, pb.PeerState] = {}
        self._dirty: set[str] = set()
        self._last_flush = 0.0
        # keyid -> the session id given with the last connected(), so a late
        # disconnected() from a replaced session does not mark a live peer down.
        self._sessions: dict[str, str] = {}
        # keyid -> that session's ActorRef, for readers that must reach the client.
        self._live: dict[str, pykka.ActorRef[Any]] = {}
        self._subscribers: Subscribers[pb.PeerState] = Subscribers("peer state")
        self._refusals = RefusalLog()

    # -- lifecycle (actor thread) ---------------------------------------------------

    def on_start(self) -> None:
        # Open the leases (if any) and end this node's from before; keys held elsewhere.
        leases = self._leases_factory() if self._leases_factory is not None else None
        self._cluster = ClusterSessions.of(leases, self._renew_interval)
        held_elsewhere = self._cluster.start() if self._cluster is not None else set()
        store = self._store_factory()
        try:
            states = store.load_all()
        except BaseException:
            store.close()
            raise
        self._store = store
        self._states = states
        self._last_flush = self._clock()
        self._dirty.update(_mark_restarted(states, held_elsewhere, self._now_millis()))
        self._write_logged()

    def on_stop(self) -> None:
        self._write_logged()
        self._close_store()

    def on_failure(self, *_exc_info: object) -> None:
        self._close_store()

    def _close_store(self) -> None:
        cluster, self._cluster = self._cluster, None
        store, self._store = self._store, None
        _close_logged(cluster, "the session leases")
        _close_logged(store, "the store")

    # -- persistence ------------------------------------------------------------------

    def _write(self, now: float | None = None) -> None:
        if not self._dirty:
            return
        if self._store is None:
            raise StoreError("the peer store is not open")
        self._store.save([self._states[keyid] for keyid in sorted(self._dirty)])
        self._dirty.clear()
        self._last_flush = self._clock() if now is None else now

    def _write_logged(self, now: float | None = None) -> None:
        try:
            self._write(now)
        except Exception:
            logger.exception(
                "peer state: saving %d peer record(s) failed; will retry", len(self._dirty)
            )

    def _changed(self, keyid: str) -> None:
        """Persist a state change (with any pending heartbeats) and tell the listeners."""
        self._dirty.add(keyid)
        self._write_logged()
        state = self._states[keyid]
        self._subscribers.publish(lambda: _copy(state))

    def _record(self, keyid: str, instance_id: str = "") -> pb.PeerState:
        state = self._states.get(keyid)
        if state is None:
            state = pb.PeerState(peer_keyid=keyid)
            self._states[keyid] = state
        if instance_id:
            state.peer_instance_id = instance_id
        return state

    def _now_millis(self) -> int:
        return int(self._clock() * 1000)

    # -- public API -------------------------------------------------------------------

    def ping(self) -> bool:
        return self._store is not None

    @_survives
    def connected(
        self,
        keyid: str,
        instance_id: str,
        session_id: str = "",
        session: pykka.ActorRef[Any] | None = None,
        message: str = "",
    ) -> None:
        """The peer finished its handshake (in ``session``); persisted and announced at once.

        ``message`` is its status until something else happens (how it joined, say)."""
        state = self._record(keyid, instance_id)
        state.state = pb.CONNECTION_STATE_CONNECTED
        state.status_message = message
        state.last_heartbeat_millis = self._now_millis()
        self._sessions[keyid] = session_id
        self._refusals.pending.forget(keyid)
        if session is not None:
            self._live[keyid] = session
        else:
            self._live.pop(keyid, None)
        if self._cluster is not None:
            self._cluster.claim(LiveSession(keyid, session_id, state.peer_instance_id))
        self._changed(keyid)

    @_survives
    def disconnected(
        self,
        keyid: str,
        state: int = pb.CONNECTION_STATE_DISCONNECTED,
        message: str = "",
        instance_id: str = "",
        session_id: str = "",
    ) -> None:
        """The peer's session ended (or never got going) with ``state`` and ``message``.

        ``message`` becomes the peer's disconnect reason (``status_message``, with
        ``last_disconnect_millis``); an error state makes it the last error too
        (``last_error``), which a later normal end leaves in place. The last
        heartbeat is kept. A keyid never seen before gets a new record. When
        ``session_id`` is given and a different session of the same peer is live,
        the report is stale and ignored.
        """
        name = pb.ConnectionState.Name(state)
        new_state = cast(pb.ConnectionState, state)
        if new_state in _LIVE_STATES:
            raise ValueError(f"disconnected() cannot set {name}; use connected()")
        live_session = self._sessions.get(keyid, "")
        if session_id and live_session and live_session != session_id:
            logger.debug("peer state: ignoring %s from replaced session of %s", name, keyid)
            return
        self._sessions.pop(keyid, None)
        self._live.pop(keyid, None)
        if (self._cluster is not None and session_id and live_session
                and not self._cluster.release(keyid, session_id)):
            logger.debug("peer state: %s is served by another hub now", keyid)
            return
        record = self._record(keyid, instance_id)
        record.state = new_state
        record.status_message = message
        record.last_disconnect_millis = self._now_millis()
        if new_state in _ERROR_STATES:
            record.last_error = message
            record.last_error_millis = record.last_disconnect_millis
        self._changed(keyid)

    @_survives
    def heartbeat(self, keyid: str) -> None:
        """The peer was heard from (any item it sent); written later, with the next write."""
        state = self._states.get(keyid)
        if state is None:
            logger.warning("peer state: heartbeat from unknown peer %s ignored", keyid)
            return
        state.last_heartbeat_millis = self._now_millis()
        self._dirty.add(keyid)

    @_survives
    def tick(self, now: float) -> None:
        if self._cluster is not None and self._cluster.due(now):
            self._renew_and_expire(now)
        if self._dirty and now - self._last_flush >= self._flush_interval:
            self._write_logged(now)

    def _renew_and_expire(self, now: float) -> None:
        assert self._cluster is not None
        live = _live_sessions(self._live, self._sessions, self._states)
        for keyid in sorted(self._cluster.renew(now, live) or ()):
            self._displace(keyid, "its lease is held by another hub")
        for state in self._cluster.expire():
            self._states[state.peer_keyid] = state
            self._dirty.discard(state.peer_keyid)
            self._subscribers.publish(functools.partial(_copy, state))

    @_survives
    def claimed(self, keyid: str, node: str, session_id: str) -> None:
        """Hub ``node`` took ``keyid``'s session: end the one here, if it is older."""
        if node == self._node or keyid not in self._live:
            return  # this hub's own claims: its front displaces an older session itself
        if self._cluster is not None and not self._cluster.holds_elsewhere(keyid):
            return  # an old notice: this hub's session claimed the key after it
        self._displace(keyid, f"displaced by a newer connection on hub {node}")
        logger.debug("peer state: %s moved to session %s on %s", keyid, session_id, node)

    def _displace(self, keyid: str, why: str) -> None:
        self._sessions.pop(keyid, None)
        _end_displaced(self._live.pop(keyid, None), keyid, why)

    def holders(self) -> dict[str, str]:
        """keyid -> the hub (node name) holding its live session, on any hub."""
        own = dict.fromkeys(self._live, self._node)
        return own if self._cluster is None else self._cluster.holders_or(own)

    def flush(self) -> None:
        """Write every dirty record now; raises StoreError (ask it to see failures)."""
        self._write()

    @_survives
    def refused(
        self, keyid: str, instance_id: str, message: str, source: str | None = None
    ) -> None:
        """A real key (its PROOF was valid) was refused: a warning, once a minute per key;
        with ``source`` (its address) its authorization was refused: it waits in ``pending``."""
        self._refusals.refused(keyid, instance_id, message, self._clock(), source)

    def pending(self) -> tuple[PendingKey, ...]:
        """The keys refused their authorization lately, most recent first (this hub's)."""
        return self._refusals.pending.entries(self._clock())

    def _stale(self, keyid: str, session_id: str) -> bool:
        """A report from a session that is no longer the key's live one (displaced)."""
        return bool(session_id) and self._sessions.get(keyid, session_id) != session_id

    @_survives
    def set_remote_config(self, keyid: str, config: pb.RemoteConfig, session_id: str = "") -> None:
        state = self._states.get(keyid)
        if self._stale(keyid, session_id):
            return
        if state is None:
            logger.warning("peer state: config from unknown peer %s ignored", keyid)
            return
        if state.HasField("remote_config") and state.remote_config == config:
            return
        state.remote_config.CopyFrom(config)
        self._changed(keyid)

    @_survives
    def set_resources(self, keyid: str, repo_ids: tuple[str, ...], plan_ids: tuple[str, ...],
                      session_id: str = "") -> None:
        state = self._states.get(keyid)
        if self._stale(keyid, session_id):
            return
        if state is None:
            logger.warning("peer state: resources from unknown peer %s ignored", keyid)
            return
        if (tuple(state.known_repos), tuple(state.known_plans)) == (
                tuple(repo_ids), tuple(plan_ids)):
            return
        state.known_repos[:] = repo_ids
        state.known_plans[:] = plan_ids
        self._changed(keyid)

    def get(self, keyid: str) -> pb.PeerState | None:
        state = self._states.get(keyid)
        return None if state is None else _copy(state)

    def live_session(self, keyid: str) -> pykka.ActorRef[Any] | None:
        """The connected session of peer ``keyid``, or None when it has none (or it stopped)."""
        ref = self._live.get(keyid)
        if ref is not None and not ref.is_alive():
            self._live.pop(keyid, None)
            return None
        return ref

    def list(self) -> builtins.list[pb.PeerState]:
        """Fresh copies of every record, sorted by instance id then keyid (on a shared
        store, as the store has them, with this hub's own live peers as it knows them)."""
        states = self._states
        if self._cluster is not None and self._store is not None:
            states = _shared_view(self._store, self._states, self._live)
        ordered = sorted(states.values(), key=lambda s: (s.peer_instance_id, s.peer_keyid))
        return [_copy(state) for state in ordered]

    def subscribe(self, listener: PeerStateListener) -> int:
        """Call ``listener`` (in the actor thread) with a fresh copy after each state change."""
        return self._subscribers.add(listener)

    def unsubscribe(self, token: int) -> bool:
        return self._subscribers.remove(token)


def _end_displaced(ref: pykka.ActorRef[Any] | None, keyid: str, why: str) -> None:
    if ref is None:
        return
    logger.info("peer state: ending the session of %s here: %s", keyid, why)
    with contextlib.suppress(pykka.ActorDeadError):
        ref.tell(Displace())


def _close_logged(resource: SessionLeases | ClusterSessions | PeerStateStore | None,
                  what: str) -> None:
    if resource is None:
        return
    try:
        resource.close()
    except Exception:
        logger.exception("peer state: closing %s failed", what)


def _mark_restarted(
    states: dict[str, pb.PeerState], held_elsewhere: set[str], now_millis: int
) -> set[str]:
    """Mark the peers this hub held before it restarted as disconnected; their keys."""
    marked = set()
    for keyid, state in states.items():
        if state.state in _LIVE_STATES and keyid not in held_elsewhere:
            state.state = pb.CONNECTION_STATE_DISCONNECTED
            state.status_message = RESTART_STATUS_MESSAGE
            state.last_disconnect_millis = now_millis
            marked.add(keyid)
    return marked


def _shared_view(
    store: PeerStateStore, states: dict[str, pb.PeerState], live: dict[str, Any]
) -> dict[str, pb.PeerState]:
    """Every hub's records as the store has them, this hub's live peers as it knows them."""
    try:
        return {**store.load_all(), **{k: states[k] for k in live if k in states}}
    except StoreError:
        logger.warning("peer state: reading other hubs' peers failed; this hub's only")
        return states


def _live_sessions(
    live: dict[str, Any], sessions: dict[str, str], states: dict[str, pb.PeerState]
) -> list[LiveSession]:
    return [LiveSession(keyid, sessions.get(keyid, ""), states[keyid].peer_instance_id)
            for keyid in live if keyid in states]


class PeerStateProxy(ActorMemberMixin, pykka.ActorProxy[PeerStateActor]):
    """``PeerStateActor.start(...).proxy()`` as mypy should see it: each call returns a future.

    The fire-and-forget reports (``connected``, ``heartbeat``...) go through ``tell``.
    """

    ping = proxy_method(PeerStateActor.ping)
    connected = proxy_method(PeerStateActor.connected)
    disconnected = proxy_method(PeerStateActor.disconnected)
    heartbeat = proxy_method(PeerStateActor.heartbeat)
    tick = proxy_method(PeerStateActor.tick)
    flush = proxy_method(PeerStateActor.flush)
    set_remote_config = proxy_method(PeerStateActor.set_remote_config)
    refused = proxy_method(PeerStateActor.refused)
    pending = proxy_method(PeerStateActor.pending)
    set_resources = proxy_method(PeerStateActor.set_resources)
    get = proxy_method(PeerStateActor.get)
    live_session = proxy_method(PeerStateActor.live_session)
    claimed = proxy_method(PeerStateActor.claimed)
    holders = proxy_method(PeerStateActor.holders)
    list = proxy_method(PeerStateActor.list)
    subscribe = proxy_method(PeerStateActor.subscribe)
    unsubscribe = proxy_method(PeerStateActor.unsubscribe)
