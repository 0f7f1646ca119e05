"""SessionActor: one per connected peer, from HELLO to the session's end.

The front (the thread that owns the ROUTER socket) hands this actor every frame
from one routing id. The actor decodes it in its own thread, runs the handshake
state machine of protocol.md section 4, then the sync handlers of section 5.
Outbound frames leave through the session's own ``Outbox`` (an inproc pipe to
the front created in this actor's thread): no actor thread touches the ROUTER.

Every protocol or authentication failure becomes exactly one ``error`` item and
the end of the session. Time arrives as messages (``handle_frame(..., now)``
and ``tick(now)``), so tests drive timeouts without sleeping.
"""

from __future__ import annotations

import enum
import functools
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import pykka
from pykka.messages import ProxyCall

from actors._oplog import RemoteBatch
from hub import protocol
from hub.config import AuthorizedClient, Config
from hub.errors import ActorError, AuthError, ProtocolError, SynchubError
from hub.identity import SigningIdentity
from hub.pb import synchub_pb2 as pb
from hub.protocol import (
    Hello,
    Transcript,
    challenge_item,
    hub_transcript,
    new_nonce,
    sign_challenge,
    validate_hello,
    validate_proof,
)

log = logging.getLogger(__name__)

ERROR_AUTH = pb.CONNECTION_STATE_ERROR_AUTH
ERROR_PROTOCOL = pb.CONNECTION_STATE_ERROR_PROTOCOL
ERROR_INTERNAL = pb.CONNECTION_STATE_ERROR_INTERNAL
DISCONNECTED = pb.CONNECTION_STATE_DISCONNECTED

class Outbox(Protocol):
    """The session's one way out, owned by the session's thread."""

    def send(self, frames: Sequence[bytes]) -> None:
        """Queue frames for this peer, in order."""

    def frame_done(self) -> None:
        """Tell the front one inbound frame is fully handled (its backlog credit)."""

    def authenticated(self, keyid: str) -> None:
        """Tell the front this session now speaks for ``keyid`` (for displacement)."""

    def close(self) -> None:
        """The session has ended: the front forgets this peer after the queued frames."""


@dataclass(frozen=True)
class HubIdentity:
    instance_id: str
    signing: SigningIdentity


@dataclass(frozen=True)
class SessionSettings:
    heartbeat_interval: float = 15.0
    handshake_timeout: float = 10.0
    ask_timeout: float = 30.0

    @property
    def silence_limit(self) -> float:
        return 3 * self.heartbeat_interval


class Phase(enum.Enum):
    AWAIT_HELLO = "await-hello"
    AWAIT_PROOF = "await-proof"
    CONNECTED = "connected"
    ENDED = "ended"


