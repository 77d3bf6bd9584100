"""The `Workflow` global (lua-api.md §5): builder, table constructors, registry and Workflow objects."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any

from llmspell.runtime.io import get_io
from llmspell.script.bridge import Bridge, LuaApiError, LuaError, lua_error_message, lua_file, type_name
from llmspell.script.checks import need_int, need_str
from llmspell.script.globals.tool import tool_service
from llmspell.workflows import spec as sp
from llmspell.workflows.engine import Engine, LuaCallError, Settings
from llmspell.workflows.model import (
    WORKFLOW_TYPES,
    Branch,
    Condition,
    LuaRef,
    Step,
    WorkflowConfigError,
    WorkflowDef,
)
from llmspell.workflows.spec import WorkflowSpec

if TYPE_CHECKING:
    from llmspell.script.engine import ScriptRuntime

log = logging.getLogger("llmspell.workflows")

#: Runs fn(arg) with a count hook that raises once `expired()` is true (chaining any existing hook), so
#: a function step that loops forever stops at its step timeout instead of holding the Lua thread.
_GUARD_LUA = lua_file(__file__, "workflow_guard.lua")

_EXPR_LUA = lua_file(__file__, "workflow_expr.lua")


class WorkflowRegistry:
    """Workflows of one runtime, in creation order.

    Retention: the most recent workflow built under each name the script gave is kept for the
    runtime's life (so `Workflow.get(name)` finds it after the script dropped it); a workflow it
    replaced, or one built without a name, is kept only while something still refers to it (a Lua
    variable, another workflow's step). A kernel running the same app again therefore holds one
    workflow per name instead of every workflow ever built.
    """

    def __init__(self) -> None:
        self._live: weakref.WeakValueDictionary[str, WorkflowDef] = weakref.WeakValueDictionary()
        self._named: dict[str, tuple[WorkflowDef, Any]] = {}  # name -> (workflow, its Lua proxy)
        self.lock = threading.Lock()

    @property
    def items(self) -> list[WorkflowDef]:
        """The live workflows, in creation order."""
        with self.lock:
            return list(self._live.values())

    def add(self, wf: WorkflowDef, proxy: Any = None) -> None:
        """Register `wf`; with its proxy it is kept as the latest workflow of its name."""
        with self.lock:
            self._live[wf.id] = wf
            if proxy is not None:
                self._named[wf.name] = (wf, proxy)

    def get(self, key: Any) -> WorkflowDef | None:
        if isinstance(key, WorkflowDef):
            return key
        if not isinstance(key, str):
            return None
        wf = self._live.get(key)
        if wf is not None:
            return wf
        for wf in reversed(self.items):
            if wf.name == key:
                return wf
        return None

    def remove(self, key: Any) -> bool:
        wf = self.get(key)
        if wf is None:
            return False
        with self.lock:
            self._live.pop(wf.id, None)
            if self._named.get(wf.name, (None,))[0] is wf:
                del self._named[wf.name]
        return True

    def clear(self) -> None:
        with self.lock:
            self._live.clear()
            self._named.clear()


class _LuaSpecHost:
    """The spec parser's view of Lua values (workflows/spec.py `SpecHost`) over one runtime's bridge."""

    def __init__(self, b: Bridge, compile_expr: Any, binding: WorkflowBinding) -> None:
        self.b, self._compile, self._binding = b, compile_expr, binding

    def is_table(self, v: Any) -> bool:
        return bool(self.b.is_table(v))

    def is_function(self, v: Any) -> bool:
        return bool(self.b.is_function(v))

    def field(self, t: Any, key: str) -> Any:
        return t[key]

    def items(self, t: Any) -> list[Any]:
        return [t[i] for i in range(1, len(t) + 1)]

    def to_py(self, v: Any) -> Any:
        return self.b.to_py(v)

    def agent_name(self, v: Any) -> str | None:
        return str(v.name) if self.b.tag(v) == "Agent" else None

    def workflow_of(self, v: Any) -> WorkflowDef | None:
        h = self._binding.wf_class.handle_of(v)
        return h if isinstance(h, WorkflowDef) else None

    def compile_condition(self, expr: str) -> tuple[Any, str | None]:
        r = self._compile(expr)
        return (r[0], r[1] if len(r) > 1 else None) if isinstance(r, tuple) else (r, None)


class _LuaCalls:
    """The engine's way into Lua (workflows/engine.py `LuaCalls`): step functions and conditions."""

    def __init__(self, binding: WorkflowBinding) -> None:
        self._w = binding
        self._rt = binding.rt

    async def call(self, fn: Any, ctx: dict[str, Any], wf: WorkflowDef, deadline: float | None = None) -> Any:
        if not get_io().in_loop_thread():  # Engine.execute_here: a callback run on the Lua thread itself
            return self._w.call_on_lua(fn, ctx, wf, deadline)
        return await self._rt.call_lua_async(self._w.call_on_lua, fn, ctx, wf, deadline)

    def call_here(self, fn: Any, ctx: dict[str, Any], wf: WorkflowDef, deadline: float | None = None) -> Any:
        return self._w.call_on_lua(fn, ctx, wf, deadline)

    def submit(self, fn: Any, *args: Any) -> Any:
        return self._rt.call_on_lua_thread(fn, *args)

    def interrupted(self) -> bool:
        return self._rt.interrupted is not None

    def sleep_here(self, seconds: float) -> None:
        self._rt.sleep(seconds)


#: WorkflowBuilder methods that return the builder (chained calls).
_BUILDER_CHAIN = ("sequential", "parallel", "conditional", "loop", "loop_workflow", "name", "description", "timeout_ms",
                  "error_strategy", "max_concurrency", "add_step", "condition", "add_then_step", "add_else_step",
                  "add_branch", "with_collection", "with_range", "with_while", "loop_condition", "break_condition",
                  "max_iterations")


class WorkflowBinding:
    """The Workflow global of one runtime: builder, table constructors, Workflow objects and the registry.

    Parsing lives in workflows/spec.py and running in workflows/engine.py; this class keeps the Lua
    side: the proxies, the Lua values a workflow refers to, and the calls into Lua.
    """

    def __init__(self, rt: ScriptRuntime) -> None:
        self.rt = rt
        self.b = b = rt.bridge
        self.guarded = rt.lua.execute(_GUARD_LUA)
        self.registry = WorkflowRegistry()
        self.pending_warnings: list[str] = []
        self.proxies = b.weak_table("v")  # wf.id -> its Lua proxy, without keeping either alive
        # proxy -> a Lua array of the workflow's Lua values (LuaRef indexes into it). Weak keys: the values
        # live exactly as long as the proxy, and a cycle through them stays inside Lua's heap.
        self.lua_side = b.weak_table("k")
        self.settings = Settings.from_config(rt.config)
        self.host = _LuaSpecHost(b, rt.lua.execute(_EXPR_LUA), self)
        self.engine = Engine(rt.services, _LuaCalls(self), self.registry.get, self.settings,
                             warn=self.pending_warnings.append)
        self.builder_class = b.klass("WorkflowBuilder", self._builder_methods(),
                                     tostring=lambda bd: f"WorkflowBuilder({bd.name or '?'}, {bd.type or '?'})",
                                     chain=_BUILDER_CHAIN)
        self.wf_class = b.klass("Workflow", {
            "execute": self.execute, "get_id": lambda wf: wf.id, "get_info": self.info,
            "get_execution_id": self.get_execution_id, "get_output": self.get_output,
            "get_all_outputs": self.get_all_outputs, "list_outputs": self.list_outputs,
            "clear_outputs": self.clear_outputs, "get_state": self.get_state, "set_state": self.set_state,
            "set_shared_data": self.set_shared, "get_shared_data": self.get_shared,
            "on_before_execute": self._on("before_execute"), "on_after_execute": self._on("after_execute"),
            "on_error": self._on("error"), "emit": self.emit, "validate": self.validate, "get_metrics": self.metrics,
            "debug": self.debug,
        }, fields=self.fields, tostring=lambda wf: f"Workflow({wf.name}, {wf.type}, {wf.id})",
            chain=("on_before_execute", "on_after_execute", "on_error"))

    def install(self) -> None:
        rt, b = self.rt, self.b
        rt.services.workflows = self.registry
        rt.services.workflow_engine = self.engine
        rt.on_close(self._release)  # session retention: the runtime's §5.9 keys end with it
        W = b.table()
        b.set_functions(W, {
            "builder": self.g_builder, "sequential": self._constructor("sequential"),
            "parallel": self._constructor("parallel"), "conditional": self._constructor("conditional"),
            "loop": self._constructor("loop"), "register": self.g_register, "get": self.g_get, "list": self.g_list,
            "remove": self.g_remove, "clear": self.g_clear, "types": self.g_types,
            "setDefaultErrorHandler": self.g_default_handler, "enableDebug": self.g_enable_debug,
            "isDebugEnabled": lambda *_: self.engine.debug,
        }, "Workflow")
        rt.G.Workflow = W

    def _release(self) -> None:
        self.engine.release_state()

    # ================================================================== Lua calls (Lua thread)
    def call_on_lua(self, fn: Any, ctx: dict[str, Any], wf: WorkflowDef, deadline: float | None = None) -> Any:
        b = self.b
        target = fn
        if isinstance(fn, LuaRef):
            target = self.lua_side[self.proxy(wf)][fn.index]
        elif isinstance(fn, str):
            target = self.rt.G[fn]
            if not b.is_function(target):
                raise LookupError(fn)
        t = b.to_lua(ctx)
        t.workflow = self.proxy(wf)
        try:
            r = target(t) if deadline is None else self.guarded(target, t, lambda: time.monotonic() >= deadline)
        except LuaError as e:
            raise LuaCallError(lua_error_message(e)) from None
        if isinstance(r, tuple):
            r = r[0] if r else None
        try:
            return b.to_py(r)
        except LuaApiError as e:
            raise LuaCallError(f"function returned a value that cannot be converted: {e}") from None

    # ================================================================== Lua side of a workflow
    def proxy(self, wf: WorkflowDef) -> Any:
        p = self.proxies[wf.id]
        if p is None:
            p = self.wf_class.new(wf)
            self.proxies[wf.id] = p
        return p

    def keep(self, wf: WorkflowDef, value: Any) -> LuaRef:
        """Put a Lua value on the Lua side of `wf`'s proxy; the reference the Python side keeps."""
        p = self.proxy(wf)
        t = self.lua_side[p]
        if t is None:
            t = self.lua_side[p] = self.b.table()
        n = len(t) + 1
        t[n] = value
        return LuaRef(n)

    def _lift_cond(self, wf: WorkflowDef, c: Condition | None) -> Condition | None:
        if c is None or c.fn is None or isinstance(c.fn, LuaRef | str):
            return c
        return dataclasses.replace(c, fn=self.keep(wf, c.fn))

    def _lift_steps(self, wf: WorkflowDef, steps: list[Step]) -> list[Step]:
        out = []
        for st in steps:
            st = dataclasses.replace(st)  # the builder keeps its own steps (it stays usable)
            if st.fn is not None and not isinstance(st.fn, LuaRef | str):
                st.fn = self.keep(wf, st.fn)
            if isinstance(st.workflow, WorkflowDef):
                self.keep(wf, self.proxy(st.workflow))  # the child's Lua values live as long as this workflow
            out.append(st)
        return out

    def finish(self, wf: WorkflowDef, named: bool = True) -> Any:
        """Move the workflow's Lua values to the Lua side of its proxy, register it; its proxy."""
        p = self.proxy(wf)
        wf.steps = self._lift_steps(wf, wf.steps)
        wf.branches = [Branch(br.label, self._lift_steps(wf, br.steps), self._lift_cond(wf, br.condition))
                       for br in wf.branches]
        lp = wf.loop
        lp.while_cond, lp.loop_condition = self._lift_cond(wf, lp.while_cond), self._lift_cond(wf, lp.loop_condition)
        lp.break_conditions = [c for c in (self._lift_cond(wf, c) for c in lp.break_conditions) if c is not None]
        self.registry.add(wf, p if named else None)
        return p

    def _build(self, spec: WorkflowSpec, fname: str) -> WorkflowDef:
        return sp.build(spec, fname, self.settings.error_strategy, self.settings.max_concurrent)

    # ================================================================== builder object
    def _builder_methods(self) -> dict[str, Any]:
        h = self.host

        def set_type(kind: str) -> Any:
            def f(bd: WorkflowSpec, *_: Any) -> None:
                bd.type = kind
            return f

        def name(bd: WorkflowSpec, v: Any = None) -> None:
            bd.name = need_str(v, "WorkflowBuilder:name", "name")

        def description(bd: WorkflowSpec, v: Any = None) -> None:
            bd.description = need_str(v, "WorkflowBuilder:description", "description")

        def timeout(bd: WorkflowSpec, v: Any = None) -> None:
            n = need_int(v, "WorkflowBuilder:timeout_ms", "timeout_ms")
            bd.timeout_ms = n if n > 0 else None

        def strategy(bd: WorkflowSpec, v: Any = None) -> None:
            bd.error_strategy = sp.error_strategy(v, "WorkflowBuilder:error_strategy")

        def concurrency(bd: WorkflowSpec, v: Any = None) -> None:
            n = need_int(v, "WorkflowBuilder:max_concurrency", "max_concurrency")
            if n < 1:
                raise LuaApiError("WorkflowBuilder:max_concurrency: must be at least 1")
            bd.max_concurrency = n

        def add_step(bd: WorkflowSpec, t: Any = None) -> None:
            bd.steps.append(sp.parse_step(h, t, "WorkflowBuilder:add_step"))

        def condition(bd: WorkflowSpec, c: Any = None) -> None:
            bd.then_cond = sp.parse_condition(h, c, "WorkflowBuilder:condition")

        def then(bd: WorkflowSpec, t: Any = None) -> None:
            bd.then_steps.append(sp.parse_step(h, t, "WorkflowBuilder:add_then_step"))

        def else_(bd: WorkflowSpec, t: Any = None) -> None:
            bd.else_steps.append(sp.parse_step(h, t, "WorkflowBuilder:add_else_step"))

        def branch(bd: WorkflowSpec, c: Any = None, steps: Any = None) -> None:
            fname = "WorkflowBuilder:add_branch"
            cond = sp.parse_condition(h, c, fname) if c is not None else None
            bd.extra_branches.append((cond, sp.parse_steps(h, steps, fname)))

        def collection(bd: WorkflowSpec, arr: Any = None) -> None:
            sp.set_collection(h, bd, arr, "WorkflowBuilder:with_collection")

        def range_(bd: WorkflowSpec, r: Any = None) -> None:
            sp.set_range(h, bd.loop, r, "WorkflowBuilder:with_range")

        def while_(bd: WorkflowSpec, c: Any = None) -> None:
            bd.loop.iterator, bd.loop.while_cond = "while_condition", sp.parse_condition(h, c,
                                                                                          "WorkflowBuilder:with_while")

        def loop_condition(bd: WorkflowSpec, c: Any = None) -> None:
            bd.loop_condition = sp.parse_condition(h, c, "WorkflowBuilder:loop_condition")

        def break_(bd: WorkflowSpec, c: Any = None) -> None:
            bd.loop.break_conditions.append(sp.parse_condition(h, c, "WorkflowBuilder:break_condition"))

        def max_iter(bd: WorkflowSpec, n: Any = None) -> None:
            v = need_int(n, "WorkflowBuilder:max_iterations", "max_iterations")
            if v < 0:
                raise LuaApiError("WorkflowBuilder:max_iterations: must be >= 0")
            bd.loop.max_iterations = v

        def build(bd: WorkflowSpec) -> Any:
            return self.finish(self._build(bd, "WorkflowBuilder:build"), named=bd.name is not None)

        return {
            "sequential": set_type("sequential"), "parallel": set_type("parallel"),
            "conditional": set_type("conditional"), "loop": set_type("loop"), "loop_workflow": set_type("loop"),
            "name": name, "description": description, "timeout_ms": timeout, "error_strategy": strategy,
            "max_concurrency": concurrency, "add_step": add_step, "condition": condition,
            "add_then_step": then, "add_else_step": else_, "add_branch": branch,
            "with_collection": collection, "with_range": range_, "with_while": while_,
            "loop_condition": loop_condition, "break_condition": break_, "max_iterations": max_iter,
            "build": build,
        }

    # ================================================================== workflow object
    def execute(self, wf: WorkflowDef, inp: Any = None) -> Any:
        b = self.b
        if inp is None:
            py: dict[str, Any] = {}
        elif isinstance(inp, str):
            py = {"text": inp}
        elif b.is_table(inp):
            v = b.to_py(inp)
            py = v if isinstance(v, dict) else {"input": v}
        else:
            raise LuaApiError(f"Workflow:execute: input must be a table, a string or nil, got {type_name(inp)}")
        try:
            result = self.engine.execute_here(wf, py, self.rt.block_on)
        except WorkflowConfigError as e:
            raise LuaApiError(f"Workflow:execute: {e}") from None
        finally:
            while self.pending_warnings:
                self.rt.stderr.write(f"WARN {self.pending_warnings.pop(0)}\n")
        t = b.to_lua(result)
        t["_metadata"] = t["metadata"]
        return t

    def get_execution_id(self, wf: WorkflowDef) -> str:
        if wf.last_execution_id is None:
            raise LuaApiError(f"Workflow:get_execution_id: workflow '{wf.name}' has not been executed yet "
                              "(call :execute() first)")
        return wf.last_execution_id

    @staticmethod
    def _exec_id(wf: WorkflowDef, eid: Any, fname: str) -> str | None:
        if eid is not None:
            return need_str(eid, fname, "execution_id")
        return wf.last_execution_id

    def get_output(self, wf: WorkflowDef, step: Any = None, eid: Any = None) -> Any:
        e = self._exec_id(wf, eid, "Workflow:get_output")
        if e is None:
            return None
        return self.engine.fx.load(f"workflow:{e}:{need_str(step, 'Workflow:get_output', 'step')}")

    def _step_keys(self, e: str) -> list[str]:
        prefix = f"workflow:{e}:step:"
        out = []
        for k in self.engine.fx.list_keys():
            k = k.lstrip(":")
            if k.startswith(prefix) and k.endswith(":output"):
                out.append(k[len(prefix):-len(":output")])
        return sorted(set(out))

    def get_all_outputs(self, wf: WorkflowDef, eid: Any = None) -> Any:
        e = self._exec_id(wf, eid, "Workflow:get_all_outputs")
        if e is None:
            return {}
        return {n: self.engine.fx.load(f"workflow:{e}:{n}") for n in self._step_keys(e)}

    def list_outputs(self, wf: WorkflowDef, eid: Any = None) -> Any:
        e = self._exec_id(wf, eid, "Workflow:list_outputs")
        return self.b.array(self._step_keys(e) if e else [])

    def clear_outputs(self, wf: WorkflowDef, eid: Any = None) -> int:
        e = self._exec_id(wf, eid, "Workflow:clear_outputs")
        if e is None:
            return 0
        prefix = f"workflow:{e}:"
        n = 0
        fx = self.engine.fx
        for k in fx.list_keys():
            if k.lstrip(":").startswith(prefix) and fx.delete(k):
                n += 1
        return n

    def _state(self) -> Any:
        st = self.rt.services.state
        if st is None:
            raise LuaApiError("Workflow:get_state: State is not available in this runtime")
        return st

    def get_state(self, wf: WorkflowDef, key: Any = None) -> Any:
        return self._state().load("workflow", f"{wf.id}:{need_str(key, 'Workflow:get_state', 'key')}")

    def set_state(self, wf: WorkflowDef, key: Any = None, value: Any = None) -> bool:
        self._state().save("workflow", f"{wf.id}:{need_str(key, 'Workflow:set_state', 'key')}", self.b.to_py(value))
        return True

    def set_shared(self, wf: WorkflowDef, key: Any = None, value: Any = None) -> None:
        k = need_str(key, "Workflow:set_shared_data", "key")
        if value is None:
            wf.shared_data.pop(k, None)
        else:
            wf.shared_data[k] = self.b.to_py(value)

    @staticmethod
    def get_shared(wf: WorkflowDef, key: Any = None) -> Any:
        return wf.shared_data.get(need_str(key, "Workflow:get_shared_data", "key"))

    def _on(self, kind: str) -> Any:
        def f(wf: WorkflowDef, fn: Any = None) -> None:
            if not self.b.is_function(fn):
                raise LuaApiError(f"Workflow:on_{kind}: expected a function, got {type_name(fn)}")
            wf.callbacks.setdefault({"before_execute": "before", "after_execute": "after"}.get(kind, kind),
                                    []).append(self.keep(wf, fn))
        return f

    def emit(self, wf: WorkflowDef, name: Any = None, data: Any = None) -> Any:
        ev = need_str(name, "Workflow:emit", "name")
        payload = self.b.to_py(data) if data is not None else {}
        if not isinstance(payload, dict):
            payload = {"value": payload}
        payload["workflow_id"] = wf.id
        events = self.rt.services.events
        ok = bool(events.publish(ev, payload)) if events is not None else False
        return {"success": ok, "workflow_id": wf.id, "event_name": ev}

    def validate(self, wf: WorkflowDef) -> Any:
        errors: list[str] = []
        warnings: list[str] = []
        agents = self.rt.services.agents
        reg, _ = tool_service(self.rt)
        for s in wf.all_steps():
            if s.type == "agent" and (agents is None or agents.get(s.agent_name or "") is None):
                warnings.append(f"step '{s.name}': agent '{s.agent_name}' does not exist yet")
            if s.type == "tool" and not reg.exists(str(s.tool)):
                warnings.append(f"step '{s.name}': tool '{s.tool}' does not exist")
            if s.type == "workflow" and self.registry.get(s.workflow) is None:
                warnings.append(f"step '{s.name}': workflow '{s.workflow}' does not exist yet")
        if wf.type == "loop" and wf.loop.iterator is None:
            errors.append("loop has no iterator")
        return {"valid": not errors, "workflow_id": wf.id, "errors": self.b.array(errors),
                "warnings": self.b.array(warnings)}

    @staticmethod
    def metrics(wf: WorkflowDef) -> Any:
        m = wf.metrics
        avg = m.total_ms // m.executions if m.executions else 0
        return {"executions": m.executions, "successes": m.successes, "failures": m.failures,
                "avg_duration_ms": int(avg), "last_duration_ms": m.last_ms}

    def info(self, wf: WorkflowDef) -> dict[str, Any]:
        return {"id": wf.id, "name": wf.name, "type": wf.type, "description": wf.description,
                "steps": self.b.array(wf.step_names())}

    def debug(self, wf: WorkflowDef) -> Any:
        d = self.info(wf)
        d["last_result_summary"] = wf.last_summary
        d["shared_data"] = dict(wf.shared_data)
        return d

    @staticmethod
    def fields(wf: WorkflowDef, key: str) -> tuple[bool, Any]:
        if key in ("id", "name", "type", "description"):
            return True, getattr(wf, key)
        return False, None

    # ================================================================== global functions
    def _constructor(self, kind: str) -> Any:
        def construct(cfg: Any = None) -> Any:
            return self.finish(sp.from_table(self.host, kind, cfg, self.settings.error_strategy,
                                             self.settings.max_concurrent))
        return construct

    def g_builder(self, *_: Any) -> Any:
        return self.builder_class.new(WorkflowSpec())

    def g_register(self, kind: Any = None, cfg: Any = None) -> str:
        if kind not in ("sequential", "parallel", "conditional", "loop"):
            raise LuaApiError(f"Workflow.register: unknown workflow type '{kind}' (one of: "
                              f"{', '.join(WORKFLOW_TYPES)})")
        p = self._constructor(kind)(cfg)
        return str(self.wf_class.handle_of(p).id)

    def g_get(self, key: Any = None) -> Any:
        wf = self.registry.get(key) if isinstance(key, str) else None
        return self.proxy(wf) if wf is not None else None

    def g_list(self, *_: Any) -> Any:
        return self.b.array({"id": w.id, "name": w.name, "type": w.type, "description": w.description}
                            for w in list(self.registry.items))

    def g_remove(self, key: Any = None) -> bool:
        wf = self.registry.get(key)
        if wf is None:
            return False
        return self.registry.remove(wf)

    def g_clear(self, *_: Any) -> None:
        self.registry.clear()

    @staticmethod
    def g_types(*_: Any) -> Any:
        return list(WORKFLOW_TYPES)

    def g_default_handler(self, fn: Any = None) -> None:
        if fn is not None and not self.b.is_function(fn):
            raise LuaApiError(f"Workflow.setDefaultErrorHandler: expected a function, got {type_name(fn)}")
        self.engine.default_error_handler = fn

    def g_enable_debug(self, on: Any = None) -> None:
        self.engine.debug = bool(on)


def install(rt: ScriptRuntime) -> None:
    WorkflowBinding(rt).install()
