"""The `Agent` global (lua-api.md §2): builder, instances, registry functions, contexts, shared memory.

Spec rules (builder keys, create/register/template tables, capabilities) live in agents/spec.py;
agents/registry.py builds and keeps the agents. `AgentBinding` holds the Lua side of one runtime.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from llmspell.agents import spec
from llmspell.agents.agent import Agent, AgentError, normalize_input
from llmspell.agents.as_tool import agent_tool
from llmspell.agents.registry import TEMPLATES, AgentRegistry
from llmspell.agents.spec import AgentSpec
from llmspell.script.bridge import LuaApiError, type_name
from llmspell.script.checks import need_str
from llmspell.script.globals.tool import tool_service
from llmspell.tools.base import ToolError

if TYPE_CHECKING:
    from llmspell.script.engine import ScriptRuntime

log = logging.getLogger("llmspell.agents")


def _agents(rt: ScriptRuntime) -> AgentRegistry:
    reg = rt.services.agents
    if not isinstance(reg, AgentRegistry):
        reg = AgentRegistry(rt.services)
        rt.services.agents = reg
    return reg


def _extra(agent: Agent) -> dict[str, Any]:
    d = agent.__dict__.get("_lua_extra")
    if d is None:
        d = agent.__dict__["_lua_extra"] = {"history": []}
    return d


def _history(agent: Agent) -> list[str]:
    return _extra(agent)["history"]


def _name(fname: str, v: Any) -> str:
    return need_str(v, fname, "agent name", '"writer"')


class AgentBinding:
    """The Agent global of one runtime: the AgentBuilder and Agent object kinds and the Agent table."""

    def __init__(self, rt: ScriptRuntime) -> None:
        self.rt = rt
        self.b = b = rt.bridge
        self.reg = _agents(rt)
        # Weak values: a cache kept on the agent pinned its proxy, and the proxy the agent, so an agent
        # replaced by name was never freed. id() is safe as key: a live entry keeps its agent alive.
        self.proxies = b.weak_table("v")
        methods = self._builder_methods()
        self.builder_class = b.klass("AgentBuilder", methods, tostring=lambda h: "AgentBuilder()",
                                     chain=[k for k in methods if k != "build"])
        self.agent_class = b.klass("Agent", self._instance_methods(), fields=self.fields,
                                   tostring=lambda a: f"Agent({a.name}, {a.provider}/{a.model})")

    def install(self) -> None:
        reg = self.reg
        A = self.b.table()
        self.b.set_functions(A, {
            "builder": lambda: self.builder_class.new(AgentSpec()), "create": self.create, "get": self.get,
            "list": self.list_, "list_instances": lambda: reg.names(),
            "discover": lambda: [{"type": "llm", "description": "LLM-backed agent (chat completion with history)"}],
            "register": self.register, "get_info": self.get_info, "get_details": self.get_details,
            "list_templates": lambda: sorted(TEMPLATES), "create_from_template": self.create_from_template,
            "list_capabilities": lambda: {a.name: self.caps(a) for a in reg.all()},
            "discover_by_capability": self.discover_by_capability, "wrap_as_tool": self.wrap_as_tool,
            "create_composite": self.create_composite, "get_hierarchy": self.get_hierarchy,
            "create_context": self.create_context, "create_child_context": self.create_child_context,
            "update_context": self.update_context, "get_context_data": self.get_context_data,
            "remove_context": self.remove_context, "set_shared_memory": self.set_shared_memory,
            "get_shared_memory": self.get_shared_memory,
        }, "Agent")
        self.rt.G.Agent = A
        self.rt.on_close(self._close)

    def _close(self) -> None:
        for agent in self.reg.all():
            try:
                self.reg.shutdown(agent.name)
            except Exception:  # noqa: BLE001 - close is best effort
                log.debug("shutdown hook failed", exc_info=True)

    def _table(self, v: Any) -> Any:
        """Plain data of a Lua table argument; None for anything else."""
        return self.b.to_py(v) if self.b.is_table(v) else None

    # ------------------------------------------------------------------ builder
    def _builder_methods(self) -> dict[str, Any]:
        def text(key: str) -> Any:
            return lambda h, v=None: h.set_text(key, v)

        def number(key: str) -> Any:
            return lambda h, v=None: h.set_number(key, v)

        def limit(method: str) -> Any:
            return lambda h, v=None: h.set_limit(method, v)

        def table(key: str) -> Any:
            return lambda h, t=None: h.set_table(key, self._table(t), t)

        def build(h: AgentSpec) -> Any:
            return self.new_agent(self.reg.build(dict(h.cfg), "Agent.builder"))

        methods: dict[str, Any] = {key: text(key) for key in spec.TEXT_KEYS}
        methods.update({key: number(key) for key in spec.NUMBER_KEYS})

        def allowed_tools(h: AgentSpec, names: Any = None) -> None:
            h.set_allowed_tools(self._table(names))

        def allow_tool(h: AgentSpec, name: Any = None) -> None:
            h.allow_tool(name)

        def type_(h: AgentSpec, v: Any = None) -> None:
            h.set_type(v)

        methods.update({"allow_tool": allow_tool, "allowed_tools": allowed_tools})
        methods.update({key: table(key) for key in spec.TABLE_KEYS})
        methods.update({"type": type_, "build": build})
        methods.update({method: limit(method) for method in spec.LIMIT_METHODS})
        return methods

    # ------------------------------------------------------------------ instances
    def new_agent(self, agent: Agent) -> Any:
        proxy = self.proxies[id(agent)]
        if proxy is None:
            proxy = self.proxies[id(agent)] = self.agent_class.new(agent)
        return proxy

    @staticmethod
    def fields(agent: Agent, key: str) -> tuple[bool, Any]:
        if key in ("name", "model", "provider"):
            return True, getattr(agent, key)
        return False, None

    def _input(self, fname: str, value: Any) -> dict[str, Any]:
        v = self.b.to_py(value) if self.b.is_table(value) else value
        return normalize_input(v, fname)

    def run_here(self, agent: Agent, inp: dict[str, Any], **kw: Any) -> Any:
        """One call with its Before/After hooks fired here on the Lua thread (no hop from the IO loop)."""
        inp, before = agent.before_here(inp)
        inp, result, final = self.rt.block_on(agent.acore(inp, before, **kw))
        return result if final else agent.after_here(inp, result)

    def execute(self, agent: Agent, inp: Any = None) -> Any:
        return self.run_here(agent, self._input("Agent:execute", inp))

    def invoke_stream(self, agent: Agent, inp: Any = None, fn: Any = None) -> Any:
        py = self._input("Agent:invokeStream", inp)
        if fn is not None and not self.b.is_function(fn):
            raise LuaApiError(f"Agent:invokeStream: callback must be a function, got {type_name(fn)}")
        rt = self.rt

        async def on_delta(text: str) -> None:
            if fn is not None:
                await rt.call_lua_async(fn, text)

        return self.run_here(agent, py, on_delta=on_delta)

    def execute_with_context(self, agent: Agent, inp: Any = None, context_id: Any = None) -> Any:
        py = self._input("Agent:execute_with_context", inp)
        cid = need_str(context_id, "Agent:execute_with_context", "context_id", "Agent.create_context()")
        return self.run_here(agent, py, context_text=spec.context_block(self.reg.context_items(cid)))

    def invoke_tool(self, agent: Agent, name: Any = None, params: Any = None) -> Any:
        tname = need_str(name, "Agent:invokeTool", "tool name", "'file_operations'")
        if tname not in agent.config.allowed_tools:
            raise LuaApiError(f"Agent:invokeTool: tool '{tname}' is not allowed for agent '{agent.name}' "
                              "(add it with :allow_tool())")
        _, inv = tool_service(self.rt)
        py = self.b.to_py(params) if self.b.is_table(params) else {}
        try:
            return inv.invoke(tname, py or {}, self.rt.block_on)
        except ToolError as e:
            raise LuaApiError(f"Agent:invokeTool: {e}") from None

    def tool_meta(self, name: str) -> dict[str, Any] | None:
        treg, _ = tool_service(self.rt)
        tspec = treg.resolve(name)
        if tspec is None:
            return None
        return {"name": tspec.name, "description": tspec.description, "version": tspec.version}

    def get_tool_metadata(self, agent: Agent, name: Any = None) -> Any:
        if not isinstance(name, str) or name not in agent.config.allowed_tools:
            return None
        return self.tool_meta(name)

    def get_all_tool_metadata(self, agent: Agent) -> Any:
        return {t: self.tool_meta(t) for t in agent.config.allowed_tools}

    def set_state(self, agent: Agent, tbl: Any = None) -> Any:
        v = self._table(tbl)
        if not isinstance(v, dict):
            raise LuaApiError("Agent:set_state: expected a table like {history = {{role = 'user', content = '...'}}}")
        hist = v.get("history") or []
        if not isinstance(hist, list):
            raise LuaApiError("Agent:set_state: history must be an array of {role, content}")
        agent.set_history(hist)
        return True

    def _store(self) -> Any:
        st = self.rt.services.state
        if st is None:
            raise LuaApiError("Agent:save_state: state is not available in this runtime")
        return st

    def save_state(self, agent: Agent) -> bool:
        try:
            self._store().save("agent", f"{agent.name}:snapshot", agent.snapshot())
        except LuaApiError:
            raise
        except Exception as e:  # noqa: BLE001 - storage failures surface as Lua errors
            raise LuaApiError(f"Agent:save_state: {e}") from None
        return True

    def load_state(self, agent: Agent) -> bool:
        try:
            snap = self._store().load("agent", f"{agent.name}:snapshot")
        except LuaApiError:
            raise
        except Exception as e:  # noqa: BLE001
            raise LuaApiError(f"Agent:load_state: {e}") from None
        if not isinstance(snap, dict):
            return False
        agent.set_history(snap.get("history") or [])
        return True

    def delete_state(self, agent: Agent) -> bool:
        try:
            return bool(self._store().delete("agent", f"{agent.name}:snapshot"))
        except LuaApiError:
            raise
        except Exception as e:  # noqa: BLE001
            raise LuaApiError(f"Agent:delete_state: {e}") from None

    @staticmethod
    def lifecycle(state: str, ret: bool = True) -> Any:
        def m(agent: Agent) -> Any:
            agent.set_lifecycle(state)
            _history(agent).append(state)
            return state if ret else None
        return m

    def terminate(self, agent: Agent) -> Any:
        self.reg.shutdown(agent.name)
        agent.set_lifecycle("terminated")
        _history(agent).append("terminated")
        return True

    def destroy(self, agent: Agent) -> Any:
        self.terminate(agent)
        if self.reg.get(agent.name) is agent:
            self.reg.remove(agent.name)
        return True

    @staticmethod
    def set_error(agent: Agent, msg: Any = None) -> None:
        agent.last_error = str(msg) if msg is not None else "error"
        agent.set_lifecycle("error")
        _history(agent).append("error")

    @staticmethod
    def recover(agent: Agent) -> str:
        agent.consecutive_failures = 0
        agent.set_lifecycle("ready")
        _history(agent).append("ready")
        _extra(agent)["recoveries"] = _extra(agent).get("recoveries", 0) + 1
        return "ready"

    @staticmethod
    def get_performance(agent: Agent) -> Any:
        m = agent.metrics.as_dict()
        done = m["successes"] + m["failures"]
        return {"executions": m["executions"], "avg_duration_ms": m["avg_duration_ms"],
                "last_duration_ms": m["last_duration_ms"],
                "success_rate": float(m["successes"] / done) if done else 1.0}

    def log_event(self, agent: Agent, etype: Any = None, msg: Any = None) -> bool:
        et = need_str(etype, "Agent:logEvent", "event type", '"checkpoint"')
        bus = self.rt.services.events
        if bus is None:
            return False
        return bool(bus.publish(f"agent.{et}", {"agent": agent.name, "message": "" if msg is None else str(msg)}))

    def configure_alerts(self, agent: Agent, tbl: Any = None) -> bool:
        _extra(agent)["alerts_config"] = self.b.to_py(tbl) if self.b.is_table(tbl) else {}
        return True

    @staticmethod
    def get_alerts(agent: Agent) -> Any:
        cfg = _extra(agent).get("alerts_config") or {}
        alerts = []
        limit = cfg.get("max_consecutive_failures") if isinstance(cfg, dict) else None
        if isinstance(limit, int | float) and agent.consecutive_failures >= limit:
            alerts.append({"type": "consecutive_failures", "value": agent.consecutive_failures,
                           "message": agent.last_error or ""})
        return alerts

    def _instance_methods(self) -> dict[str, Any]:
        lifecycle = self.lifecycle
        return {
            "execute": self.execute, "invoke": self.execute, "invokeStream": self.invoke_stream,
            "execute_with_context": self.execute_with_context, "invokeTool": self.invoke_tool,
            "discover_tools": lambda a: list(a.config.allowed_tools),
            "has_tool": lambda a, n=None: isinstance(n, str) and n in a.config.allowed_tools,
            "get_tool_metadata": self.get_tool_metadata, "get_all_tool_metadata": self.get_all_tool_metadata,
            "get_history": lambda a: a.get_history(), "clear_history": lambda a: a.clear_history(),
            "get_config": lambda a: a.config.public(), "get_state": lambda a: a.state,
            "get_agent_state": lambda a: a.state,
            "initialize": lifecycle("ready"), "start": lifecycle("ready"), "resume": lifecycle("ready"),
            "pause": lifecycle("paused", False), "stop": self.terminate, "terminate": self.terminate,
            "destroy": self.destroy, "set_error": self.set_error, "recover": self.recover,
            "set_state": self.set_state, "save_state": self.save_state, "load_state": self.load_state,
            "delete_state": self.delete_state, "get_metrics": lambda a: a.metrics.as_dict(),
            "get_health": lambda a: a.health(), "is_healthy": lambda a: bool(a.health()["healthy"]),
            "get_last_error": lambda a: a.last_error, "get_performance": self.get_performance,
            "get_bridge_metrics": lambda a: {"calls": a.metrics.executions, "errors": a.metrics.failures},
            "get_state_metrics": lambda a: {"state": a.state, "transitions": len(_history(a)),
                                            "history_length": len(a.history)},
            "get_state_history": lambda a: list(_history(a)),
            "get_recovery_attempts": lambda a: int(_extra(a).get("recoveries", 0)),
            "get_alerts": self.get_alerts, "configure_alerts": self.configure_alerts, "logEvent": self.log_event,
        }

    # ------------------------------------------------------------------ global functions
    def _known(self, fname: str, name: Any) -> Agent:
        agent = self.reg.get(_name(fname, name))
        if agent is None:
            raise LuaApiError(f"{fname}: unknown agent '{name}' (see Agent.list_instances())")
        return agent

    def create(self, cfg: Any = None) -> Any:
        return self.new_agent(self.reg.build(spec.create_keys(self._table(cfg)), "Agent.create"))

    def get(self, name: Any = None) -> Any:
        agent = self.reg.get(name) if isinstance(name, str) else None
        return self.new_agent(agent) if agent is not None else None

    def list_(self) -> Any:
        return [{"name": a.name, "model": a.model, "provider": a.provider, "description": a.config.description}
                for a in self.reg.all()]

    def register(self, cfg: Any = None) -> Any:
        return self.reg.build(spec.register_keys(self._table(cfg)), "Agent.register").name

    @staticmethod
    def info(agent: Agent) -> dict[str, Any]:
        return {"name": agent.name, "description": agent.config.description, "model": agent.model,
                "provider": agent.provider, "type": "llm", "allowed_tools": list(agent.config.allowed_tools),
                "state": agent.state}

    def get_info(self, name: Any = None) -> Any:
        return self.info(self._known("Agent.get_info", name))

    def get_details(self, name: Any = None) -> Any:
        agent = self._known("Agent.get_details", name)
        out = self.info(agent)
        out["config"] = agent.config.public()
        out["metrics"] = agent.metrics.as_dict()
        return out

    def create_from_template(self, name: Any = None, template: Any = None, params: Any = None) -> Any:
        n, tpl = spec.template_of(name, template)
        p = self.b.to_py(params) if self.b.is_table(params) else {}
        return self.new_agent(self.reg.build(spec.template_keys(n, tpl, p), "Agent.create_from_template"))

    def caps(self, agent: Agent) -> list[str]:
        return spec.capabilities(self.reg.providers.info(agent.provider) or {})

    def discover_by_capability(self, cap: Any = None) -> Any:
        c = need_str(cap, "Agent.discover_by_capability", "capability", '"streaming"')
        return [a.name for a in self.reg.all() if c in self.caps(a)]

    def wrap_as_tool(self, name: Any = None, cfg: Any = None) -> Any:
        agent = self._known("Agent.wrap_as_tool", name)
        c = self.b.to_py(cfg) if self.b.is_table(cfg) else {}
        c = c if isinstance(c, dict) else {}
        tool_name = c.get("tool_name") or f"{agent.name}_tool"
        if not isinstance(tool_name, str) or not tool_name:
            raise LuaApiError("Agent.wrap_as_tool: cfg.tool_name must be a non-empty string")
        tspec, tool = agent_tool(agent, tool_name, str(c.get("description") or ""))
        try:
            tool_service(self.rt)[0].register(tspec, tool)
        except Exception as e:  # noqa: BLE001 - a name clash is misuse
            raise LuaApiError(f"Agent.wrap_as_tool: {e}") from None
        return tool_name

    def create_composite(self, name: Any = None, agent_names: Any = None, cfg: Any = None) -> Any:
        n = _name("Agent.create_composite", name)
        members = self._table(agent_names)
        if not isinstance(members, list):
            raise LuaApiError("Agent.create_composite: agent_names must be an array of agent names "
                              "(e.g. {'researcher', 'writer'})")
        c = self.b.to_py(cfg) if self.b.is_table(cfg) else {}
        return self.new_agent(self.reg.build_composite(n, members, c if isinstance(c, dict) else {}))

    def get_hierarchy(self, name: Any = None) -> Any:
        agent = self._known("Agent.get_hierarchy", name)
        return self.reg.hierarchy(agent.name)

    def create_context(self, cfg: Any = None) -> str:
        v = self.b.to_py(cfg) if self.b.is_table(cfg) else {}
        return self.reg.create_context(v if isinstance(v, dict) else {})

    def create_child_context(self, parent_id: Any = None, scope: Any = None, inheritance: Any = None) -> str:
        pid = need_str(parent_id, "Agent.create_child_context", "parent_id", "Agent.create_context()")
        return self.reg.create_child_context(pid, str(scope or "child"), str(inheritance or "inherit"))

    def update_context(self, cid: Any = None, key: Any = None, value: Any = None) -> bool:
        ctx = self.reg.context(need_str(cid, "Agent.update_context", "context id", "Agent.create_context()"),
                               "Agent.update_context")
        ctx.data[need_str(key, "Agent.update_context", "key", '"topic"')] = self.b.to_py(value)
        return True

    def get_context_data(self, cid: Any = None, key: Any = None) -> Any:
        c = need_str(cid, "Agent.get_context_data", "context id", "Agent.create_context()")
        self.reg.context(c, "Agent.get_context_data")
        items = self.reg.context_items(c)
        return items if key is None else items.get(str(key))

    def remove_context(self, cid: Any = None) -> bool:
        return self.reg.remove_context(need_str(cid, "Agent.remove_context", "context id", "Agent.create_context()"))

    def _scope(self, scope: Any) -> Any:
        return self.b.to_py(scope) if self.b.is_table(scope) else scope

    def set_shared_memory(self, scope: Any = None, key: Any = None, value: Any = None) -> bool:
        s = self._scope(scope)
        self.reg.set_shared(s, need_str(key, "Agent.set_shared_memory", "key", '"notes"'), self.b.to_py(value))
        return True

    def get_shared_memory(self, scope: Any = None, key: Any = None) -> Any:
        s = self._scope(scope)
        return self.reg.get_shared(s, need_str(key, "Agent.get_shared_memory", "key", '"notes"'))


def install(rt: ScriptRuntime) -> None:
    AgentBinding(rt).install()


__all__ = ["install", "AgentError"]