class SessionActor(pykka.ThreadingActor):
    """Serve one peer. Collaborators arrive as proxies; see ``hub.front``."""

    def __init__(
        self,
        *,
        session_id: str,
        hub: HubIdentity,
        settings: SessionSettings,
        config: Any,
        oplog: Any,
        peers: Any,
        outbox_factory: Callable[[], Outbox],
        now: float,
    ) -> None:
        super().__init__()
        self._session_id = session_id
        self._hub = hub
        self._settings = settings
        self._config = config
        self._oplog = oplog
        self._peers = peers
        self._outbox_factory = outbox_factory
        self._outbox: Outbox | None = None
        self._phase = Phase.AWAIT_HELLO
        self._now = now
        self._started_at = now
        self._last_received_at = now
        self._last_sent_at = now
        self._last_liveness_report = now
        self._hello: Hello | None = None
        self._transcript: Transcript | None = None
        self._client: AuthorizedClient | None = None
        self._config_token: int | None = None
        self._sent_view: tuple[bytes, tuple[str, ...], tuple[str, ...]] | None = None

    # -- lifecycle ---------------------------------------------------------

    def on_start(self) -> None:
        self._outbox = self._outbox_factory()

    def on_stop(self) -> None:
        # Reached on hub shutdown as well as after _end(); only the former
        # still has work to do.
        if self._phase is not Phase.ENDED:
            self._say_goodbye(DISCONNECTED, "the hub is shutting down; reconnect later")

    def on_failure(self, exception_type: Any, exception_value: Any, traceback: Any) -> None:
        if self._phase is not Phase.ENDED:
            self._say_goodbye(ERROR_INTERNAL, "internal error in the hub; reconnect later")

    # -- messages from the front ----------------------------------------------

    @property
    def phase(self) -> Phase:
        return self._phase

    def handle_frame(
        self, frame: bytes, now: float, cancelled: threading.Event | None = None
    ) -> None:
        """Handle one inbound frame; skip it once ``cancelled`` is set (the hub is stopping).

        Skipping is safe: nothing a client sends is acknowledged except through a
        diff reply, so a client resends on its next connection what was skipped.
        """
        if self._phase is Phase.ENDED or (cancelled is not None and cancelled.is_set()):
            return
        self._now = max(self._now, now)
        self._last_received_at = now
        try:
            self._dispatch(protocol.decode_item(frame))
        except ProtocolError as exc:
            self._end(ERROR_PROTOCOL, str(exc))
        except AuthError as exc:
            self._end(ERROR_AUTH, str(exc))
        except SynchubError as exc:
            log.error("session %s: %s", self._session_id, exc)
            self._end(ERROR_INTERNAL, f"hub error: {exc}")
        except Exception:
            # Whatever a peer sends, the session answers with an error item,
            # never by dying with the exception.
            log.exception("session %s: unexpected failure handling a frame", self._session_id)
            if self.phase is not Phase.ENDED:
                self._end(ERROR_INTERNAL, "internal error in the hub; reconnect later")
        finally:
            if self._outbox is not None and self.phase is not Phase.ENDED:
                self._outbox.frame_done()

    def tick(self, now: float) -> None:
        if self._phase is Phase.ENDED:
            return
        self._now = max(self._now, now)
        if self._phase is not Phase.CONNECTED:
            if now - self._started_at >= self._settings.handshake_timeout:
                self._end(ERROR_AUTH, "handshake timed out")
            return
        silent_for = now - self._last_received_at
        if silent_for >= self._settings.silence_limit:
            self._end(
                DISCONNECTED,
                f"no frame for {silent_for:.0f}s (3 heartbeat intervals)",
                send_error=False,
            )
            return
        if now - self._last_sent_at >= self._settings.heartbeat_interval:
            self._send([protocol.heartbeat_frame()])

    def protocol_violation(self, message: str) -> None:
        """The front saw something only it can see (e.g. a multi-frame message)."""
        if self._phase is not Phase.ENDED:
            self._end(ERROR_PROTOCOL, message)

    def peer_vanished(self) -> None:
        """A send to this peer failed: it is gone, so nothing more is sent."""
        if self._phase is not Phase.ENDED:
            self._end(DISCONNECTED, "peer connection lost", send_error=False)

    def displace(self) -> None:
        """A newer session for the same keyid completed its PROOF."""
        if self._phase is not Phase.ENDED:
            # The newer session owns the peer's state now: leave it alone.
            self._end(DISCONNECTED, "displaced by a newer connection", mark_peer=False)

    def on_config_changed(self, config: Config) -> None:
        if self._phase is not Phase.CONNECTED or self._hello is None:
            return
        try:
            client = self._authorize(config, self._hello)
        except AuthError as exc:
            self._end(ERROR_AUTH, str(exc))
            return
        self._client = client
        self._send_config_view(config, client, force=False)

    # -- dispatch --------------------------------------------------------------

    def _dispatch(self, item: pb.SyncStreamItem) -> None:
        action = protocol.action_of(item)
        if self._phase is Phase.AWAIT_HELLO:
            self._on_hello(item, action)
        elif self._phase is Phase.AWAIT_PROOF:
            self._on_proof(item, action)
        else:
            self._on_connected_item(item, action)

    def _on_hello(self, item: pb.SyncStreamItem, action: str) -> None:
        if action != "handshake":
            raise ProtocolError(f"expected a handshake HELLO first, got {action}")
        hello = validate_hello(item.handshake)
        hub_nonce = new_nonce()
        transcript = hub_transcript(hello, self._hub.signing, self._hub.instance_id, hub_nonce)
        signature = sign_challenge(self._hub.signing, transcript)
        self._hello = hello
        self._transcript = transcript
        self._phase = Phase.AWAIT_PROOF
        challenge = challenge_item(self._hub.signing, self._hub.instance_id, hub_nonce, signature)
        self._send([protocol.encode_item(challenge)])

    def _on_proof(self, item: pb.SyncStreamItem, action: str) -> None:
        if action != "handshake":
            raise ProtocolError(f"expected the handshake PROOF, got {action}")
        hello, transcript = self._hello, self._transcript
        assert hello is not None and transcript is not None
        validate_proof(item.handshake, hello, transcript)
        # Only now, with the PROOF verified, is an authorization decision made.
        # Subscribe before taking the snapshot so no revocation slips between:
        # both asks go out at once, and the config actor answers them in order.
        on_change = functools.partial(tell_call, self.actor_ref, "on_config_changed")
        subscribed = self._config.subscribe(on_change)
        snapshot = self._config.get()
        self._config_token = self._ask(subscribed, "config")
        config = self._ask(snapshot, "config")
        try:
            client = self._authorize(config, hello)
        except AuthError as exc:
            # Logged by _finish as a refusal, with the reason.
            self._end(ERROR_AUTH, str(exc))
            return
        self._client = client
        self._phase = Phase.CONNECTED
        self._last_liveness_report = self._now
        assert self._outbox is not None
        self._outbox.authenticated(hello.keyid)
        self._peers.connected.defer(hello.keyid, hello.instance_id, session_id=self._session_id)
        log.info("peer %s (%s) connected", hello.instance_id, hello.keyid)
        self._send_config_view(config, client, force=True)

    def _on_connected_item(self, item: pb.SyncStreamItem, action: str) -> None:
        hello = self._hello
        assert hello is not None
        if action == "heartbeat" or (
            self._now - self._last_liveness_report >= self._settings.heartbeat_interval
        ):
            self._last_liveness_report = self._now
            self._peers.heartbeat.defer(hello.keyid)
        if action in {"heartbeat", "throttle"}:
            return
        if action == "diff_operations":
            self._on_diff(item.diff_operations)
        elif action == "send_operations":
            self._on_send_operations(item.send_operations)
        elif action == "send_config":
            self._peers.set_remote_config.defer(hello.keyid, _fresh(item.send_config.config))
        elif action == "list_resources":
            self._peers.set_resources.defer(
                hello.keyid,
                tuple(item.list_resources.repo_ids),
                tuple(item.list_resources.plan_ids),
            )
        elif action == "set_config":
            log.info(
                "ignored set_config from %s: this hub does not take config from clients",
                hello.instance_id,
            )
        elif action == "error":
            self._end(
                DISCONNECTED,
                f"peer reported: {printable(item.error.message) or 'error'}",
                send_error=False,
            )
        else:
            raise ProtocolError(f"unexpected {action} after the handshake completed")

    def _on_diff(self, diff: pb.SyncStreamItem.DiffOperations) -> None:
        hello = self._hello
        assert hello is not None
        selector = diff.have_operations_selector
        if selector.original_instance_keyid != hello.keyid:
            raise ProtocolError(
                "diff_operations selector must name this client's own keyid "
                f"({hello.keyid}) in original_instance_keyid"
            )
        if len(diff.have_operation_ids) != len(diff.have_operation_modnos):
            raise ProtocolError(
                f"diff_operations has {len(diff.have_operation_ids)} ids but "
                f"{len(diff.have_operation_modnos)} modnos"
            )
        requested = self._ask(
            self._oplog.diff(
                hello.keyid,
                _fresh(selector),
                tuple(diff.have_operation_ids),
                tuple(diff.have_operation_modnos),
            ),
            "oplog",
        )
        self._send([protocol.diff_reply_frame(list(requested))])

    def _on_send_operations(self, send: pb.SyncStreamItem.SendOperations) -> None:
        hello = self._hello
        assert hello is not None
        event = send.event
        kind = event.WhichOneof("event")
        if kind in ("created_operations", "updated_operations"):
            listed = (
                event.created_operations
                if kind == "created_operations"
                else event.updated_operations
            )
            # The item was decoded for this call alone and is dropped after it: its
            # operations go to the oplog uncopied (the store copies what it keeps).
            operations = tuple(listed.operations)
            for op in operations:
                # What the hub records is the authenticated instance, not a claim.
                op.instance_id = hello.instance_id
            batch = RemoteBatch(operations=operations)
        elif kind == "deleted_operations":
            batch = RemoteBatch(deleted_ids=tuple(event.deleted_operations.values))
        elif kind == "keep_alive" or kind is None:
            return
        else:
            raise ProtocolError(f"send_operations carries an unknown event {kind}")
        # Waiting here is the backpressure: the next frame is not taken until
        # the batch is durable.
        self._ask(self._oplog.apply_remote(hello.keyid, batch), "oplog")

    # -- helpers ---------------------------------------------------------------

    def _authorize(self, config: Config, hello: Hello) -> AuthorizedClient:
        client = config.authorized_client(hello.keyid)
        who = f"client {hello.instance_id} ({hello.keyid})"
        fix = f"run `synchub authorize {hello.keyid} --instance {hello.instance_id}` on the hub"
        if client is None:
            raise AuthError(f"{who} is not authorized: {fix}")
        if not client.keyid_verified:
            raise AuthError(f"{who} is not verified: {fix} after checking its key")
        if client.instance_id != hello.instance_id:
            raise AuthError(
                f"{who} is authorized as instance {client.instance_id!r}, not "
                f"{hello.instance_id!r}: fix the client's instance or re-authorize it"
            )
        return client

    def _send_config_view(self, config: Config, client: AuthorizedClient, *, force: bool) -> None:
        remote = config.remote_config_for(client.permissions)
        repo_ids, plan_ids = config.resource_ids_for(client.permissions)
        view = (remote.SerializeToString(deterministic=True), tuple(repo_ids), tuple(plan_ids))
        if not force and view == self._sent_view:
            return
        self._sent_view = view
        self._send(protocol.config_frames(remote, list(repo_ids), list(plan_ids)))

    def _ask(self, future: pykka.Future[Any], what: str) -> Any:
        try:
            return future.get(timeout=self._settings.ask_timeout)
        except pykka.Timeout as exc:
            raise ActorError(
                f"the {what} actor did not answer within {self._settings.ask_timeout:.0f}s"
            ) from exc
        except pykka.ActorDeadError as exc:
            raise ActorError(f"the {what} actor is not running") from exc

    def _send(self, frames: Sequence[bytes]) -> None:
        assert self._outbox is not None
        self._outbox.send(frames)
        self._last_sent_at = self._now

    def _end(
        self,
        state: pb.ConnectionState,
        message: str,
        *,
        send_error: bool = True,
        mark_peer: bool = True,
    ) -> None:
        if send_error and self._outbox is not None:
            self._outbox.send([protocol.error_frame(state, message)])
        self._finish(state, message, mark_peer=mark_peer)
        self.stop()

    def _say_goodbye(self, state: pb.ConnectionState, message: str) -> None:
        """End from on_stop / on_failure, where the actor is stopping anyway."""
        try:
            if self._outbox is not None:
                self._outbox.send([protocol.error_frame(state, message)])
        finally:
            self._finish(state, message, mark_peer=True)

    def _finish(self, state: pb.ConnectionState, message: str, *, mark_peer: bool) -> None:
        connected = self._phase is Phase.CONNECTED
        self._phase = Phase.ENDED
        hello = self._hello
        if not connected:
            # The names are only what the peer claimed: it never completed the handshake.
            who = (
                f"{printable(hello.instance_id)} ({hello.keyid})"
                if hello is not None
                else f"session {self._session_id}"
            )
            log.info("refused %s before connecting: %s", who, printable(message, 500))
        elif hello is not None:
            log.info("peer %s (%s) session ended: %s", hello.instance_id, hello.keyid, message)
            if mark_peer:
                self._peers.disconnected.defer(
                    hello.keyid, state=state, message=message, session_id=self._session_id
                )
        if self._config_token is not None:
            self._config.unsubscribe.defer(self._config_token)
            self._config_token = None
        if self._outbox is not None:
            self._outbox.close()


def tell_call(ref: pykka.ActorRef[Any], method: str, *args: Any) -> None:
    """``ref.proxy().<method>.defer(*args)`` without a proxy.

    pykka builds a proxy by introspecting the whole actor, about a third of a
    millisecond: too much once or twice for every connection. ActorDeadError
    when the actor has stopped, as ``defer`` raises.
    """
    ref.tell(ProxyCall(attr_path=(method,), args=args, kwargs={}))


def printable(text: str, limit: int = 200) -> str:
    """Peer-supplied text made safe for a log line or a status: clipped, one line."""
    shown = "".join(ch if ch.isprintable() else "?" for ch in text[:limit])
    return shown + ("..." if len(text) > limit else "")


def _fresh(message: Any) -> Any:
    """A copy that nothing else holds, safe to put in another actor's mailbox."""
    copy = type(message)()
    copy.CopyFrom(message)
    return copy
