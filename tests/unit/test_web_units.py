"""The web side's parts without a server: filters, access checks, escaping of the
dashboard's rows, and the alert dispatcher's retries (real threads, a fake receiver)."""

from __future__ import annotations

import queue
from pathlib import Path

import pytest
from web_support import basic

from hub.alerting import DeliveryJob, Dispatcher, Outcome, RetryPolicy
from hub.config import AlertRule, Config, RepoConfig
from hub.fleet import PlanSummary, Run
from hub.pb import synchub_pb2 as pb
from hub.web import Access, HttpError, Request, parse_filters, parse_time, plan_row

CONFIG = Config(path=None, instance="hub-1", data_dir=Path("/nonexistent"),
                repos=(RepoConfig("nas", "guid-nas", "sftp:nas"),))
TOKEN = "0123456789abcdef-token"


def request(path: str = "/", **headers: str) -> Request:
    return Request("GET", path, {}, {k.replace("_", "-"): v for k, v in headers.items()})


def test_filters_become_a_query() -> None:
    filters = parse_filters(
        {"instance": "web1", "repo": "nas", "plan": "nightly", "status": "ERROR",
         "since": "2026-01-02", "until": "2026-01-02T03:04:05Z", "limit": "7",
         "before": "99", "ignored": "x"},
        CONFIG,
    )
    query = filters.query
    assert (query.instance, query.repo_guid, query.plan_id) == ("web1", "guid-nas", "nightly")
    assert query.status == pb.STATUS_ERROR
    assert query.since_ms == parse_time("since", "2026-01-02T00:00:00Z") == 1_767_312_000_000
    assert query.until_ms == 1_767_323_045_000
    assert (query.limit, query.before_id) == (7, 99)
    assert parse_filters({"repo": "guid-x"}, CONFIG).query.repo_guid == "guid-x"
    assert parse_filters({}, CONFIG, default_limit=50).query.limit == 50
    link = filters.link("/operations", before=5)
    assert link.startswith("/operations?instance=web1&repo=nas&plan=nightly&status=ERROR")
    assert link.endswith("&limit=7&before=5")


@pytest.mark.parametrize(("params", "message"), [
    ({"status": "failed"}, "status: expected one of unknown, pending, inprogress, success"),
    ({"since": "last week"}, "since: expected a time like 2026-01-02T03:04:05Z"),
    ({"limit": "1001"}, "limit: expected a whole number from 1 to 1000"),
    ({"limit": "-1"}, "limit: expected a whole number"),
    ({"before": "x"}, "before: expected a whole number"),
])
def test_bad_filters_are_a_400_saying_what_to_give(params: dict[str, str], message: str) -> None:
    with pytest.raises(HttpError) as raised:
        parse_filters(params, CONFIG)
    assert raised.value.status == 400
    assert raised.value.message.startswith(message)


def test_a_token_is_checked_in_constant_time_and_in_two_forms() -> None:
    access = Access(TOKEN)
    for headers in ({}, {"authorization": "Bearer nope"}, {"authorization": f"Bearer {TOKEN}1"},
                    {"authorization": basic("ops", "nope")}, {"authorization": "Basic !!!"},
                    {"authorization": f"Token {TOKEN}"}):
        with pytest.raises(HttpError) as raised:
            access.check(request(**headers))
        assert raised.value.status == 401
        assert raised.value.headers[0][0] == "WWW-Authenticate"
    access.check(request(authorization=f"Bearer {TOKEN}"))
    access.check(request(authorization=f"bearer {TOKEN}"))
    access.check(request(authorization=basic("anyone", TOKEN)))
    access.check(request("/healthz"))
    access.check(request(authorization=f"Bearer {TOKEN}", host="dash.example.org"))


def test_without_a_token_only_loopback_hosts_pass() -> None:
    access = Access(None)
    for host in ("127.0.0.1:7471", "localhost", "[::1]:7471", "127.3.4.5", ""):
        access.check(request(host=host) if host else request())
    for host in ("example.org", "10.0.0.1:7471", "[2001:db8::1]:80", "localhost.evil.org"):
        with pytest.raises(HttpError) as raised:
            access.check(request(host=host))
        assert raised.value.status == 403
    access.check(request("/healthz", host="example.org"))


def test_plan_rows_escape_what_peers_sent() -> None:
    hostile = '"><script>alert(1)</script>'
    row = plan_row(PlanSummary(
        "web1", hostile, hostile, "g", (Run(7, pb.STATUS_ERROR, 1_000, 2_000, hostile),), 0, 1_000,
    ))
    assert "<script>" not in row
    assert "&lt;script&gt;" in row
    assert 'href="/operations/7"' in row
    assert 'class="c err"' in row


def test_the_dispatcher_retries_with_backoff_then_reports() -> None:
    rule = AlertRule("a", "operation_failed", webhook="http://127.0.0.1:9/hook")
    attempts: queue.Queue[str] = queue.Queue()
    plan = iter([Outcome(False, True, "HTTP 503"), Outcome(False, True, "refused"),
                 Outcome(True, False, "HTTP 204"), Outcome(False, False, "HTTP 404")])

    def sender(_rule: AlertRule, _target: str, event: str, _timeout: float) -> Outcome:
        attempts.put(event)
        return next(plan)

    done: queue.Queue[tuple[int, bool]] = queue.Queue()
    dispatcher = Dispatcher(lambda i, ok: done.put((i, ok)), workers=2, sender=sender,
                            retry=RetryPolicy(first=0.01, longest=0.05, attempts=5))
    dispatcher.start()
    try:
        dispatcher.submit(DeliveryJob(1, rule, "webhook", "{}"))
        assert done.get(timeout=5) == (1, True)
        assert attempts.qsize() == 3
        dispatcher.submit(DeliveryJob(2, rule, "webhook", "{}"))
        assert done.get(timeout=5) == (2, False)  # a 404 is not retried
        assert attempts.qsize() == 4
    finally:
        dispatcher.stop()
    assert not dispatcher.running


def test_the_dispatcher_gives_up_after_its_attempts() -> None:
    rule = AlertRule("a", "operation_failed", webhook="http://127.0.0.1:9/hook")
    done: queue.Queue[tuple[int, bool]] = queue.Queue()
    dispatcher = Dispatcher(
        lambda i, ok: done.put((i, ok)), workers=1,
        sender=lambda *_args: Outcome(False, True, "down"),
        retry=RetryPolicy(first=0.01, longest=0.02, attempts=3),
    )
    dispatcher.start()
    try:
        dispatcher.submit(DeliveryJob(5, rule, "webhook", "{}"))
        assert done.get(timeout=5) == (5, False)
    finally:
        dispatcher.stop()
