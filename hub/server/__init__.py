"""The hub process: its actors, the front that owns the ROUTER socket, the admin socket.

``Hub`` starts everything in dependency order and stops it in reverse.
"""

from hub.server._front import (
    CURVE_MESSAGE_OVERHEAD,
    ZAP_DOMAIN,
    ZAP_ENDPOINT,
    Front,
    FrontSettings,
    PipeOutbox,
)
from hub.server._hub import READY_TIMEOUT, STOP_TIMEOUT, Hub, front_settings

__all__ = [
    "CURVE_MESSAGE_OVERHEAD",
    "READY_TIMEOUT",
    "STOP_TIMEOUT",
    "ZAP_DOMAIN",
    "ZAP_ENDPOINT",
    "Front",
    "FrontSettings",
    "Hub",
    "PipeOutbox",
    "front_settings",
]
