"""A bench worker process: one swarm, steered over stdin and reporting on stdout.

    python -m hub.bench.worker

Reads one JSON line (a SwarmSpec) on stdin and answers ``{"event": "ready"}``
once its sockets exist; on ``go`` the clients start; it prints
``{"event": "done", ...}`` when every client reached its goal (or failed), keeps
the connections alive (heartbeats, latency sends) until ``stop``, then prints
``{"event": "final", ...}`` with its report and exits. Lines on stdout are JSON,
one a message; nothing else is written there.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import zmq

from hub.bench.swarm import Swarm, SwarmSpec


def _say(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


class _Commands:
    """Lines arriving on stdin, read without blocking the swarm."""

    def __init__(self) -> None:
        self.fd = sys.stdin.fileno()
        self._buffer = b""
        self.closed = False

    def read(self) -> list[str]:
        data = os.read(self.fd, 65536)
        if not data:
            self.closed = True
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        return [line.decode().strip() for line in lines if line.strip()]


def main() -> int:
    spec = SwarmSpec.from_json(json.loads(sys.stdin.readline()))
    swarm = Swarm(spec)
    commands = _Commands()
    swarm.poller.register(commands.fd, zmq.POLLIN)
    _say({"event": "ready", "count": spec.count})
    started = stopping = announced = False
    try:
        while not stopping:
            ready = swarm.turn(50 if started else 200)
            for command in commands.read() if commands.fd in ready else []:
                if command == "go" and not started:
                    started = True
                    swarm.start()
                elif command == "stop":
                    stopping = True
            if commands.closed:
                stopping = True
            if started and not announced and swarm.settled:
                announced = True
                _say({"event": "done", "at_ns": time.monotonic_ns()})
    finally:
        report = swarm.close()
    _say({"event": "final", "report": report.to_json()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
