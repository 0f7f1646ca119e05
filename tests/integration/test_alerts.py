"""Alerts end to end: a real hub, a real webhook receiver on loopback, real clients.

operation_failed is delivered within 5 s; plan_stale and peer_lost fire after their
`after` (seconds here) and resolve; a receiver that fails gets retries; a restart
neither fires again nor loses an event; commands get the event on stdin;
`synchub alerts` and `synchub alerts test NAME` work on the same data.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from web_support import Receiver, get, receiver, web_hub_config

from hub import protocol
from hub.cli.main import cli
from hub.pb import synchub_pb2 as pb
from synchub_testing import (
    CLIENT,
    connected_client,
    operation,
    running_hub,
    send_operations_frame,
    wait_until,
)

pytestmark = pytest.mark.integration

EVENT_FIELDS = {"alert", "event", "when", "instance", "repo", "plan", "operation_id", "status",
                "message", "hub", "time"}


def _alerts(hook: Receiver, *, command: str = "") -> str:
    return f"""
[[alerts]]
name = "backup-failed"
when = "operation_failed"
plans = ["nightly"]
webhook = "{hook.url}"
{command}

[[alerts]]
name = "nightly-missing"
when = "plan_stale"
after = 2
plans = ["weekly"]
webhook = "{hook.url}"

