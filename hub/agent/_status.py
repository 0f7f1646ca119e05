"""The agent's own view of its hubs, kept in ``data_dir/agent-status.json`` for readers.

A running agent rewrites the file (atomically: a temporary file renamed over it)
whenever a hub's connection changes state, a round of diffs ends, or a hub sends
its config; the last write, when it stops, marks every hub ``stopped``. Readers
(``synchub agent --status``, ``synchub status`` on a client) never talk to the
agent: they read the file, check whether its process still runs, and count the
operations not yet acknowledged from the local oplog themselves.

Per hub it holds the connection's state and the reason it is not connected, when
the hub last confirmed it holds everything (``last_sync_ms``), the local oplog's
change mark as of then (``acknowledged_mark``: every local change up to it is on
the hub), and the config the hub last sent (``hub_config``, as ``--json`` shows
protobuf messages).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hub.errors import ClientError

STATUS_FILENAME = "agent-status.json"
STATUS_VERSION = 1


def status_path(data_dir: Path) -> Path:
    return Path(data_dir) / STATUS_FILENAME


def write_status(data_dir: Path, record: dict[str, Any]) -> None:
    """Replace the status file with ``record`` (JSON) in one rename."""
    path = status_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=".agent-status.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({"version": STATUS_VERSION, **record}, out, indent=1, sort_keys=True)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class AgentStatusRecord:
    """What the status file says, and whether the agent that wrote it still runs."""

    pid: int
    started_ms: int
    updated_ms: int
    running: bool
    hosts: dict[str, dict[str, Any]]


def read_status(data_dir: Path) -> AgentStatusRecord | None:
    """The last status an agent on ``data_dir`` wrote; None when none ever ran."""
    path = status_path(data_dir)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ClientError(f"{path}: cannot read the agent's status: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("hosts"), dict):
        raise ClientError(f"{path}: not an agent status file; remove it and restart the agent")
    pid = int(raw.get("pid", 0))
    stopped = bool(raw.get("stopped", False))
    return AgentStatusRecord(
        pid=pid,
        started_ms=int(raw.get("started_ms", 0)),
        updated_ms=int(raw.get("updated_ms", 0)),
        running=not stopped and _alive(pid),
        hosts=dict(raw["hosts"]),
    )


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
