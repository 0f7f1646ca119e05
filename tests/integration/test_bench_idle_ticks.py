"""Idle sessions are ticked only when a heartbeat or the silence limit is due.

Thousands of idle peers must not all wake every tick; a silent one must still end
within three heartbeat intervals (plus one tick), and a live one still gets the
hub's heartbeats.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from actors import SessionActor
from hub.pb import synchub_pb2 as pb
from synchub_testing import (
    CLIENT,
    OTHER_CLIENT,
    connected_client,
    heartbeat_frame,
    hub_text_with,
    running_hub,
    wait_until,
    write_config,
)

pytestmark = [pytest.mark.integration, pytest.mark.alone]

INTERVAL = 0.4


def peer_state(hub: Any, keyid: str) -> int:
    states = hub.peers.list().get(timeout=5)
    return next((s.state for s in states if s.peer_keyid == keyid), pb.CONNECTION_STATE_UNKNOWN)


def test_live_sessions_wake_per_heartbeat_and_silent_ones_still_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticks: list[float] = []
    original = SessionActor.tick

    def counting_tick(self: SessionActor, now: float) -> None:
        ticks.append(now)
        original(self, now)

    monkeypatch.setattr(SessionActor, "tick", counting_tick)
    config = write_config(tmp_path, hub_text_with(heartbeat_interval=INTERVAL))
    with running_hub(config) as hub:
        live = connected_client(hub)
        silent = connected_client(hub, OTHER_CLIENT, "db1")
        try:
            ticks.clear()
            started = time.monotonic()
            hub_heartbeats = 0
            while time.monotonic() - started < 5 * INTERVAL:
                live.send(heartbeat_frame())
                while live.socket.poll(int(INTERVAL * 250)):
                    item = pb.SyncStreamItem.FromString(live.socket.recv())
                    hub_heartbeats += item.WhichOneof("action") == "heartbeat"
            wait_until(
                lambda: peer_state(hub, OTHER_CLIENT.keyid) == pb.CONNECTION_STATE_DISCONNECTED,
                timeout=3 * INTERVAL + 1.0, what="the silent peer to be dropped",
            )
            silent_for = time.monotonic() - started
            assert peer_state(hub, CLIENT.keyid) == pb.CONNECTION_STATE_CONNECTED
        finally:
            live.close()
            silent.close()
    # Every tick_interval (INTERVAL / 4) for both sessions would be about 40 ticks.
    assert len(ticks) <= 16, len(ticks)
    assert hub_heartbeats >= 3
    assert silent_for < 3 * INTERVAL + 1.0
