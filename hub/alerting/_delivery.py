"""Delivering alert events: a webhook POST or a command, with a timeout, retried with backoff.

``send`` makes one attempt and says whether it worked and whether another is worth it.
``Dispatcher`` runs deliveries away from the actors: one scheduling thread that owns
the retry schedule, and a few worker threads that each make one attempt at a time,
so a slow receiver delays only its own events. Work and results cross between them
through queues; the scheduling thread calls ``on_done(delivery_id, delivered)`` once
per delivery, after it was delivered or given up. Workers are daemon threads: one
still waiting on a receiver when the hub stops is left to its timeout, and its event,
still in the outbox, is delivered again at the next start (delivery is at least once).
"""

from __future__ import annotations

import heapq
import logging
import queue
import random
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Literal

from hub.config import AlertRule
from hub.threads import ThreadService

log = logging.getLogger(__name__)

Target = Literal["webhook", "command"]
DELIVERY_TIMEOUT: Final = 10.0
USER_AGENT: Final = "synchub-alerts/1"


def targets_of(rule: AlertRule) -> tuple[Target, ...]:
    found: list[Target] = []
    if rule.webhook:
        found.append("webhook")
    if rule.command:
        found.append("command")
    return tuple(found)


def describe_target(rule: AlertRule, target: str) -> str:
    """Where a delivery goes, fit for a log line: a webhook's scheme and host only (its
    path and query often hold a secret), a command's program."""
    if target == "webhook" and rule.webhook:
        parts = urllib.parse.urlsplit(rule.webhook)
        return f"webhook {parts.scheme}://{parts.netloc.rpartition('@')[2]}"
    if target == "command" and rule.command:
        return f"command {rule.command[0]}"
    return target


@dataclass(frozen=True, slots=True)
class Outcome:
    delivered: bool
    retry: bool
    detail: str


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_args: object, **_kwargs: object) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def send(
    rule: AlertRule, target: str, event_json: str, timeout: float = DELIVERY_TIMEOUT
) -> Outcome:
    """One attempt at delivering ``event_json`` to one of the rule's targets."""
    if target == "webhook" and rule.webhook:
        return _post(rule.webhook, event_json, timeout)
    if target == "command" and rule.command:
        return _run(rule.command, event_json, timeout)
    return Outcome(False, False, f"alert {rule.name} has no {target} any more")


def _post(url: str, event_json: str, timeout: float) -> Outcome:
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked at config load
        url, data=event_json.encode("utf-8"), method="POST",
        headers={"Content-Type": "application/json", "User-Agent": USER_AGENT},
    )
    try:
        with _OPENER.open(request, timeout=timeout) as answer:
            answer.read(4096)
            return Outcome(True, False, f"HTTP {answer.status}")
    except urllib.error.HTTPError as exc:
        # A client error other than these will not get better by retrying.
        retry = exc.code >= 500 or exc.code in (408, 425, 429)
        return Outcome(False, retry, f"HTTP {exc.code} {exc.reason}")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return Outcome(False, True, f"cannot reach it: {reason}")


