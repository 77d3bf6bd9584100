"""Traffic modes: replay of the cassette recorded from the real local server, record scrubbing, misses."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
import yaml

from llmspell.providers import traffic
from llmspell.providers.base import ChatMessage, ChatRequest, ReplayMissError
from llmspell.runtime.io import get_io
from tests.providers.conftest import make_registry

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "data" / "two_agents.lua"
CASSETTES = HERE / "cassettes" / "two_agents"
EXPECTED = (CASSETTES / "expected_output.txt").read_text()

ROUTED = {
    "LLMSPELL_PROVIDER_OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
    "LLMSPELL_PROVIDER_OPENAI_FORCE_MODEL": "gemma",
    "LLMSPELL_PROVIDER_ANTHROPIC_TYPE": "openai",
    "LLMSPELL_PROVIDER_ANTHROPIC_BASE_URL": "http://127.0.0.1:9/v1",
    "LLMSPELL_PROVIDER_ANTHROPIC_FORCE_MODEL": "gemma",
}


def _runtime(env: dict[str, str]) -> Any:
    from llmspell.bootstrap import create_runtime
    from llmspell.config import load_config
    from llmspell.script.engine import BufferSink

    full = {k: v for k, v in os.environ.items() if not k.startswith("LLMSPELL_")}
    full.update(env)
    rt = create_runtime(load_config(env=full), stdout=BufferSink(), stderr=BufferSink())
    return rt


@pytest.fixture
def replay_rt() -> Any:
    with traffic.use("live"):
        rt = _runtime({**ROUTED, "LLMSPELL_TRAFFIC": "replay", "LLMSPELL_CASSETTE_DIR": str(CASSETTES)})
        try:
            yield rt
        finally:
            rt.close()


def test_replay_serves_repeated_runs_without_keys(replay_rt: Any) -> None:
    assert traffic.installed().mode == "replay"
    code = SCRIPT.read_text()
    for _ in range(3):
        replay_rt.stdout.parts.clear()
        replay_rt.run_string(code, "@two_agents.lua")
        assert replay_rt.stdout.text == EXPECTED
    stats = replay_rt.services.stats.as_dict()
    assert stats["llm_calls"] == 2 and stats["agents_created"] == 2
    assert set(stats["tokens"]) == {"gpt-4o-mini", "claude-3-5-haiku-latest"}
    assert stats["cost_usd"] > 0  # priced for the models the script named, not the wire model


def test_replay_matches_concurrent_requests_by_content(replay_rt: Any) -> None:
    replay_rt.run_string(SCRIPT.read_text(), "@two_agents.lua")
    writer = replay_rt.services.agents.get("writer")
    critic = replay_rt.services.agents.get("critic")
    writer.clear_history()
    critic.clear_history()
    first = writer.get_history()
    assert first == []
    a_text = EXPECTED.split("\ncritic: ")[0][len("writer: "):]

    async def both() -> list[dict[str, Any]]:
        # Reverse order of the recording, at the same time.
        return list(await asyncio.gather(
            critic.aexecute({"text": a_text, "instruction": "Critique this:"}),
            writer.aexecute("Write about the sea.")))

    c, w = get_io().run(both(), timeout=30)
    assert w["text"] == a_text
    assert EXPECTED.split("\ncritic: ")[1].startswith(c["text"])


def test_replay_miss_names_the_request(replay_rt: Any) -> None:
    replay_rt.run_string("""
        local a = Agent.builder():name("w"):model("openai/gpt-4o-mini"):max_tokens(16):build()
        local ok, err = pcall(function() return a:execute("Something never recorded here") end)
        assert(not ok)
        print(err)
    """)
    err = replay_rt.stdout.text
    assert "agent 'w' (openai/gpt-4o-mini): replay: no recorded response for POST" in err
    assert "/v1/chat/completions (model 'gemma', user: \"Something never recorded here\")" in err
    assert "re-record with the record command" in err and "LLMSPELL_TRAFFIC=record" in err
    assert "the nearest recording differs at body offset" in err


def test_cli_replay_of_the_recorded_cassette(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMSPELL_") and not k.endswith("_API_KEY")}
    env.update(ROUTED)
    env["LLMSPELL_CASSETTE_DIR"] = str(CASSETTES)
    proc = subprocess.run([sys.executable, "-m", "llmspell.cli.main", "run", "--traffic", "replay", str(SCRIPT)],
                          env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == EXPECTED


OK = {"model": "m", "choices": [{"message": {"role": "assistant", "content": "hello"}, "finish_reason": "stop"}],
      "usage": {"prompt_tokens": 3, "completion_tokens": 1}}


def test_record_scrubs_secrets_and_replay_ignores_volatile_fields(tmp_path: Path) -> None:
    reg = make_registry({"providers": {"gw": {"base_url": "https://gw.test/v1?key=sekrit-query&region=eu",
                                              "api_key_env": "GW_KEY"}}},
                        env={"GW_KEY": "sk-secret-header"})
    req = ChatRequest(model="m", messages=[ChatMessage("user", "hi")], max_tokens=8)
    with traffic.use("record", tmp_path), respx.mock() as mock:
        mock.post(url__startswith="https://gw.test/v1").mock(return_value=httpx.Response(
            200, json=OK, headers={"set-cookie": "session=abc", "x-request-id": "req_1", "openai-organization": "org"}))
        base = reg.base_url("gw")
        assert base is not None
        resp = get_io().run(reg.chat("gw", req))
    assert resp.text == "hello"
    text = traffic.cassette_path(tmp_path).read_text()
    for secret in ("sk-secret-header", "sekrit-query", "session=abc", "req_1", "openai-organization"):
        assert secret not in text
    data = yaml.safe_load(text)
    assert data["version"] == 1 and len(data["interactions"]) == 1
    assert "region=eu" in data["interactions"][0]["request"]["uri"]
    # Replay: no key, other host, and a volatile field added: still matches.
    reg2 = make_registry({"providers": {"gw": {"base_url": "http://other.test/v1?region=eu"}}}, env={})
    with traffic.use("replay", tmp_path):
        assert get_io().run(reg2.chat("gw", req)).text == "hello"
        with pytest.raises(ReplayMissError):
            get_io().run(reg2.chat("gw", ChatRequest(model="m", messages=[ChatMessage("user", "other")],
                                                     max_tokens=8)))


def test_match_key_ignores_host_and_volatile_fields() -> None:
    a = traffic.match_key("POST", "http://127.0.0.1:8080/v1/chat/completions",
                          b'{"model":"m","messages":[],"user":"u1","stream_options":{"x":1}}')
    b = traffic.match_key("post", "https://api.openai.com/v1/chat/completions", b'{"messages":[],"model":"m"}')
    assert a == b
    c = traffic.match_key("POST", "https://api.openai.com/v1/chat/completions", b'{"messages":[],"model":"n"}')
    assert a != c
    # generated default agent names (random per run) do not break matching
    n1 = b'{"messages":[{"role":"system","content":"You are agent_1a2b3c4d, a helpful AI assistant."}]}'
    n2 = b'{"messages":[{"role":"system","content":"You are agent_99ff00aa, a helpful AI assistant."}]}'
    assert traffic.match_key("POST", "http://h/v1/chat/completions", n1) == \
        traffic.match_key("POST", "http://h/v1/chat/completions", n2)
    # non-provider URLs (network tools) keep their host
    assert traffic.match_key("GET", "https://a.test/x", None) != traffic.match_key("GET", "https://b.test/x", None)


def test_replay_without_cassette_is_a_clear_error(tmp_path: Path) -> None:
    reg = make_registry()
    req = ChatRequest(model="m", messages=[ChatMessage("user", "hi")], max_tokens=8)
    with traffic.use("replay", tmp_path / "missing"), pytest.raises(ReplayMissError) as ei:
        get_io().run(reg.chat("openai", req))
    assert "no cassette at" in str(ei.value) and "LLMSPELL_TRAFFIC=record" in str(ei.value)


def test_cassette_path_and_env_helpers(tmp_path: Path) -> None:
    assert traffic.cassette_path(tmp_path) == tmp_path / "cassette.yaml"
    assert traffic.current_mode({"LLMSPELL_TRAFFIC": "Replay"}) == "replay"
    assert traffic.current_mode({}) == "live"
    with pytest.raises(ValueError):
        traffic.current_mode({"LLMSPELL_TRAFFIC": "bogus"})
