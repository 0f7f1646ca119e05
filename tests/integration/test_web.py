"""The hub's HTTP side, served by a real hub on loopback: every endpoint, the filters,
escaping of hostile peer strings, access control, /metrics through prometheus-client's
own parser, /healthz turning 503 when an actor stops, and where it listens."""

from __future__ import annotations

import logging
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from web_support import WEB_ON_FREE_PORT, basic, get, web_hub_config

from hub.alerting import rfc3339
from hub.config import load_config
from hub.errors import ConfigError, WebError
from hub.pb import synchub_pb2 as pb
from hub.protocol import encode_item
from hub.store import import_clients
from hub.web import CSP
from synchub_testing import (
    CLIENT,
    STRANGER,
    HubProcess,
    RawClient,
    connected_client,
    diff_frame,
    free_tcp_port,
    hub_text_with,
    operation,
    running_hub,
    send_operations_frame,
    stored_operations,
    wait_until,
    write_config,
)

pytestmark = pytest.mark.integration

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'
BASE_MS = (int(time.time()) - 3600) * 1000
TOKEN = "s3cret-token-0123456789abcdef"


def _ops_with_failures() -> list[pb.Operation]:
    ops = []
    for op_id in range(1, 11):
        op = operation(op_id, message=f"run {op_id}")
        op.unix_time_start_ms = BASE_MS + op_id * 60_000
        op.unix_time_end_ms = op.unix_time_start_ms + 30_000
        op.plan_id = "nightly" if op_id % 2 else "hourly"
        if op_id in (4, 9):
            op.status = pb.STATUS_ERROR
            op.display_message = f"failed {op_id} {HOSTILE}"
            op.error_output = f"tar: /srv: Cannot open: disk full\n{HOSTILE}\n"
        ops.append(op)
    return ops


def _sync(hub: Any, client: RawClient, ops: list[pb.Operation]) -> None:
    client.send(send_operations_frame(ops))
    client.send(diff_frame(CLIENT.keyid, [op.id for op in ops], [op.modno for op in ops]))
    assert list(client.recv_action("diff_operations").diff_operations.request_operations) == []
    wait_until(lambda: len(stored_operations(hub, CLIENT.keyid)) == len(ops), what="stored")


@pytest.fixture
def web_hub(tmp_path: Path) -> Iterator[Any]:
    with running_hub(web_hub_config(tmp_path)) as hub:
        client = connected_client(hub)
        try:
            config = pb.RemoteConfig(repos=[pb.Repo(id="nas", uri=HOSTILE, guid="guid-nas")])
            client.send(encode_item(pb.SyncStreamItem(
                send_config=pb.SyncStreamItem.SendConfig(config=config))))
            _sync(hub, client, _ops_with_failures())
            wait_until(
                lambda: len(hub.fleet.snapshot().get(timeout=5).plans) == 2,
                what="the fleet to show both plans",
            )
            yield hub
        finally:
            client.close()


def url(hub: Any, path: str) -> str:
    return str(hub.web_endpoint) + path


def test_every_page_and_api_endpoint_answers(web_hub: Any) -> None:
    ids = [op.id for op in stored_operations(web_hub, CLIENT.keyid)]
    pages = ["/", "/operations", f"/operations/{ids[0]}", "/peers/web1", "/peers/hub-1"]
    for path in pages:
        answer = get(url(web_hub, path))
        assert answer.status == 200, (path, answer.text[:300])
        assert answer.headers["content-type"] == "text/html; charset=utf-8"
        assert answer.headers["content-security-policy"] == CSP
        assert answer.headers["x-content-type-options"] == "nosniff"
    for path in ["/api/status", "/api/peers", "/api/operations", f"/api/operations/{ids[0]}",
                 "/api/alerts", "/api/version", "/healthz"]:
        answer = get(url(web_hub, path))
        assert answer.status == 200, (path, answer.text[:300])
        assert answer.headers["content-type"] == "application/json"
        answer.json()
    assert get(url(web_hub, "/static/synchub.css")).headers["content-type"].startswith("text/css")
    assert get(url(web_hub, "/static/live.js")).status == 200
    assert get(url(web_hub, "/metrics")).status == 200
    head = get(url(web_hub, "/"), method="HEAD")
    assert head.status == 200 and head.body == b""


