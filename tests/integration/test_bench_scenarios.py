"""`synchub bench` end to end with tiny sizes: the figure lines, baselines, ratios, --json.

These check shape and sense, not speed: speed is what the benchmarks report.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import psycopg
import pytest
from postgres_support import fresh_database

from synchub_testing import LAUNCHER

pytestmark = [pytest.mark.integration, pytest.mark.alone]

FIGURE = re.compile(
    r"^(?P<name>[a-z_]+\.[a-z0-9_]+): (?P<value>[0-9.,]+) (?P<unit>\S.*?)"
    r"(?: \((?P<label>[^:]+): (?P<base>[0-9.,]+) (?P<base_unit>\S.*?), "
    r"ratio: (?P<ratio>[0-9.]+)\))?$"
)

SCENARIOS: dict[str, tuple[list[str], set[str]]] = {
    "ingest": (["ingest", "--ops", "500", "--repeat", "1"], {"ingest.ops_per_second"}),
    "peers": (["peers", "--peers", "5", "--ops", "20"],
              {"peers.all_synced_seconds", "peers.hub_peak_rss_mb"}),
    "idle": (["peers", "--idle", "5", "--hold", "1.5", "--heartbeat-interval", "0.5"],
             {"peers.idle_connected_at_end"}),
    "latency": (["latency", "--peers", "3", "--samples", "20", "--rate", "100"],
                {"latency.p50_ms", "latency.p99_ms"}),
    "latency-agent": (["latency", "--through-agent", "--jobs", "10"],
                      {"latency.agent_p50_ms", "latency.agent_p99_ms",
                       "latency.agent_p99_vs_raw_ms"}),
    "handshakes": (["handshakes", "--count", "20", "--repeat", "1"], {"handshakes.per_second"}),
    "resync": (["resync", "--ops", "500", "--repeat", "1"],
               {"resync.bytes_sent", "resync.resumed_bytes_both_ways", "resync.resumed_seconds",
                "resync.unchanged_bytes_both_ways"}),
    "web": (["web", "--peers", "5", "--ops", "200", "--repeat", "2"],
            {"web.dashboard_ms", "web.api_errors_ms"}),
    "hostile": (["hostile", "--holders", "20", "--sources", "2", "--attempts", "3"],
                {"hostile.hello_flood_connected", "hostile.hello_flood_slowest_ms"}),
    "hostile-revoke": (["hostile-writes", "--attack", "revoke", "--batches", "200"],
                       {"revoke.error_auth_seconds"}),
    # revoke through the older spelling (scripts read it), the others through the new one
    "hostile-displace": (["hostile", "--attack", "displace", "--batches", "200"], set()),
    "hostile-fairness": (["hostile", "--attack", "fairness", "--diff-ids", "50000",
                          "--depth", "2", "--syncs", "2"], {"fairness.sync_seconds"}),
    "hostile-memory": (["hostile", "--attack", "memory", "--scale", "0.02", "--holders", "20",
                        "--sources", "2", "--settle", "1"], {"memory.settled_rss_mb"}),
}
# Scenarios whose figures are one count at the end, with no samples behind them.
COUNTED_ONCE = {"idle"}


def bench(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(LAUNCHER), "bench", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


class Run(NamedTuple):
    """One run of a scenario: the lines it printed and the JSON object it wrote."""

    lines: list[str]
    result: dict[str, Any]


def bench_run(directory: Path, *args: str) -> Run:
    json_file = directory / f"{uuid.uuid4().hex}.json"
    lines = bench(*args, "--json-file", str(json_file)).splitlines()
    return Run(lines, json.loads(json_file.read_text()))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Run]:
    """Each scenario run once for the whole module, however many tests read it."""
    directory = tmp_path_factory.mktemp("bench")
    done: dict[str, Run] = {}

    def run(scenario: str) -> Run:
        if scenario not in done:
            done[scenario] = bench_run(directory, *SCENARIOS[scenario][0])
        return done[scenario]

    return run


def number(text: str) -> float:
    return float(text.replace(",", ""))


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_each_figure_line_carries_its_baseline_and_ratio(
    scenario: str, runs: Callable[[str], Run],
) -> None:
    args, with_baseline = SCENARIOS[scenario]
    lines = runs(scenario).lines
    assert lines[0].startswith(f"# synchub bench {args[0]} (")
    figures = {}
    for line in lines:
        if line.startswith(("#", "goal ")):
            assert not line.startswith("goal ") or line.endswith((": met", ": SHORT")), line
            continue
        match = FIGURE.match(line)
        assert match, f"not a figure line: {line!r}"
        figures[match["name"]] = match
    assert with_baseline <= set(figures), lines
    for name in with_baseline:
        match = figures[name]
        assert match["base"] is not None, f"{name} has no baseline: {lines}"
        value, base, ratio = number(match["value"]), number(match["base"]), float(match["ratio"])
        assert value >= 0 and base > 0
        assert ratio == pytest.approx(value / base, rel=0.05, abs=0.01)
    assert any(line.startswith("goal ") for line in lines)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_json_has_the_same_figures_as_numbers(
    scenario: str, runs: Callable[[str], Run],
) -> None:
    args, with_baseline = SCENARIOS[scenario]
    run = runs(scenario)
    result = run.result
    assert result["scenario"] == args[0]
    assert isinstance(result["params"], dict) and isinstance(result["notes"], list)
    by_name = {f["name"]: f for f in result["figures"]}
    shown = [m["name"] for m in map(FIGURE.match, run.lines) if m]
    assert shown == [f["name"] for f in result["figures"]]
    assert with_baseline <= set(by_name)
    for figure in result["figures"]:
        assert set(figure) == {"name", "value", "unit", "samples", "baseline", "ratio"}
        assert isinstance(figure["value"], float) and figure["value"] >= 0
        assert isinstance(figure["unit"], str) and figure["unit"]
    for name in with_baseline:
        figure = by_name[name]
        baseline = figure["baseline"]
        assert baseline["value"] > 0 and figure["value"] >= 0
        assert figure["ratio"] == pytest.approx(figure["value"] / baseline["value"])
        assert figure["samples"] or scenario in COUNTED_ONCE, figure
        assert all(s >= 0 for s in figure["samples"])
    goals = [line for line in run.lines if line.startswith("goal ")]
    assert [g["met"] for g in result["goals"]] == [g.endswith(": met") for g in goals]
    for goal in result["goals"]:
        assert isinstance(goal["text"], str) and isinstance(goal["met"], bool)


def test_json_goes_to_stdout_alone_with_json(tmp_path: Path) -> None:
    result = json.loads(bench(*SCENARIOS["ingest"][0], "--json"))
    assert result["scenario"] == "ingest"
    assert {f["name"] for f in result["figures"]} >= SCENARIOS["ingest"][1]


def test_idle_peers_all_stay_connected(runs: Callable[[str], Run]) -> None:
    result = runs("idle").result
    held = {f["name"]: f for f in result["figures"]}["peers.idle_connected_at_end"]
    assert held["value"] == held["baseline"]["value"] == 5
    assert [g["met"] for g in result["goals"]] == [True]


def test_a_json_file_where_no_directory_is_is_a_usage_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(LAUNCHER), "bench", "ingest", "--json-file",
         str(tmp_path / "missing" / "out.json")],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 2
    assert "is not a directory" in done.stderr
    assert "Traceback" not in done.stderr


def test_bad_sizes_get_one_line_and_a_usage_error() -> None:
    done = subprocess.run(
        [sys.executable, str(LAUNCHER), "bench", "ingest", "--ops", "0"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr


def test_ingest_on_postgresql_has_the_same_figures_and_leaves_the_database_as_it_was() -> None:
    with fresh_database() as url:
        sqlite = json.loads(bench(*SCENARIOS["ingest"][0], "--json"))
        result = json.loads(bench(*SCENARIOS["ingest"][0], "--store", url, "--json"))

        assert [f["name"] for f in result["figures"]] == [f["name"] for f in sqlite["figures"]]
        assert set(result) == set(sqlite)
        assert result["params"]["store"] == url and sqlite["params"]["store"] == "sqlite"
        rate = result["figures"][0]
        assert rate["baseline"]["value"] > 0 and rate["value"] > 0
        assert rate["ratio"] == pytest.approx(rate["value"] / rate["baseline"]["value"])
        assert any("PostgreSQL COPY" in note for note in result["notes"])
        with psycopg.connect(url) as conn:
            left = conn.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'synchub_bench%' "
                "UNION ALL SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
        assert left == []


def test_a_bad_store_url_is_one_line_and_a_usage_error() -> None:
    done = subprocess.run(
        [sys.executable, str(LAUNCHER), "bench", "ingest", "--store", "mysql://db/x"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 2
    assert "is not a postgresql:// URL" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(("args", "names"), [
    (["handshakes", "--count", "20", "--repeat", "1"],
     ["handshakes.cluster_per_second", "handshakes.cluster_hub_cpu_ms_each"]),
    (["peers", "--peers", "6", "--ops", "20"],
     ["peers.cluster_synced_per_second", "peers.cluster_ops_per_second",
      "peers.cluster_all_synced_seconds"]),
])
def test_two_hubs_on_one_database_beside_one_hub(
    args: list[str], names: list[str], tmp_path: Path,
) -> None:
    with fresh_database() as url:
        lines, result = bench_run(tmp_path, *args, "--hubs", "2", "--store", url)
        assert [f["name"] for f in result["figures"]] == names
        for fig in result["figures"]:
            assert fig["baseline"]["label"] == "one hub"
            assert fig["value"] > 0 and fig["baseline"]["value"] > 0
        assert result["params"]["hubs"] == 2
        shown = [m for m in map(FIGURE.match, lines) if m]
        assert [m["name"] for m in shown] == names
        assert all(m["label"] == "one hub" and m["ratio"] for m in shown)
        with psycopg.connect(url) as conn:
            left = conn.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'synchub_bench%'"
            ).fetchall()
        assert left == []


def test_hubs_without_a_store_is_a_usage_error() -> None:
    done = subprocess.run(
        [sys.executable, str(LAUNCHER), "bench", "handshakes", "--hubs", "2"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 2
    assert "--hubs above 1 needs --store" in done.stderr


def test_hostile_memory_reports_the_hub_memory_before_during_and_after(
    runs: Callable[[str], Run],
) -> None:
    result = runs("hostile-memory").result
    by_name = {f["name"]: f for f in result["figures"]}
    assert list(by_name) == ["memory.baseline_rss_mb", "memory.peak_rss_mb",
                             "memory.settled_rss_mb", "memory.fall_back_seconds",
                             "memory.attack_seconds"]
    baseline = by_name["memory.baseline_rss_mb"]["value"]
    # A real hub process: tens of MiB at rest, and the attack never shrank it below that.
    assert 10 < baseline < by_name["memory.peak_rss_mb"]["value"]
    assert by_name["memory.peak_rss_mb"]["baseline"]["value"] == 512
    assert by_name["memory.settled_rss_mb"]["baseline"]["value"] == baseline
    assert 0 <= by_name["memory.fall_back_seconds"]["value"] <= result["params"]["settle"]
    assert by_name["memory.attack_seconds"]["value"] > 0
    phases = [note for note in result["notes"] if note.startswith("last run, ")]
    assert [p.split(":")[0].removeprefix("last run, ") for p in phases] == [
        "big-batches", "send-config", "list-resources", "unread", "displaced"]
    # Every phase reached its end: the hub answered the diff behind it or cut the session.
    assert all("caught up" in p or "cut (" in p for p in phases), phases
    goals = {g["text"]: g["met"] for g in result["goals"]}
    assert goals["an authorized client connects after the attack"] is True


@pytest.mark.parametrize(("args", "message"), [
    (["--attack", "revoke", "--holders", "5"],
     "--holders applies to --attack hello-flood or memory, not revoke"),
    (["--attack", "memory", "--batches", "5"],
     "--batches applies to --attack revoke or displace, not memory"),
    (["--attack", "hello-flood", "--settle", "1"],
     "--settle applies to --attack memory, not hello-flood"),
])
def test_a_hostile_flag_for_another_attack_is_a_usage_error(
    args: list[str], message: str,
) -> None:
    done = subprocess.run(
        [sys.executable, str(LAUNCHER), "bench", "hostile", *args],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr
