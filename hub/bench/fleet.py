"""Several swarms in worker processes, started together and collected together."""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from hub.bench.swarm import SwarmReport, SwarmSpec
from hub.errors import BenchError

WORKER_COMMAND = (sys.executable, "-m", "hub.bench.worker")


def split(count: int, parts: int) -> list[tuple[int, int]]:
    """(first, count) slices of ``count`` clients over at most ``parts`` workers."""
    parts = max(1, min(parts, count))
    base, extra = divmod(count, parts)
    slices = []
    first = 0
    for n in range(parts):
        size = base + (1 if n < extra else 0)
        slices.append((first, size))
        first += size
    return slices


class Fleet:
    """Worker processes, each running one swarm; use as a context manager."""

    def __init__(self, specs: Sequence[SwarmSpec], log_dir: Path) -> None:
        self.specs = list(specs)
        self._logs: list[IO[bytes]] = []
        self.processes: list[subprocess.Popen[bytes]] = []
        self._buffers: list[bytes] = []
        self._messages: list[list[dict[str, Any]]] = []
        try:
            for n, spec in enumerate(self.specs):
                log = (log_dir / f"worker-{n}.log").open("ab")
                self._logs.append(log)
                process = subprocess.Popen(
                    WORKER_COMMAND,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=log,
                    bufsize=0,
                )
                self.processes.append(process)
                self._buffers.append(b"")
                self._messages.append([])
                self._write(process, json.dumps(spec.to_json()))
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _write(self, process: subprocess.Popen[bytes], line: str) -> None:
        assert process.stdin is not None
        try:
            process.stdin.write(line.encode() + b"\n")
        except OSError as exc:
            raise BenchError(f"a bench worker exited early:\n{self._tail()}") from exc

    def _tail(self) -> str:
        texts = []
        for log in self._logs:
            log.flush()
            texts.append(Path(log.name).read_text(errors="replace")[-2000:])
        return "\n".join(t for t in texts if t.strip()) or "(no output)"

    def _read(self, n: int) -> bool:
        stream = self.processes[n].stdout
        assert stream is not None
        data = os.read(stream.fileno(), 65536)
        if not data:
            return False
        *lines, self._buffers[n] = (self._buffers[n] + data).split(b"\n")
        self._messages[n].extend(json.loads(line) for line in lines if line.strip())
        return True

    def _take(self, n: int, event: str) -> dict[str, Any] | None:
        for index, message in enumerate(self._messages[n]):
            if message.get("event") == event:
                del self._messages[n][: index + 1]
                return message
        return None

    def _collect(self, event: str, timeout: float) -> list[dict[str, Any]]:
        """The next ``event`` message of every worker, within ``timeout`` seconds."""
        answers: list[dict[str, Any] | None] = [
            self._take(n, event) for n in range(len(self.processes))
        ]
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            for n, process in enumerate(self.processes):
                if answers[n] is None:
                    assert process.stdout is not None
                    selector.register(process.stdout, selectors.EVENT_READ, n)
            while any(a is None for a in answers):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    missing = sum(1 for a in answers if a is None)
                    raise BenchError(
                        f"{missing} bench workers did not report {event!r} within "
                        f"{timeout:g}s\n{self._tail()}"
                    )
                for key, _ in selector.select(min(remaining, 0.5)):
                    n = key.data
                    if not self._read(n):
                        raise BenchError(f"a bench worker exited early:\n{self._tail()}")
                    answers[n] = self._take(n, event)
                    if answers[n] is not None:
                        selector.unregister(key.fileobj)
        return [a for a in answers if a is not None]

    def ready(self, timeout: float = 60.0) -> None:
        self._collect("ready", timeout)

    def go(self) -> int:
        """Start every swarm; returns the start time (monotonic ns)."""
        started = time.monotonic_ns()
        for process in self.processes:
            self._write(process, "go")
        return started

    def wait_done(self, timeout: float) -> list[int]:
        """When each worker's clients all reached their goal (monotonic ns)."""
        return [int(m["at_ns"]) for m in self._collect("done", timeout)]

    def stop(self, timeout: float = 60.0) -> list[SwarmReport]:
        for process in self.processes:
            self._write(process, "stop")
        finals = self._collect("final", timeout)
        return [SwarmReport(**m["report"]) for m in finals]

    def close(self) -> None:
        for process in self.processes:
            with contextlib.suppress(OSError):
                if process.stdin is not None:
                    process.stdin.close()
        for process in self.processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()
        for log in self._logs:
            log.close()
        self.processes.clear()


def merged(reports: Sequence[SwarmReport]) -> SwarmReport:
    total = SwarmReport()
    for report in reports:
        total.started_ns.extend(report.started_ns)
        total.done_ns.extend(report.done_ns)
        total.failed += report.failed
        for message, count in report.errors.items():
            total.errors[message] = total.errors.get(message, 0) + count
        total.connected_at_stop += report.connected_at_stop
        total.hub_heartbeats += report.hub_heartbeats
        total.sent_ops += report.sent_ops
        total.bytes_sent += report.bytes_sent
    return total
