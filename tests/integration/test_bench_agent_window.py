"""The client agent paces itself with acknowledgement diffs: a fast client is never throttled."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from hub.agent import Agent, AgentSettings
from hub.bench.rig import (
    make_client_node,
    make_hub_node,
    seed_local_operations,
    write_client_config,
)
from hub.config import load_config
from hub.pb import synchub_pb2 as pb
from hub.server import Hub

pytestmark = [pytest.mark.integration, pytest.mark.alone]


@pytest.mark.parametrize(("window", "every", "count"), [(32, 8, 20_000), (2, 1, 700)])
def test_a_large_sync_is_acknowledged_as_it_goes_and_never_throttled(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, window: int, every: int, count: int
) -> None:
    client = make_client_node(tmp_path / "client")
    seed_local_operations(client.oplog_path, count)
    node = make_hub_node(tmp_path / "hub", [client.bench_client])
    hub = Hub(load_config(node.config_path))
    caplog.set_level(logging.DEBUG, logger="hub.agent")
    try:
        endpoint = hub.start()
        write_client_config(client, node, endpoint)
        agent = Agent(
            load_config(client.config_path), identity=client.identity,
            settings=AgentSettings(send_window=window, ack_every=every),
        )
        [report] = agent.run_once(30)
        held = hub.oplog.query_metadata(
            pb.OpSelector(original_instance_keyid=client.identity.signing.keyid)
        ).get(timeout=10)
    finally:
        hub.stop()
    # One round: its digest check (resumed sync, the default) confirms the batches.
    assert report.sent == count and report.rounds == (count,)
    assert sorted(m.original_id for m in held) == list(range(1, count + 1))
    assert not [r for r in caplog.records if "throttled" in r.getMessage()]
    assert not [r for r in caplog.records if "empty diff" in r.getMessage()]