def test_errors_are_one_clear_line(web_hub: Any) -> None:
    assert get(url(web_hub, "/nowhere")).status == 404
    missing = get(url(web_hub, "/api/operations/999999"))
    assert missing.status == 404
    assert missing.json() == {"error": "no operation 999999 in this hub's oplog"}
    assert get(url(web_hub, "/operations/abc")).status == 404
    bad = get(url(web_hub, "/api/operations?status=broken"))
    assert bad.status == 400
    assert "status: expected one of unknown, pending" in bad.json()["error"]
    assert get(url(web_hub, "/api/operations?since=yesterday")).status == 400
    assert get(url(web_hub, "/api/operations?limit=0")).status == 400
    posted = get(url(web_hub, "/api/status"), method="POST")
    assert posted.status == 405 and posted.headers["allow"] == "GET, HEAD"


def test_api_fields_are_the_cli_json_fields(web_hub: Any) -> None:
    status = get(url(web_hub, "/api/status")).json()
    assert status["running"] is True
    assert status["instance"] == "hub-1"
    assert {"endpoint", "keyid", "operations", "peers_connected", "uptime_seconds"} <= set(status)
    assert status["operations"] == 10
    [peer] = get(url(web_hub, "/api/peers")).json()
    assert peer["peer_instance_id"] == "web1"
    assert peer["state"] == "CONNECTION_STATE_CONNECTED"
    assert peer["peer_keyid"] == CLIENT.keyid
    newest = get(url(web_hub, "/api/operations?limit=1")).json()
    assert newest[0]["display_message"] == "run 10"
    assert newest[0]["status"] == "STATUS_SUCCESS"
    assert newest[0]["original_instance_keyid"] == CLIENT.keyid
    assert get(url(web_hub, f"/api/operations/{newest[0]['id']}")).json() == newest[0]


def test_operation_filters_and_paging(web_hub: Any) -> None:
    def messages(query: str) -> list[str]:
        answer = get(url(web_hub, "/api/operations" + query))
        assert answer.status == 200, answer.text
        return [op["display_message"] for op in answer.json()]

    assert [m.split()[1] for m in messages("?status=error")] == ["9", "4"]
    assert messages("?status=error&plan=hourly") == [f"failed 4 {HOSTILE}"]
    assert len(messages("?instance=web1")) == 10
    assert messages("?instance=db1") == []
    assert len(messages("?repo=guid-nas")) == 10
    assert len(messages("?repo=nas")) == 10  # a configured repo id means its guid
    assert messages("?repo=elsewhere") == []
    since = rfc3339(BASE_MS + 5 * 60_000)  # op 5 started then
    assert [m.split()[1] for m in messages(f"?since={since}&plan=nightly")] == ["9", "7", "5"]
    assert len(messages(f"?until={since}")) == 4
    first = get(url(web_hub, "/api/operations?limit=4"))
    link = first.headers["link"]
    match = re.fullmatch(r'<(/api/operations\?[^>]+)>; rel="next"', link)
    assert match is not None, link
    second = get(url(web_hub, match.group(1))).json()
    assert [op["display_message"] for op in first.json()] == [f"run {n}" for n in (10,)] + [
        f"failed 9 {HOSTILE}", "run 8", "run 7"]
    assert next(op["id"] for op in second) < first.json()[-1]["id"]
    assert len(second) == 4
    page = get(url(web_hub, "/operations?status=error&plan=nightly")).text
    assert "failed 9" in page and "failed 4" not in page
    assert 'value="nightly"' in page


def test_hostile_peer_strings_are_escaped_everywhere(web_hub: Any) -> None:
    failed = get(url(web_hub, "/api/operations?status=error&limit=1")).json()[0]
    for path in ["/", "/operations", "/operations?status=error", f"/operations/{failed['id']}",
                 "/peers/web1"]:
        page = get(url(web_hub, path)).text
        assert "<script>alert" not in page, path
        assert "<img src=x" not in page, path
        assert "&lt;script&gt;alert(" in page or "&lt;script&gt;" in page, path
        # The only scripts are the page's own, from /static.
        assert re.findall(r"<script[^>]*>", page) in ([], ['<script src="/static/live.js" defer>'])
    detail = get(url(web_hub, f"/operations/{failed['id']}")).text
    assert "Failure output" in detail
    assert "tar: /srv: Cannot open: disk full" in detail
    peer_page = get(url(web_hub, "/peers/web1")).text
    assert "&lt;img src=x onerror=alert(1)&gt;" in peer_page  # the repo uri it reported


