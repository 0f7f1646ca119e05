"""The one place a running hub's ``HubStatus`` is assembled.

``HubStatusSource.snapshot`` asks the config, oplog and peer-state actors (each ask
with a timeout) and reads the front's counters; the admin socket's ``status`` op
answers from it, and any other reader (a web page) can be handed the same callable.
It holds no state of its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from actors import ConfigProxy, OplogProxy, PeerStateProxy
from hub.pb import synchub_pb2 as pb
from hub.status import FrontCounters, HubInfo, HubStatus


class HubStatusSource:
    """Builds a fresh ``HubStatus`` on each ``snapshot()``; pykka.Timeout when an actor is
    slower than ``timeout``, ActorDeadError when the hub is stopping."""

    def __init__(
        self,
        *,
        info: HubInfo,
        config: ConfigProxy,
        oplog: OplogProxy,
        peers: PeerStateProxy,
        front: Callable[[], FrontCounters],
        timeout: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._info = info
        self._config = config
        self._oplog = oplog
        self._peers = peers
        self._front = front
        self._timeout = timeout
        self._clock = clock

    def snapshot(self) -> HubStatus:
        # All three asks go out at once; each actor answers on its own.
        config_answer = self._config.get()
        states_answer = self._peers.list()
        operations_answer = self._oplog.count()
        config = config_answer.get(timeout=self._timeout)
        states = states_answer.get(timeout=self._timeout)
        operations = operations_answer.get(timeout=self._timeout)
        connected = sum(1 for s in states if s.state == pb.CONNECTION_STATE_CONNECTED)
        return HubStatus(
            info=self._info,
            uptime_seconds=max(0, int(self._clock() - self._info.started_ms / 1000)),
            operations=operations,
            peers_known=len(states),
            peers_connected=connected,
            authorized_clients=len(config.authorized_clients),
            front=self._front(),
        )
