"""Figures, their baselines, and how a bench run prints them.

One line a figure::

    ingest.ops_per_second: 61,200 ops/s (baseline: 118,000 ops/s, ratio: 0.52)

A figure with no baseline measured beside it but a target in docs/targets.md
names that instead (``goal: 30 s``). ``--json`` prints the same content as one
object (see ``Result.as_json``).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Figure:
    """One measured value; ``samples`` are the repetitions the value is the median of."""

    name: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_unit: str | None = None
    baseline_label: str = "baseline"
    samples: tuple[float, ...] = ()
    baseline_samples: tuple[float, ...] = ()

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline == 0:
            return None
        return self.value / self.baseline

    def line(self) -> str:
        text = f"{self.name}: {number(self.value)} {self.unit}"
        if self.baseline is not None:
            unit = self.baseline_unit or self.unit
            ratio = self.ratio
            shown = "n/a" if ratio is None else f"{ratio:.2f}"
            text += (
                f" ({self.baseline_label}: {number(self.baseline)} {unit}, ratio: {shown})"
            )
        return text

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "samples": list(self.samples),
            "baseline": None if self.baseline is None else {
                "label": self.baseline_label,
                "value": self.baseline,
                "unit": self.baseline_unit or self.unit,
                "samples": list(self.baseline_samples),
            },
            "ratio": self.ratio,
        }


@dataclass(frozen=True)
class Goal:
    """A target from docs/targets.md, checked against this run."""

    text: str
    met: bool

    def line(self) -> str:
        return f"goal {self.text}: {'met' if self.met else 'SHORT'}"


@dataclass(frozen=True)
class Result:
    scenario: str
    figures: tuple[Figure, ...]
    goals: tuple[Goal, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def figure(self, name: str) -> Figure:
        for fig in self.figures:
            if fig.name == name:
                return fig
        raise KeyError(name)

    def lines(self) -> list[str]:
        shown = ", ".join(f"{k}={v}" for k, v in self.params.items())
        out = [f"# synchub bench {self.scenario} ({shown})"]
        out.extend(f"# {note}" for note in self.notes)
        out.extend(fig.line() for fig in self.figures)
        out.extend(goal.line() for goal in self.goals)
        return out

    def as_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "params": dict(self.params),
            "figures": [fig.as_json() for fig in self.figures],
            "goals": [{"text": g.text, "met": g.met} for g in self.goals],
            "notes": list(self.notes),
        }


def median(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("no samples")
    return float(statistics.median(values))


def figure(
    name: str,
    samples: Sequence[float],
    unit: str,
    baseline_samples: Sequence[float] | None = None,
    *,
    baseline_unit: str | None = None,
    baseline_label: str = "baseline",
) -> Figure:
    """A figure whose value (and baseline) is the median of its samples."""
    base = None if baseline_samples is None else median(baseline_samples)
    return Figure(
        name=name,
        value=median(samples),
        unit=unit,
        baseline=base,
        baseline_unit=baseline_unit,
        baseline_label=baseline_label,
        samples=tuple(float(s) for s in samples),
        baseline_samples=tuple(float(s) for s in baseline_samples or ()),
    )


def goal_figure(name: str, samples: Sequence[float], unit: str, goal: float) -> Figure:
    """A figure set beside its target (no baseline is measured for it)."""
    return Figure(
        name=name,
        value=median(samples),
        unit=unit,
        baseline=goal,
        baseline_label="goal",
        samples=tuple(float(s) for s in samples),
    )


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (``fraction`` 0.5 for p50, 0.99 for p99)."""
    if not values:
        raise ValueError("no samples")
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return float(ordered[rank - 1])


def number(value: float) -> str:
    """A value with as many digits as a benchmark figure deserves."""
    size = abs(value)
    if size >= 1000:
        return f"{value:,.0f}"
    if size >= 100:
        return f"{value:.0f}"
    if size >= 10:
        return f"{value:.1f}"
    if size >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"
