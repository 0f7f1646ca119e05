"""Resumed sync's digest comparison, both sides, without I/O: docs/protocol.md §6.8
(Resumed sync).

The hub answers a ``check_digest`` from its bucket digests (``hub_answer``); the
client turns that answer into repairs and narrower checks (``client_followup``).
Both read a side's digests as ``{bucket: BucketDigest}`` and its pairs of one id
range through a callable, so the stores stay behind the actors and the agent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from hub.errors import ProtocolError
from hub.pb import synchub_pb2 as pb
from hub.protocol._codec import encode_item
from hub.store import (
    LAST_BUCKET,
    BucketDigest,
    Digests,
    SyncCursor,
    as_digests,
    bucket_ids,
    check_cursor,
    check_digest_selector,
)

RESYNC_VERSION = 1
"""The resync version of docs/protocol.md §6.8 (Resumed sync), in HELLO and CHALLENGE."""
MAX_RANGES = 64
"""Ranges one check_digest may carry."""
LIST_PAIRS = 1024
"""A differing range with at most this many of the hub's pairs is listed, not split."""
SPLIT_PARTS = 16

Pairs = Callable[[int, int], tuple[list[int], list[int]]]
"""(first id, last id) -> (ids, modnos) of one side's selection in that range."""


def sync_cursors_frame(cursors: Sequence[SyncCursor]) -> bytes:
    """The hub's sync_cursors item: every cursor it holds for the client."""
    return encode_item(pb.SyncStreamItem(sync_cursors=pb.SyncStreamItem.SyncCursors(
        cursors=[c.to_pb() for c in cursors]
    )))


def check_digest_frame(
    selector: pb.OpSelector, ranges: Sequence[pb.DigestRange], cursor: SyncCursor | None
) -> bytes:
    """A client's check_digest of ``ranges`` of one selection, with the cursor to record."""
    item = pb.SyncStreamItem.CheckDigest(selector=selector, ranges=list(ranges))
    if cursor is not None:
        item.cursor.CopyFrom(cursor.to_pb())
    return encode_item(pb.SyncStreamItem(check_digest=item))


Buckets = Mapping[int, BucketDigest] | Digests
"""A selection's bucket digests: a dict of them, or a store's cache read by range."""


def root_range(buckets: Buckets) -> pb.DigestRange:
    """The root range of a selection: every bucket an id can fall in."""
    return _range(as_digests(buckets), 0, LAST_BUCKET)


def _range(buckets: Digests, first: int, last: int) -> pb.DigestRange:
    total = buckets.range(first, last)
    return pb.DigestRange(first_bucket=first, last_bucket=last, count=total.count,
                          digest=total.digest)


def _parts(first: int, last: int) -> list[tuple[int, int]]:
    width = -(-(last - first + 1) // SPLIT_PARTS)
    return [(start, min(last, start + width - 1)) for start in range(first, last + 1, width)]


@dataclass(frozen=True, slots=True)
class DigestCheck:
    """A client's check_digest, checked: its selector, ranges and cursor."""

    selector: pb.OpSelector
    ranges: tuple[tuple[int, int, int, int], ...]
    cursor: SyncCursor | None

    @classmethod
    def of(cls, item: pb.SyncStreamItem.CheckDigest, keyid: str) -> DigestCheck:
        """ProtocolError for a check the protocol does not allow."""
        check_digest_selector(item.selector, keyid)
        if not 1 <= len(item.ranges) <= MAX_RANGES:
            raise ProtocolError(f"check_digest needs 1 to {MAX_RANGES} ranges, "
                                f"got {len(item.ranges)}")
        for r in item.ranges:
            if not 0 <= r.first_bucket <= r.last_bucket <= LAST_BUCKET or r.count < 0:
                raise ProtocolError(
                    f"check_digest range {r.first_bucket}..{r.last_bucket} is not one of "
                    f"0 <= first <= last <= {LAST_BUCKET}"
                )
        cursor = SyncCursor.from_pb(item.cursor) if item.HasField("cursor") else None
        if cursor is not None:
            check_cursor(cursor)
        selector = pb.OpSelector()
        selector.CopyFrom(item.selector)
        return cls(
            selector,
            tuple((r.first_bucket, r.last_bucket, r.count, r.digest) for r in item.ranges),
            cursor,
        )


def hub_answer(
    check: DigestCheck, buckets: Buckets, pairs: Pairs
) -> pb.SyncStreamItem.CheckDigest:
    """The hub's answer to one check: in sync, or its pairs and part digests where not.

    A differing range is listed when the hub holds few pairs in it; otherwise the
    part of it up to the hub's highest non-empty bucket is split (past that bucket
    the hub holds nothing).
    """
    answer = pb.SyncStreamItem.CheckDigest(in_sync=True)
    digests = as_digests(buckets)
    highest: int | None = None
    for first, last, count, digest in check.ranges:
        mine = digests.range(first, last)
        if mine == BucketDigest(count, digest):
            continue
        answer.in_sync = False
        if highest is None:
            highest = digests.highest()
        if mine.count <= LIST_PAIRS or first == last or highest < first:
            ids, modnos = pairs(bucket_ids(first)[0], bucket_ids(last)[1])
            answer.hub_ids.extend(ids)
            answer.hub_modnos.extend(modnos)
        else:
            parts = _parts(first, min(last, highest))
            answer.hub_ranges.extend(_range(digests, a, b) for a, b in parts)
    return answer


@dataclass(frozen=True, slots=True)
class Followup:
    """What a client does after a check_digest answer that was not in sync."""

    requested: tuple[int, ...]
    """Ids to answer as after a diff reply: sent if present, else deleted."""
    narrower: tuple[pb.DigestRange, ...]
    """Ranges to check again (the client's digests of the hub's parts that differ)."""


def client_followup(
    answer: pb.SyncStreamItem.CheckDigest,
    buckets: Buckets,
    pairs: Pairs,
    asked: Sequence[tuple[int, int]],
) -> Followup:
    """Compare a hub's answer with this client's side of the same selection.

    ``asked`` are the bucket ranges of the check it answers. A range the hub split
    is checked again part by part (the remainder past its parts holds none of the
    hub's pairs); in a range it listed, the ids whose modnos differ, that the hub
    lacks, or that only the hub holds are requested.
    """
    if len(answer.hub_ids) != len(answer.hub_modnos):
        raise ProtocolError("check_digest answer lists ids and modnos of different lengths")
    hub = dict(zip(answer.hub_ids, answer.hub_modnos, strict=True))
    digests = as_digests(buckets)
    requested: set[int] = set()
    narrower: list[pb.DigestRange] = []
    for first, last in asked:
        parts = [r for r in answer.hub_ranges
                 if first <= r.first_bucket <= r.last_bucket <= last]
        if parts:
            for r in parts:
                mine = _range(digests, r.first_bucket, r.last_bucket)
                if (mine.count, mine.digest) != (r.count, r.digest):
                    narrower.append(mine)
            listed = (max(r.last_bucket for r in parts) + 1, last)
            if listed[0] > listed[1]:
                continue
        else:
            listed = (first, last)
        low, high = bucket_ids(listed[0])[0], bucket_ids(listed[1])[1]
        ids, modnos = pairs(low, high)
        mine_pairs = dict(zip(ids, modnos, strict=True))
        theirs = {i: m for i, m in hub.items() if low <= i <= high} if parts == [] else {}
        requested.update(i for i, m in mine_pairs.items() if theirs.get(i) != m)
        requested.update(i for i in theirs if i not in mine_pairs)
    return Followup(tuple(sorted(requested)), tuple(narrower))
