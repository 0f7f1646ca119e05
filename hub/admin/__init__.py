"""The admin socket: local requests to a running hub, and the client the CLI uses.

The hub serves ``ipc://<data_dir>/admin.sock`` (``AdminServer``, one thread);
``AdminService`` answers each request by asking the hub's actors (through their
typed proxies) and, for ``status``, the status source the hub hands it (a
``hub.status.StatusSource``: this package never imports ``hub.server``); ``ask_hub``
is the client. The request and answer format is described in ``_service``.

``AdminService`` and ``status_answer`` are loaded when first used: they need the
actors, which a command that only asks a running hub has no use for.
"""

from typing import TYPE_CHECKING

from hub.admin._client import ask_hub, ask_running_hub
from hub.admin._limits import ACTOR_TIMEOUT, LOG_WAIT, MAX_OPS_LIMIT, OPS
from hub.admin._pages import ANSWER_MAX_BYTES, OpsPage, iter_pages, query_for, read_page
from hub.admin._paths import (
    ADMIN_SOCKET_NAME,
    MAX_SOCKET_PATH_BYTES,
    admin_endpoint,
    admin_socket_path,
    check_no_hub_serving,
    claim_data_dir,
    hub_answers,
)
from hub.admin._pending import authorize_command, pending_row, pending_rows, waiting
from hub.admin._requests import (
    check_instance_id,
    check_keyid,
    client_summary,
    keyid_fingerprint,
    parse_permission_list,
    permissions_from_flags,
    short_keyid,
)
from hub.admin._server import MAX_REQUEST_BYTES, AdminServer, decode, encode

if TYPE_CHECKING:
    from hub.admin._service import AdminService, status_answer

_SERVICE_NAMES = frozenset({"AdminService", "status_answer"})

__all__ = [
    "ACTOR_TIMEOUT",
    "ADMIN_SOCKET_NAME",
    "ANSWER_MAX_BYTES",
    "LOG_WAIT",
    "MAX_OPS_LIMIT",
    "MAX_REQUEST_BYTES",
    "MAX_SOCKET_PATH_BYTES",
    "OPS",
    "AdminServer",
    "AdminService",
    "OpsPage",
    "admin_endpoint",
    "admin_socket_path",
    "ask_hub",
    "ask_running_hub",
    "authorize_command",
    "check_instance_id",
    "check_keyid",
    "check_no_hub_serving",
    "claim_data_dir",
    "client_summary",
    "decode",
    "encode",
    "hub_answers",
    "iter_pages",
    "keyid_fingerprint",
    "parse_permission_list",
    "pending_row",
    "pending_rows",
    "permissions_from_flags",
    "query_for",
    "read_page",
    "short_keyid",
    "status_answer",
    "waiting",
]


def __getattr__(name: str) -> object:
    if name in _SERVICE_NAMES:
        from hub.admin import _service  # noqa: PLC0415 - loaded on first use (above)

        return getattr(_service, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
