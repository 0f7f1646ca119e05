"""Fire-and-forget calls on typed actor proxies, with their arguments checked.

A typed proxy (``ConfigProxy``, ``OplogProxy``, ``PeerStateProxy``) shows each actor
method to mypy as a callable returning a future, which has no ``defer``. ``tell``
is ``method.defer(*args)`` typed with the method's own parameters.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, ParamSpec, Protocol, TypeVar, cast

import pykka

from hub.errors import ActorError

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


class _Deferrable(Protocol):
    def defer(self, *args: Any, **kwargs: Any) -> None: ...


def tell(method: Callable[P, pykka.Future[R]], *args: P.args, **kwargs: P.kwargs) -> None:
    """Queue a call of a proxy method without waiting for (or getting) its result.

    ActorDeadError when the actor has stopped. A failure inside the call is the
    actor's to handle: the actors' fire-and-forget handlers log and survive.
    """
    cast(_Deferrable, method).defer(*args, **kwargs)


def answer(future: pykka.Future[R], timeout: float, what: str) -> R:
    """An actor's answer; ActorError when it does not come in time or the actor is gone."""
    try:
        return future.get(timeout=timeout)
    except pykka.Timeout as exc:
        raise ActorError(f"the {what} actor did not answer within {timeout:.0f}s") from exc
    except pykka.ActorDeadError as exc:
        raise ActorError(f"the {what} actor is not running") from exc


def survives(what: str) -> Callable[[Callable[P, None]], Callable[P, None]]:
    """Log any error from a fire-and-forget handler instead of letting it stop the actor."""

    def decorate(handler: Callable[P, None]) -> Callable[P, None]:
        @functools.wraps(handler)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
            try:
                handler(*args, **kwargs)
            except Exception:
                log.exception("%s: %s failed", what, handler.__name__)

        return wrapper

    return decorate
