"""Success rates per group and layer, and the application gates of targets.md."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .manifest import AppManifest

#: Minimum success rate per group on live traffic (targets.md); replay demands 100 % everywhere.
LIVE_SUCCESS_GATES: dict[str, float] = {"simple": 1.0, "complex": 0.9, "expert": 0.8}
#: Wall-time limit per app run on live traffic, by group (seconds).
LIVE_WALL_GATES: dict[str, float] = {"simple": 60.0, "complex": 180.0, "expert": 300.0}
#: The whole suite on replay (seconds, summed app wall times).
REPLAY_SUITE_SECONDS = 60.0
#: Cost per run of an expert app (USD).
EXPERT_COST_GATE = 2.0
#: RSS growth of one kernel over repeated runs, after the first five (bytes).
MEMORY_GROWTH_GATE = 10 * 1024 * 1024
MEMORY_WARMUP_RUNS = 5


def wilson(passed: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a pass rate (95 % for z = 1.96); (0, 1) when nothing ran."""
    if total <= 0:
        return 0.0, 1.0
    p = passed / total
    denom = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class Rate:
    """Passed runs out of all runs for one group, layer or app."""

    passed: int = 0
    total: int = 0

    @property
    def rate(self) -> float:
        return self.passed / self.total if self.total else 0.0

    def add(self, ok: bool) -> None:
        self.total += 1
        self.passed += int(ok)

    @property
    def interval(self) -> tuple[float, float]:
        """95 % Wilson interval of the rate."""
        return wilson(self.passed, self.total)

    def to_dict(self) -> dict[str, Any]:
        lo, hi = self.interval
        return {"passed": self.passed, "total": self.total, "rate": round(self.rate, 4),
                "wilson95": [round(lo, 4), round(hi, 4)]}


@dataclass
class Outcome:
    """One judged run reduced to what the rates and gates need."""

    app: str
    group: str
    layer: int
    passed: bool
    wall_s: float
    cost_usd: float


@dataclass
class Gate:
    """One gate of targets.md, its measured value and whether it held."""

    name: str
    passed: bool
    measured: str
    required: str

    @property
    def message(self) -> str:
        verdict = "ok" if self.passed else "FAILED"
        return f"{self.name}: {self.measured} (required {self.required}) {verdict}"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "measured": self.measured, "required": self.required}


@dataclass
class Rates:
    """Success rates by group, by layer and by app."""

    by_group: dict[str, Rate] = field(default_factory=dict)
    by_layer: dict[int, Rate] = field(default_factory=dict)
    by_app: dict[str, Rate] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"by_group": {k: v.to_dict() for k, v in self.by_group.items()},
                "by_layer": {str(k): v.to_dict() for k, v in sorted(self.by_layer.items())},
                "by_app": {k: v.to_dict() for k, v in self.by_app.items()}}


def outcome(manifest: AppManifest, passed: bool, wall_s: float, cost_usd: float) -> Outcome:
    return Outcome(app=manifest.name, group=manifest.group, layer=manifest.layer, passed=passed,
                   wall_s=wall_s, cost_usd=cost_usd)


def success_rates(outcomes: Iterable[Outcome]) -> Rates:
    """Count passes per group, layer and app."""
    rates = Rates()
    for o in outcomes:
        rates.by_group.setdefault(o.group, Rate()).add(o.passed)
        rates.by_layer.setdefault(o.layer, Rate()).add(o.passed)
        rates.by_app.setdefault(o.app, Rate()).add(o.passed)
    return rates


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def memory_growth(rss: list[int], warmup: int = MEMORY_WARMUP_RUNS) -> int | None:
    """RSS growth after the warm-up runs: max(RSS after each later run) - RSS after the warm-up."""
    if len(rss) <= warmup:
        return None
    return max(rss[warmup:]) - rss[warmup - 1]


def evaluate(outcomes: list[Outcome], traffic: str, memory: dict[str, list[int]] | None = None,
             session_s: float | None = None) -> list[Gate]:
    """Every gate that applies to these runs; replay demands that every run passes.

    `session_s` is the whole harness session per repetition (kernel starts included), when known.
    """
    gates: list[Gate] = []
    rates = success_rates(outcomes)
    for group in ("simple", "complex", "expert"):
        r = rates.by_group.get(group)
        if r is None or not r.total:
            continue
        need = 1.0 if traffic == "replay" else LIVE_SUCCESS_GATES[group]
        gates.append(Gate(f"success rate, {group} apps", r.rate >= need - 1e-9,
                          f"{_pct(r.rate)} ({r.passed}/{r.total})", f">= {_pct(need)}"))
    if traffic == "replay" and outcomes:
        apps = {o.app for o in outcomes}
        reps = max(1, len(outcomes) // max(1, len(apps)))
        suite = sum(o.wall_s for o in outcomes) / reps
        gates.append(Gate("replay suite wall time (per repetition)", suite < REPLAY_SUITE_SECONDS,
                          f"{suite:.1f} s", f"< {REPLAY_SUITE_SECONDS:g} s"))
        if session_s is not None:
            gates.append(Gate("replay session wall time incl. kernel starts (per repetition)",
                              session_s < REPLAY_SUITE_SECONDS, f"{session_s:.1f} s", f"< {REPLAY_SUITE_SECONDS:g} s"))
    if traffic != "replay":
        for group, limit in LIVE_WALL_GATES.items():
            walls = [o.wall_s for o in outcomes if o.group == group]
            if walls:
                gates.append(Gate(f"wall time per run, {group} apps", max(walls) < limit,
                                  f"max {max(walls):.1f} s", f"< {limit:g} s"))
    expert_costs = [o.cost_usd for o in outcomes if o.group == "expert"]
    if expert_costs:
        gates.append(Gate("cost per run, expert apps", max(expert_costs) < EXPERT_COST_GATE,
                          f"max ${max(expert_costs):.4f}", f"< ${EXPERT_COST_GATE:.2f}"))
    for app, series in sorted((memory or {}).items()):
        growth = memory_growth(series)
        if growth is None:
            continue
        gates.append(Gate(f"memory stability, {app} ({len(series)} runs)", growth <= MEMORY_GROWTH_GATE,
                          f"{growth / 2**20:.2f} MB growth after run {MEMORY_WARMUP_RUNS}",
                          f"<= {MEMORY_GROWTH_GATE / 2**20:g} MB"))
    return gates