def test_the_dashboard_shows_failures_on_top_and_a_strip_per_plan(web_hub: Any) -> None:
    page = get(url(web_hub, "/")).text
    problems, fleet = page.index('id="problems"'), page.index('id="fleet"')
    assert problems < fleet
    top = page[problems:fleet]
    assert "Failed in the last 24 h (2)" in top
    assert top.count('class="badge err"') == 2
    assert 'id="i-web1"' in page and 'id="i-hub-1"' in page
    web1 = page[page.index('id="i-web1"'):]
    assert web1.count('class="c err"') == 2
    assert web1.count('class="c ok"') == 8
    assert "connected" in web1


def test_a_token_guards_a_non_loopback_bind(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"web\.token: required when web\.bind"):
        web_hub_config(tmp_path, web='\n[web]\nbind = "0.0.0.0:0"\n')
    config = web_hub_config(tmp_path, web=f'\n[web]\nbind = "0.0.0.0:0"\ntoken = "{TOKEN}"\n')
    with running_hub(config) as hub:
        port = hub.web_endpoint.rpartition(":")[2]
        base = f"http://127.0.0.1:{port}"
        for path in ["/", "/api/status", "/metrics", "/operations"]:
            refused = get(base + path)
            assert refused.status == 401, path
            assert refused.headers["www-authenticate"].startswith("Basic")
            assert TOKEN not in refused.text
            assert get(base + path, headers={"Authorization": "Bearer wrong"}).status == 401
            assert get(base + path, headers={"Authorization": f"Bearer {TOKEN}x"}).status == 401
            assert get(base + path, headers={"Authorization": f"Bearer {TOKEN}"}).status == 200
            assert get(base + path, headers={"Authorization": basic("ops", TOKEN)}).status == 200
        assert get(base + "/healthz").status == 200
        for path in ["/", "/api/status", "/peers/hub-1"]:
            body = get(base + path, headers={"Authorization": f"Bearer {TOKEN}"}).text
            assert TOKEN not in body
            assert hub.identity.curve.secret.decode() not in body


def test_without_a_token_only_loopback_host_names_are_served(web_hub: Any) -> None:
    assert get(url(web_hub, "/"), headers={"Host": "localhost:7471"}).status == 200
    rebound = get(url(web_hub, "/api/status"), headers={"Host": "evil.example.org"})
    assert rebound.status == 403
    assert "set [web] token" in rebound.json()["error"]


def test_metrics_parse_and_count_what_happened(web_hub: Any) -> None:
    stranger = RawClient(web_hub.endpoint, web_hub.identity.curve.public)
    try:
        stranger.handshake(web_hub.identity.signing.keyid, STRANGER, "intruder")
        assert stranger.recv_action("error").error.state == pb.CONNECTION_STATE_ERROR_AUTH
    finally:
        stranger.close()

    def samples() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        text = get(url(web_hub, "/metrics")).text
        found = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return found

    wait_until(lambda: ("synchub_handshakes_total", (("outcome", "refused"),
                        ("reason", "unknown_key"))) in samples(), what="the refusal counted")
    found = samples()
    assert found[("synchub_handshakes_total", (("outcome", "accepted"), ("reason", "")))] == 1
    assert found[("synchub_operations_received_total",
                  (("instance", "web1"), ("status", "success")))] == 8
    assert found[("synchub_operations_received_total",
                  (("instance", "web1"), ("status", "error")))] == 2
    assert found[("synchub_peers", (("state", "connected"),))] == 1
    assert found[("synchub_oplog_operations", ())] == 10
    assert found[("synchub_oplog_size_bytes", ())] > 0
    assert found[("synchub_ingest_batch_apply_seconds_count", ())] == 1
    assert found[("synchub_ingest_operations_total", ())] == 10
    last_success = found[("synchub_plan_last_success_timestamp_seconds",
                          (("instance", "web1"), ("plan", "nightly")))]
    assert last_success == (BASE_MS + 7 * 60_000 + 30_000) / 1000
    assert ("synchub_front_backlog_frames", ()) in found
    assert ("synchub_sessions", ()) in found
    assert found[("process_resident_memory_bytes", ())] > 0
    label_names = {name for (_, labels) in found for name, _ in labels}
    assert not label_names & {"id", "operation_id", "keyid"}


