"""Shared fixtures: every test must leave no actor and no extra thread behind.

Property tests run under the ``ci`` Hypothesis profile by default (pyproject.toml
passes ``--hypothesis-profile=ci`` and a fixed ``--hypothesis-seed``): the same
examples every run, failures kept in the example database (.hypothesis/) and
replayed first. For a longer random search locally::

    python -m pytest tests/unit/test_fuzz_protocol.py \
        --hypothesis-profile=random --hypothesis-seed=$RANDOM
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pykka
import pytest
from hypothesis import settings

# No per-example deadline in CI: the same examples pass or fail whatever the machine's
# load (a 200 ms deadline failed an example that takes 0.4 ms when two suites share
# two cores); a slow example still shows in the test's own time and pytest-timeout.
settings.register_profile("ci", max_examples=300, print_blob=True, deadline=None)
settings.register_profile("random", max_examples=3000, print_blob=True)

_LEAK_GRACE_SECONDS = 5.0


def _live_threads(baseline: set[int | None]) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.ident not in baseline and t.is_alive()]


@pytest.fixture(autouse=True)
def no_leaked_actors_or_threads() -> Iterator[None]:
    """Fail the test if it leaves a running actor or a new thread behind.

    Actors still registered are stopped (so one leak does not cascade into the
    next test) and the test fails naming them. Threads get a short grace period
    to finish exiting, polled with a deadline rather than a fixed sleep.
    """
    baseline: set[int | None] = {t.ident for t in threading.enumerate()}
    yield
    leaked_actors = [ref.actor_class.__name__ for ref in pykka.ActorRegistry.get_all()]
    pykka.ActorRegistry.stop_all(block=True, timeout=_LEAK_GRACE_SECONDS)
    deadline = time.monotonic() + _LEAK_GRACE_SECONDS
    leaked_threads = _live_threads(baseline)
    while leaked_threads and time.monotonic() < deadline:
        leaked_threads[0].join(timeout=deadline - time.monotonic())
        leaked_threads = _live_threads(baseline)
    problems = []
    if leaked_actors:
        problems.append(f"actors left running: {sorted(leaked_actors)}")
    if leaked_threads:
        problems.append(f"threads left running: {sorted(t.name for t in leaked_threads)}")
    if problems:
        pytest.fail("; ".join(problems))
