"""The `Workflow` global (lua-api.md §5): builder, table constructors, registry and Workflow objects."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import uuid
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from llmspell.runtime.io import get_io
from llmspell.script.bridge import LuaApiError, LuaError, lua_error_message, lua_file, type_name
from llmspell.script.globals.tool import tool_service
from llmspell.workflows.engine import Engine, LuaCallError, Settings
from llmspell.workflows.model import (
    CONDITION_TYPES,
    ERROR_STRATEGIES,
    STEP_TYPES,
    WORKFLOW_TYPES,
    Branch,
    Condition,
    LoopSpec,
    LuaRef,
    Step,
    WorkflowConfigError,
    WorkflowDef,
)

if TYPE_CHECKING:
    from llmspell.script.engine import ScriptRuntime

log = logging.getLogger("llmspell.workflows")

#: Runs fn(arg) with a count hook that raises once `expired()` is true (chaining any existing hook), so
#: a function step that loops forever stops at its step timeout instead of holding the Lua thread.
_GUARD_LUA = lua_file(__file__, "workflow_guard.lua")

_EXPR_LUA = lua_file(__file__, "workflow_expr.lua")


@dataclass
class _Builder:
    """WorkflowBuilder state; `build()` copies it so the builder stays usable."""

    type: str | None = None
    name: str | None = None
    description: str = ""
    timeout_ms: int | None = None
    error_strategy: str | None = None
    max_concurrency: int | None = None
    steps: list[Step] = field(default_factory=list)
    then_cond: Condition | None = None
    then_steps: list[Step] = field(default_factory=list)
    else_steps: list[Step] = field(default_factory=list)
    extra_branches: list[tuple[Condition | None, list[Step]]] = field(default_factory=list)
    loop: LoopSpec = field(default_factory=LoopSpec)
    loop_condition: Condition | None = None


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


def install(rt: ScriptRuntime) -> None:
    b = rt.bridge
    lua = rt.lua
    compile_expr = lua.execute(_EXPR_LUA)
    guarded = lua.execute(_GUARD_LUA)
    registry = WorkflowRegistry()
    pending_warnings: list[str] = []
    proxies = b.weak_table("v")  # wf.id -> its Lua proxy, without keeping either alive
    # proxy -> a Lua array of the workflow's Lua values (LuaRef indexes into it). Weak keys: the values
    # live exactly as long as the proxy, and a cycle through them stays inside Lua's heap.
    lua_side = b.weak_table("k")
    settings = Settings.from_config(rt.config)

    # ================================================================== Lua calls (Lua thread)
    class _Calls:
        async def call(self, fn: Any, ctx: dict[str, Any], wf: WorkflowDef, deadline: float | None = None) -> Any:
            if not get_io().in_loop_thread():  # Engine.execute_here: a callback run on the Lua thread itself
                return _call_on_lua(fn, ctx, wf, deadline)
            return await rt.call_lua_async(_call_on_lua, fn, ctx, wf, deadline)

        def call_here(self, fn: Any, ctx: dict[str, Any], wf: WorkflowDef, deadline: float | None = None) -> Any:
            return _call_on_lua(fn, ctx, wf, deadline)

        def submit(self, fn: Any, *args: Any) -> Any:
            return rt.call_on_lua_thread(fn, *args)

        def interrupted(self) -> bool:
            return rt.interrupted is not None

        def sleep_here(self, seconds: float) -> None:
            rt.sleep(seconds)

    def _call_on_lua(fn: Any, ctx: dict[str, Any], wf: WorkflowDef, deadline: float | None = None) -> Any:
        target = fn
        if isinstance(fn, LuaRef):
            target = lua_side[proxy(wf)][fn.index]
        elif isinstance(fn, str):
            target = rt.G[fn]
            if not b.is_function(target):
                raise LookupError(fn)
        t = b.to_lua(ctx)
        t.workflow = proxy(wf)
        try:
            r = target(t) if deadline is None else guarded(target, t, lambda: time.monotonic() >= deadline)
        except LuaError as e:
            raise LuaCallError(lua_error_message(e)) from None
        if isinstance(r, tuple):
            r = r[0] if r else None
        try:
            return b.to_py(r)
        except LuaApiError as e:
            raise LuaCallError(f"function returned a value that cannot be converted: {e}") from None

    engine = Engine(rt.services, _Calls(), registry.get, settings, warn=pending_warnings.append)

    def _release() -> None:
        engine.release_state()

    rt.services.workflows = registry
    rt.on_close(_release)  # session retention: the runtime's §5.9 keys end with it

    # ================================================================== parsing helpers
    def _int(v: Any, fname: str, what: str) -> int:
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if isinstance(v, bool) or not isinstance(v, int):
            raise LuaApiError(f"{fname}: {what} must be an integer, got {type_name(v)}")
        return v

    def _str(v: Any, fname: str, what: str) -> str:
        if not isinstance(v, str):
            raise LuaApiError(f"{fname}: {what} must be a string, got {type_name(v)}")
        return v

    def _data(v: Any, fname: str, what: str) -> Any:
        try:
            return b.to_py(v)
        except LuaApiError as e:
            raise LuaApiError(f"{fname}: {what}: {e} (step inputs must be plain data)") from None

    def parse_condition(c: Any, fname: str) -> Condition:
        if b.is_function(c):
            return Condition("lua", fn=c, source="function")
        if isinstance(c, str):
            r = compile_expr(c)
            f, err = (r[0], r[1] if len(r) > 1 else None) if isinstance(r, tuple) else (r, None)
            if f is None:
                return Condition("lua", source=c, error=f"invalid condition expression '{c}': {err}")
            return Condition("lua", fn=f, source=c)
        if b.is_table(c):
            kind = c["type"]
            if kind is None:
                raise LuaApiError(f"{fname}: condition table needs a type (one of: {', '.join(CONDITION_TYPES)})")
            if kind not in CONDITION_TYPES:
                raise LuaApiError(f"{fname}: unknown condition type '{kind}' (one of: {', '.join(CONDITION_TYPES)})")
            value = c["value"]
            value = b.to_py(value) if value is not None else None
            key = c["key"]
            step = c["step"]
            return Condition(kind, key=str(key) if key is not None else None, value=value,
                             step=str(step) if step is not None else None)
        raise LuaApiError(f"{fname}: condition must be a table, a function or an expression string, "
                          f"got {type_name(c)}")

    def parse_step(t: Any, fname: str) -> Step:
        if not b.is_table(t):
            raise LuaApiError(f"{fname}: step must be a table {{name = ..., type = ...}}, got {type_name(t)}")
        name = t["name"]
        if not isinstance(name, str) or not name:
            raise LuaApiError(f"{fname}: step needs a name (a non-empty string)")
        typ = t["type"]
        fn = t["fn"] if t["fn"] is not None else t["function"]
        if typ is None:
            for key, kind in (("agent", "agent"), ("tool", "tool"), ("workflow", "workflow")):
                if t[key] is not None:
                    typ = kind
                    break
            else:
                typ = "custom" if fn is not None else None
            if typ is None:
                raise LuaApiError(f"{fname}: step '{name}' needs a type (agent, tool, workflow or custom) "
                                  "or one of the keys agent, tool, workflow, fn")
        if typ == "function":
            typ = "custom"
        if typ not in STEP_TYPES:
            raise LuaApiError(f"{fname}: step '{name}' has unknown type '{typ}' (one of: agent, tool, workflow, "
                              "custom)")
        step = Step(name=name, type=typ)
        if typ == "agent":
            a = t["agent"]
            if a is None:
                raise LuaApiError(f"{fname}: agent step '{name}' needs agent (an agent name or Agent object)")
            if isinstance(a, str):
                step.agent = a
            elif b.tag(a) == "Agent":
                step.agent = str(a.name)
            else:
                raise LuaApiError(f"{fname}: agent step '{name}': agent must be a name or an Agent, got "
                                  f"{type_name(a)}")
            inp = t["input"]
            if inp is not None:
                step.input = inp if isinstance(inp, str) else _data(inp, fname, f"step '{name}' input")
        elif typ == "tool":
            tool = t["tool"]
            if not isinstance(tool, str) or not tool:
                raise LuaApiError(f"{fname}: tool step '{name}' needs tool (a tool name string)")
            step.tool = tool
            params = t["input"] if t["input"] is not None else t["parameters"]
            if params is not None:
                if not b.is_table(params):
                    raise LuaApiError(f"{fname}: tool step '{name}': input must be a table of parameters, "
                                      f"got {type_name(params)}")
                step.input = _data(params, fname, f"step '{name}' input")
        elif typ == "workflow":
            w = t["workflow"]
            if w is None:
                raise LuaApiError(f"{fname}: workflow step '{name}' needs workflow (a Workflow, id or name)")
            if isinstance(w, str):
                step.workflow = w
            else:
                h = wf_class.handle_of(w)
                if h is None:
                    raise LuaApiError(f"{fname}: workflow step '{name}': workflow must be a Workflow, id or name")
                step.workflow = h
            inp = t["input"]
            if inp is not None:
                step.input = _data(inp, fname, f"step '{name}' input") if b.is_table(inp) else {"text": str(inp)}
        else:
            if fn is None or not (b.is_function(fn) or isinstance(fn, str)):
                raise LuaApiError(f"{fname}: custom step '{name}' needs fn (a Lua function or a global "
                                  "function name)")
            step.fn = fn
        params = t["parameters"]
        if typ in ("custom", "agent") and params is not None:
            step.parameters = _data(params, fname, f"step '{name}' parameters")
        if t["timeout_ms"] is not None:
            step.timeout_ms = _int(t["timeout_ms"], fname, f"step '{name}' timeout_ms")
        if t["retry_count"] is not None:
            step.retry_count = _int(t["retry_count"], fname, f"step '{name}' retry_count")
        if t["retry_delay_ms"] is not None:
            step.retry_delay_ms = _int(t["retry_delay_ms"], fname, f"step '{name}' retry_delay_ms")
        step.continue_on_error = bool(t["continue_on_error"])
        if isinstance(t["description"], str):
            step.description = t["description"]
        return step

    def parse_steps(arr: Any, fname: str, what: str = "steps") -> list[Step]:
        if arr is None:
            return []
        if not b.is_table(arr):
            raise LuaApiError(f"{fname}: {what} must be an array of step tables")
        n = len(arr)
        return [parse_step(arr[i], fname) for i in range(1, n + 1)]

    def strategy(v: Any, fname: str) -> str:
        s = _str(v, fname, "error_strategy")
        s = {"graceful": "continue"}.get(s, s)
        if s not in ERROR_STRATEGIES:
            raise LuaApiError(f"{fname}: unknown error strategy '{s}' (one of: fail_fast, continue, retry)")
        return s

    def make(bd: _Builder, fname: str) -> WorkflowDef:
        if bd.type is None:
            raise LuaApiError("Workflow type not specified (call :sequential(), :parallel(), :conditional() or "
                              ":loop() before :build())")
        wf = WorkflowDef(name=bd.name or f"workflow_{uuid.uuid4().hex[:8]}", type=bd.type,
                         description=bd.description, timeout_ms=bd.timeout_ms,
                         error_strategy=bd.error_strategy or settings.error_strategy,
                         max_concurrency=bd.max_concurrency or settings.max_concurrent)
        if bd.type == "parallel":
            wf.branches = [Branch(s.name, [s]) for s in bd.steps]
        elif bd.type == "conditional":
            wf.steps = list(bd.steps)
            wf.branches = [Branch("then", list(bd.then_steps), bd.then_cond)]
            wf.branches += [Branch(f"branch_{i}", list(st), c) for i, (c, st) in enumerate(bd.extra_branches, 1)]
            wf.branches.append(Branch("else", list(bd.else_steps), None))
        else:
            wf.steps = list(bd.steps)
        if bd.type == "loop":
            lp = LoopSpec(**{k: getattr(bd.loop, k) for k in LoopSpec.__dataclass_fields__})
            lp.collection = list(bd.loop.collection)
            lp.break_conditions = list(bd.loop.break_conditions)
            if bd.loop_condition is not None:
                if lp.iterator is None:
                    lp.iterator, lp.while_cond = "while_condition", bd.loop_condition
                else:
                    lp.loop_condition = bd.loop_condition
            if lp.iterator is None:
                raise LuaApiError(f"{fname}: loop workflow '{wf.name}' has no iterator (use :with_collection, "
                                  ":with_range or :with_while)")
            wf.loop = lp
        for c in _conditions(wf):
            if c.error:
                raise LuaApiError(f"{fname}: {c.error}")
        names = [s.name for s in wf.all_steps()]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            log.warning("workflow '%s': duplicate step names %s; the later output wins", wf.name, dupes)
        return wf

    def keep(wf: WorkflowDef, value: Any) -> LuaRef:
        """Put a Lua value on the Lua side of `wf`'s proxy; the reference the Python side keeps."""
        p = proxy(wf)
        t = lua_side[p]
        if t is None:
            t = lua_side[p] = b.table()
        n = len(t) + 1
        t[n] = value
        return LuaRef(n)

    def lift_cond(wf: WorkflowDef, c: Condition | None) -> Condition | None:
        if c is None or c.fn is None or isinstance(c.fn, LuaRef | str):
            return c
        return dataclasses.replace(c, fn=keep(wf, c.fn))

    def lift_steps(wf: WorkflowDef, steps: list[Step]) -> list[Step]:
        out = []
        for st in steps:
            st = dataclasses.replace(st)  # the builder keeps its own steps (it stays usable)
            if st.fn is not None and not isinstance(st.fn, LuaRef | str):
                st.fn = keep(wf, st.fn)
            if isinstance(st.workflow, WorkflowDef):
                keep(wf, proxy(st.workflow))  # the child's Lua values live as long as this workflow
            out.append(st)
        return out

    def finish(wf: WorkflowDef, named: bool = True) -> Any:
        """Move the workflow's Lua values to the Lua side of its proxy, register it; its proxy."""
        p = proxy(wf)
        wf.steps = lift_steps(wf, wf.steps)
        wf.branches = [Branch(br.label, lift_steps(wf, br.steps), lift_cond(wf, br.condition)) for br in wf.branches]
        lp = wf.loop
        lp.while_cond, lp.loop_condition = lift_cond(wf, lp.while_cond), lift_cond(wf, lp.loop_condition)
        lp.break_conditions = [c for c in (lift_cond(wf, c) for c in lp.break_conditions) if c is not None]
        registry.add(wf, p if named else None)
        return p

    # ================================================================== builder object
    def _set_type(kind: str) -> Any:
        def f(bd: _Builder, *_: Any) -> None:
            bd.type = kind
        return f

    def b_name(bd: _Builder, v: Any = None) -> None:
        bd.name = _str(v, "WorkflowBuilder:name", "name")

    def b_description(bd: _Builder, v: Any = None) -> None:
        bd.description = _str(v, "WorkflowBuilder:description", "description")

    def b_timeout(bd: _Builder, v: Any = None) -> None:
        n = _int(v, "WorkflowBuilder:timeout_ms", "timeout_ms")
        bd.timeout_ms = n if n > 0 else None

    def b_strategy(bd: _Builder, v: Any = None) -> None:
        bd.error_strategy = strategy(v, "WorkflowBuilder:error_strategy")

    def b_concurrency(bd: _Builder, v: Any = None) -> None:
        n = _int(v, "WorkflowBuilder:max_concurrency", "max_concurrency")
        if n < 1:
            raise LuaApiError("WorkflowBuilder:max_concurrency: must be at least 1")
        bd.max_concurrency = n

    def b_add_step(bd: _Builder, t: Any = None) -> None:
        bd.steps.append(parse_step(t, "WorkflowBuilder:add_step"))

    def b_condition(bd: _Builder, c: Any = None) -> None:
        bd.then_cond = parse_condition(c, "WorkflowBuilder:condition")

    def b_then(bd: _Builder, t: Any = None) -> None:
        bd.then_steps.append(parse_step(t, "WorkflowBuilder:add_then_step"))

    def b_else(bd: _Builder, t: Any = None) -> None:
        bd.else_steps.append(parse_step(t, "WorkflowBuilder:add_else_step"))

    def b_branch(bd: _Builder, c: Any = None, steps: Any = None) -> None:
        fname = "WorkflowBuilder:add_branch"
        cond = parse_condition(c, fname) if c is not None else None
        bd.extra_branches.append((cond, parse_steps(steps, fname)))

    def b_collection(bd: _Builder, arr: Any = None) -> None:
        if not b.is_table(arr):
            raise LuaApiError(f"WorkflowBuilder:with_collection: expected an array, got {type_name(arr)}")
        v = b.to_py(arr)
        bd.loop.iterator, bd.loop.collection = "collection", (v if isinstance(v, list) else list(v.values()))

    def b_range(bd: _Builder, r: Any = None) -> None:
        set_range(bd.loop, r, "WorkflowBuilder:with_range")

    def b_while(bd: _Builder, c: Any = None) -> None:
        bd.loop.iterator, bd.loop.while_cond = "while_condition", parse_condition(c, "WorkflowBuilder:with_while")

    def b_loop_condition(bd: _Builder, c: Any = None) -> None:
        bd.loop_condition = parse_condition(c, "WorkflowBuilder:loop_condition")

    def b_break(bd: _Builder, c: Any = None) -> None:
        bd.loop.break_conditions.append(parse_condition(c, "WorkflowBuilder:break_condition"))

    def b_max_iter(bd: _Builder, n: Any = None) -> None:
        v = _int(n, "WorkflowBuilder:max_iterations", "max_iterations")
        if v < 0:
            raise LuaApiError("WorkflowBuilder:max_iterations: must be >= 0")
        bd.loop.max_iterations = v

    def b_build(bd: _Builder) -> Any:
        return finish(make(bd, "WorkflowBuilder:build"), named=bd.name is not None)

    def set_range(lp: LoopSpec, r: Any, fname: str) -> None:
        if r is not None and not b.is_table(r):
            raise LuaApiError(f"{fname}: expected a table {{start, ['end'], step}}, got {type_name(r)}")
        rv = b.to_py(r) if r is not None else {}
        if isinstance(rv, list):
            rv = dict(zip(("start", "end", "step"), rv, strict=False))

        def num(key: str, default: float) -> Any:
            v = rv.get(key, default)
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise LuaApiError(f"{fname}: {key} must be a number, got {type(v).__name__}")
            return v

        lp.start, lp.end, lp.step = num("start", 1), num("end", 10), num("step", 1)
        if lp.step == 0:
            raise LuaApiError(f"{fname}: step must not be 0")
        lp.iterator = "range"

    chain = ("sequential", "parallel", "conditional", "loop", "loop_workflow", "name", "description", "timeout_ms",
             "error_strategy", "max_concurrency", "add_step", "condition", "add_then_step", "add_else_step",
             "add_branch", "with_collection", "with_range", "with_while", "loop_condition", "break_condition",
             "max_iterations")
    builder_class = b.klass("WorkflowBuilder", {
        "sequential": _set_type("sequential"), "parallel": _set_type("parallel"),
        "conditional": _set_type("conditional"), "loop": _set_type("loop"), "loop_workflow": _set_type("loop"),
        "name": b_name, "description": b_description, "timeout_ms": b_timeout, "error_strategy": b_strategy,
        "max_concurrency": b_concurrency, "add_step": b_add_step, "condition": b_condition,
        "add_then_step": b_then, "add_else_step": b_else, "add_branch": b_branch,
        "with_collection": b_collection, "with_range": b_range, "with_while": b_while,
        "loop_condition": b_loop_condition, "break_condition": b_break, "max_iterations": b_max_iter,
        "build": b_build,
    }, tostring=lambda bd: f"WorkflowBuilder({bd.name or '?'}, {bd.type or '?'})", chain=chain)

    # ================================================================== workflow object
    def execute(wf: WorkflowDef, inp: Any = None) -> Any:
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
            result = engine.execute_here(wf, py, rt.block_on)
        except WorkflowConfigError as e:
            raise LuaApiError(f"Workflow:execute: {e}") from None
        finally:
            while pending_warnings:
                rt.stderr.write(f"WARN {pending_warnings.pop(0)}\n")
        t = b.to_lua(result)
        t["_metadata"] = t["metadata"]
        return t

    def get_execution_id(wf: WorkflowDef) -> str:
        if wf.last_execution_id is None:
            raise LuaApiError(f"Workflow:get_execution_id: workflow '{wf.name}' has not been executed yet "
                              "(call :execute() first)")
        return wf.last_execution_id

    def _exec_id(wf: WorkflowDef, eid: Any, fname: str) -> str | None:
        if eid is not None:
            return _str(eid, fname, "execution_id")
        return wf.last_execution_id

    def get_output(wf: WorkflowDef, step: Any = None, eid: Any = None) -> Any:
        e = _exec_id(wf, eid, "Workflow:get_output")
        if e is None:
            return None
        return engine.fx.load(f"workflow:{e}:{_str(step, 'Workflow:get_output', 'step')}")

    def _step_keys(e: str) -> list[str]:
        prefix = f"workflow:{e}:step:"
        out = []
        for k in engine.fx.list_keys():
            k = k.lstrip(":")
            if k.startswith(prefix) and k.endswith(":output"):
                out.append(k[len(prefix):-len(":output")])
        return sorted(set(out))

    def get_all_outputs(wf: WorkflowDef, eid: Any = None) -> Any:
        e = _exec_id(wf, eid, "Workflow:get_all_outputs")
        if e is None:
            return {}
        return {n: engine.fx.load(f"workflow:{e}:{n}") for n in _step_keys(e)}

    def list_outputs(wf: WorkflowDef, eid: Any = None) -> Any:
        e = _exec_id(wf, eid, "Workflow:list_outputs")
        return b.array(_step_keys(e) if e else [])

    def clear_outputs(wf: WorkflowDef, eid: Any = None) -> int:
        e = _exec_id(wf, eid, "Workflow:clear_outputs")
        if e is None:
            return 0
        prefix = f"workflow:{e}:"
        n = 0
        for k in engine.fx.list_keys():
            if k.lstrip(":").startswith(prefix) and engine.fx.delete(k):
                n += 1
        return n

    def _state() -> Any:
        st = rt.services.state
        if st is None:
            raise LuaApiError("Workflow:get_state: State is not available in this runtime")
        return st

    def get_state(wf: WorkflowDef, key: Any = None) -> Any:
        return _state().load("workflow", f"{wf.id}:{_str(key, 'Workflow:get_state', 'key')}")

    def set_state(wf: WorkflowDef, key: Any = None, value: Any = None) -> bool:
        _state().save("workflow", f"{wf.id}:{_str(key, 'Workflow:set_state', 'key')}", b.to_py(value))
        return True

    def set_shared(wf: WorkflowDef, key: Any = None, value: Any = None) -> None:
        k = _str(key, "Workflow:set_shared_data", "key")
        if value is None:
            wf.shared_data.pop(k, None)
        else:
            wf.shared_data[k] = b.to_py(value)

    def get_shared(wf: WorkflowDef, key: Any = None) -> Any:
        return wf.shared_data.get(_str(key, "Workflow:get_shared_data", "key"))

    def _on(kind: str) -> Any:
        def f(wf: WorkflowDef, fn: Any = None) -> None:
            if not b.is_function(fn):
                raise LuaApiError(f"Workflow:on_{kind}: expected a function, got {type_name(fn)}")
            wf.callbacks.setdefault({"before_execute": "before", "after_execute": "after"}.get(kind, kind),
                                    []).append(keep(wf, fn))
        return f

    def emit(wf: WorkflowDef, name: Any = None, data: Any = None) -> Any:
        ev = _str(name, "Workflow:emit", "name")
        payload = b.to_py(data) if data is not None else {}
        if not isinstance(payload, dict):
            payload = {"value": payload}
        payload["workflow_id"] = wf.id
        events = rt.services.events
        ok = bool(events.publish(ev, payload)) if events is not None else False
        return {"success": ok, "workflow_id": wf.id, "event_name": ev}

    def validate(wf: WorkflowDef) -> Any:
        errors: list[str] = []
        warnings: list[str] = []
        agents = rt.services.agents
        reg, _ = tool_service(rt)
        for s in wf.all_steps():
            if s.type == "agent" and (agents is None or agents.get(s.agent_name or "") is None):
                warnings.append(f"step '{s.name}': agent '{s.agent_name}' does not exist yet")
            if s.type == "tool" and not reg.exists(str(s.tool)):
                warnings.append(f"step '{s.name}': tool '{s.tool}' does not exist")
            if s.type == "workflow" and registry.get(s.workflow) is None:
                warnings.append(f"step '{s.name}': workflow '{s.workflow}' does not exist yet")
        if wf.type == "loop" and wf.loop.iterator is None:
            errors.append("loop has no iterator")
        return {"valid": not errors, "workflow_id": wf.id, "errors": b.array(errors),
                "warnings": b.array(warnings)}

    def metrics(wf: WorkflowDef) -> Any:
        m = wf.metrics
        avg = m.total_ms // m.executions if m.executions else 0
        return {"executions": m.executions, "successes": m.successes, "failures": m.failures,
                "avg_duration_ms": int(avg), "last_duration_ms": m.last_ms}

    def info(wf: WorkflowDef) -> dict[str, Any]:
        return {"id": wf.id, "name": wf.name, "type": wf.type, "description": wf.description,
                "steps": b.array(wf.step_names())}

    def debug(wf: WorkflowDef) -> Any:
        d = info(wf)
        d["last_result_summary"] = wf.last_summary
        d["shared_data"] = dict(wf.shared_data)
        return d

    def fields(wf: WorkflowDef, key: str) -> tuple[bool, Any]:
        if key in ("id", "name", "type", "description"):
            return True, getattr(wf, key)
        return False, None

    wf_class = b.klass("Workflow", {
        "execute": execute, "get_id": lambda wf: wf.id, "get_info": info, "get_execution_id": get_execution_id,
        "get_output": get_output, "get_all_outputs": get_all_outputs, "list_outputs": list_outputs,
        "clear_outputs": clear_outputs, "get_state": get_state, "set_state": set_state,
        "set_shared_data": set_shared, "get_shared_data": get_shared,
        "on_before_execute": _on("before_execute"), "on_after_execute": _on("after_execute"),
        "on_error": _on("error"), "emit": emit, "validate": validate, "get_metrics": metrics, "debug": debug,
    }, fields=fields, tostring=lambda wf: f"Workflow({wf.name}, {wf.type}, {wf.id})",
        chain=("on_before_execute", "on_after_execute", "on_error"))

    def proxy(wf: WorkflowDef) -> Any:
        p = proxies[wf.id]
        if p is None:
            p = wf_class.new(wf)
            proxies[wf.id] = p
        return p

    # ================================================================== table constructors
    def _common(bd: _Builder, cfg: Any, fname: str) -> None:
        if not b.is_table(cfg):
            raise LuaApiError(f"{fname}: expected a config table {{name = ..., ...}}, got {type_name(cfg)}")
        name = cfg["name"]
        if not isinstance(name, str) or not name:
            raise LuaApiError(f"{fname}: name is required (a non-empty string)")
        bd.name = name
        if cfg["description"] is not None:
            bd.description = _str(cfg["description"], fname, "description")
        if cfg["error_strategy"] is not None:
            bd.error_strategy = strategy(cfg["error_strategy"], fname)
        if cfg["timeout_ms"] is not None:
            n = _int(cfg["timeout_ms"], fname, "timeout_ms")
            bd.timeout_ms = n if n > 0 else None
        if cfg["max_concurrency"] is not None:
            bd.max_concurrency = max(1, _int(cfg["max_concurrency"], fname, "max_concurrency"))

    def c_sequential(cfg: Any = None) -> Any:
        fname = "Workflow.sequential"
        bd = _Builder(type="sequential")
        _common(bd, cfg, fname)
        bd.steps = parse_steps(cfg["steps"], fname)
        return finish(make(bd, fname))

    def c_parallel(cfg: Any = None) -> Any:
        fname = "Workflow.parallel"
        bd = _Builder(type="parallel")
        _common(bd, cfg, fname)
        wf_branches: list[Branch] = []
        br = cfg["branches"]
        if br is not None:
            if not b.is_table(br):
                raise LuaApiError(f"{fname}: branches must be an array of {{name?, steps = {{...}}}}")
            for i in range(1, len(br) + 1):
                e = br[i]
                if not b.is_table(e):
                    raise LuaApiError(f"{fname}: branch {i} must be a table {{name?, steps = {{...}}}}")
                label = e["name"] if isinstance(e["name"], str) else f"branch_{i}"
                wf_branches.append(Branch(label, parse_steps(e["steps"], fname, f"branch {i} steps")))
        wf_branches += [Branch(s.name, [s]) for s in parse_steps(cfg["steps"], fname)]
        wf = make(bd, fname)
        wf.branches = wf_branches
        return finish(wf)

    def c_conditional(cfg: Any = None) -> Any:
        fname = "Workflow.conditional"
        bd = _Builder(type="conditional")
        _common(bd, cfg, fname)
        bd.steps = parse_steps(cfg["steps"], fname)
        branches: list[Branch] = []
        br = cfg["branches"]
        if br is not None:
            if not b.is_table(br):
                raise LuaApiError(f"{fname}: branches must be an array of {{name?, condition?, steps}}")
            for i in range(1, len(br) + 1):
                e = br[i]
                if not b.is_table(e):
                    raise LuaApiError(f"{fname}: branch {i} must be a table {{name?, condition?, steps}}")
                cond = parse_condition(e["condition"], fname) if e["condition"] is not None else None
                label = e["name"] if isinstance(e["name"], str) else ("then" if i == 1 else f"branch_{i - 1}")
                branches.append(Branch(label, parse_steps(e["steps"], fname), cond))
        d = cfg["default_branch"]
        if d is not None:
            if not b.is_table(d):
                raise LuaApiError(f"{fname}: default_branch must be a table {{steps = {{...}}}}")
            branches.append(Branch("else", parse_steps(d["steps"], fname), None))
        wf = make(bd, fname)
        wf.branches = branches
        for c in _conditions(wf):
            if c.error:
                registry.remove(wf)
                raise LuaApiError(f"{fname}: {c.error}")
        return finish(wf)

    def c_loop(cfg: Any = None) -> Any:
        fname = "Workflow.loop"
        bd = _Builder(type="loop")
        _common(bd, cfg, fname)
        it = cfg["iterator"]
        if b.is_table(it):
            if it["collection"] is not None:
                b_collection(bd, it["collection"])
            elif it["range"] is not None:
                set_range(bd.loop, it["range"], fname)
            elif it["while_condition"] is not None:
                bd.loop.iterator, bd.loop.while_cond = "while_condition", parse_condition(it["while_condition"], fname)
                if it["max_iterations"] is not None:
                    bd.loop.max_iterations = _int(it["max_iterations"], fname, "iterator.max_iterations")
        elif it is not None:
            raise LuaApiError(f"{fname}: iterator must be a table {{collection=...}} | {{range=...}} | "
                              "{while_condition=..., max_iterations=n}")
        body = cfg["body"] if cfg["body"] is not None else cfg["steps"]
        bd.steps = parse_steps(body, fname, "body")
        bcs = cfg["break_conditions"]
        if bcs is not None:
            if not b.is_table(bcs):
                raise LuaApiError(f"{fname}: break_conditions must be an array of conditions")
            bd.loop.break_conditions = [parse_condition(bcs[i], fname) for i in range(1, len(bcs) + 1)]
        if cfg["max_iterations"] is not None:
            bd.loop.max_iterations = _int(cfg["max_iterations"], fname, "max_iterations")
        return finish(make(bd, fname))

    constructors = {"sequential": c_sequential, "parallel": c_parallel, "conditional": c_conditional,
                    "loop": c_loop}

    # ================================================================== global functions
    def g_builder(*_: Any) -> Any:
        return builder_class.new(_Builder())

    def g_register(kind: Any = None, cfg: Any = None) -> str:
        if kind not in constructors:
            raise LuaApiError(f"Workflow.register: unknown workflow type '{kind}' (one of: "
                              f"{', '.join(WORKFLOW_TYPES)})")
        p = constructors[kind](cfg)
        return str(wf_class.handle_of(p).id)

    def g_get(key: Any = None) -> Any:
        wf = registry.get(key) if isinstance(key, str) else None
        return proxy(wf) if wf is not None else None

    def g_list(*_: Any) -> Any:
        return b.array({"id": w.id, "name": w.name, "type": w.type, "description": w.description}
                       for w in list(registry.items))

    def g_remove(key: Any = None) -> bool:
        wf = registry.get(key)
        if wf is None:
            return False
        return registry.remove(wf)

    def g_clear(*_: Any) -> None:
        registry.clear()

    def g_types(*_: Any) -> Any:
        return list(WORKFLOW_TYPES)

    def g_default_handler(fn: Any = None) -> None:
        if fn is not None and not b.is_function(fn):
            raise LuaApiError(f"Workflow.setDefaultErrorHandler: expected a function, got {type_name(fn)}")
        engine.default_error_handler = fn

    def g_enable_debug(on: Any = None) -> None:
        engine.debug = bool(on)

    W = b.table()
    b.set_functions(W, {
        "builder": g_builder, "sequential": c_sequential, "parallel": c_parallel, "conditional": c_conditional,
        "loop": c_loop, "register": g_register, "get": g_get, "list": g_list, "remove": g_remove,
        "clear": g_clear, "types": g_types, "setDefaultErrorHandler": g_default_handler,
        "enableDebug": g_enable_debug, "isDebugEnabled": lambda *_: engine.debug,
    }, "Workflow")
    rt.G.Workflow = W
    rt.services.workflow_engine = engine


def _conditions(wf: WorkflowDef) -> list[Condition]:
    out = [b.condition for b in wf.branches if b.condition is not None]
    lp = wf.loop
    out += [c for c in (lp.while_cond, lp.loop_condition) if c is not None]
    out += lp.break_conditions
    return out
