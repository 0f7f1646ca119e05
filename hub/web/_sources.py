"""Where the web side reads a running hub from: the typed actor proxies, the status
snapshot, and a pool of read-only oplog readers.

Every ask has a timeout (``ask_timeout``, short: a page that cannot be built in time
is a 503, never a worker stuck for long); asks a page needs go out together, so it
waits for the slowest actor once, not for each in turn. The readers are lent one per
request (``with sources.reader() as reader``), each to one thread at a time.
"""

from __future__ import annotations

import contextlib
import queue
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

import pykka

from actors import AlertProxy, ConfigProxy, FleetProxy, OplogProxy, PeerStateProxy
from hub.errors import ActorError
from hub.status import HubStatus, StatusSource
from hub.store import OplogReader

T = TypeVar("T")

ASK_TIMEOUT = 2.0


class ReaderPool:
    """Read-only oplog readers, opened as needed and kept for the next request."""

    def __init__(self, factory: Callable[[], OplogReader]) -> None:
        self._factory = factory
        self._idle: queue.SimpleQueue[OplogReader] = queue.SimpleQueue()
        self._closed = False

    @contextlib.contextmanager
    def reader(self) -> Iterator[OplogReader]:
        try:
            reader = self._idle.get_nowait()
        except queue.Empty:
            reader = self._factory()
        try:
            yield reader
        finally:
            if self._closed:
                reader.close()
            else:
                self._idle.put(reader)

    def close(self) -> None:
        """Close every idle reader; one still lent is closed when it comes back."""
        self._closed = True
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


@dataclass(frozen=True)
class Actors:
    """The running hub's actors, as their typed proxies."""

    config: ConfigProxy
    oplog: OplogProxy
    peers: PeerStateProxy
    fleet: FleetProxy
    alerts: AlertProxy | None = None


@dataclass
class WebSources:
    actors: Actors
    status: StatusSource
    readers: ReaderPool
    ask_timeout: float = ASK_TIMEOUT
    front_alive: Callable[[], bool] = field(default=lambda: True)
    store_problem: Callable[[], str | None] = field(default=lambda: None)
    """Why the hub cannot reach its database now (PostgreSQL), or None."""

    def answer(self, future: pykka.Future[T], what: str, timeout: float | None = None) -> T:
        """An actor's answer; ActorError naming the actor when it is late or gone."""
        limit = self.ask_timeout if timeout is None else timeout
        try:
            return future.get(timeout=limit)
        except pykka.Timeout as exc:
            raise ActorError(f"the {what} actor did not answer within {limit:g}s") from exc
        except pykka.ActorDeadError as exc:
            raise ActorError(f"the {what} actor is not running") from exc

    def hub_status(self) -> HubStatus:
        try:
            return self.status()
        except pykka.Timeout as exc:
            raise ActorError("the hub's actors did not answer in time") from exc
        except pykka.ActorDeadError as exc:
            raise ActorError("the hub is stopping") from exc

    @contextlib.contextmanager
    def reader(self) -> Iterator[OplogReader]:
        with self.readers.reader() as reader:
            yield reader
