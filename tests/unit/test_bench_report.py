"""How bench figures are computed and printed, and which flags a scenario takes."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from hub.bench.fleet import split
from hub.bench.ingest import ratio_goals
from hub.bench.report import Figure, Goal, Result, figure, goal_figure, number, percentile
from hub.cli.main import cli


def test_a_figure_is_the_median_beside_the_median_baseline() -> None:
    fig = figure("ingest.ops_per_second", [50_000, 70_000, 60_000], "ops/s",
                 [120_000, 100_000, 110_000], baseline_unit="rows/s")
    assert fig.value == 60_000 and fig.baseline == 110_000
    assert fig.line() == (
        "ingest.ops_per_second: 60,000 ops/s (baseline: 110,000 rows/s, ratio: 0.55)"
    )


def test_figures_without_a_baseline_print_the_value_only() -> None:
    assert Figure("resync.seconds", 0.4567, "s").line() == "resync.seconds: 0.457 s"
    assert Figure("x.y", 3.0, "s", baseline=0.0).ratio is None


def test_a_goal_stands_where_no_baseline_is_measured() -> None:
    fig = goal_figure("peers.all_synced_seconds", [6.0], "s", 30.0)
    assert fig.line() == "peers.all_synced_seconds: 6.00 s (goal: 30.0 s, ratio: 0.20)"


def test_results_print_header_notes_figures_goals_and_json() -> None:
    result = Result(
        scenario="latency",
        figures=(figure("latency.p99_ms", [7.5], "ms", [0.2]),),
        goals=(Goal("p99 < 50 ms", True), Goal("something else", False)),
        params={"peers": 3},
        notes=("baseline: raw round trip",),
    )
    assert result.lines() == [
        "# synchub bench latency (peers=3)",
        "# baseline: raw round trip",
        "latency.p99_ms: 7.50 ms (baseline: 0.2 ms, ratio: 37.50)",
        "goal p99 < 50 ms: met",
        "goal something else: SHORT",
    ]
    data = json.loads(json.dumps(result.as_json()))
    assert data["figures"][0]["baseline"]["value"] == 0.2
    assert data["figures"][0]["ratio"] == pytest.approx(37.5)
    assert data["goals"] == [{"text": "p99 < 50 ms", "met": True},
                             {"text": "something else", "met": False}]


def test_nearest_rank_percentiles() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50
    assert percentile(values, 0.99) == 99
    assert percentile([3.0], 0.99) == 3
    with pytest.raises(ValueError):
        percentile([], 0.5)


def test_numbers_keep_a_sensible_precision() -> None:
    assert [number(v) for v in (123456.7, 123.4, 12.34, 1.234, 0.01234)] == [
        "123,457", "123", "12.3", "1.23", "0.0123",
    ]


def test_clients_are_split_evenly_over_workers() -> None:
    assert split(10, 3) == [(0, 4), (4, 3), (7, 3)]
    assert split(2, 4) == [(0, 1), (1, 1)]
    assert sum(size for _, size in split(1001, 4)) == 1001


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--through-agent", "--peers", "5"], "--through-agent times one agent's jobs: drop "
         "--peers (use --jobs)"),
        (["--through-agent", "--rate", "9", "--samples", "3"],
         "drop --rate, --samples (use --jobs)"),
        (["--jobs", "5"], "--jobs needs --through-agent"),
        (["--no-polling-baseline"], "--no-polling-baseline needs --through-agent"),
    ],
)
def test_latency_flags_of_the_other_mode_are_refused_before_anything_runs(
    args: list[str], message: str
) -> None:
    done = CliRunner().invoke(cli, ["bench", "latency", *args])
    assert done.exit_code == 2
    assert message in done.output


def test_ingest_needs_its_median_ratio_and_every_run_near_its_own_baseline() -> None:
    median, worst = ratio_goals(0.8, [80.0, 90.0, 50.0], [100.0, 100.0, 100.0])
    assert median.met and median.text == "ratio >= 0.75 (got 0.80)"
    assert not worst.met and worst.text == "no run below 0.6 (worst 0.50)"
    assert all(goal.met for goal in ratio_goals(0.76, [76.0, 61.0], [100.0, 100.0]))
