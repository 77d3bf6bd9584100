"""Benchmark support: absolute gates from targets.md, p50/p99 in extra_info, a summary for reports/.

Every benchmark records its figure with `gate(benchmark, name, p50_max=..., p99_max=...)` (seconds)
or `gate_value(...)` for derived figures (ratios, throughput). At the end of the session the
figures, their limits and pass/fail are written to reports/benchmarks.json, which the report page
(`python -m benchmarks.report`) turns into a table beside the targets.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPORTS = Path(os.environ.get("LLMSPELL_REPORTS_DIR", Path(__file__).resolve().parent.parent / "reports"))


@dataclass
class Figure:
    """One measured figure of targets.md with its gate."""

    name: str
    unit: str
    median: float
    p99: float | None = None
    limit: str = ""
    passed: bool = True
    peer: str | None = None
    peer_median: float | None = None
    ratio: float | None = None
    rounds: int = 0
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


_FIGURES: list[Figure] = []
_TESTS_WITH_FIGURES: set[str] = set()
_CURRENT_TEST: list[str] = [""]


@pytest.fixture(autouse=True)
def _current_test(request: pytest.FixtureRequest) -> Any:
    """Remember which test is running, so its figures replace the raw pytest-benchmark row."""
    _CURRENT_TEST[0] = request.node.name
    yield
    _CURRENT_TEST[0] = ""


def _record(fig: Figure) -> None:
    _FIGURES.append(fig)
    _TESTS_WITH_FIGURES.add(_CURRENT_TEST[0])


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * q / 100.0
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def _data(benchmark: Any) -> list[float]:
    return list(benchmark.stats.stats.data)


def gate(benchmark: Any, name: str, *, p50_max: float | None = None, p99_max: float | None = None,
         unit_scale: float = 1000.0, unit: str = "ms", note: str = "") -> Figure:
    """Record median/p99 of a pytest-benchmark run and assert the absolute gates (seconds)."""
    data = _data(benchmark)
    med, p99 = statistics.median(data), percentile(data, 99)
    limits = []
    ok = True
    if p50_max is not None:
        limits.append(f"p50 <= {p50_max * unit_scale:g} {unit}")
        ok &= med <= p50_max
    if p99_max is not None:
        limits.append(f"p99 <= {p99_max * unit_scale:g} {unit}")
        ok &= p99 <= p99_max
    fig = Figure(name=name, unit=unit, median=med * unit_scale, p99=p99 * unit_scale,
                 limit=", ".join(limits), passed=bool(ok), rounds=len(data), note=note)
    benchmark.extra_info.update({"p50_" + unit: fig.median, "p99_" + unit: fig.p99, "gate": fig.limit,
                                 "figure": name})
    _record(fig)
    assert ok, f"{name}: median {fig.median:.3f} {unit}, p99 {fig.p99:.3f} {unit} misses the gate ({fig.limit})"
    return fig


def gate_value(name: str, value: float, *, unit: str, limit: str, passed: bool, p99: float | None = None,
               peer: str | None = None, peer_median: float | None = None, note: str = "",
               benchmark: Any = None) -> Figure:
    """Record a derived figure (a ratio, a throughput) and assert its gate."""
    ratio = (value / peer_median) if peer_median else None
    fig = Figure(name=name, unit=unit, median=value, p99=p99, limit=limit, passed=passed, peer=peer,
                 peer_median=peer_median, ratio=ratio, note=note)
    if benchmark is not None:
        benchmark.extra_info.update({"value": value, "gate": limit, "peer": peer, "ratio": ratio, "figure": name})
    _record(fig)
    assert passed, f"{name}: {value:.4g} {unit} misses the gate ({limit})"
    return fig


def sample(fn: Callable[[], Any], rounds: int, warmup: int = 0) -> list[float]:
    """Time `fn` `rounds` times (seconds each), after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def _harvest(session: pytest.Session) -> None:
    """Add a figure for every pytest-benchmark result that no gate() call recorded."""
    bs = getattr(session.config, "_benchmarksession", None)
    known = {f.name for f in _FIGURES}
    for bench in getattr(bs, "benchmarks", None) or []:
        name = bench.name
        if name in known or not getattr(bench, "stats", None) or not bench.stats.data:
            continue
        if "figure" in (getattr(bench, "extra_info", None) or {}) or name in _TESTS_WITH_FIGURES:
            continue  # already recorded by gate()/gate_value() under its readable name
        data = list(bench.stats.data)
        extra = dict(getattr(bench, "extra_info", {}) or {})
        _FIGURES.append(Figure(name=name, unit="ms", median=statistics.median(data) * 1000.0,
                               p99=percentile(data, 99) * 1000.0, limit=str(extra.get("gate", "")),
                               passed=True, rounds=len(data), extra={k: v for k, v in extra.items()
                                                                     if isinstance(v, int | float | str)}))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Write reports/benchmarks.json (merged with figures from earlier runs of other files)."""
    _harvest(session)
    if not _FIGURES:
        return
    REPORTS.mkdir(parents=True, exist_ok=True)
    path = REPORTS / "benchmarks.json"
    existing: dict[str, Any] = {}
    if path.exists():
        try:
            existing = {f["name"]: f for f in json.loads(path.read_text()).get("figures", [])}
        except (ValueError, OSError):
            existing = {}
    for f in _FIGURES:
        existing[f.name] = asdict(f)
    path.write_text(json.dumps({"generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                "figures": list(existing.values())}, indent=2, sort_keys=True))


@pytest.fixture
def figures() -> list[Figure]:
    return _FIGURES
