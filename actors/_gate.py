"""Who may change the oplog for which key, decided where batches are applied.

The OplogActor keeps a ``WriteGate`` and checks it for every batch and every diff step
a session sends, in the actor's own thread, right before the store runs. Two things
close the gate for a session, whatever that session still has queued:

- **The configuration.** The ConfigActor hands every new config to the OplogActor and
  waits for it to be taken (``ConfigActor.attach_gate``), before a revoke, an un-verify
  or a reload returns to whoever asked for it. From then on a key that is not
  authorized and verified (as the instance it authenticated as) is refused with
  ``AuthError``; a batch the OplogActor took before is already committed by then.
- **A newer session of the same key.** A session claims its key right after its PROOF
  is verified and authorized, and before the hub sends it anything. A claim moves the
  key to the newer session: every later request of the older one is refused with
  ``SessionDisplaced``, so nothing of the older session is applied once the newer one
  has authenticated.

Both also raise the session's ``EndNotice`` (a thread-safe flag the session reads before
every message), so the session ends at its next message rather than after everything
queued in its mailbox.

Used from the OplogActor's thread only; the notices are the one thing other threads read.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from hub.config import Config
from hub.errors import AuthError, SessionDisplaced
from hub.pb import synchub_pb2 as pb
from hub.protocol import Hello, authorize_client

DISPLACED_MESSAGE = "displaced by a newer connection"
REVOKED_MESSAGE = "revoked by the operator"


class EndNotice:
    """Set from another thread to end a session at its next message.

    The session reads it before each message it handles; ``set`` keeps the first reason.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._reason: tuple[pb.ConnectionState, str] | None = None

    def set(self, state: pb.ConnectionState, message: str) -> None:
        if self._event.is_set():
            return
        self._reason = (state, message)
        self._event.set()

    def reason(self) -> tuple[pb.ConnectionState, str] | None:
        """(state, message) to end with, or None while the session may go on."""
        return self._reason if self._event.is_set() else None


@dataclass(frozen=True, slots=True)
class Claim:
    """The session that speaks for a key, as it authenticated."""

    session_id: str
    instance_id: str
    notice: EndNotice | None


class WriteGate:
    """The authorized keys (from the last config taken) and each key's live session."""

    def __init__(self) -> None:
        self._config: Config | None = None
        self._claims: dict[str, Claim] = {}

    def admit(self, config: Config) -> None:
        """Take a new config; claims of keys it no longer admits are ended."""
        self._config = config
        for keyid, claim in list(self._claims.items()):
            problem = self._problem(keyid, claim.instance_id)
            if problem is not None:
                del self._claims[keyid]
                if claim.notice is not None:
                    claim.notice.set(pb.CONNECTION_STATE_ERROR_AUTH, problem)

    def claim(
        self, keyid: str, instance_id: str, session_id: str, notice: EndNotice | None
    ) -> None:
        """``session_id`` speaks for ``keyid`` from now on; the older session is ended."""
        self._refuse_unauthorized(keyid, instance_id)
        older = self._claims.get(keyid)
        self._claims[keyid] = Claim(session_id, instance_id, notice)
        if older is not None and older.session_id != session_id and older.notice is not None:
            older.notice.set(pb.CONNECTION_STATE_DISCONNECTED, DISPLACED_MESSAGE)

    def release(self, keyid: str, session_id: str) -> None:
        """A session ended; its claim (if it still holds one) goes."""
        claim = self._claims.get(keyid)
        if claim is not None and claim.session_id == session_id:
            del self._claims[keyid]

    def check(self, keyid: str, instance_id: str, session_id: str) -> None:
        """AuthError or SessionDisplaced unless ``session_id`` may change ``keyid``'s ops."""
        self._refuse_unauthorized(keyid, instance_id)
        claim = self._claims.get(keyid)
        if claim is None or claim.session_id != session_id:
            raise SessionDisplaced(DISPLACED_MESSAGE)

    def claims(self) -> int:
        return len(self._claims)

    def _refuse_unauthorized(self, keyid: str, instance_id: str) -> None:
        problem = self._problem(keyid, instance_id)
        if problem is not None:
            raise AuthError(problem, reason="revoked")

    def _problem(self, keyid: str, instance_id: str) -> str | None:
        """Why ``keyid`` (authenticated as ``instance_id``) may not write: the same
        words as the handshake's refusal, and a removed key "revoked by the operator"."""
        config = self._config
        if config is None or config.authorized_client(keyid) is None:
            return REVOKED_MESSAGE
        try:
            authorize_client(config, Hello(instance_id, keyid, b"", b""))
        except AuthError as exc:
            return str(exc)
        return None
