"""Runtime start and tracing overhead gates of targets.md.

- runtime start: a new ScriptRuntime with every global until the first script ran: p50 <= 300 ms
  (aim 50 ms).
- tracing span overhead, disabled: well under 1 us per span (gate p50 <= 1 us).
- tracing span overhead, enabled (latency stats; and stats plus debug logging): reported, gated
  loosely (p50 <= 20 us / 100 us per span) so a regression that makes spans costly is caught.

Run: `pytest benchmarks/test_bench_runtime.py -p no:xdist --benchmark-only`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks.conftest import gate
from llmspell.runtime import tracing

SPANS_PER_ROUND = 1000


@pytest.fixture
def bench_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LLMSPELL_STATE_PATH", str(tmp_path / "state.sqlite3"))
    yield


def test_bench_runtime_start(benchmark: Any, bench_env: None) -> None:
    from llmspell.bootstrap import create_runtime
    from llmspell.config import load_config
    from llmspell.script.engine import BufferSink

    config = load_config(env=dict(os.environ))

    def start() -> None:
        rt = create_runtime(config, stdout=BufferSink(), stderr=BufferSink())
        rt.run_string("return 1", "=(bench)")
        rt.close()

    start()  # imports happen once per process; the gate is about a new runtime
    benchmark.pedantic(start, rounds=30, warmup_rounds=2, iterations=1)
    gate(benchmark, "runtime start", p50_max=0.300, note="aim p50 <= 50 ms")


def test_bench_config_load(benchmark: Any, bench_env: None, tmp_path: Path) -> None:
    from llmspell.cli.config_cmd import STARTER
    from llmspell.config import load_config

    (tmp_path / "llmspell.toml").write_text(STARTER)
    env = dict(os.environ)
    benchmark.pedantic(lambda: load_config(env=env), rounds=300, warmup_rounds=10, iterations=1)
    gate(benchmark, "config load (starter file)", p50_max=0.010, note="runs at every start")


def _spans() -> None:
    span = tracing.span
    for _ in range(SPANS_PER_ROUND):
        with span("agent.execute", model="m"):
            pass


@pytest.fixture
def clean_tracing() -> Iterator[None]:
    tracing.configure("warn")
    tracing.enable_stats(False)
    tracing.reset()
    yield
    tracing.enable_stats(False)
    tracing.reset()
    tracing.configure("warn")


def test_bench_span_disabled(benchmark: Any, clean_tracing: None) -> None:
    benchmark.pedantic(_spans, rounds=200, warmup_rounds=5, iterations=1)
    # seconds per 1000 spans x 1000 = microseconds per span
    gate(benchmark, "tracing span disabled", p50_max=1e-3, unit_scale=1000.0, unit="us/span")


def test_bench_span_enabled_stats(benchmark: Any, clean_tracing: None) -> None:
    tracing.enable_stats()
    benchmark.pedantic(_spans, rounds=100, warmup_rounds=2, iterations=1)
    gate(benchmark, "tracing span enabled (stats)", p50_max=20e-3, unit_scale=1000.0, unit="us/span")


def test_bench_span_enabled_logging(benchmark: Any, clean_tracing: None) -> None:
    with open(os.devnull, "w") as sink:
        tracing.configure("warn,llmspell.agent=debug", stream=sink)
        tracing.enable_stats()
        benchmark.pedantic(_spans, rounds=50, warmup_rounds=2, iterations=1)
    gate(benchmark, "tracing span enabled (stats + debug log)", p50_max=100e-3, unit_scale=1000.0, unit="us/span")
