"""A counting TCP relay: forwards loopback connections to a target and counts the bytes.

What a client puts on the wire (CURVE and ZMTP framing included) is what crosses
the relay upstream. With ``record=True`` it also keeps every byte, both ways, for
checking what an observer of the wire would see. One thread serves every
connection; ``stop()`` joins it.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading

_CHUNK = 256 * 1024


class CountingRelay:
    def __init__(self, target_port: int, *, record: bool = False) -> None:
        self._target = ("127.0.0.1", target_port)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.setblocking(False)
        self.endpoint = f"tcp://127.0.0.1:{self._listener.getsockname()[1]}"
        self.upstream = 0
        self.downstream = 0
        self._record = record
        self._recorded = bytearray()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-relay")

    def __enter__(self) -> CountingRelay:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)

    def captured(self) -> bytes:
        """Every byte that crossed, both ways, in arrival order (``record=True``; after stop)."""
        assert self._record, "create the relay with record=True to keep what crosses it"
        assert not self._thread.is_alive(), "stop the relay before reading what it captured"
        return bytes(self._recorded)

    def _run(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self._listener, selectors.EVENT_READ, None)
        sockets: list[socket.socket] = [self._listener]
        try:
            while not self._stop.is_set():
                for key, _ in selector.select(0.05):
                    if key.data is None:
                        self._accept(selector, sockets)
                    else:
                        self._forward(selector, key.fileobj, *key.data)  # type: ignore[arg-type]
        finally:
            for sock in sockets:
                with contextlib.suppress(KeyError, ValueError, OSError):
                    selector.unregister(sock)
                sock.close()
            selector.close()

    def _accept(self, selector: selectors.BaseSelector, sockets: list[socket.socket]) -> None:
        try:
            client, _ = self._listener.accept()
        except BlockingIOError:
            return
        upstream = socket.create_connection(self._target, timeout=5)
        for sock in (client, upstream):
            sock.setblocking(True)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sockets.append(sock)
        selector.register(client, selectors.EVENT_READ, (upstream, True))
        selector.register(upstream, selectors.EVENT_READ, (client, False))

    def _forward(
        self, selector: selectors.BaseSelector, source: socket.socket, sink: socket.socket,
        up: bool,
    ) -> None:
        try:
            data = source.recv(_CHUNK)
        except OSError:
            data = b""
        if not data:
            for sock in (source, sink):
                with contextlib.suppress(KeyError, ValueError, OSError):
                    selector.unregister(sock)
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            return
        if up:
            self.upstream += len(data)
        else:
            self.downstream += len(data)
        if self._record:
            self._recorded.extend(data)
        with contextlib.suppress(OSError):
            sink.sendall(data)