[[alerts]]
name = "host-gone"
when = "peer_lost"
after = 1
instances = ["web1"]
webhook = "{hook.url}"
"""


def _op(op_id: int, status: int, plan: str = "nightly", message: str = "") -> pb.Operation:
    op = operation(op_id, message=message or f"run {op_id}")
    op.status = status
    op.plan_id = plan
    op.unix_time_start_ms = int(time.time() * 1000)
    op.unix_time_end_ms = op.unix_time_start_ms + 1_000
    return op


def _send(client: Any, *ops: pb.Operation) -> None:
    client.send(send_operations_frame(list(ops)))


def test_operation_failed_is_delivered_within_5s_once_and_resolves(tmp_path: Path) -> None:
    with receiver() as hook, running_hub(
        web_hub_config(tmp_path, extra=_alerts(hook))
    ) as hub:
        client = connected_client(hub)
        try:
            sent = time.monotonic()
            _send(client, _op(1, pb.STATUS_ERROR, message="disk full"))
            event = hook.next_event(timeout=5)
            assert time.monotonic() - sent < 5
            assert set(event) >= EVENT_FIELDS
            assert event["alert"] == "backup-failed"
            assert event["event"] == "firing"
            assert event["when"] == "operation_failed"
            assert (event["instance"], event["plan"]) == ("web1", "nightly")
            assert event["repo"] == "guid-nas"  # the operation names no repo id
            assert event["status"] == "error"
            assert "disk full" in event["message"]
            assert event["hub"] == "hub-1"
            assert event["time"].endswith("Z")
            selector = pb.OpSelector(original_instance_keyid=CLIENT.keyid)
            stored = hub.oplog.query(selector).get(timeout=5)
            assert event["operation_id"] == stored[0].id
            # A second failure of the same plan is the same incident: no new event.
            _send(client, _op(2, pb.STATUS_ERROR))
            _send(client, _op(3, pb.STATUS_ERROR, plan="hourly"))  # not covered by `plans`
            hook.no_event(within=1.0)
            page = get(f"{hub.web_endpoint}/").text
            assert page.index('id="alerts"') < page.index('id="problems"')
            assert "backup-failed" in page
            _send(client, _op(4, pb.STATUS_SUCCESS))
            resolved = hook.next_event(timeout=5)
            assert (resolved["alert"], resolved["event"]) == ("backup-failed", "resolved")
            assert resolved["status"] == "success"
        finally:
            client.close()


def test_plan_stale_fires_after_its_time_and_resolves(tmp_path: Path) -> None:
    with receiver() as hook, running_hub(
        web_hub_config(tmp_path, extra=_alerts(hook))
    ) as hub:
        client = connected_client(hub)
        try:
            _send(client, _op(1, pb.STATUS_SUCCESS, plan="weekly"))
            started = time.monotonic()
            event = hook.next_event(timeout=8)
            assert time.monotonic() - started >= 1.0
            assert (event["alert"], event["event"]) == ("nightly-missing", "firing")
            assert (event["instance"], event["plan"]) == ("web1", "weekly")
            assert "has not succeeded for 2s" in event["message"]
            _send(client, _op(2, pb.STATUS_SUCCESS, plan="weekly"))
            resolved = hook.next_event(timeout=5)
            assert (resolved["alert"], resolved["event"]) == ("nightly-missing", "resolved")
        finally:
            client.close()


def test_peer_lost_fires_after_its_time_and_resolves_when_it_connects(tmp_path: Path) -> None:
    with receiver() as hook, running_hub(
        web_hub_config(tmp_path, extra=_alerts(hook))
    ) as hub:
        client = connected_client(hub)
        client.send(protocol.error_frame(pb.CONNECTION_STATE_DISCONNECTED, "going away"))
        client.close()
        lost_at = time.monotonic()
        event = hook.next_event(timeout=8)
        assert time.monotonic() - lost_at >= 0.5
        assert (event["alert"], event["event"], event["instance"]) == (
            "host-gone", "firing", "web1")
        assert event["status"] == "disconnected"
        assert "going away" in event["message"]
        back = connected_client(hub)
        try:
            resolved = hook.next_event(timeout=5)
            assert (resolved["alert"], resolved["event"]) == ("host-gone", "resolved")
        finally:
            back.close()


def test_a_failing_receiver_gets_retries(tmp_path: Path) -> None:
    with receiver() as hook, running_hub(
        web_hub_config(tmp_path, extra=_alerts(hook))
    ) as hub:
        hook.fail_next(2)
        client = connected_client(hub)
        try:
            _send(client, _op(1, pb.STATUS_ERROR))
            event = hook.next_event(timeout=10)
            assert event["alert"] == "backup-failed"
            assert hook.attempts == 3
        finally:
            client.close()


def test_a_restart_neither_fires_again_nor_loses_an_event(tmp_path: Path) -> None:
    with receiver() as hook:
        config = web_hub_config(tmp_path, extra=_alerts(hook))
        hook.fail_next(10_000)
        with running_hub(config) as hub:
            client = connected_client(hub)
            try:
                _send(client, _op(1, pb.STATUS_ERROR))
                wait_until(lambda: hook.attempts >= 1, what="a first attempt")
            finally:
                client.close()
        assert hook.events.empty()
        hook.fail_next(0)
        with running_hub(config) as hub:
            # The event that never got through is delivered now...
            event = hook.next_event(timeout=5)
            assert (event["alert"], event["event"]) == ("backup-failed", "firing")
            client = connected_client(hub)
            try:
                # ... and the incident is still firing: the same failure again is quiet,
                _send(client, _op(1, pb.STATUS_ERROR, message="again"))
                _send(client, _op(2, pb.STATUS_ERROR))
                hook.no_event(within=1.5)
                # and it resolves as it would have without the restart.
                _send(client, _op(3, pb.STATUS_SUCCESS))
                resolved = hook.next_event(timeout=5)
                assert (resolved["alert"], resolved["event"]) == ("backup-failed", "resolved")
            finally:
                client.close()


def test_a_command_gets_the_event_on_stdin(tmp_path: Path) -> None:
    out = tmp_path / "event.json"
    script = tmp_path / "notify.py"
    script.write_text(
        "import sys, pathlib\npathlib.Path(sys.argv[1]).write_text(sys.stdin.read())\n"
    )
    command = f'command = ["{sys.executable}", "{script}", "{out}"]'
    with receiver() as hook, running_hub(
        web_hub_config(tmp_path, extra=_alerts(hook, command=command))
    ) as hub:
        client = connected_client(hub)
        try:
            _send(client, _op(1, pb.STATUS_ERROR))
            assert hook.next_event(timeout=5)["alert"] == "backup-failed"
            wait_until(lambda: out.exists() and out.read_text().endswith("}"), what="the command")
            event = json.loads(out.read_text())
            assert (event["alert"], event["event"], event["plan"]) == (
                "backup-failed", "firing", "nightly")
        finally:
            client.close()


def test_the_cli_lists_firing_alerts_and_sends_a_test_event(tmp_path: Path) -> None:
    with receiver() as hook:
        config = web_hub_config(tmp_path, extra=_alerts(hook))
        runner = CliRunner()
        assert runner.invoke(cli, ["--config", str(config.path), "alerts"]).output == (
            "no alerts firing\n")
        with running_hub(config) as hub:
            client = connected_client(hub)
            try:
                _send(client, _op(1, pb.STATUS_ERROR, message="disk full"))
                hook.next_event(timeout=5)
            finally:
                client.close()
            listed = runner.invoke(cli, ["--config", str(config.path), "alerts", "--json"])
            assert listed.exit_code == 0, listed.output
            [firing] = json.loads(listed.output)
            assert firing["alert"] == "backup-failed"
            assert firing["incident"] == "web1/nightly"
            assert (firing["instance"], firing["plan"], firing["when"]) == (
                "web1", "nightly", "operation_failed")
            assert "disk full" in firing["message"]
            api = get(f"{hub.web_endpoint}/api/alerts").json()
            assert api == [firing]
        table = runner.invoke(cli, ["--config", str(config.path), "alerts"]).output
        assert "backup-failed" in table and "web1/nightly" in table
        sent = runner.invoke(cli, ["--config", str(config.path), "alerts", "test", "host-gone"])
        assert sent.exit_code == 0, sent.output
        assert sent.output.startswith("webhook http://127.0.0.1:")
        test_event = hook.next_event(timeout=5)
        assert test_event["test"] is True and test_event["alert"] == "host-gone"
        wrong = runner.invoke(cli, ["--config", str(config.path), "alerts", "test", "host-gon"])
        assert wrong.exit_code == 1
        assert "did you mean 'host-gone'?" in wrong.output
