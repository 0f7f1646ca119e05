"""Selecting oplog rows in PostgreSQL: the WHERE clause for an OpSelector.

The PostgreSQL counterpart of ``_sqlite_select``: id lists travel as one array
parameter (``= ANY (%s)``), so each statement is prepared once whatever the
number of ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from hub.pb import synchub_pb2 as pb

_EQUALITY_FIELDS: Final = (
    "original_instance_keyid", "repo_guid", "plan_id", "instance_id", "snapshot_id",
)


@dataclass(frozen=True, slots=True)
class Where:
    """A WHERE clause and its positional parameters (``%s`` placeholders)."""

    sql: str
    params: tuple[object, ...]


def selection(selector: pb.OpSelector, *, peer_ids: bool = False) -> Where:
    """WHERE clause for ``selector``.

    With ``peer_ids`` the selector's ids and flow id are the peer's own (as in a
    diff_operations selector) and match ``original_id`` / ``original_flow_id``.
    """
    clauses: list[str] = []
    params: list[object] = []
    if selector.ids:
        clauses.append(("original_id" if peer_ids else "id") + " = ANY (%s::bigint[])")
        params.append(list(selector.ids))
    if selector.HasField("flow_id"):
        clauses.append(("original_flow_id" if peer_ids else "flow_id") + " = %s::bigint")
        params.append(selector.flow_id)
    for field in _EQUALITY_FIELDS:
        if selector.HasField(field):
            clauses.append(f"{field} = %s::text")
            params.append(getattr(selector, field))
    # A diff's selector is in the peer's terms: who delivered it is not the peer's to choose.
    if selector.HasField("peer_instance_id") and not peer_ids:
        clauses.append("peer_instance_id = %s::text")
        params.append(selector.peer_instance_id)
    return Where(" AND ".join(clauses) if clauses else "true", tuple(params))