def _run(command: tuple[str, ...], event_json: str, timeout: float) -> Outcome:
    try:
        finished = subprocess.run(
            list(command), input=event_json.encode("utf-8"), capture_output=True,
            timeout=timeout, check=False,
        )
    except subprocess.TimeoutExpired:
        return Outcome(False, True, f"did not finish within {timeout:g}s")
    except OSError as exc:
        return Outcome(False, True, f"cannot run it: {exc.strerror or exc}")
    if finished.returncode == 0:
        return Outcome(True, False, "exit 0")
    last_line = finished.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
    return Outcome(False, True, f"exit {finished.returncode} {last_line[0][:200]}".rstrip())


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Attempt n waits ``first * 2**(n-1)`` seconds (at most ``longest``, +-20% jitter)."""

    first: float = 1.0
    longest: float = 300.0
    attempts: int = 12

    def delay(self, attempt: int) -> float:
        base = min(self.longest, self.first * 2.0 ** (attempt - 1))
        return base * random.uniform(0.8, 1.2)


@dataclass(frozen=True, slots=True)
class DeliveryJob:
    """One stored delivery of an event to one target of a rule."""

    delivery_id: int
    rule: AlertRule
    target: str
    event: str


@dataclass(order=True)
class _Due:
    at: float
    attempt: int = field(compare=False)
    job: DeliveryJob = field(compare=False)


Sender = Callable[[AlertRule, str, str, float], Outcome]
DoneCallback = Callable[[int, bool], object]


class Dispatcher(ThreadService):
    """Delivers jobs in the background; ``submit`` never blocks."""

    def __init__(
        self,
        on_done: DoneCallback,
        *,
        workers: int = 4,
        timeout: float = DELIVERY_TIMEOUT,
        retry: RetryPolicy = RetryPolicy(),
        sender: Sender = send,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            thread_name="synchub-alerts", what="the alert dispatcher",
            failure_note="alerts are no longer delivered until the hub restarts",
        )
        self._on_done = on_done
        self._workers = workers
        self._timeout = timeout
        self._retry = retry
        self._sender = sender
        self._clock = clock
        self._inbox: queue.Queue[tuple[str, DeliveryJob, int, Outcome | None]] = queue.Queue()
        self._work: queue.Queue[tuple[DeliveryJob, int] | None] = queue.Queue()
        self._threads: list[threading.Thread] = []

    def submit(self, job: DeliveryJob) -> None:
        self._inbox.put(("job", job, 1, None))

    def _open(self) -> str:
        for number in range(self._workers):
            thread = threading.Thread(
                target=self._work_loop, name=f"synchub-alerts-{number}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        return "alerts"

    def _serve(self) -> None:
        schedule: list[_Due] = []
        while not self.stopping.is_set():
            wait = 0.2 if not schedule else max(0.0, min(0.2, schedule[0].at - self._clock()))
            try:
                kind, job, attempt, outcome = self._inbox.get(timeout=wait)
            except queue.Empty:
                pass
            else:
                if kind == "job":
                    self._work.put((job, attempt))
                elif outcome is not None:
                    self._settle(schedule, job, attempt, outcome)
            while schedule and schedule[0].at <= self._clock():
                due = heapq.heappop(schedule)
                self._work.put((due.job, due.attempt))

    def _settle(
        self, schedule: list[_Due], job: DeliveryJob, attempt: int, outcome: Outcome
    ) -> None:
        where = describe_target(job.rule, job.target)
        if outcome.delivered:
            log.info("alert %s: delivered to %s (%s)", job.rule.name, where, outcome.detail)
            self._done(job.delivery_id, True)
        elif outcome.retry and attempt < self._retry.attempts:
            delay = self._retry.delay(attempt)
            log.warning(
                "alert %s: delivery to %s failed (%s); attempt %d of %d in %.1fs",
                job.rule.name, where, outcome.detail, attempt + 1, self._retry.attempts, delay,
            )
            heapq.heappush(schedule, _Due(self._clock() + delay, attempt + 1, job))
        else:
            log.error(
                "alert %s: giving up delivering to %s after %d attempt(s): %s",
                job.rule.name, where, attempt, outcome.detail,
            )
            self._done(job.delivery_id, False)

    def _done(self, delivery_id: int, delivered: bool) -> None:
        try:
            self._on_done(delivery_id, delivered)
        except Exception:
            log.exception("alert dispatcher: reporting delivery %d failed", delivery_id)

    def _work_loop(self) -> None:
        while (item := self._work.get()) is not None:
            job, attempt = item
            try:
                outcome = self._sender(job.rule, job.target, job.event, self._timeout)
            except Exception as exc:
                log.exception("alert %s: delivery crashed", job.rule.name)
                outcome = Outcome(False, True, f"internal error: {exc}")
            self._inbox.put(("result", job, attempt, outcome))

    def _close(self) -> None:
        for _ in self._threads:
            self._work.put(None)
        deadline = self._clock() + 1.0
        for thread in self._threads:
            thread.join(max(0.0, deadline - self._clock()))
        busy = sum(1 for thread in self._threads if thread.is_alive())
        if busy:
            log.warning(
                "alert dispatcher: %d delivery(ies) still waiting on a receiver; they are "
                "delivered again at the next start", busy,
            )
