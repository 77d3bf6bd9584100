"""agents/spec.py without Lua: builder keys, create/register/template tables, capabilities, the context block."""

from __future__ import annotations

from typing import Any

import pytest

from llmspell.agents import spec
from llmspell.agents.registry import TEMPLATES
from llmspell.script.bridge import LuaApiError


def err(fn: Any, *args: Any) -> str:
    with pytest.raises(LuaApiError) as e:
        fn(*args)
    return str(e.value)


def test_builder_collects_keys() -> None:
    s = spec.AgentSpec()
    s.set_text("name", "writer")
    s.set_text("model", "openai/gpt-4o-mini")
    s.set_number("temperature", 0.2)
    s.set_limit("max_execution_time", 30)
    s.allow_tool("calculator")
    s.set_table("custom_config", {"a": 1}, {"a": 1})
    s.set_table("resource_limits", {"max_tool_calls": 3}, {})
    s.set_type("llm")
    assert s.cfg == {"name": "writer", "model": "openai/gpt-4o-mini", "temperature": 0.2, "type": "llm",
                     "allowed_tools": ["calculator"], "custom_config": {"a": 1},
                     "resource_limits": {"max_execution_time_secs": 30, "max_tool_calls": 3}}
    s.set_allowed_tools({})  # an empty Lua table converts to {}
    assert s.cfg["allowed_tools"] == []


def test_two_builders_do_not_share_their_lists() -> None:
    a, b = spec.AgentSpec(), spec.AgentSpec()
    a.allow_tool("x")
    assert b.cfg["allowed_tools"] == [] and b.cfg["resource_limits"] == {}


@pytest.mark.parametrize(("call", "message"), [
    (lambda s: s.set_text("model", 4), "AgentBuilder:model: model must be a string, got integer "
                                       '(e.g. "openai/gpt-4o-mini")'),
    (lambda s: s.set_text("system_prompt", None), "AgentBuilder:system_prompt: system_prompt must be a string, got "
                                                  'nil (e.g. "You are terse.")'),
    (lambda s: s.set_type(True), 'AgentBuilder:type: type must be a string, got boolean (e.g. "llm")'),
    (lambda s: s.set_number("max_tokens", "9"), "AgentBuilder:max_tokens: max_tokens must be a number, got string"),
    (lambda s: s.set_number("temperature", True), "AgentBuilder:temperature: temperature must be a number, got "
                                                  "boolean"),
    (lambda s: s.set_limit("max_memory_mb", "1"), "AgentBuilder:max_memory_mb: max_memory_mb must be a number, "
                                                  "got string"),
    (lambda s: s.allow_tool(1.5), "AgentBuilder:allow_tool: tool name must be a string, got float "
                                  "(e.g. 'file_operations')"),
    (lambda s: s.set_allowed_tools(None), "AgentBuilder:allowed_tools: expected an array of tool names "
                                          "(e.g. {'file_operations'})"),
    (lambda s: s.set_table("custom_config", ["a"], ["a"]), "AgentBuilder:custom_config: expected a table with "
                                                           "named keys, got userdata"),
    (lambda s: s.set_table("resource_limits", None, "x"), "AgentBuilder:resource_limits: expected a table with "
                                                          "named keys, got string"),
])
def test_builder_misuse(call: Any, message: str) -> None:
    assert err(call, spec.AgentSpec()) == message


def test_create_folds_limit_names_into_resource_limits() -> None:
    keys = spec.create_keys({"name": "w", "max_tool_calls": 2, "resource_limits": {"max_memory_mb": 5}})
    assert keys == {"name": "w", "resource_limits": {"max_tool_calls": 2, "max_memory_mb": 5}}
    assert err(spec.create_keys, None).startswith("Agent.create: expected a table of builder keys")


def test_register_table() -> None:
    keys = spec.register_keys({"name": "w", "model": {"provider": "openai", "model_id": "gpt-4o-mini",
                                                      "temperature": 0.1}})
    assert (keys["provider"], keys["model"], keys["temperature"], keys["allowed_tools"]) == \
        ("openai", "gpt-4o-mini", 0.1, [])
    assert err(spec.register_keys, {"agent_type": "tool"}) == "Agent.register: agent_type must be 'llm', got 'tool'"
    assert err(spec.register_keys, {"model": "gpt"}) == \
        "Agent.register: model must be {provider = 'openai', model_id = 'gpt-4o-mini'}"
    assert err(spec.register_keys, [1]).startswith("Agent.register: expected a config table")


def test_templates() -> None:
    name, tpl = spec.template_of("s", "summarizer")
    assert (name, tpl) == ("s", TEMPLATES["summarizer"])
    keys = spec.template_keys(name, tpl, {"temperature": 0.5})
    assert keys["temperature"] == 0.5 and keys["name"] == "s" and keys["description"] == "Summarizes text"
    assert err(spec.template_of, "s", "poet").startswith("Agent.create_from_template: unknown template 'poet' (one of ")
    assert err(spec.template_of, 1, "llm") == \
        'Agent.create_from_template: agent name must be a string, got integer (e.g. "writer")'
    assert err(spec.template_keys, "s", tpl, ["x"]) == \
        "Agent.create_from_template: params must be a table of builder keys"


def test_capabilities_and_context_block() -> None:
    assert spec.capabilities({}) == ["text"]
    assert spec.capabilities({"capabilities": {"supports_tools": True, "supports_streaming": True,
                                               "supports_multimodal": True}}) == ["text", "tools", "streaming", "vision"]
    assert spec.context_block({}) is None
    assert spec.context_block({"b": {"x": [1]}, "a": "plain"}) == 'Context:\na: plain\nb: {"x": [1]}'
