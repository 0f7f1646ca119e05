"""Selecting oplog rows in SQLite: the WHERE clause for an OpSelector, and id lists
as JSON array parameters.

Lists travel as one JSON array parameter (``json_each``) so each statement is
prepared once whatever the number of ids.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Final

from hub.pb import synchub_pb2 as pb

# Large enough that a normal batch (256 operations) is one lookup; bounds the size
# of a single JSON parameter for unusually large batches.
LOOKUP_CHUNK: Final = 4096

_EQUALITY_FIELDS: Final = (
    "original_instance_keyid", "repo_guid", "plan_id", "instance_id", "snapshot_id",
)
_PEER_FIELD: Final = "peer_instance_id"


@dataclass(frozen=True, slots=True)
class Where:
    """A WHERE clause and its positional parameters."""

    sql: str
    params: tuple[object, ...]


def selection(selector: pb.OpSelector, *, peer_ids: bool = False) -> Where:
    """WHERE clause for ``selector``.

    With ``peer_ids`` the selector's ids and flow id are the peer's own (as in a
    diff_operations selector) and match ``original_id`` / ``original_flow_id``.
    """
    clauses: list[str] = []
    params: list[object] = []
    # Listed local ids are primary-key lookups; "+" keeps SQLite from preferring an
    # index on another term (all local rows share original_instance_keyid "", so
    # that index would scan every one of them for each lookup).
    by_rowid = bool(selector.ids) and not peer_ids
    if selector.ids:
        clauses.append(
            "original_id IN (SELECT value FROM json_each(?))"
            if peer_ids
            else "id IN (SELECT value FROM json_each(?))"
        )
        params.append(json.dumps(list(selector.ids)))
    if selector.HasField("flow_id"):
        clauses.append("original_flow_id = ?" if peer_ids else "+flow_id = ?" if by_rowid
                       else "flow_id = ?")
        params.append(selector.flow_id)
    for field in _EQUALITY_FIELDS:
        if selector.HasField(field):
            clauses.append(f"+{field} = ?" if by_rowid else f"{field} = ?")
            params.append(getattr(selector, field))
    # A diff's selector is in the peer's terms and names its own key id already:
    # who delivered the operations is not the peer's to choose.
    if selector.HasField(_PEER_FIELD) and not peer_ids:
        clauses.append(f"+{_PEER_FIELD} = ?" if by_rowid else f"{_PEER_FIELD} = ?")
        params.append(selector.peer_instance_id)
    return Where(" AND ".join(clauses) if clauses else "1", tuple(params))


def json_chunks(values: Sequence[int]) -> Iterator[str]:
    """``values`` as JSON arrays of at most LOOKUP_CHUNK ids, one statement parameter each."""
    for start in range(0, len(values), LOOKUP_CHUNK):
        yield json.dumps(list(values[start : start + LOOKUP_CHUNK]))
