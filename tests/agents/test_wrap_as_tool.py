"""Agent.wrap_as_tool: the agent becomes a tool taking {input} and returning the reply text."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.llm_server import LLMServer


@pytest.fixture
def rt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from llmspell.bootstrap import create_runtime
    from llmspell.config import load_config
    from llmspell.script.engine import BufferSink

    with LLMServer(reply_fn=lambda req: "echo: " + req["messages"][-1]["content"]) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("LLMSPELL_STATE_PATH", str(tmp_path / "s.sqlite3"))
        out = BufferSink()
        runtime = create_runtime(load_config(env=dict(os.environ)), stdout=out, stderr=BufferSink())
        runtime.test_out = out  # type: ignore[attr-defined]
        yield runtime
        runtime.close()


def test_wrapped_agent_is_listed_and_invocable(rt: Any) -> None:
    rt.run_string("""
        Agent.builder():name("helper"):model("openai/gpt-4o-mini"):build()
        local name = Agent.wrap_as_tool("helper")
        assert(name == "helper_tool", name)
        assert(Tool.exists("helper_tool"))
        local found = false
        for _, t in ipairs(Tool.list()) do if t.name == "helper_tool" then found = true end end
        assert(found, "listed")
        local r = Tool.invoke("helper_tool", {input = "ping"})
        print(r.text, r.success)
    """, "=t")
    assert rt.test_out.text == "echo: ping\ttrue\n"


def test_custom_tool_name_and_errors(rt: Any) -> None:
    rt.run_string("""
        Agent.builder():name("w"):model("openai/gpt-4o-mini"):build()
        assert(Agent.wrap_as_tool("w", {tool_name = "ask_w"}) == "ask_w")
        local ok, e = pcall(Agent.wrap_as_tool, "nobody")
        print(ok, e ~= nil)
        ok, e = pcall(Agent.wrap_as_tool, "w", {tool_name = "file_operations"})
        print(ok, e)
        ok, e = pcall(Tool.invoke, "ask_w", {})
        print(ok)
    """, "=t")
    lines = rt.test_out.text.splitlines()
    assert lines[0] == "false\ttrue"
    assert lines[1].startswith("false\t") and "taken by a built-in tool" in lines[1]
    assert lines[2] == "false"
