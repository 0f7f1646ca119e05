"""PeerSync: what a connected session asks of the oplog and tells the peer states.

One per connected session, made when its PROOF is accepted, used in the session's thread
only. Every request carries the session's id, so the OplogActor's write gate
(``actors._gate``) can refuse it once the key is revoked or a newer session holds it; the
peer-state reports carry it too, so a displaced session's late reports are ignored.

A diff is answered in bounded steps (``actors._oplog.DiffStep``): the peer's pairs are
put in ascending order here, in the session's thread, and each step is one ask, so the
OplogActor serves other sessions between two steps of a large diff (docs/protocol.md
§6.3 (The hub's answer to `diff_operations`)). So is the first check_digest of a
selection the hub has no cached digest of (``actors._digests``): asked again until the
OplogActor has read the whole selection.
"""

from __future__ import annotations

from dataclasses import replace
from itertools import pairwise
from typing import TypeVar

from google.protobuf.message import Message

from actors._calls import answer, tell
from actors._gate import EndNotice
from actors._oplog import DiffStep, OplogProxy, RemoteBatch
from actors._peer_state import PeerStateProxy
from hub.pb import synchub_pb2 as pb
from hub.protocol import DigestCheck, Hello, check_diff, sent_operations

M = TypeVar("M", bound=Message)


class PeerSync:
    def __init__(
        self,
        *,
        hello: Hello,
        session_id: str,
        oplog: OplogProxy,
        peers: PeerStateProxy,
        notice: EndNotice,
        ask_timeout: float,
    ) -> None:
        self._hello = hello
        self._session_id = session_id
        self._oplog = oplog
        self._peers = peers
        self._notice = notice
        self._timeout = ask_timeout

    def diff(self, diff: pb.SyncStreamItem.DiffOperations) -> list[int] | None:
        """The ids to request, ascending; None when the session was revoked or displaced
        between two steps (it ends at its next message)."""
        keyid = self._hello.keyid
        check_diff(diff, keyid)
        ids, modnos = _ascending_pairs(diff)
        step = DiffStep(
            fresh(diff.have_operations_selector), ids, modnos,
            self._session_id, self._hello.instance_id,
        )
        requested: list[int] = []
        while self._notice.reason() is None:
            result = answer(self._oplog.diff_step(keyid, step), self._timeout, "oplog")
            requested.extend(result.requested)
            if result.reached is None:
                return requested
            step = replace(step, start=result.next_start, after=result.reached)
        return None

    def check_digest(self, check: DigestCheck) -> pb.SyncStreamItem.CheckDigest | None:
        """The oplog's answer, asked again while it reads a first digest in steps; None
        when the session was revoked or displaced meanwhile (it ends at its next message)."""
        while self._notice.reason() is None:
            found = answer(self._oplog.check_digest(self._hello.keyid, check), self._timeout,
                           "oplog")
            if found is not None:
                return found
        return None

    def send_operations(self, sent_item: pb.SyncStreamItem.SendOperations) -> None:
        # The item was decoded for this call alone and is dropped after it: its
        # operations go to the oplog uncopied (the store copies what it keeps).
        sent = sent_operations(sent_item)
        if sent is None:
            return
        batch = RemoteBatch(
            operations=sent.operations,
            deleted_ids=sent.deleted_ids,
            peer_instance_id=self._hello.instance_id,
            session_id=self._session_id,
        )
        # Waiting here is the backpressure: the next frame is not taken until
        # the batch is durable.
        answer(self._oplog.apply_remote(self._hello.keyid, batch), self._timeout, "oplog")

    def send_config(self, config: pb.RemoteConfig) -> None:
        # Asked, so a flood of them waits here (counted), as batches do.
        answer(self._peers.set_remote_config(
            self._hello.keyid, fresh(config), session_id=self._session_id),
            self._timeout, "peer state")

    def list_resources(self, listed: pb.SyncStreamItem.ListResources) -> None:
        answer(self._peers.set_resources(
            self._hello.keyid, tuple(listed.repo_ids), tuple(listed.plan_ids),
            session_id=self._session_id), self._timeout, "peer state")


    def ended(self, state: pb.ConnectionState, message: str, *, mark_peer: bool) -> None:
        """The session ended: its claim goes and, unless a newer session owns the peer's
        state (``mark_peer`` False), the peer is marked with ``state``."""
        keyid = self._hello.keyid
        tell(self._oplog.release, keyid, self._session_id)
        if mark_peer:
            tell(self._peers.disconnected, keyid, state=state, message=message,
                 session_id=self._session_id)


def _ascending_pairs(
    diff: pb.SyncStreamItem.DiffOperations,
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The diff's ids ascending and unique, with their modnos (the last modno of a
    repeated id counts). Clients list them ascending already: then they are taken as
    they are, without the dict a sort needs (for a million ids, about 60 MB less in
    the session's thread while it waits for its steps)."""
    listed, modnos = diff.have_operation_ids, diff.have_operation_modnos
    if all(a < b for a, b in pairwise(listed)):
        return tuple(listed), tuple(modnos)
    theirs = dict(zip(listed, modnos, strict=True))
    ids = tuple(sorted(theirs))
    return ids, tuple(theirs[i] for i in ids)


def fresh(message: M) -> M:
    """A copy that nothing else holds, safe to put in another actor's mailbox."""
    copy = type(message)()
    copy.CopyFrom(message)
    return copy
