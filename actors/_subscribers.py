"""The subscriber list the state-owning actors share.

Listeners run in the publishing actor's thread and must not block; the usual
listener is a proxy method (or its ``defer``) of another actor, which only
enqueues a message. A listener that raises is logged and kept; one whose actor
has stopped is dropped. Used from one actor thread only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Generic, TypeVar

import pykka

log = logging.getLogger(__name__)

T = TypeVar("T")


class Subscribers(Generic[T]):
    def __init__(self, what: str) -> None:
        self._what = what
        self._listeners: dict[int, Callable[[T], object]] = {}
        self._last_token = 0

    def __len__(self) -> int:
        return len(self._listeners)

    def add(self, listener: Callable[[T], object]) -> int:
        self._last_token += 1
        self._listeners[self._last_token] = listener
        return self._last_token

    def remove(self, token: int) -> bool:
        """False when the token was not (or no longer) subscribed."""
        return self._listeners.pop(token, None) is not None

    def publish(self, make_value: Callable[[], T]) -> None:
        """Call every listener with ``make_value()`` (called once per listener)."""
        for token, listener in list(self._listeners.items()):
            try:
                reply = listener(make_value())
                if isinstance(reply, pykka.Future):
                    # Never wait for a listener; this only notices one already dead.
                    reply.get(timeout=0)
            except pykka.Timeout:
                pass
            except pykka.ActorDeadError:
                log.info("%s listener %d belongs to a stopped actor; dropping it",
                         self._what, token)
                self._listeners.pop(token, None)
            except Exception:
                log.exception("%s listener %d failed", self._what, token)
