"""Resumed sync in the stores: change cursors and selection digests (no I/O here).

docs/protocol.md §6.8 (Resumed sync) defines the digest both sides compute: the
ids of a selection are cut into buckets of ``BUCKET_IDS`` ids (bucket
``id >> BUCKET_BITS``); each (id, modno) pair has a 64-bit leaf hash, the first 8
bytes (big-endian) of SHA-256(u64be(id) || u64be(modno)); a range of buckets is
summarised by how many pairs it holds and the sum of their leaf hashes modulo
2**64. Sums compose, so a store keeps one row a non-empty bucket and adds them up
for any range.

The stores cache the bucket digests in their own database, beside the data they
summarise, so a restored copy restores its caches with it:

- a node's own selections (the client side) are brought up to date from the local
  change feed: the buckets of every id changed or deleted past the cache's mark
  are read again;
- a peer's selections (the hub side) are brought up to date from the store's dirty
  buckets: every write to a peer's operations marks the buckets of the ids it
  touched, in the same transaction, and the next digest reads those again.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from hub.errors import ProtocolError
from hub.pb import synchub_pb2 as pb

BUCKET_BITS = 6
BUCKET_IDS = 1 << BUCKET_BITS
LAST_BUCKET = (2**63 - 1) >> BUCKET_BITS
"""The bucket of the highest id an int64 holds."""
EPOCH_BYTES = 16
MAX_SELECTION_BYTES = 1024
_MASK = (1 << 64) - 1


@dataclass(frozen=True, slots=True)
class SyncCursor:
    """How far a hub applied one selection of a client's changes.

    ``selection`` is the client's name for the selection, ``epoch`` its store's
    epoch, ``sequence`` the highest change sequence (modno) applied.
    """

    selection: str
    epoch: bytes
    sequence: int

    def to_pb(self) -> pb.SyncCursor:
        return pb.SyncCursor(selection=self.selection, epoch=self.epoch, sequence=self.sequence)

    @classmethod
    def from_pb(cls, message: pb.SyncCursor) -> SyncCursor:
        return cls(message.selection, bytes(message.epoch), message.sequence)


@dataclass(frozen=True, slots=True)
class BucketDigest:
    """The pairs of one bucket (or range of buckets): how many, and their digest."""

    count: int = 0
    digest: int = 0

    def __add__(self, other: BucketDigest) -> BucketDigest:
        return BucketDigest(self.count + other.count, (self.digest + other.digest) & _MASK)


EMPTY = BucketDigest()


_PAIR = struct.Struct(">QQ").pack
_SHA256 = hashlib.sha256
_FROM_BYTES = int.from_bytes


def leaf_hash(op_id: int, modno: int) -> int:
    """The 64-bit hash of one (id, modno) pair."""
    return _FROM_BYTES(_SHA256(_PAIR(op_id & _MASK, modno & _MASK)).digest()[:8], "big")


def bucket_of(op_id: int) -> int:
    return op_id >> BUCKET_BITS


def bucket_ids(bucket: int) -> tuple[int, int]:
    """The first and last id of ``bucket``."""
    return bucket << BUCKET_BITS, (bucket << BUCKET_BITS) + BUCKET_IDS - 1


def digest_pairs(pairs: Iterable[tuple[int, int]]) -> dict[int, BucketDigest]:
    """The bucket digests of (id, modno) pairs."""
    counts: dict[int, int] = {}
    sums: dict[int, int] = {}
    sha, pack, from_bytes, mask = _SHA256, _PAIR, _FROM_BYTES, _MASK
    for op_id, modno in pairs:
        bucket = op_id >> BUCKET_BITS
        counts[bucket] = counts.get(bucket, 0) + 1
        leaf = from_bytes(sha(pack(op_id & mask, modno & mask)).digest()[:8], "big")
        sums[bucket] = sums.get(bucket, 0) + leaf
    return {b: BucketDigest(counts[b], sums[b] & _MASK) for b in counts}


def range_digest(
    buckets: Mapping[int, BucketDigest], first: int, last: int
) -> BucketDigest:
    """The digest of the buckets ``first`` to ``last`` (inclusive)."""
    if last - first + 1 <= len(buckets):
        found = [b for b in map(buckets.get, range(first, last + 1)) if b is not None]
    else:
        found = [d for b, d in buckets.items() if first <= b <= last]
    return BucketDigest(sum(d.count for d in found), sum(d.digest for d in found) & _MASK)


@runtime_checkable
class Digests(Protocol):
    """A selection's bucket digests, asked for by range: a store reads its cache with
    one query a range instead of loading every bucket (``BucketMap`` wraps a dict)."""

    def range(self, first: int, last: int) -> BucketDigest:
        """The digest of the buckets ``first`` to ``last`` (inclusive)."""
        ...

    def highest(self) -> int:
        """The highest non-empty bucket; -1 when there is none."""
        ...


@dataclass(frozen=True, slots=True)
class BucketMap:
    """``Digests`` over a dict of bucket digests."""

    buckets: Mapping[int, BucketDigest]

    def range(self, first: int, last: int) -> BucketDigest:
        return range_digest(self.buckets, first, last)

    def highest(self) -> int:
        return max(self.buckets, default=-1)


def as_digests(buckets: Mapping[int, BucketDigest] | Digests) -> Digests:
    return buckets if isinstance(buckets, Digests) else BucketMap(buckets)


def split_sums(count: int | None, high: int | None, low: int | None) -> BucketDigest:
    """A range's digest from SQL sums of its rows' counts and of the high (arithmetic
    shift) and low 32 bits of their stored (signed) digests: no sum leaves int64."""
    return BucketDigest(int(count or 0), ((int(high or 0) << 32) + int(low or 0)) & _MASK)


RANGE_SUMS_SQL = (
    "sum(count), sum(digest >> 32), sum(digest & 4294967295)"
)
"""The columns ``split_sums`` takes, over rows of ``sync_digests``."""


def signed(value: int) -> int:
    """A uint64 as SQL's int64 (two's complement), for storing a digest."""
    return value - (1 << 64) if value >= 1 << 63 else value


def unsigned(value: int) -> int:
    return value & _MASK


def peer_selection_key(selector: pb.OpSelector) -> str:
    """The key a hub caches a peer's selection under: its repo and, if set, plan."""
    return json.dumps(
        [selector.repo_guid, selector.plan_id if selector.HasField("plan_id") else None]
    )


