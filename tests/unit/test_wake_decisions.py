"""The wake-up socket's decisions: its address, its mode, and a writer that never fails.

The listener's thread and the whole path through a hub are in
tests/integration/test_agent_wake.py.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from hub.store import (
    SUN_PATH_MAX,
    fits_unix_address,
    wake_address,
    wake_agent,
    wake_mode,
    wake_path,
    wake_staging_path,
)


@pytest.mark.parametrize(
    ("database", "socket_mode"),
    [(0o600, 0o600), (0o400, 0o600), (0o640, 0o600), (0o644, 0o600),
     (0o660, 0o660), (0o664, 0o660), (0o666, 0o666), (0o602, 0o606)],
)
def test_the_socket_is_writable_by_exactly_who_may_write_the_database(
    database: int, socket_mode: int
) -> None:
    assert wake_mode(database) == socket_mode


def test_a_data_dir_too_long_for_a_socket_address_has_no_wake_up(tmp_path: Path) -> None:
    short = tmp_path / "d"
    assert wake_address(short) == str(wake_path(short))
    # The staging name is the longer one, and both must fit.
    room = SUN_PATH_MAX - len(os.fsencode(wake_staging_path(tmp_path / "")))
    fits = tmp_path / ("x" * (room - 1))
    assert fits_unix_address(wake_staging_path(fits))
    assert wake_address(fits) is not None
    too_long = tmp_path / ("x" * room)
    assert not fits_unix_address(wake_staging_path(too_long))
    assert wake_address(too_long) is None
    wake_agent(too_long)  # sends nothing, raises nothing


def test_a_writer_ignores_every_way_the_agent_is_not_there(tmp_path: Path) -> None:
    wake_agent(tmp_path / "missing")  # no data_dir at all
    wake_agent(tmp_path)  # no socket file
    # A killed agent's socket file: nobody reads it, the send is refused.
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    stale.bind(str(wake_path(tmp_path)))
    stale.close()
    wake_agent(tmp_path)
    # Something that is no socket at all.
    wake_path(tmp_path).unlink()
    wake_path(tmp_path).write_text("not a socket")
    wake_agent(tmp_path)


def test_a_writer_sends_one_datagram_and_never_blocks_on_a_full_buffer(
    tmp_path: Path,
) -> None:
    reader = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        reader.bind(str(wake_path(tmp_path)))
        wake_agent(tmp_path)
        reader.settimeout(5)
        assert reader.recv(64) == b"\x01"
        # Nobody reads: the queue fills, and writers go on without waiting.
        for _ in range(2000):
            wake_agent(tmp_path)
    finally:
        reader.close()
