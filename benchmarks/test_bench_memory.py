"""Memory stability gate of targets.md: RSS of one kernel over 200 replayed runs of one app.

The app is webapp-creator, the largest of the suite (20 agents, 4 workflows, State) and the one whose
kernel grew ~77 KB per run before the registries stopped keeping every agent and workflow ever built.
The figure is max(RSS after runs 6..N) - RSS after run 5 (harness.gates.memory_growth), gate <= 2 MB.
The slope of the last half (KB per run, least squares) is reported beside it: a leak shows there
even when the allocator's first pages hide it in the maximum.

Run: `pytest benchmarks/test_bench_memory.py -p no:xdist --benchmark-only`.
"""

from __future__ import annotations

import io
import os
import statistics
from pathlib import Path
from typing import Any

import pytest

from benchmarks.conftest import gate_value

APP = os.environ.get("LLMSPELL_BENCH_MEMORY_APP", "webapp-creator")
RUNS = int(os.environ.get("LLMSPELL_BENCH_MEMORY_RUNS", "200"))
GATE_BYTES = 2 * 1024 * 1024


def _slope_kb_per_run(rss: list[int]) -> float:
    """Least-squares slope of RSS (KB per run) over the given series."""
    xs = list(range(len(rss)))
    mx, my = statistics.fmean(xs), statistics.fmean(rss)
    den = sum((x - mx) ** 2 for x in xs) or 1.0
    return sum((x - mx) * (y - my) for x, y in zip(xs, rss, strict=True)) / den / 1024.0


def test_bench_memory_200_runs_one_kernel(benchmark: Any, tmp_path: Path) -> None:
    harness = pytest.importorskip("harness")
    from harness.gates import MEMORY_WARMUP_RUNS, memory_growth
    from harness.kernel_driver import KernelDriver
    from harness.manifest import discover
    from harness.runner import HarnessOptions, app_args, kernel_settings

    [m] = discover(harness.APPS_DIR, [APP])
    opts = HarnessOptions(traffic="replay", report_dir=tmp_path, gates=False)
    driver = KernelDriver(kernel_settings(m, opts))
    driver.start()
    code = m.main_lua.read_text(encoding="utf-8")
    log = io.StringIO()
    rss: list[int] = []

    def once(i: int) -> None:
        out = tmp_path / "runs" / f"r{i % 3}"  # a few directories reused: the disk is not what is measured
        out.mkdir(parents=True, exist_ok=True)
        r = driver.run(m.name, i, code, app_args(m, out), out, log, m.runtime_seconds * 3)
        assert r.status == "ok", f"{m.name} run {i}: {r.status} {r.error_value}"
        rss.append(r.rss_bytes)
        log.seek(0)
        log.truncate()

    try:
        for i in range(1, RUNS + 1):
            once(i)
        # what pytest-benchmark stores: three more replayed runs (their RSS is not part of the gate)
        series = list(rss)
        benchmark.pedantic(once, args=(RUNS + 1,), rounds=3, iterations=1)
    finally:
        driver.shutdown()
    growth = memory_growth(series)
    assert growth is not None, f"need more than {MEMORY_WARMUP_RUNS} runs"
    tail = series[len(series) // 2:]
    slope = _slope_kb_per_run(tail)
    mb = growth / 2**20
    gate_value(f"memory: RSS slope over the last {len(tail)} of {RUNS} runs of {APP}", slope, unit="KB/run",
               limit="report only", passed=True, note="least squares over RSS after each run")
    gate_value(f"memory: RSS growth of one kernel over {RUNS} runs of {APP} after run {MEMORY_WARMUP_RUNS}",
               mb, unit="MB", limit="<= 2 MB", passed=growth <= GATE_BYTES,
               note=f"RSS {series[MEMORY_WARMUP_RUNS - 1] / 2**20:.1f} MB after run {MEMORY_WARMUP_RUNS}, "
                    f"{series[len(series) // 2 - 1] / 2**20:.1f} MB after run {len(series) // 2}, "
                    f"{series[-1] / 2**20:.1f} MB after run {RUNS}; slope of the last {len(tail)} runs "
                    f"{slope:+.2f} KB/run (was ~77 KB/run)", benchmark=benchmark)
