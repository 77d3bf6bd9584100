"""The `Agent` global (lua-api.md §2): builder, instances, registry functions, contexts, shared memory."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from llmspell.agents.agent import Agent, AgentError, normalize_input
from llmspell.agents.as_tool import agent_tool
from llmspell.agents.registry import TEMPLATES, AgentRegistry
from llmspell.script.bridge import LuaApiError, type_name
from llmspell.script.globals.tool import tool_service
from llmspell.tools.base import ToolError

if TYPE_CHECKING:
    from llmspell.script.engine import ScriptRuntime

log = logging.getLogger("llmspell.agents")

_LIMIT_METHODS = {"max_execution_time": "max_execution_time_secs", "max_memory_mb": "max_memory_mb",
                  "max_tool_calls": "max_tool_calls", "max_recursion_depth": "max_recursion_depth"}


class _Builder:
    """AgentBuilder state: the builder keys collected so far."""

    __slots__ = ("cfg",)

    def __init__(self) -> None:
        self.cfg: dict[str, Any] = {"allowed_tools": [], "resource_limits": {}}


def _agents(rt: ScriptRuntime) -> AgentRegistry:
    reg = rt.services.agents
    if not isinstance(reg, AgentRegistry):
        reg = AgentRegistry(rt.services)
        rt.services.agents = reg
    return reg


def install(rt: ScriptRuntime) -> None:
    b = rt.bridge
    reg = _agents(rt)
    A = b.table()

    # ------------------------------------------------------------------ builder
    def _str(fname: str, v: Any, what: str, example: str) -> str:
        if not isinstance(v, str):
            raise LuaApiError(f"{fname}: {what} must be a string, got {type_name(v)} (e.g. {example})")
        return v

    def _num(fname: str, v: Any, what: str) -> int | float:
        if not isinstance(v, int | float) or isinstance(v, bool):
            raise LuaApiError(f"{fname}: {what} must be a number, got {type_name(v)}")
        return v

    def setter(key: str, example: str) -> Any:
        def m(h: _Builder, v: Any = None) -> None:
            h.cfg[key] = _str(f"AgentBuilder:{key}", v, key, example)
        return m

    def num_setter(key: str) -> Any:
        def m(h: _Builder, v: Any = None) -> None:
            h.cfg[key] = _num(f"AgentBuilder:{key}", v, key)
        return m

    def limit_setter(method: str, key: str) -> Any:
        def m(h: _Builder, v: Any = None) -> None:
            h.cfg["resource_limits"][key] = _num(f"AgentBuilder:{method}", v, method)
        return m

    def allow_tool(h: _Builder, name: Any = None) -> None:
        h.cfg["allowed_tools"].append(_str("AgentBuilder:allow_tool", name, "tool name", "'file_operations'"))

    def allowed_tools(h: _Builder, names: Any = None) -> None:
        v = b.to_py(names) if b.is_table(names) else None
        if not isinstance(v, list) and v != {}:
            raise LuaApiError("AgentBuilder:allowed_tools: expected an array of tool names (e.g. {'file_operations'})")
        h.cfg["allowed_tools"] = list(v or [])

    def table_setter(key: str) -> Any:
        def m(h: _Builder, t: Any = None) -> None:
            v = b.to_py(t) if b.is_table(t) else None
            if not isinstance(v, dict):
                raise LuaApiError(f"AgentBuilder:{key}: expected a table with named keys, got {type_name(t)}")
            if key == "resource_limits":
                h.cfg["resource_limits"].update(v)
            else:
                h.cfg[key] = v
        return m

    def type_(h: _Builder, v: Any = None) -> None:
        h.cfg["type"] = _str("AgentBuilder:type", v, "type", '"llm"')

    def build(h: _Builder) -> Any:
        return new_agent(reg.build(dict(h.cfg), "Agent.builder"))

    builder_methods: dict[str, Any] = {
        "name": setter("name", '"writer"'), "description": setter("description", '"Writes drafts"'),
        "model": setter("model", '"openai/gpt-4o-mini"'), "provider": setter("provider", '"openai"'),
        "system_prompt": setter("system_prompt", '"You are terse."'), "base_url": setter("base_url", '"http://..."'),
        "api_key": setter("api_key", '"sk-..."'), "temperature": num_setter("temperature"),
        "max_tokens": num_setter("max_tokens"), "max_conversation_length": num_setter("max_conversation_length"),
        "allow_tool": allow_tool, "allowed_tools": allowed_tools, "custom_config": table_setter("custom_config"),
        "resource_limits": table_setter("resource_limits"), "type": type_, "build": build,
    }
    for method, key in _LIMIT_METHODS.items():
        builder_methods[method] = limit_setter(method, key)
    chain = [k for k in builder_methods if k != "build"]
    Builder = b.klass("AgentBuilder", builder_methods, tostring=lambda h: "AgentBuilder()", chain=chain)

    # ------------------------------------------------------------------ instances
    # Weak values: a cache kept on the agent pinned its proxy, and the proxy the agent, so an agent
    # replaced by name was never freed. id() is safe as key: a live entry keeps its agent alive.
    proxies = b.weak_table("v")

    def new_agent(agent: Agent) -> Any:
        proxy = proxies[id(agent)]
        if proxy is None:
            proxy = proxies[id(agent)] = AgentCls.new(agent)
        return proxy

    def fields(agent: Agent, key: str) -> tuple[bool, Any]:
        if key in ("name", "model", "provider"):
            return True, getattr(agent, key)
        return False, None

    def _input(fname: str, value: Any) -> dict[str, Any]:
        v = b.to_py(value) if b.is_table(value) else value
        return normalize_input(v, fname)

    def run_here(agent: Agent, inp: dict[str, Any], **kw: Any) -> Any:
        """One call with its Before/After hooks fired here on the Lua thread (no hop from the IO loop)."""
        inp, before = agent.before_here(inp)
        inp, result, final = rt.block_on(agent.acore(inp, before, **kw))
        return result if final else agent.after_here(inp, result)

    def execute(agent: Agent, inp: Any = None) -> Any:
        return run_here(agent, _input("Agent:execute", inp))

    def invoke_stream(agent: Agent, inp: Any = None, fn: Any = None) -> Any:
        py = _input("Agent:invokeStream", inp)
        if fn is not None and not b.is_function(fn):
            raise LuaApiError(f"Agent:invokeStream: callback must be a function, got {type_name(fn)}")

        async def on_delta(text: str) -> None:
            if fn is not None:
                await rt.call_lua_async(fn, text)

        return run_here(agent, py, on_delta=on_delta)

    def execute_with_context(agent: Agent, inp: Any = None, context_id: Any = None) -> Any:
        py = _input("Agent:execute_with_context", inp)
        cid = _str("Agent:execute_with_context", context_id, "context_id", "Agent.create_context()")
        items = reg.context_items(cid)
        block = None
        if items:
            block = "Context:\n" + "\n".join(f"{k}: {_render(v)}" for k, v in sorted(items.items()))
        return run_here(agent, py, context_text=block)

    def _tools() -> Any:
        return tool_service(rt)

    def invoke_tool(agent: Agent, name: Any = None, params: Any = None) -> Any:
        tname = _str("Agent:invokeTool", name, "tool name", "'file_operations'")
        if tname not in agent.config.allowed_tools:
            raise LuaApiError(f"Agent:invokeTool: tool '{tname}' is not allowed for agent '{agent.name}' "
                              "(add it with :allow_tool())")
        _, inv = _tools()
        py = b.to_py(params) if b.is_table(params) else {}
        try:
            return inv.invoke(tname, py or {}, rt.block_on)
        except ToolError as e:
            raise LuaApiError(f"Agent:invokeTool: {e}") from None

    def tool_meta(name: str) -> dict[str, Any] | None:
        treg, _ = _tools()
        spec = treg.resolve(name)
        if spec is None:
            return None
        return {"name": spec.name, "description": spec.description, "version": spec.version}

    def get_tool_metadata(agent: Agent, name: Any = None) -> Any:
        if not isinstance(name, str) or name not in agent.config.allowed_tools:
            return None
        return tool_meta(name)

    def get_all_tool_metadata(agent: Agent) -> Any:
        return {t: tool_meta(t) for t in agent.config.allowed_tools}

    def set_state(agent: Agent, tbl: Any = None) -> Any:
        v = b.to_py(tbl) if b.is_table(tbl) else None
        if not isinstance(v, dict):
            raise LuaApiError("Agent:set_state: expected a table like {history = {{role = 'user', content = '...'}}}")
        hist = v.get("history") or []
        if not isinstance(hist, list):
            raise LuaApiError("Agent:set_state: history must be an array of {role, content}")
        agent.set_history(hist)
        return True

    def _store() -> Any:
        st = rt.services.state
        if st is None:
            raise LuaApiError("Agent:save_state: state is not available in this runtime")
        return st

    def save_state(agent: Agent) -> bool:
        try:
            _store().save("agent", f"{agent.name}:snapshot", agent.snapshot())
        except LuaApiError:
            raise
        except Exception as e:  # noqa: BLE001 - storage failures surface as Lua errors
            raise LuaApiError(f"Agent:save_state: {e}") from None
        return True

    def load_state(agent: Agent) -> bool:
        try:
            snap = _store().load("agent", f"{agent.name}:snapshot")
        except LuaApiError:
            raise
        except Exception as e:  # noqa: BLE001
            raise LuaApiError(f"Agent:load_state: {e}") from None
        if not isinstance(snap, dict):
            return False
        agent.set_history(snap.get("history") or [])
        return True

    def delete_state(agent: Agent) -> bool:
        try:
            return bool(_store().delete("agent", f"{agent.name}:snapshot"))
        except LuaApiError:
            raise
        except Exception as e:  # noqa: BLE001
            raise LuaApiError(f"Agent:delete_state: {e}") from None

    def lifecycle(state: str, ret: bool = True) -> Any:
        def m(agent: Agent) -> Any:
            agent.set_lifecycle(state)
            _history(agent).append(state)
            return state if ret else None
        return m

    def terminate(agent: Agent) -> Any:
        reg.shutdown(agent.name)
        agent.set_lifecycle("terminated")
        _history(agent).append("terminated")
        return True

    def destroy(agent: Agent) -> Any:
        terminate(agent)
        if reg.get(agent.name) is agent:
            reg.remove(agent.name)
        return True

    def set_error(agent: Agent, msg: Any = None) -> None:
        agent.last_error = str(msg) if msg is not None else "error"
        agent.set_lifecycle("error")
        _history(agent).append("error")

    def recover(agent: Agent) -> str:
        agent.consecutive_failures = 0
        agent.set_lifecycle("ready")
        _history(agent).append("ready")
        _extra(agent)["recoveries"] = _extra(agent).get("recoveries", 0) + 1
        return "ready"

    def get_performance(agent: Agent) -> Any:
        m = agent.metrics.as_dict()
        done = m["successes"] + m["failures"]
        return {"executions": m["executions"], "avg_duration_ms": m["avg_duration_ms"],
                "last_duration_ms": m["last_duration_ms"],
                "success_rate": float(m["successes"] / done) if done else 1.0}

    def log_event(agent: Agent, etype: Any = None, msg: Any = None) -> bool:
        et = _str("Agent:logEvent", etype, "event type", '"checkpoint"')
        bus = rt.services.events
        if bus is None:
            return False
        return bool(bus.publish(f"agent.{et}", {"agent": agent.name, "message": "" if msg is None else str(msg)}))

    def configure_alerts(agent: Agent, tbl: Any = None) -> bool:
        _extra(agent)["alerts_config"] = b.to_py(tbl) if b.is_table(tbl) else {}
        return True

    def get_alerts(agent: Agent) -> Any:
        cfg = _extra(agent).get("alerts_config") or {}
        alerts = []
        limit = cfg.get("max_consecutive_failures") if isinstance(cfg, dict) else None
        if isinstance(limit, int | float) and agent.consecutive_failures >= limit:
            alerts.append({"type": "consecutive_failures", "value": agent.consecutive_failures,
                           "message": agent.last_error or ""})
        return alerts

    instance_methods: dict[str, Any] = {
        "execute": execute, "invoke": execute, "invokeStream": invoke_stream,
        "execute_with_context": execute_with_context, "invokeTool": invoke_tool,
        "discover_tools": lambda a: list(a.config.allowed_tools),
        "has_tool": lambda a, n=None: isinstance(n, str) and n in a.config.allowed_tools,
        "get_tool_metadata": get_tool_metadata, "get_all_tool_metadata": get_all_tool_metadata,
        "get_history": lambda a: a.get_history(), "clear_history": lambda a: a.clear_history(),
        "get_config": lambda a: a.config.public(), "get_state": lambda a: a.state,
        "get_agent_state": lambda a: a.state,
        "initialize": lifecycle("ready"), "start": lifecycle("ready"), "resume": lifecycle("ready"),
        "pause": lifecycle("paused", False), "stop": terminate, "terminate": terminate, "destroy": destroy,
        "set_error": set_error, "recover": recover, "set_state": set_state, "save_state": save_state,
        "load_state": load_state, "delete_state": delete_state, "get_metrics": lambda a: a.metrics.as_dict(),
        "get_health": lambda a: a.health(), "is_healthy": lambda a: bool(a.health()["healthy"]),
        "get_last_error": lambda a: a.last_error, "get_performance": get_performance,
        "get_bridge_metrics": lambda a: {"calls": a.metrics.executions, "errors": a.metrics.failures},
        "get_state_metrics": lambda a: {"state": a.state, "transitions": len(_history(a)),
                                        "history_length": len(a.history)},
        "get_state_history": lambda a: list(_history(a)),
        "get_recovery_attempts": lambda a: int(_extra(a).get("recoveries", 0)),
        "get_alerts": get_alerts, "configure_alerts": configure_alerts, "logEvent": log_event,
    }
    AgentCls = b.klass("Agent", instance_methods, fields=fields,
                       tostring=lambda a: f"Agent({a.name}, {a.provider}/{a.model})")

    # ------------------------------------------------------------------ global functions
    def _name(fname: str, v: Any) -> str:
        return _str(fname, v, "agent name", '"writer"')

    def _known(fname: str, name: Any) -> Agent:
        agent = reg.get(_name(fname, name))
        if agent is None:
            raise LuaApiError(f"{fname}: unknown agent '{name}' (see Agent.list_instances())")
        return agent

    def create(cfg: Any = None) -> Any:
        v = b.to_py(cfg) if b.is_table(cfg) else None
        if not isinstance(v, dict):
            raise LuaApiError('Agent.create: expected a table of builder keys (e.g. {name = "w", model = "openai/gpt-4o-mini"})')
        return new_agent(reg.build(_cfg_keys(v), "Agent.create"))

    def get(name: Any = None) -> Any:
        agent = reg.get(name) if isinstance(name, str) else None
        return new_agent(agent) if agent is not None else None

    def list_() -> Any:
        return [{"name": a.name, "model": a.model, "provider": a.provider, "description": a.config.description}
                for a in reg.all()]

    def register(cfg: Any = None) -> Any:
        v = b.to_py(cfg) if b.is_table(cfg) else None
        if not isinstance(v, dict):
            raise LuaApiError("Agent.register: expected a config table (e.g. {name = 'w', model = {provider = "
                              "'openai', model_id = 'gpt-4o-mini'}})")
        atype = v.get("agent_type", "llm")
        if atype != "llm":
            raise LuaApiError(f"Agent.register: agent_type must be 'llm', got {atype!r}")
        model = v.get("model")
        if not isinstance(model, dict) or not isinstance(model.get("model_id"), str):
            raise LuaApiError("Agent.register: model must be {provider = 'openai', model_id = 'gpt-4o-mini'}")
        keys: dict[str, Any] = {"name": v.get("name"), "description": v.get("description"),
                                "provider": model.get("provider"), "model": model["model_id"],
                                "temperature": model.get("temperature"), "max_tokens": model.get("max_tokens"),
                                "allowed_tools": v.get("allowed_tools") or [],
                                "custom_config": v.get("custom_config") or {},
                                "resource_limits": v.get("resource_limits") or {}}
        return reg.build(keys, "Agent.register").name

    def info(agent: Agent) -> dict[str, Any]:
        return {"name": agent.name, "description": agent.config.description, "model": agent.model,
                "provider": agent.provider, "type": "llm", "allowed_tools": list(agent.config.allowed_tools),
                "state": agent.state}

    def get_info(name: Any = None) -> Any:
        return info(_known("Agent.get_info", name))

    def get_details(name: Any = None) -> Any:
        agent = _known("Agent.get_details", name)
        out = info(agent)
        out["config"] = agent.config.public()
        out["metrics"] = agent.metrics.as_dict()
        return out

    def create_from_template(name: Any = None, template: Any = None, params: Any = None) -> Any:
        n = _name("Agent.create_from_template", name)
        t = _str("Agent.create_from_template", template, "template", '"summarizer"')
        if t not in TEMPLATES:
            raise LuaApiError(f"Agent.create_from_template: unknown template '{t}' "
                              f"(one of {', '.join(sorted(TEMPLATES))})")
        p = b.to_py(params) if b.is_table(params) else {}
        if not isinstance(p, dict):
            raise LuaApiError("Agent.create_from_template: params must be a table of builder keys")
        cfg = {**TEMPLATES[t], **_cfg_keys(p), "name": n}
        return new_agent(reg.build(cfg, "Agent.create_from_template"))

    def caps(agent: Agent) -> list[str]:
        pinfo = reg.providers.info(agent.provider) or {}
        c = pinfo.get("capabilities", {})
        out = ["text"]
        if c.get("supports_tools"):
            out.append("tools")
        if c.get("supports_streaming"):
            out.append("streaming")
        if c.get("supports_multimodal"):
            out.append("vision")
        return out

    def discover_by_capability(cap: Any = None) -> Any:
        c = _str("Agent.discover_by_capability", cap, "capability", '"streaming"')
        return [a.name for a in reg.all() if c in caps(a)]

    def wrap_as_tool(name: Any = None, cfg: Any = None) -> Any:
        agent = _known("Agent.wrap_as_tool", name)
        c = b.to_py(cfg) if b.is_table(cfg) else {}
        c = c if isinstance(c, dict) else {}
        tool_name = c.get("tool_name") or f"{agent.name}_tool"
        if not isinstance(tool_name, str) or not tool_name:
            raise LuaApiError("Agent.wrap_as_tool: cfg.tool_name must be a non-empty string")
        spec, tool = agent_tool(agent, tool_name, str(c.get("description") or ""))
        try:
            tool_service(rt)[0].register(spec, tool)
        except Exception as e:  # noqa: BLE001 - a name clash is misuse
            raise LuaApiError(f"Agent.wrap_as_tool: {e}") from None
        return tool_name

    def create_composite(name: Any = None, agent_names: Any = None, cfg: Any = None) -> Any:
        n = _name("Agent.create_composite", name)
        members = b.to_py(agent_names) if b.is_table(agent_names) else None
        if not isinstance(members, list):
            raise LuaApiError("Agent.create_composite: agent_names must be an array of agent names "
                              "(e.g. {'researcher', 'writer'})")
        c = b.to_py(cfg) if b.is_table(cfg) else {}
        return new_agent(reg.build_composite(n, members, c if isinstance(c, dict) else {}))

    def get_hierarchy(name: Any = None) -> Any:
        agent = _known("Agent.get_hierarchy", name)
        return reg.hierarchy(agent.name)

    def create_context(cfg: Any = None) -> str:
        v = b.to_py(cfg) if b.is_table(cfg) else {}
        return reg.create_context(v if isinstance(v, dict) else {})

    def create_child_context(parent_id: Any = None, scope: Any = None, inheritance: Any = None) -> str:
        pid = _str("Agent.create_child_context", parent_id, "parent_id", "Agent.create_context()")
        return reg.create_child_context(pid, str(scope or "child"), str(inheritance or "inherit"))

    def update_context(cid: Any = None, key: Any = None, value: Any = None) -> bool:
        ctx = reg.context(_str("Agent.update_context", cid, "context id", "Agent.create_context()"),
                          "Agent.update_context")
        ctx.data[_str("Agent.update_context", key, "key", '"topic"')] = b.to_py(value)
        return True

    def get_context_data(cid: Any = None, key: Any = None) -> Any:
        c = _str("Agent.get_context_data", cid, "context id", "Agent.create_context()")
        reg.context(c, "Agent.get_context_data")
        items = reg.context_items(c)
        return items if key is None else items.get(str(key))

    def remove_context(cid: Any = None) -> bool:
        return reg.remove_context(_str("Agent.remove_context", cid, "context id", "Agent.create_context()"))

    def set_shared_memory(scope: Any = None, key: Any = None, value: Any = None) -> bool:
        s = b.to_py(scope) if b.is_table(scope) else scope
        reg.set_shared(s, _str("Agent.set_shared_memory", key, "key", '"notes"'), b.to_py(value))
        return True

    def get_shared_memory(scope: Any = None, key: Any = None) -> Any:
        s = b.to_py(scope) if b.is_table(scope) else scope
        return reg.get_shared(s, _str("Agent.get_shared_memory", key, "key", '"notes"'))

    b.set_functions(A, {
        "builder": lambda: Builder.new(_Builder()), "create": create, "get": get, "list": list_,
        "list_instances": lambda: reg.names(),
        "discover": lambda: [{"type": "llm", "description": "LLM-backed agent (chat completion with history)"}],
        "register": register, "get_info": get_info, "get_details": get_details,
        "list_templates": lambda: sorted(TEMPLATES), "create_from_template": create_from_template,
        "list_capabilities": lambda: {a.name: caps(a) for a in reg.all()},
        "discover_by_capability": discover_by_capability, "wrap_as_tool": wrap_as_tool,
        "create_composite": create_composite, "get_hierarchy": get_hierarchy,
        "create_context": create_context, "create_child_context": create_child_context,
        "update_context": update_context, "get_context_data": get_context_data, "remove_context": remove_context,
        "set_shared_memory": set_shared_memory, "get_shared_memory": get_shared_memory,
    }, "Agent")
    rt.G.Agent = A

    def _close() -> None:
        for agent in reg.all():
            try:
                reg.shutdown(agent.name)
            except Exception:  # noqa: BLE001 - close is best effort
                log.debug("shutdown hook failed", exc_info=True)

    rt.on_close(_close)


def _extra(agent: Agent) -> dict[str, Any]:
    d = agent.__dict__.get("_lua_extra")
    if d is None:
        d = agent.__dict__["_lua_extra"] = {"history": []}
    return d


def _history(agent: Agent) -> list[str]:
    return _extra(agent)["history"]


def _cfg_keys(v: dict[str, Any]) -> dict[str, Any]:
    """Builder keys from a create/template table (`execution time` aliases folded into resource_limits)."""
    out = dict(v)
    limits = dict(out.get("resource_limits") or {})
    for method, key in _LIMIT_METHODS.items():
        if method in out:
            limits[key] = out.pop(method)
    out["resource_limits"] = limits
    return out


def _render(v: Any) -> str:
    if isinstance(v, str):
        return v
    return json.dumps(v, sort_keys=True, ensure_ascii=False)


__all__ = ["install", "AgentError"]
