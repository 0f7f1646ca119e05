"""The sessions' way back to the front: one PUSH socket per session into the front's PULL.

A session creates its ``PipeOutbox`` in its own thread and is its only user; the
front's thread owns the PULL end. Pipe messages are multipart: ``[serial, kind,
*payload]`` with kind ``SEND`` (send the payload frames to the peer), ``DONE`` (one
inbound frame handled), ``AUTH`` (authenticated as keyid ``payload[0]``) or ``CLOSED``
(the session ended). Serials, not routing ids, name the session, so nothing a finished
session still had queued can reach a later session that has the same routing id.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import zmq

SEND, DONE, AUTH, CLOSED = b"S", b"D", b"A", b"C"
_SERIAL_BYTES = 8


class PipeMessage(NamedTuple):
    serial: int
    kind: bytes
    payload: list[bytes]


def parse_pipe_message(message: list[bytes]) -> PipeMessage:
    return PipeMessage(int.from_bytes(message[0], "big"), message[1], message[2:])


class PipeOutbox:
    """A session's way out: a PUSH socket into the front, used by one thread only."""

    def __init__(
        self, context: zmq.Context[zmq.Socket[bytes]], endpoint: str, serial: int
    ) -> None:
        self._serial = serial.to_bytes(_SERIAL_BYTES, "big")
        self._socket = context.socket(zmq.PUSH)
        # Long enough to hand the last frames (the error item) to the front.
        self._socket.setsockopt(zmq.LINGER, 2000)
        self._socket.connect(endpoint)

    def send(self, frames: Sequence[bytes]) -> None:
        self._socket.send_multipart([self._serial, SEND, *frames])

    def frame_done(self) -> None:
        self._socket.send_multipart([self._serial, DONE])

    def authenticated(self, keyid: str) -> None:
        self._socket.send_multipart([self._serial, AUTH, keyid.encode()])

    def close(self) -> None:
        if not self._socket.closed:
            self._socket.send_multipart([self._serial, CLOSED])
            self._socket.close()
