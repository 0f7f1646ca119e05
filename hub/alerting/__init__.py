"""Alerts: deciding when an incident fires or resolves, and delivering its events.

``AlertBook`` decides (no I/O, time passed in): from the fleet's ``RunChange`` s, peer
states, the config's ``[[alerts]]`` and ticks, it returns ``Transition`` s. The
AlertActor owns one, records its transitions in an ``AlertStateStore`` and hands their
events to a ``Dispatcher``, which delivers them (``send``: a webhook POST or a
command) off the actors' threads, retrying with backoff. ``alert_event`` is the
event JSON every delivery carries.
"""

from hub.alerting._book import (
    STARTUP_GRACE_SECONDS,
    ActiveAlert,
    AlertBook,
    Transition,
    active_alert_dict,
    stored_alert,
)
from hub.alerting._delivery import (
    DELIVERY_TIMEOUT,
    DeliveryJob,
    Dispatcher,
    Outcome,
    RetryPolicy,
    Target,
    describe_target,
    send,
    targets_of,
)
from hub.alerting._events import (
    EventKind,
    Subject,
    alert_event,
    encode_event,
    rfc3339,
    subject_of,
    test_event,
)
from hub.alerting._watch import describe_seconds

__all__ = [
    "DELIVERY_TIMEOUT",
    "STARTUP_GRACE_SECONDS",
    "ActiveAlert",
    "AlertBook",
    "DeliveryJob",
    "Dispatcher",
    "EventKind",
    "Outcome",
    "RetryPolicy",
    "Subject",
    "Target",
    "Transition",
    "active_alert_dict",
    "alert_event",
    "describe_seconds",
    "describe_target",
    "encode_event",
    "rfc3339",
    "send",
    "stored_alert",
    "subject_of",
    "targets_of",
    "test_event",
]
