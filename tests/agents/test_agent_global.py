"""The Agent and Provider globals from Lua (lua-api.md §2, §3), against respx-mocked endpoints."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx

from llmspell.providers import retry, traffic
from llmspell.script.engine import ScriptError

OPENAI = "https://api.openai.test/v1"
ANTHROPIC = "https://api.anthropic.test"
CHAT = f"{OPENAI}/chat/completions"
MESSAGES = f"{ANTHROPIC}/v1/messages"


def openai_reply(text: str = "pong", usage: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"model": "gpt-4o-mini", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]}
    if usage:
        out["usage"] = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    return out


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-key")
    monkeypatch.setenv("LLMSPELL_PROVIDER_OPENAI_BASE_URL", OPENAI)
    monkeypatch.setenv("LLMSPELL_PROVIDER_ANTHROPIC_BASE_URL", ANTHROPIC)


@pytest.fixture
def rt(env: None, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    async def no_sleep(_s: float) -> None:
        return None

    monkeypatch.setattr(retry, "sleep", no_sleep)
    runtime = request.getfixturevalue("lua_runtime")
    assert traffic.installed().mode == "live"
    yield runtime


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as m:
        yield m


def run(rt: Any, code: str) -> str:
    rt.test_out.parts.clear()
    rt.run_string(code, "@main.lua")
    return str(rt.test_out.text)


def sent(route: respx.Route, i: int = -1) -> dict[str, Any]:
    return json.loads(route.calls[i].request.content)


def test_builder_chain_fields_and_no_network_at_build(rt: Any, mock: respx.MockRouter) -> None:
    out = run(rt, """
        local b = Agent.builder():name("writer"):description("Writes")
        b:model("openai/gpt-4o-mini")   -- statement form is kept
        assert(b:temperature(0.2) == b)
        local a = b:build()
        print(a.name, a.model, a.provider, tostring(a))
        print(a and "ready" or "needs API key")
        local ok, err = pcall(function() return a.nope end)
        print(err)
        ok, err = pcall(function() return a.execute("x") end)
        print(err)
    """)
    lines = out.splitlines()
    assert lines[0] == "writer\tgpt-4o-mini\topenai\tAgent(writer, openai/gpt-4o-mini)"
    assert lines[1] == "ready"
    assert lines[2].endswith("unknown field 'nope' on Agent")
    assert lines[3].endswith("Agent:execute must be called with ':'")
    assert len(mock.calls) == 0
    assert rt.services.stats.agents_created == 1


def test_defaults_name_system_prompt_and_max_tokens(rt: Any, mock: respx.MockRouter) -> None:
    route = mock.post(CHAT).mock(return_value=httpx.Response(200, json=openai_reply()))
    out = run(rt, """
        local a = Agent.builder():model("gpt-4o-mini"):build()
        print(a.name)
        a:execute("hello")
        local c = a:get_config()
        print(c.system_prompt, c.temperature == nil, c.max_conversation_length)
    """)
    name = out.splitlines()[0]
    assert re.fullmatch(r"agent_[0-9a-f]{8}", name)
    body = sent(route)
    assert body["messages"] == [
        {"role": "system", "content": f"You are {name}, a helpful AI assistant. LLM-powered agent"},
        {"role": "user", "content": "hello"}]
    assert body["max_tokens"] == 2048 and "temperature" not in body and body["model"] == "gpt-4o-mini"
    assert route.calls[-1].request.headers["authorization"] == "Bearer sk-test-key"
    assert out.splitlines()[1] == f"You are {name}, a helpful AI assistant. LLM-powered agent\ttrue\t100"


def test_missing_key_builds_and_first_execute_names_the_variable(rt: Any, mock: respx.MockRouter,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    rt.services.providers.env = {k: v for k, v in rt.services.providers.env.items() if k != "OPENAI_API_KEY"}
    out = run(rt, """
        local a = Agent.builder():name("writer"):model("openai/gpt-4o-mini"):build()
        print(a and "ready" or "needs API key")
        local ok, err = pcall(a.execute, a, "hi")
        print(err)
    """)
    assert out.splitlines() == [
        "ready",
        "agent 'writer' (openai/gpt-4o-mini): no API key — set OPENAI_API_KEY (or LLMSPELL_PROVIDER_OPENAI_API_KEY), "
        "or point [providers.openai] base_url at a local server"]
    assert len(mock.calls) == 0


def test_message_list_history_and_parameters(rt: Any, mock: respx.MockRouter) -> None:
    route = mock.post(CHAT).mock(side_effect=[httpx.Response(200, json=openai_reply(f"r{i}")) for i in range(1, 5)])
    out = run(rt, """
        local a = Agent.builder():name("w"):model("openai/gpt-4o-mini"):system_prompt("S")
            :temperature(0.7):max_tokens(99):max_conversation_length(2):build()
        a:execute("u1")
        a:execute({prompt = "u2"})
        a:execute({text = "u3", instruction = "Do it", history = false,
                   parameters = {temperature = 0.1, max_tokens = 5, stop = {"X"}, seed = 3, response_format = "json"}})
        a:execute({input = "u4", system = "S2"})
        local h = a:get_history()
        print(#h, h[1].role, h[1].content, h[2].role, h[2].content)
    """)
    b1, b2, b3, b4 = (sent(route, i) for i in range(4))
    assert b1["messages"] == [{"role": "system", "content": "S"}, {"role": "user", "content": "u1"}]
    assert b1["temperature"] == 0.7 and b1["max_tokens"] == 99
    assert b2["messages"] == [{"role": "system", "content": "S"}, {"role": "user", "content": "u1"},
                              {"role": "assistant", "content": "r1"}, {"role": "user", "content": "u2"}]
    # history = false: the history is not sent
    assert b3["messages"] == [{"role": "system", "content": "S"}, {"role": "user", "content": "Do it\n\nu3"}]
    assert b3["temperature"] == 0.1 and b3["max_tokens"] == 5 and b3["stop"] == ["X"] and b3["seed"] == 3
    assert b3["response_format"] == {"type": "json_object"}
    # bounded to the last 2 messages, not extended by the history=false call; `system` replaced the prompt once
    assert b4["messages"] == [{"role": "system", "content": "S2"}, {"role": "user", "content": "u2"},
                              {"role": "assistant", "content": "r2"}, {"role": "user", "content": "u4"}]
    assert out == "2\tuser\tu4\tassistant\tr4\n"


def test_result_table_shape(rt: Any, mock: respx.MockRouter) -> None:
    mock.post(CHAT).mock(side_effect=[
        httpx.Response(200, json=openai_reply('```json\n{"a": [1, 2]}\n```')),
        httpx.Response(200, json=openai_reply("plain", usage=False))])
    out = run(rt, """
        local a = Agent.builder():name("j"):model("openai/gpt-4o-mini"):build()
        local r = a:execute("give json")
        local m = r.metadata
        print(r.text == r.response, r.data.a[2], r.a == nil)
        print(m.agent, m.provider, m.model, m.finish_reason)
        for _, k in ipairs({"input_tokens", "output_tokens", "total_tokens", "token_count", "estimated_tokens",
                            "duration_ms", "execution_time_ms", "provider_total_requests"}) do
          io.write(k, "=", math.type(m[k]), " ")
        end
        print()
        print(m.total_tokens, m.token_count, m.estimated_tokens, math.type(m.cost_usd),
              math.type(m.estimated_cost_cents), m.cost_usd > 0)
        local r2 = a:execute("again")
        print(r2.data == nil, r2.metadata.input_tokens == nil, math.type(r2.metadata.estimated_tokens),
              r2.metadata.provider_total_requests)
    """)
    lines = out.splitlines()
    assert lines[0] == "true\t2\ttrue"
    assert lines[1] == "j\topenai\tgpt-4o-mini\tstop"
    assert "float" not in lines[2] and lines[2].count("=integer") == 8
    assert lines[3] == "15\t15\t15\tfloat\tfloat\ttrue"
    assert lines[4] == "true\ttrue\tinteger\t2"


def test_provider_error_after_retries_names_everything(rt: Any, mock: respx.MockRouter) -> None:
    route = mock.post(CHAT).mock(return_value=httpx.Response(
        503, json={"error": {"message": "overloaded", "type": "server_error"}}))
    out = run(rt, """
        local a = Agent.builder():name("w"):model("openai/gpt-4o-mini"):build()
        local ok, err = pcall(function() local r = a:execute("hi"); return r end)
        print(err)
        print(a:get_last_error() ~= nil, a:get_metrics().failures, a:get_health().consecutive_failures)
    """)
    lines = out.splitlines()
    assert lines[0] == ("main.lua:3: agent 'w' (openai/gpt-4o-mini): 503 overloaded (after 3 attempts) — "
                        "the provider is having trouble; try again later")
    assert lines[1] == "true\t1\t1"
    assert route.call_count == 3


def test_401_message_has_key_hint(rt: Any, mock: respx.MockRouter) -> None:
    mock.post(CHAT).mock(return_value=httpx.Response(401, json={"error": {"message": "invalid api key"}}))
    out = run(rt, """
        local a = Agent.builder():name("w"):model("openai/gpt-4o-mini"):build()
        print(select(2, pcall(a.execute, a, "hi")))
    """)
    assert out == "agent 'w' (openai/gpt-4o-mini): 401 invalid api key — check OPENAI_API_KEY\n"


def test_anthropic_agent_sends_system_top_level(rt: Any, mock: respx.MockRouter) -> None:
    route = mock.post(MESSAGES).mock(return_value=httpx.Response(200, json={
        "model": "claude-3-5-haiku-latest", "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn",
        "usage": {"input_tokens": 4, "output_tokens": 1}}))
    out = run(rt, """
        local a = Agent.builder():name("c"):model("claude-3-5-haiku-latest"):system_prompt("Sys"):build()
        local r = a:execute("yo")
        print(a.provider, r.text, r.metadata.model)
    """)
    body = sent(route)
    assert body == {"model": "claude-3-5-haiku-latest", "max_tokens": 4096, "system": "Sys",
                    "messages": [{"role": "user", "content": "yo"}]}
    assert route.calls[-1].request.headers["x-api-key"] == "sk-ant-key"
    assert out == "anthropic\thi\tclaude-3-5-haiku-latest\n"


@pytest.mark.parametrize(("setup", "expected"), [
    (':model("anthropic/claude-3-haiku")', "anthropic\tclaude-3-haiku"),
    (':provider("openai"):model("anthropic/claude-3-haiku")', "anthropic\tclaude-3-haiku"),
    (':provider("openrouter"):model("meta/llama-3")', "openrouter\tmeta/llama-3"),
    (':model("openrouter/meta/llama-3")', "openrouter\tmeta/llama-3"),
    (':model("claude-3-opus")', "anthropic\tclaude-3-opus"),
    (':model("gpt-4o")', "openai\tgpt-4o"),
    (':provider("groq"):model("llama3-8b")', "groq\tllama3-8b"),
])
def test_model_resolution(rt: Any, setup: str, expected: str) -> None:
    out = run(rt, f"local a = Agent.builder(){setup}:build() print(a.provider, a.model)")
    assert out == expected + "\n"


@pytest.mark.parametrize(("setup", "message"), [
    (':model("foo/bar")', "Agent.builder: unknown provider 'foo' (configure [providers.foo] or use :provider())"),
    (':name("x")', 'Agent.builder: model is required (e.g. :model("openai/gpt-4o-mini"))'),
    (':model("gpt-4o"):temperature(3)', "Agent.builder: temperature must be a number in 0-2, got 3"),
    (':model("gpt-4o"):max_tokens(0)', "Agent.builder: max_tokens must be an integer > 0, got 0"),
    (':model("gpt-4o"):allow_tool("no_such_tool")', "Agent.builder: unknown tool 'no_such_tool' in allowed_tools"),
])
def test_build_errors(rt: Any, setup: str, message: str) -> None:
    out = run(rt, f"print(select(2, pcall(function() local a = Agent.builder(){setup}:build(); return a end)))")
    assert message in out and out.startswith("main.lua:1: ")


def test_default_model_from_config(rt: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    rt.services.providers.specs["openai"].default_model = "gpt-4o-mini"
    assert run(rt, 'print(Agent.builder():provider("openai"):build().model)') == "gpt-4o-mini\n"


def test_registry_functions(rt: Any, mock: respx.MockRouter) -> None:
    out = run(rt, """
        local a = Agent.builder():name("a1"):model("gpt-4o-mini"):description("first"):build()
        Agent.create{name = "a2", model = "anthropic/claude-3-5-haiku-latest", temperature = 0.5}
        local n = Agent.register{name = "a3", model = {provider = "openai", model_id = "gpt-4o", max_tokens = 10}}
        print(n, #Agent.list(), table.concat(Agent.list_instances(), ","))
        print(Agent.get("a2").provider, Agent.get("zzz") == nil)
        local l = Agent.list()[1]
        print(l.name, l.model, l.provider, l.description)
        local info = Agent.get_info("a1")
        print(info.type, info.state, #info.allowed_tools)
        local d = Agent.get_details("a3")
        print(d.config.max_tokens, d.metrics.executions)
        Agent.builder():name("a1"):model("gpt-4o"):build()   -- replaces
        print(Agent.get("a1").model, #Agent.list())
        Agent.get("a2"):destroy()
        print(Agent.get("a2") == nil, table.concat(Agent.list_instances(), ","))
        print(Agent.discover()[1].type, table.concat(Agent.list_templates(), ","))
        local s = Agent.create_from_template("sum", "summarizer", {model = "gpt-4o-mini"})
        local c = s:get_config()
        print(c.temperature, c.max_conversation_length, c.system_prompt:sub(1, 17))
        print(select(2, pcall(Agent.get_info, "nope")))
        print(Agent.get("a1") == Agent.get("a1"))
        local caps = Agent.list_capabilities()["a1"]
        print(table.concat(caps, ","), #Agent.discover_by_capability("streaming"))
    """)
    lines = out.splitlines()
    assert lines[0] == "a3\t3\ta1,a2,a3"
    assert lines[1] == "anthropic\ttrue"
    assert lines[2] == "a1\tgpt-4o-mini\topenai\tfirst"
    assert lines[3] == "llm\tready\t0"
    assert lines[4] == "10\t0"
    assert lines[5] == "gpt-4o\t3"
    assert lines[6] == "true\ta3,a1"  # a rebuilt name counts as newly created
    assert lines[7] == "llm\tchat,classifier,llm,summarizer"
    assert lines[8] == "0\t0\tYou are a summari"
    assert "Agent.get_info: unknown agent 'nope'" in lines[9]
    assert lines[10] == "true"
    assert lines[11] == "text,tools,streaming,vision\t3"


def test_get_config_never_contains_keys(rt: Any, mock: respx.MockRouter) -> None:
    route = mock.post("https://custom.test/v1/chat/completions").mock(
        return_value=httpx.Response(200, json=openai_reply()))
    out = run(rt, """
        local a = Agent.builder():name("k"):model("gpt-4o-mini"):api_key("sk-agent-own")
            :base_url("https://custom.test/v1"):custom_config({system_prompt = "From custom", extra = 1}):build()
        a:execute("x")
        print(JSON.stringify(a:get_config()))
    """)
    assert "sk-agent-own" not in out and "custom.test" not in out
    cfg = json.loads(out)
    assert cfg["system_prompt"] == "From custom" and cfg["custom_config"]["extra"] == 1
    assert cfg["resource_limits"] == {"max_execution_time_secs": 300, "max_memory_mb": 512, "max_tool_calls": 100,
                                      "max_recursion_depth": 10}
    assert route.calls[-1].request.headers["authorization"] == "Bearer sk-agent-own"


def test_history_state_and_lifecycle(rt: Any, mock: respx.MockRouter) -> None:
    route = mock.post(CHAT).mock(return_value=httpx.Response(200, json=openai_reply("r")))
    out = run(rt, """
        local a = Agent.builder():name("h"):model("gpt-4o-mini"):build()
        a:set_state({history = {{role = "user", content = "earlier"}, {role = "assistant", content = "yes"}}})
        a:execute("now")
        print(#a:get_history())
        print(a:save_state(), a:load_state(), a:delete_state(), a:load_state())
        a:clear_history()
        print(#a:get_history(), a:get_state())
        a:pause()
        print(a:get_state(), select(2, pcall(a.execute, a, "x")) ~= nil)
        print(a:resume(), a:get_state())
        a:set_error("bad")
        print(a:get_state(), a:is_healthy(), a:recover(), a:get_recovery_attempts())
        local m = a:get_metrics()
        print(m.executions, m.successes, m.input_tokens, m.output_tokens, m.total_tokens, math.type(m.total_cost_usd))
    """)
    assert sent(route)["messages"][1:] == [{"role": "user", "content": "earlier"},
                                           {"role": "assistant", "content": "yes"},
                                           {"role": "user", "content": "now"}]
    assert out.splitlines() == ["4", "true\ttrue\ttrue\tfalse", "0\tready", "paused\ttrue", "ready\tready",
                                "error\tfalse\tready\t1", "1\t1\t10\t5\t15\tfloat"]


def test_execute_with_context_and_shared_memory(rt: Any, mock: respx.MockRouter) -> None:
    route = mock.post(CHAT).mock(return_value=httpx.Response(200, json=openai_reply()))
    out = run(rt, """
        local a = Agent.builder():name("c"):model("gpt-4o-mini"):build()
        local p = Agent.create_context({data = {topic = "sea"}})
        local ch = Agent.create_child_context(p, "task", "inherit")
        Agent.update_context(ch, "tone", "dry")
        a:execute_with_context("write", ch)
        local iso = Agent.create_child_context(p, "task", "isolate")
        print(Agent.get_context_data(ch, "topic"), Agent.get_context_data(iso, "topic"))
        print(Agent.remove_context(iso), Agent.remove_context(iso))
        Agent.set_shared_memory("global", "k", {1, 2})
        Agent.set_shared_memory({type = "session", id = "s1"}, "k", "v")
        print(Agent.get_shared_memory("global", "k")[2], Agent.get_shared_memory({type = "session", id = "s1"}, "k"))
    """)
    assert sent(route)["messages"][-1]["content"] == "Context:\ntone: dry\ntopic: sea\n\nwrite"
    assert out.splitlines() == ["sea\tnil", "true\tfalse", "2\tv"]


def test_invoke_stream_calls_back_on_lua_thread(rt: Any, mock: respx.MockRouter) -> None:
    chunks = [{"choices": [{"delta": {"content": p}}]} for p in ("a", "b", "c")]
    body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
    route = mock.post(CHAT).mock(return_value=httpx.Response(200, text=body,
                                                             headers={"content-type": "text/event-stream"}))
    out = run(rt, """
        local a = Agent.builder():name("s"):model("gpt-4o-mini"):build()
        local got = {}
        local r = a:invokeStream("go", function(t) got[#got + 1] = t end)
        print(table.concat(got, "|"), r.text, r.metadata.estimated_tokens ~= nil)
    """)
    assert sent(route)["stream"] is True
    assert out == "a|b|c\tabc\ttrue\n"


def test_provider_global(rt: Any) -> None:
    out = run(rt, """
        local l = Provider.list({all = true})
        local names = {}
        for i, p in ipairs(l) do names[i] = p.name end
        print(table.concat(names, ","))
        local o = Provider.get("openai")
        print(o.type, o.enabled, o.base_url, o.has_key, o.api_key == nil, o.capabilities.supports_streaming)
        print(Provider.get("nope") == nil, Provider.getCapabilities("ollama").supports_tools,
              Provider.get_capabilities("anthropic").max_context_tokens)
        print(Provider.isAvailable("openai"), Provider.is_available("groq"), Provider.isAvailable("ollama"))
    """)
    lines = out.splitlines()
    assert lines[0] == "anthropic,deepseek,gemini,groq,mistral,ollama,openai,openrouter,together"
    assert lines[1] == "openai\ttrue\thttps://api.openai.test/v1\ttrue\ttrue\ttrue"
    assert lines[2] == "true\tfalse\t200000"
    assert lines[3] == "true\tfalse\ttrue"


def test_configured_provider_and_disabled(env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Any,
                                          request: pytest.FixtureRequest) -> None:
    cfg = tmp_path / "llmspell.toml"
    cfg.write_text('[providers.local]\nbase_url = "http://127.0.0.1:8080"\ndefault_model = "gemma"\n'
                   '[providers.off]\nbase_url = "https://off.test/v1"\nenabled = false\n')
    monkeypatch.setenv("LLMSPELL_CONFIG", str(cfg))
    rt = request.getfixturevalue("lua_runtime")
    out = run(rt, """
        local a = Agent.builder():provider("local"):build()
        print(a.provider, a.model, Provider.get("local").base_url, Provider.isAvailable("local"))
        print(select(2, pcall(function() return Agent.builder():model("off/m"):build() end)))
    """)
    lines = out.splitlines()
    assert lines[0] == "local\tgemma\thttp://127.0.0.1:8080/v1\ttrue"
    assert "provider 'off' is disabled in config" in lines[1]


def test_stats_recorded_per_call(rt: Any, mock: respx.MockRouter) -> None:
    mock.post(CHAT).mock(return_value=httpx.Response(200, json=openai_reply()))
    run(rt, """
        local a = Agent.builder():name("w"):model("openai/gpt-4o-mini"):build()
        a:execute("one") a:execute("two")
    """)
    st = rt.services.stats.as_dict()
    assert st["llm_calls"] == 2 and st["agents_created"] == 1
    assert st["tokens"]["gpt-4o-mini"] == {"input": 20, "output": 10, "calls": 2}
    assert st["cost_usd"] > 0


def test_hooks_and_events_around_execute(rt: Any, mock: respx.MockRouter) -> None:
    route = mock.post(CHAT).mock(return_value=httpx.Response(200, json=openai_reply("orig")))
    out = run(rt, """
        if not Hook or not Event then print("skip") return end
        local sub = Event.subscribe("agent.*")
        local seen = {}
        Hook.register("BeforeAgentInit", function(ctx) seen[#seen + 1] = "init:" .. ctx.data.agent end)
        Hook.register("BeforeAgentExecution", function(ctx)
          return {type = "modified", data = {input = {text = "changed"}}}
        end)
        Hook.register("AfterAgentExecution", function(ctx)
          return {type = "modified", data = {output = {text = ctx.data.output.text .. "!"}}}
        end)
        local a = Agent.builder():name("hk"):model("gpt-4o-mini"):build()
        local r = a:execute("original")
        print(seen[1], r.text)
        local e1 = Event.receive(sub, 1000)
        local e2 = Event.receive(sub, 1000)
        print(e1 and e1.event_type, e2 and e2.event_type, e2 and e2.data.agent)
    """)
    if out == "skip\n":
        pytest.skip("Hook/Event globals not present")
    assert sent(route)["messages"][-1]["content"] == "changed"
    assert out.splitlines() == ["init:hk\torig!", "agent.execution.started\tagent.execution.completed\thk"]


def test_hook_skip_and_cancel(rt: Any, mock: respx.MockRouter) -> None:
    route = mock.post(CHAT).mock(return_value=httpx.Response(200, json=openai_reply()))
    out = run(rt, """
        if not Hook then print("skip") return end
        local h = Hook.register("BeforeAgentExecution", function(ctx) return "skip" end)
        local a = Agent.builder():name("sk"):model("gpt-4o-mini"):build()
        local r = a:execute("x")
        print(r.text == "", r.skipped, r.metadata.skipped)
        h:unregister()
        Hook.register("BeforeAgentExecution", function(ctx) return {type = "cancel", reason = "policy"} end)
        print(select(2, pcall(a.execute, a, "x")))
    """)
    if out == "skip\n":
        pytest.skip("Hook global not present")
    assert out.splitlines() == ["true\ttrue\ttrue", "cancelled by hook: policy"]
    assert route.call_count == 0


def test_hung_provider_is_interruptible(rt: Any, mock: respx.MockRouter) -> None:
    import asyncio

    started = threading.Event()

    async def hang(request: httpx.Request) -> httpx.Response:
        started.set()
        await asyncio.sleep(3600)
        return httpx.Response(200, json=openai_reply())

    mock.post(CHAT).mock(side_effect=hang)
    errors: list[BaseException] = []

    def go() -> None:
        try:
            rt.run_string('Agent.builder():name("h"):model("gpt-4o-mini"):build():execute("x")', "@main.lua")
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    t = threading.Thread(target=go)
    t.start()
    assert started.wait(10)
    rt.interrupt()
    t.join(10)
    assert not t.is_alive()
    assert isinstance(errors[0], ScriptError) and errors[0].kind == "interrupted"


def test_max_execution_time_bounds_a_call(rt: Any, mock: respx.MockRouter) -> None:
    import asyncio

    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(3600)
        return httpx.Response(200, json=openai_reply())

    mock.post(CHAT).mock(side_effect=slow)
    out = run(rt, """
        local a = Agent.builder():name("t"):model("gpt-4o-mini"):resource_limits({max_execution_time_secs = 0.05})
            :build()
        print(select(2, pcall(a.execute, a, "x")))
    """)
    assert out == "agent 't' (openai/gpt-4o-mini): execution exceeded max_execution_time (0.05 s)\n"


def test_empty_input_raises(rt: Any) -> None:
    out = run(rt, """
        local a = Agent.builder():name("e"):model("gpt-4o-mini"):build()
        print(select(2, pcall(a.execute, a, "   ")))
        print(select(2, pcall(a.execute, a, 42)))
    """)
    lines = out.splitlines()
    assert "Agent:execute: input text is empty" in lines[0]
    assert "Agent:execute: input must be a string or a table" in lines[1]


def test_aexecute_contract_for_workflows(rt: Any, mock: respx.MockRouter) -> None:
    from llmspell.agents import AgentError
    from llmspell.runtime.io import get_io
    from llmspell.script.bridge import LuaApiError

    mock.post(CHAT).mock(side_effect=[httpx.Response(200, json=openai_reply("one")),
                                      httpx.Response(400, json={"error": {"message": "bad"}})])
    run(rt, 'Agent.builder():name("wf"):model("openai/gpt-4o-mini"):build()')
    agent = rt.services.agents.get("wf")
    assert (agent.name, agent.model, agent.provider) == ("wf", "gpt-4o-mini", "openai")
    result = get_io().run(agent.aexecute({"text": "hi"}), timeout=10)
    assert result["text"] == "one" and result["metadata"]["total_tokens"] == 15
    with pytest.raises(AgentError) as ei:
        get_io().run(agent.aexecute({"text": "hi"}), timeout=10)
    assert isinstance(ei.value, LuaApiError) and ei.value.status == 400
    assert rt.services.agents.get("missing") is None


def test_composite_agent_runs_members_in_order(rt: Any, mock: respx.MockRouter) -> None:
    route = mock.post(CHAT).mock(side_effect=[httpx.Response(200, json=openai_reply("draft")),
                                              httpx.Response(200, json=openai_reply("final"))])
    out = run(rt, """
        Agent.builder():name("r"):model("gpt-4o-mini"):system_prompt("R"):build()
        Agent.builder():name("w"):model("gpt-4o-mini"):system_prompt("W"):build()
        local c = Agent.create_composite("team", {"r", "w"})
        local res = c:execute("topic")
        print(c.name, c.provider, res.text, res.metadata.total_tokens, math.type(res.metadata.cost_usd))
        local h = Agent.get_hierarchy("team")
        print(h.name, #h.children, h.children[1].name, h.children[2].name, #h.children[1].children)
        print(select(2, pcall(Agent.create_composite, "bad", {"nope"})))
    """)
    assert sent(route, 0)["messages"] == [{"role": "system", "content": "R"}, {"role": "user", "content": "topic"}]
    assert sent(route, 1)["messages"] == [{"role": "system", "content": "W"}, {"role": "user", "content": "draft"}]
    lines = out.splitlines()
    assert lines[0] == "team\topenai\tfinal\t30\tfloat"
    assert lines[1] == "team\t2\tr\tw\t0"
    assert "Agent.create_composite: unknown agent 'nope'" in lines[2]


def test_stream_error_after_deltas_is_not_retried(rt: Any, mock: respx.MockRouter) -> None:
    route = mock.post(CHAT).mock(return_value=httpx.Response(
        200, text='data: {"choices":[{"delta":{"content":"par"}}]}\n\n'))
    out = run(rt, """
        local a = Agent.builder():name("s"):model("gpt-4o-mini"):build()
        local got = {}
        print(select(2, pcall(a.invokeStream, a, "go", function(t) got[#got + 1] = t end)))
        print(#got)
    """)
    assert "the stream ended before the reply was complete" in out and out.endswith("\n1\n")
    assert route.call_count == 1


def test_tool_loop_openai(rt: Any, mock: respx.MockRouter) -> None:
    call = {"id": "call_1", "type": "function",
            "function": {"name": "text_manipulator", "arguments": '{"operation": "uppercase", "input": "abc"}'}}
    first = {"model": "gpt-4o-mini", "choices": [{"message": {"role": "assistant", "content": None,
                                                              "tool_calls": [call]}, "finish_reason": "tool_calls"}],
             "usage": {"prompt_tokens": 20, "completion_tokens": 7}}
    route = mock.post(CHAT).mock(side_effect=[httpx.Response(200, json=first),
                                              httpx.Response(200, json=openai_reply("It is ABC."))])
    out = run(rt, """
        local a = Agent.builder():name("t"):model("gpt-4o-mini"):allow_tool("text_manipulator"):build()
        local r = a:execute("Uppercase abc")
        print(r.text, #r.tool_calls, r.tool_calls[1].name, r.tool_calls[1].arguments.operation,
              r.metadata.input_tokens, r.metadata.output_tokens)
        print(r.tool_calls[1].result_text:find("ABC") ~= nil)
    """)
    b1, b2 = sent(route, 0), sent(route, 1)
    tool = b1["tools"][0]
    assert tool["type"] == "function" and tool["function"]["name"] == "text_manipulator"
    params = tool["function"]["parameters"]
    assert params["type"] == "object" and "operation" in params["properties"] and "operation" in params["required"]
    assert b2["messages"][-2] == {"role": "assistant", "content": "", "tool_calls": [
        {"id": "call_1", "type": "function",
         "function": {"name": "text_manipulator", "arguments": '{"input": "abc", "operation": "uppercase"}'}}]}
    assert b2["messages"][-1]["role"] == "tool" and b2["messages"][-1]["tool_call_id"] == "call_1"
    assert "ABC" in b2["messages"][-1]["content"]
    lines = out.splitlines()
    assert lines[0] == "It is ABC.\t1\ttext_manipulator\tuppercase\t30\t12"
    assert lines[1] == "true"
    assert rt.services.stats.llm_calls == 2


def test_tool_loop_anthropic(rt: Any, mock: respx.MockRouter) -> None:
    first = {"model": "claude-3-5-haiku-latest", "stop_reason": "tool_use",
             "content": [{"type": "text", "text": "Let me."},
                         {"type": "tool_use", "id": "tu_1", "name": "text_manipulator",
                          "input": {"operation": "lowercase", "input": "ABC"}}],
             "usage": {"input_tokens": 9, "output_tokens": 3}}
    final = {"model": "claude-3-5-haiku-latest", "stop_reason": "end_turn",
             "content": [{"type": "text", "text": "abc"}], "usage": {"input_tokens": 12, "output_tokens": 1}}
    route = mock.post(MESSAGES).mock(side_effect=[httpx.Response(200, json=first), httpx.Response(200, json=final)])
    out = run(rt, """
        local a = Agent.builder():name("t"):model("anthropic/claude-3-5-haiku-latest")
            :allowed_tools({"text_manipulator"}):build()
        local r = a:execute("lower ABC")
        print(r.text, r.tool_calls[1].arguments.input, r.metadata.total_tokens)
    """)
    b1, b2 = sent(route, 0), sent(route, 1)
    assert b1["tools"][0]["name"] == "text_manipulator" and b1["tools"][0]["input_schema"]["type"] == "object"
    assert b2["messages"][-2] == {"role": "assistant", "content": [
        {"type": "text", "text": "Let me."},
        {"type": "tool_use", "id": "tu_1", "name": "text_manipulator",
         "input": {"operation": "lowercase", "input": "ABC"}}]}
    last = b2["messages"][-1]
    assert last["role"] == "user" and last["content"][0]["type"] == "tool_result"
    assert last["content"][0]["tool_use_id"] == "tu_1" and "abc" in last["content"][0]["content"]
    assert out == "abc\tABC\t25\n"


def test_tool_loop_stops_at_max_tool_calls(rt: Any, mock: respx.MockRouter) -> None:
    call = {"id": "c", "type": "function",
            "function": {"name": "text_manipulator", "arguments": '{"operation": "uppercase", "input": "x"}'}}
    looping = {"model": "m", "choices": [{"message": {"role": "assistant", "content": "again",
                                                      "tool_calls": [call]}, "finish_reason": "tool_calls"}]}
    route = mock.post(CHAT).mock(return_value=httpx.Response(200, json=looping))
    out = run(rt, """
        local a = Agent.builder():name("t"):model("gpt-4o-mini"):allow_tool("text_manipulator")
            :max_tool_calls(2):build()
        local r = a:execute("go")
        print(r.text, #r.tool_calls)
    """)
    assert out == "again\t2\n" and route.call_count == 3


def test_agent_error_hook_retry(rt: Any, mock: respx.MockRouter) -> None:
    route = mock.post(CHAT).mock(side_effect=[httpx.Response(400, json={"error": {"message": "bad"}}),
                                              httpx.Response(200, json=openai_reply("second"))])
    out = run(rt, """
        if not Hook then print("skip") return end
        local errs = {}
        Hook.register("AgentError", function(ctx)
          errs[#errs + 1] = ctx.data.error
          return {type = "retry", delay_ms = 0, max_attempts = 2}
        end)
        local a = Agent.builder():name("r"):model("gpt-4o-mini"):build()
        print(a:execute("x").text, #errs, errs[1]:find("400 bad") ~= nil)
    """)
    if out == "skip\n":
        pytest.skip("Hook global not present")
    assert out == "second\t1\ttrue\n" and route.call_count == 2


def test_media_images_are_sent(rt: Any, mock: respx.MockRouter) -> None:
    route = mock.post(CHAT).mock(return_value=httpx.Response(200, json=openai_reply("a cat")))
    route2 = mock.post(MESSAGES).mock(return_value=httpx.Response(200, json={
        "model": "claude-3-5-haiku-latest", "content": [{"type": "text", "text": "a cat"}],
        "usage": {"input_tokens": 1, "output_tokens": 1}}))
    run(rt, """
        local a = Agent.builder():name("v"):model("gpt-4o-mini"):build()
        a:execute({text = "What is it?", media = {{base64 = "AAAA", format = "jpg", width = 1, height = 1}}})
        local c = Agent.builder():name("vc"):model("anthropic/claude-3-5-haiku-latest"):build()
        c:execute({text = "What is it?", image = {{base64 = "BBBB", format = "png"}}})
    """)
    assert sent(route)["messages"][-1] == {"role": "user", "content": [
        {"type": "text", "text": "What is it?"},
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AAAA"}}]}
    assert sent(route2)["messages"][-1] == {"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "BBBB"}},
        {"type": "text", "text": "What is it?"}]}
