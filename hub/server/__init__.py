"""The hub process: its actors, the front that owns the ROUTER socket, the admin socket.

``Hub`` starts everything in dependency order and stops it in reverse. ``Front`` is
the thread that owns the ROUTER (socket I/O only); its ``SessionTable`` decides who
is connected and what to do with each frame; the ZAP policy (``zap_reply``) admits
CURVE connections; sessions answer through a ``PipeOutbox``. ``HubStatusSource``
builds the ``hub.status.HubStatus`` snapshot the admin socket serves.
"""

from hub.server._budget import Outbound, OutboundBudget
from hub.server._front import CURVE_MESSAGE_OVERHEAD, Front, SessionFactory
from hub.server._hub import READY_TIMEOUT, STOP_TIMEOUT, Hub, front_settings
from hub.server._memory import bound_malloc_arenas
from hub.server._pipe import PipeOutbox
from hub.server._settings import FrontSettings
from hub.server._status import HubStatusSource
from hub.server._table import SessionEntry, SessionTable, Sweep, Verdict
from hub.server._zap import ZAP_DOMAIN, ZAP_ENDPOINT, zap_reply

__all__ = [
    "CURVE_MESSAGE_OVERHEAD",
    "READY_TIMEOUT",
    "STOP_TIMEOUT",
    "ZAP_DOMAIN",
    "ZAP_ENDPOINT",
    "Front",
    "FrontSettings",
    "Hub",
    "HubStatusSource",
    "Outbound",
    "OutboundBudget",
    "PipeOutbox",
    "SessionEntry",
    "SessionFactory",
    "SessionTable",
    "Sweep",
    "Verdict",
    "bound_malloc_arenas",
    "front_settings",
    "zap_reply",
]
