"""Agent creation (gate <= 50 ms, aim 0.5 ms) and per-call client overhead on a replayed request.

Run: `pytest benchmarks/test_bench_agents.py -p no:xdist --benchmark-only`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from benchmarks.conftest import gate, gate_value
from llmspell.providers import traffic
from llmspell.runtime.io import get_io

ROOT = Path(__file__).resolve().parent.parent
CASSETTES = ROOT / "tests" / "providers" / "cassettes" / "two_agents"
ROUTED = {
    "LLMSPELL_PROVIDER_OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
    "LLMSPELL_PROVIDER_OPENAI_FORCE_MODEL": "gemma",
}
PROMPT = "Write about the sea."
SYSTEM = "You write one short sentence."


def _runtime(env: dict[str, str]) -> Any:
    from llmspell.bootstrap import create_runtime
    from llmspell.config import load_config
    from llmspell.script.engine import BufferSink

    full = {k: v for k, v in os.environ.items() if not k.startswith("LLMSPELL_") and not k.endswith("_API_KEY")}
    full.update(env)
    return create_runtime(load_config(env=full), stdout=BufferSink(), stderr=BufferSink())


@pytest.fixture
def replay_rt() -> Iterator[Any]:
    with traffic.use("live"):
        rt = _runtime({**ROUTED, "LLMSPELL_TRAFFIC": "replay", "LLMSPELL_CASSETTE_DIR": str(CASSETTES)})
        try:
            yield rt
        finally:
            rt.close()


def test_bench_agent_creation(benchmark: Any) -> None:
    rt = _runtime({})
    try:
        build = rt.lua.eval("""function()
            return Agent.builder():name("bench"):model("openai/gpt-4o-mini"):system_prompt("S")
                :temperature(0.2):max_tokens(64):build()
        end""")
        rt.call_chunk(rt.lua.eval("function() end"))  # marks this thread as the Lua thread
        benchmark.pedantic(build, rounds=2000, warmup_rounds=50, iterations=1)
    finally:
        rt.close()
    gate(benchmark, "agent creation", p50_max=0.050, note="Agent.builder()...:build(), no network; aim 0.5 ms")


def test_bench_agent_execute_replayed(benchmark: Any, replay_rt: Any) -> None:
    rt = replay_rt
    rt.run_string(f'A = Agent.builder():name("writer"):model("openai/gpt-4o-mini"):system_prompt("{SYSTEM}")'
                  ':max_tokens(16):temperature(0):build()')
    call = rt.lua.eval(f'function() return A:execute({{text = "{PROMPT}", history = false}}) end')
    benchmark.pedantic(call, rounds=500, warmup_rounds=20, iterations=1)
    gate(benchmark, "agent execute on a replayed request", p50_max=0.020,
         note="Lua agent:execute -> IO loop -> provider adapter -> replay transport and back")


def test_bench_client_overhead_vs_raw_replay(benchmark: Any, replay_rt: Any) -> None:
    """The agent/provider layers' own cost: agent:execute minus a bare httpx POST of the same replayed body."""
    import json
    import statistics
    import time

    rt = replay_rt
    rt.run_string(f'A = Agent.builder():name("writer"):model("openai/gpt-4o-mini"):system_prompt("{SYSTEM}")'
                  ':max_tokens(16):temperature(0):build()')
    call = rt.lua.eval(f'function() return A:execute({{text = "{PROMPT}", history = false}}) end')
    body = {"model": "gemma", "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}],
            "max_tokens": 16, "stream": False, "temperature": 0.0}
    client = get_io().http_client("http://127.0.0.1:9/v1")

    async def raw() -> httpx.Response:
        return await client.post("http://127.0.0.1:9/v1/chat/completions", content=json.dumps(body))

    def raw_sync() -> None:
        get_io().run(raw()).raise_for_status()

    def timed(fn: Any, n: int) -> list[float]:
        out = []
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
        return out

    timed(raw_sync, 20)
    timed(call, 20)
    raws, calls = [], []
    for _ in range(10):  # interleave to share the machine's noise
        raws += timed(raw_sync, 30)
        calls += timed(call, 30)
    benchmark.pedantic(call, rounds=50, iterations=1)
    raw_ms, call_ms = statistics.median(raws) * 1000, statistics.median(calls) * 1000
    gate_value("agent client overhead per replayed call", call_ms - raw_ms, unit="ms", limit="<= 10 ms",
               passed=call_ms - raw_ms <= 10.0, peer="bare httpx POST through the replay transport",
               peer_median=raw_ms, note=f"agent:execute p50 {call_ms:.3f} ms vs raw {raw_ms:.3f} ms",
               benchmark=benchmark)