def test_healthz_turns_503_when_an_actor_stops(tmp_path: Path) -> None:
    with running_hub(web_hub_config(tmp_path)) as hub:
        assert get(url(hub, "/healthz")).json() == {"status": "ok"}
        hub.peers.actor_ref.stop()
        answer = get(url(hub, "/healthz"))
        assert answer.status == 503
        assert answer.json() == {
            "status": "unhealthy", "problems": ["the peer state actor is not running"]
        }
        assert get(url(hub, "/api/peers")).status == 503


def test_a_taken_default_port_starts_the_hub_without_http(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    holder = socket.socket()
    try:
        try:
            holder.bind(("127.0.0.1", 7471))
            holder.listen()
        except OSError:
            pass  # another hub on this machine holds it: the same situation
        config = write_config(tmp_path, hub_text_with())
        assert not config.web.bind_from_file
        with caplog.at_level(logging.WARNING), running_hub(config) as hub:
            assert hub.web_endpoint is None
            assert hub.endpoint.startswith("tcp://")
        assert any("no web side" in r.message and "[web] bind" in r.message
                   for r in caplog.records)
    finally:
        holder.close()


def test_a_taken_port_set_in_the_file_stops_the_start(tmp_path: Path) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    try:
        port = holder.getsockname()[1]
        config = web_hub_config(tmp_path, web=f'\n[web]\nbind = "127.0.0.1:{port}"\n')
        with (
            pytest.raises(WebError, match=rf"127\.0\.0\.1:{port}: the port is taken"),
            running_hub(config),
        ):
            pass
        process = HubProcess(config.path)
        assert process.wait_exit() == 1
        lines = [line for line in process.stderr.splitlines() if "error" in line]
        assert lines == [f"synchub: error: cannot serve HTTP on 127.0.0.1:{port}: the port is "
                         'taken; set [web] bind to a free one (or "" for no web side)']
        assert "Traceback" not in process.stderr
    finally:
        holder.close()


def test_web_off_means_no_listener(tmp_path: Path) -> None:
    config = web_hub_config(tmp_path, web='\n[web]\nbind = ""\n')
    with running_hub(config) as hub:
        assert hub.web_endpoint is None
        assert hub.metrics is None


def test_the_start_message_names_the_web_address(tmp_path: Path) -> None:
    port = free_tcp_port()
    config = web_hub_config(tmp_path, web=f'\n[web]\nbind = "127.0.0.1:{port}"\n')
    process = HubProcess(config.path)
    try:
        process.wait_for_output("listening on")
        wait_until(lambda: _answers(f"http://127.0.0.1:{port}/healthz"), what="the web side")
        assert process.stop() == 0
    finally:
        process.kill()
    assert f"web:    http://127.0.0.1:{port}\n" in process.stderr
    assert load_config(config.path).web.port == port


def _answers(address: str) -> bool:
    try:
        return get(address, timeout=1).status == 200
    except OSError:
        return False


def test_the_web_side_reads_a_hub_on_postgresql(tmp_path: Path) -> None:
    from postgres_support import fresh_database  # noqa: PLC0415 - skips without PostgreSQL

    with fresh_database() as database:
        # As an operator moves a hub onto PostgreSQL: the clients go into the database,
        # the file keeps none.
        import_clients(database, web_hub_config(tmp_path).authorized_clients)
        text = hub_text_with()
        config = write_config(tmp_path, text[:text.index("[[authorized_clients]]")]
                              + WEB_ON_FREE_PORT + f'\n[store]\nurl = "{database}"\n')
        with running_hub(config) as hub:
            client = connected_client(hub)
            try:
                _sync(hub, client, _ops_with_failures())
            finally:
                client.close()
            failed = get(url(hub, "/api/operations?status=error")).json()
            assert [op["display_message"].split()[1] for op in failed] == ["9", "4"]
            wait_until(lambda: len(hub.fleet.snapshot().get(timeout=5).plans) == 2,
                       what="the fleet")
            page = get(url(hub, "/")).text
            assert page[page.index('id="i-web1"'):].count('class="c err"') == 2
            assert get(url(hub, "/healthz")).json() == {"status": "ok"}
            metrics = get(url(hub, "/metrics")).text
            assert "synchub_oplog_operations 10.0" in metrics
