"""DigestBuilds: a peer's first digest of a selection, read in bounded steps.

Owned by the OplogActor and used in its thread only. The first ``check_digest`` of a
selection the hub has no cached digest of would read every pair of it in one go (a
million operations: seconds), holding the OplogActor, and with it every other
session, for all that time, and outlasting the asking session's timeout. So the
OplogActor answers such a check in steps instead (docs/protocol.md §6.8 (Resumed
sync) says nothing of it: the client sees one answer, later):

1. the peer's cached digests are brought up to date (``peer_digest_refresh``), which
   also says whether this selection is cached; if it is, the check is answered now;
2. otherwise each call reads at most ``step_pairs`` pairs past the last one read,
   keeps the digests of the whole buckets among them, and returns None: the session
   asks again, and the OplogActor serves other requests in between;
3. the call that reaches the end hands the digests to the store, which caches them
   and re-reads the buckets written to meanwhile (``peer_digest``), and answers.

A build stays valid while no other digest of the same peer refreshed the store's
marks of written buckets (they are consumed by a refresh): each refresh or digest of
a peer counts, and a build that sees another count starts over. A session that ends
drops its peer's builds (``forget``), so builds exist only for connected peers.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field

from hub.pb import synchub_pb2 as pb
from hub.protocol import DigestCheck, hub_answer
from hub.store import BUCKET_BITS, BucketDigest, OplogStore, digest_pairs

_BEFORE_EVERY_ID = -(2**63)


@dataclass
class _Build:
    refreshes: int
    after: int = _BEFORE_EVERY_ID
    digests: dict[int, BucketDigest] = field(default_factory=dict)


def _place(selector: pb.OpSelector) -> tuple[str, str | None]:
    return selector.repo_guid, selector.plan_id if selector.HasField("plan_id") else None


class DigestBuilds:
    """The builds in progress, by peer key id and selection (see the module docstring)."""

    def __init__(self, step_pairs: int) -> None:
        # A step ends on a bucket boundary, so it must hold more than one bucket's ids.
        self._step = max(step_pairs, 2 << BUCKET_BITS)
        self._builds: dict[tuple[str, tuple[str, str | None]], _Build] = {}
        self._refreshes: Counter[str] = Counter()

    def answer(
        self, store: OplogStore, keyid: str, check: DigestCheck
    ) -> pb.SyncStreamItem.CheckDigest | None:
        """The answer to ``check``, or None when a step of the build was done instead."""
        where = (keyid, _place(check.selector))
        build = self._builds.get(where)
        if build is not None and build.refreshes != self._refreshes[keyid]:
            del self._builds[where]
            build = None
        if build is None:
            self._refreshes[keyid] += 1
            if store.peer_digest_refresh(keyid, check.selector):
                return self._answer(store, keyid, check, None)
            build = self._builds[where] = _Build(self._refreshes[keyid])
        ids, modnos = store.peer_pairs_page(keyid, check.selector, build.after, self._step)
        if len(ids) < self._step:
            build.digests.update(digest_pairs(zip(ids, modnos, strict=True)))
            del self._builds[where]
            return self._answer(store, keyid, check, build.digests)
        last_bucket = ids[-1] >> BUCKET_BITS
        whole = bisect_left(ids, last_bucket << BUCKET_BITS)
        build.digests.update(digest_pairs(zip(ids[:whole], modnos[:whole], strict=True)))
        build.after = (last_bucket << BUCKET_BITS) - 1
        return None

    def _answer(
        self, store: OplogStore, keyid: str, check: DigestCheck,
        built: dict[int, BucketDigest] | None,
    ) -> pb.SyncStreamItem.CheckDigest:
        self._refreshes[keyid] += 1
        digests = store.peer_digest(keyid, check.selector, built)

        def pairs(first_id: int, last_id: int) -> tuple[list[int], list[int]]:
            return store.peer_pairs(keyid, check.selector, first_id, last_id)

        return hub_answer(check, digests, pairs)

    def building(self) -> int:
        """How many builds are in progress."""
        return len(self._builds)

    def forget(self, keyid: str) -> None:
        """Drop ``keyid``'s builds (its session ended)."""
        for where in [w for w in self._builds if w[0] == keyid]:
            del self._builds[where]