def check_digest_selector(selector: pb.OpSelector, keyid: str) -> None:
    """A check_digest selects the peer's own operations by repo_guid and at most a plan.

    ProtocolError for anything else (docs/protocol.md §6.8 (Resumed sync)).
    """
    if selector.original_instance_keyid != keyid:
        raise ProtocolError(
            "check_digest selector must name the session's own key id "
            f"{keyid!r}, not {selector.original_instance_keyid!r}"
        )
    extra = [
        field.name for field, _ in selector.ListFields()
        if field.name not in ("original_instance_keyid", "repo_guid", "plan_id")
    ]
    if extra or not selector.HasField("repo_guid"):
        raise ProtocolError(
            "check_digest selector must set repo_guid (and at most plan_id), "
            f"not {', '.join(extra) or 'nothing'}"
        )


def check_cursor(cursor: SyncCursor) -> None:
    """ProtocolError for a cursor no store records."""
    if len(cursor.selection.encode("utf-8")) > MAX_SELECTION_BYTES:
        raise ProtocolError(f"cursor selection is over {MAX_SELECTION_BYTES} bytes")
    if not 1 <= len(cursor.epoch) <= 64 or cursor.sequence < 0:
        raise ProtocolError("cursor needs an epoch of 1-64 bytes and a sequence >= 0")
