"""`synchub ops` as an operator reads it: order, times with their zone, durations,
filters, cut cells and rows no field can break. Through click's runner on a node's
real oplog file."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from hub.cli.listing import TimeZoneChoice, cell, duration_text
from hub.cli.main import cli
from hub.config import load_config
from hub.pb import synchub_pb2 as pb
from hub.store import open_oplog

CONFIG = """\
instance = "web1"
data_dir = "data"

[[repos]]
id = "nas"
guid = "guid-nas"
uri = "sftp:nas"

[[repos]]
id = "tape"
guid = "guid-tape"
uri = "sftp:tape"
"""

HOUR_MS = 3_600_000


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["ops", *args], catch_exceptions=False)


@pytest.fixture
def node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SYNCHUB_CONFIG", raising=False)
    (tmp_path / "synchub.toml").write_text(CONFIG)
    return tmp_path


@pytest.fixture
def now_ms() -> int:
    """The wall clock at the test's start: the CLI reads the same clock for relative times."""
    return time.time_ns() // 1_000_000


@pytest.fixture
def zone_plus_two(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Local time two hours east of UTC, with no daylight saving."""
    monkeypatch.setenv("TZ", "TEST-02")
    time.tzset()
    try:
        yield
    finally:
        monkeypatch.undo()
        time.tzset()


def job(message: str, start_ms: int, *, minutes: float = 1, repo: str = "nas",
        status: int = pb.STATUS_SUCCESS, plan: str = "nightly") -> pb.Operation:
    return pb.Operation(
        instance_id="web1", plan_id=plan, repo_id=repo, repo_guid=f"guid-{repo}",
        display_message=message, status=status,  # type: ignore[arg-type]
        unix_time_start_ms=start_ms, unix_time_end_ms=start_ms + int(minutes * 60_000),
    )


def record(node: Path, *ops: pb.Operation) -> list[pb.Operation]:
    with open_oplog(load_config(node / "synchub.toml")) as oplog:
        return oplog.add_local(list(ops))


def messages(result: Result) -> list[str]:
    assert result.exit_code == 0, result.output
    return [op["display_message"] for op in json.loads(result.output)]


def test_newest_start_first_whatever_the_order_they_arrived(node: Path, now_ms: int) -> None:
    record(node, job("yesterday", now_ms - 24 * HOUR_MS), job("now", now_ms - 60_000))
    record(node, job("late: two hours ago", now_ms - 2 * HOUR_MS))  # synced last

    assert messages(run("--json")) == ["now", "late: two hours ago", "yesterday"]
    assert messages(run("--json", "--sort", "id")) == [
        "late: two hours ago", "now", "yesterday"]
    assert messages(run("--json", "--reverse")) == ["yesterday", "late: two hours ago", "now"]
    assert messages(run("--json", "--limit", "1")) == ["now"]


def test_times_carry_their_zone_and_utc_on_request(node: Path, zone_plus_two: None) -> None:
    start = int(dt.datetime(2026, 11, 30, 22, 15, 5, tzinfo=dt.UTC).timestamp() * 1000)
    record(node, job("backup", start, minutes=112.5))

    local = run().output.splitlines()[1]
    utc = run("--utc").output.splitlines()[1]

    assert "2026-12-01T00:15:05+02:00" in local
    assert "2026-11-30T22:15:05+00:00" in utc
    assert "1h52m" in local.split()


def test_filters_by_status_and_start_time(node: Path, zone_plus_two: None, now_ms: int) -> None:
    record(
        node,
        job("old failure", now_ms - 3 * 24 * HOUR_MS - 60_000, status=pb.STATUS_ERROR),
        job("recent failure", now_ms - HOUR_MS, status=pb.STATUS_ERROR),
        job("recent success", now_ms - 30 * 60_000),
    )
    assert messages(run("--json", "--status", "error")) == ["recent failure", "old failure"]
    assert messages(run("--json", "--since", "2h")) == ["recent success", "recent failure"]
    assert messages(run("--json", "--until", "3d")) == ["old failure"]
    assert messages(run("--json", "--since", "3d", "--until", "45m")) == ["recent failure"]
    today = dt.datetime.fromtimestamp((now_ms - 30 * 60_000) / 1000).date().isoformat()
    assert "recent success" in messages(run("--json", "--since", today))
    assert messages(run("--json", "--until", "2000-01-01")) == []


def test_a_time_that_is_not_one_is_a_usage_error(node: Path) -> None:
    result = run("--since", "yesterdayish")
    assert result.exit_code == 2
    assert "'yesterdayish' is not a time" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize("repo", ["tape", "guid-tape"])
def test_repo_is_an_id_or_a_guid(node: Path, repo: str, now_ms: int) -> None:
    record(node, job("to nas", now_ms - 2000), job("to tape", now_ms - 1000, repo="tape"))
    assert messages(run("--json", "--repo", repo)) == ["to tape"]


def test_cut_cells_end_in_an_ellipsis_and_wide_cuts_nothing(node: Path, now_ms: int) -> None:
    long_message = "rsync " + "/very/long/path" * 10
    record(node, job(long_message, now_ms, plan="a-plan-with-a-long-name"))

    narrow = run().output.splitlines()[1]
    wide = run("--wide").output.splitlines()[1]

    assert "a-plan-with…" in narrow
    assert narrow.endswith("…")
    assert long_message in wide and "a-plan-with-a-long-name" in wide
    assert "…" not in wide


def test_no_field_breaks_a_row(node: Path, now_ms: int) -> None:
    record(node, job("line one\nline two\tand\ta tab\r\x1b[2J", now_ms, plan="p1"),
           job("second", now_ms - 1000))

    for args in ((), ("--wide",)):
        lines = run(*args).output.splitlines()
        assert len(lines) == 3
        assert "line one" in lines[1] and "a tab" in lines[1]
        assert lines[2].split()[-1] == "second"
        assert not any(ch in lines[1] for ch in "\x1b\t\r")


def test_the_limit_says_its_range(node: Path) -> None:
    result = run("--limit", "100001")
    assert result.exit_code == 2
    assert "1<=x<=100000" in result.stderr
    assert "100,000" in run("--help").output


def test_durations_and_cells() -> None:
    assert [duration_text(ms) for ms in (850, 12_000, 112_000, 11_040_000, 183_600_000)] == [
        "850ms", "12s", "1m52s", "3h04m", "2d03h"]
    assert cell("abcdef", 4) == "abc…"
    assert cell("abc", 4) == "abc"
    assert cell("a\nb", None) == "a\\nb"


def test_relative_and_absolute_times() -> None:
    zone = TimeZoneChoice(utc=True)
    assert zone.parse("2h", 10 * HOUR_MS, "--since") == 8 * HOUR_MS
    assert zone.parse("1w", 8 * 24 * HOUR_MS, "--since") == 24 * HOUR_MS
    assert zone.parse("1970-01-02", 0, "--since") == 24 * HOUR_MS
    assert zone.parse("1970-01-01T03:00+01:00", 0, "--since") == 2 * HOUR_MS
    assert zone.show(0) == "-"
    with pytest.raises(click.BadParameter, match="not a time"):
        zone.parse("soon", 0, "--until")
