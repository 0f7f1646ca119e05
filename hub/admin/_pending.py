"""Who is knocking: the keys a hub refused after a valid PROOF, as the CLI and web show them.

The PeerStateActor keeps them (``actors.PendingKeys``: at most ``MAX_PENDING_KEYS``,
each forgotten ``PENDING_MAX_AGE`` seconds after it was last heard from, and at
once when it connects). ``pending_rows`` adds what an operator needs to act: the
fingerprint to compare with the client's ``synchub id``, and the exact
``synchub authorize`` line. A key the current config lets in (authorized, verified,
for the instance it claims) is left out, so a key leaves the list as soon as
``synchub authorize`` returns, before the client retries.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from hub.admin._requests import keyid_fingerprint
from hub.config import Config
from hub.scopes import ID_PATTERN

if TYPE_CHECKING:  # the actors (and the hub they pull in) are not needed to read rows
    from actors import PendingKey

INSTANCE_PLACEHOLDER = "NAME"


def authorize_command(keyid: str, instance_id: str) -> str:
    """The line that lets ``keyid`` in as ``instance_id`` (a placeholder for a claimed
    name that is no valid instance id: the operator must choose one)."""
    name = instance_id if ID_PATTERN.fullmatch(instance_id) else INSTANCE_PLACEHOLDER
    return f"synchub authorize {shlex.quote(keyid)} --instance {shlex.quote(name)}"


def waiting(config: Config, keys: Iterable[PendingKey]) -> list[PendingKey]:
    """``keys`` without those the current config lets in as they claim to be."""
    rows = []
    for key in keys:
        client = config.authorized_client(key.keyid)
        if client is not None and client.keyid_verified and (
                client.instance_id == key.instance_id):
            continue
        rows.append(key)
    return rows


def pending_row(key: PendingKey) -> dict[str, Any]:
    """One key as ``synchub pending --json`` and ``/api/pending`` show it."""
    return {
        "instance_id": key.instance_id,
        "keyid": key.keyid,
        "fingerprint": keyid_fingerprint(key.keyid),
        "source_address": key.source,
        "attempts": key.attempts,
        "first_seen_ms": int(key.first_seen * 1000),
        "last_seen_ms": int(key.last_seen * 1000),
        "reason": key.reason,
        "authorize_command": authorize_command(key.keyid, key.instance_id),
    }


def pending_rows(config: Config, keys: Iterable[PendingKey]) -> list[dict[str, Any]]:
    """The keys waiting to be authorized, most recently heard from first."""
    return [pending_row(key) for key in waiting(config, keys)]
