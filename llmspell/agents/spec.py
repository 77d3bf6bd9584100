"""Agent specs (lua-api.md §2) as plain Python: the builder's keys, create/register/template tables, capabilities.

The Agent global converts Lua tables to plain data and hands them here; `AgentRegistry.build` then
validates the collected keys. Tested without Lua in tests/agents/test_spec.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from llmspell.agents.registry import TEMPLATES
from llmspell.script.bridge import LuaApiError, type_name
from llmspell.script.checks import need_number, need_str

#: Builder methods that set a resource limit -> the resource_limits key they set.
LIMIT_METHODS: dict[str, str] = {"max_execution_time": "max_execution_time_secs", "max_memory_mb": "max_memory_mb",
                                 "max_tool_calls": "max_tool_calls", "max_recursion_depth": "max_recursion_depth"}

#: String builder keys -> the example their misuse error shows.
TEXT_KEYS: dict[str, str] = {
    "name": '"writer"', "description": '"Writes drafts"', "model": '"openai/gpt-4o-mini"', "provider": '"openai"',
    "system_prompt": '"You are terse."', "base_url": '"http://..."', "api_key": '"sk-..."',
}
NUMBER_KEYS: tuple[str, ...] = ("temperature", "max_tokens", "max_conversation_length")
TABLE_KEYS: tuple[str, ...] = ("custom_config", "resource_limits")


@dataclass
class AgentSpec:
    """AgentBuilder state: the builder keys collected so far (`AgentRegistry.build` takes a copy)."""

    cfg: dict[str, Any] = field(default_factory=lambda: {"allowed_tools": [], "resource_limits": {}})

    def set_text(self, key: str, v: Any) -> None:
        self.cfg[key] = need_str(v, f"AgentBuilder:{key}", key, TEXT_KEYS[key])

    def set_type(self, v: Any) -> None:
        self.cfg["type"] = need_str(v, "AgentBuilder:type", "type", '"llm"')

    def set_number(self, key: str, v: Any) -> None:
        self.cfg[key] = need_number(v, f"AgentBuilder:{key}", key)

    def set_limit(self, method: str, v: Any) -> None:
        self.cfg["resource_limits"][LIMIT_METHODS[method]] = need_number(v, f"AgentBuilder:{method}", method)

    def allow_tool(self, name: Any) -> None:
        self.cfg["allowed_tools"].append(need_str(name, "AgentBuilder:allow_tool", "tool name", "'file_operations'"))

    def set_allowed_tools(self, names: Any) -> None:
        """`names`: the converted array (None when the argument was not a table)."""
        if not isinstance(names, list) and names != {}:
            raise LuaApiError("AgentBuilder:allowed_tools: expected an array of tool names (e.g. {'file_operations'})")
        self.cfg["allowed_tools"] = list(names or [])

    def set_table(self, key: str, v: Any, given: Any) -> None:
        """`v`: the converted table (None when the argument was not a table); `given` names the argument's type."""
        if not isinstance(v, dict):
            raise LuaApiError(f"AgentBuilder:{key}: expected a table with named keys, got {type_name(given)}")
        if key == "resource_limits":
            self.cfg["resource_limits"].update(v)
        else:
            self.cfg[key] = v


def cfg_keys(v: dict[str, Any]) -> dict[str, Any]:
    """Builder keys from a create/template table (the limit methods' names folded into resource_limits)."""
    out = dict(v)
    limits = dict(out.get("resource_limits") or {})
    for method, key in LIMIT_METHODS.items():
        if method in out:
            limits[key] = out.pop(method)
    out["resource_limits"] = limits
    return out


def create_keys(v: Any) -> dict[str, Any]:
    """`Agent.create{...}`: the converted table into builder keys."""
    if not isinstance(v, dict):
        raise LuaApiError('Agent.create: expected a table of builder keys (e.g. {name = "w", model = "openai/gpt-4o-mini"})')
    return cfg_keys(v)


def register_keys(v: Any) -> dict[str, Any]:
    """`Agent.register{name, agent_type, model = {provider, model_id, ...}, ...}` into builder keys."""
    if not isinstance(v, dict):
        raise LuaApiError("Agent.register: expected a config table (e.g. {name = 'w', model = {provider = "
                          "'openai', model_id = 'gpt-4o-mini'}})")
    atype = v.get("agent_type", "llm")
    if atype != "llm":
        raise LuaApiError(f"Agent.register: agent_type must be 'llm', got {atype!r}")
    model = v.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("model_id"), str):
        raise LuaApiError("Agent.register: model must be {provider = 'openai', model_id = 'gpt-4o-mini'}")
    return {"name": v.get("name"), "description": v.get("description"),
            "provider": model.get("provider"), "model": model["model_id"],
            "temperature": model.get("temperature"), "max_tokens": model.get("max_tokens"),
            "allowed_tools": v.get("allowed_tools") or [],
            "custom_config": v.get("custom_config") or {},
            "resource_limits": v.get("resource_limits") or {}}


def template_of(name: Any, template: Any) -> tuple[str, dict[str, Any]]:
    """`Agent.create_from_template(name, template, ...)`: the checked name and the template's keys."""
    fname = "Agent.create_from_template"
    n = need_str(name, fname, "agent name", '"writer"')
    t = need_str(template, fname, "template", '"summarizer"')
    if t not in TEMPLATES:
        raise LuaApiError(f"{fname}: unknown template '{t}' (one of {', '.join(sorted(TEMPLATES))})")
    return n, TEMPLATES[t]


def template_keys(name: str, template: dict[str, Any], params: Any) -> dict[str, Any]:
    """The template's keys, then the converted `params` table's, then the name."""
    if not isinstance(params, dict):
        raise LuaApiError("Agent.create_from_template: params must be a table of builder keys")
    return {**template, **cfg_keys(params), "name": name}


def capabilities(provider_info: dict[str, Any]) -> list[str]:
    """What an agent can do, from its provider's `Provider.list` entry."""
    c = provider_info.get("capabilities", {})
    out = ["text"]
    if c.get("supports_tools"):
        out.append("tools")
    if c.get("supports_streaming"):
        out.append("streaming")
    if c.get("supports_multimodal"):
        out.append("vision")
    return out


def context_block(items: dict[str, Any]) -> str | None:
    """The `Context:` block `execute_with_context` adds to a call (None for an empty context)."""
    if not items:
        return None
    return "Context:\n" + "\n".join(f"{k}: {_render(v)}" for k, v in sorted(items.items()))


def _render(v: Any) -> str:
    if isinstance(v, str):
        return v
    return json.dumps(v, sort_keys=True, ensure_ascii=False)
