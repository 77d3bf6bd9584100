"""Workflow specs (lua-api.md §5) into the typed model: step, condition and loop tables, the builder's state.

The Workflow global hands its Lua values here through a `SpecHost` (what a table, a function, an Agent
or a Workflow object is, and plain-data conversion); everything else is plain Python, so the rules
and their error messages are tested without Lua (tests/workflows/test_spec.py). Lua values that must
stay Lua (step functions, compiled conditions) are carried through untouched.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from llmspell.script.bridge import LuaApiError, type_name
from llmspell.script.checks import need_int, need_str
from llmspell.workflows.model import (
    CONDITION_TYPES,
    ERROR_STRATEGIES,
    STEP_TYPES,
    Branch,
    Condition,
    LoopSpec,
    Step,
    WorkflowDef,
)

log = logging.getLogger("llmspell.workflows")


class SpecHost(Protocol):
    """How the parser sees the script's values (the Workflow global implements it over the Lua bridge)."""

    def is_table(self, v: Any) -> bool: ...
    def is_function(self, v: Any) -> bool: ...
    def field(self, t: Any, key: str) -> Any:
        """`t[key]` of a table (None when absent)."""
    def items(self, t: Any) -> list[Any]:
        """The array part of a table, in order."""
    def to_py(self, v: Any) -> Any:
        """Plain data of a value (raises LuaApiError for what cannot be converted)."""
    def agent_name(self, v: Any) -> str | None:
        """The name of an Agent object, None for anything else."""
    def workflow_of(self, v: Any) -> WorkflowDef | None:
        """The workflow of a Workflow object, None for anything else."""
    def compile_condition(self, expr: str) -> tuple[Any, str | None]:
        """A condition expression compiled into a callable, or (None, the compile error)."""


@dataclass
class WorkflowSpec:
    """What a builder or a table constructor collected; `build` turns a copy into a WorkflowDef."""

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


def data(host: SpecHost, v: Any, fname: str, what: str) -> Any:
    """Plain data of a step input or parameters table."""
    try:
        return host.to_py(v)
    except LuaApiError as e:
        raise LuaApiError(f"{fname}: {what}: {e} (step inputs must be plain data)") from None


def error_strategy(v: Any, fname: str) -> str:
    """A §5.7 error strategy name (`graceful` is `continue`)."""
    s = need_str(v, fname, "error_strategy")
    s = {"graceful": "continue"}.get(s, s)
    if s not in ERROR_STRATEGIES:
        raise LuaApiError(f"{fname}: unknown error strategy '{s}' (one of: fail_fast, continue, retry)")
    return s


def parse_condition(host: SpecHost, c: Any, fname: str) -> Condition:
    """A condition: a function, an expression string (compiled now; an error is kept until build) or a table."""
    if host.is_function(c):
        return Condition("lua", fn=c, source="function")
    if isinstance(c, str):
        f, err = host.compile_condition(c)
        if f is None:
            return Condition("lua", source=c, error=f"invalid condition expression '{c}': {err}")
        return Condition("lua", fn=f, source=c)
    if host.is_table(c):
        kind = host.field(c, "type")
        if kind is None:
            raise LuaApiError(f"{fname}: condition table needs a type (one of: {', '.join(CONDITION_TYPES)})")
        if kind not in CONDITION_TYPES:
            raise LuaApiError(f"{fname}: unknown condition type '{kind}' (one of: {', '.join(CONDITION_TYPES)})")
        value = host.field(c, "value")
        value = host.to_py(value) if value is not None else None
        key = host.field(c, "key")
        step = host.field(c, "step")
        return Condition(kind, key=str(key) if key is not None else None, value=value,
                         step=str(step) if step is not None else None)
    raise LuaApiError(f"{fname}: condition must be a table, a function or an expression string, "
                      f"got {type_name(c)}")


def _step_type(host: SpecHost, t: Any, name: str, fn: Any, fname: str) -> str:
    typ = host.field(t, "type")
    if typ is None:
        for key in ("agent", "tool", "workflow"):
            if host.field(t, key) is not None:
                return key
        if fn is None:
            raise LuaApiError(f"{fname}: step '{name}' needs a type (agent, tool, workflow or custom) "
                              "or one of the keys agent, tool, workflow, fn")
        typ = "custom"
    if typ == "function":
        typ = "custom"
    if typ not in STEP_TYPES:
        raise LuaApiError(f"{fname}: step '{name}' has unknown type '{typ}' (one of: agent, tool, workflow, "
                          "custom)")
    return str(typ)


def parse_step(host: SpecHost, t: Any, fname: str) -> Step:
    """One step table (§5.4) into a Step."""
    if not host.is_table(t):
        raise LuaApiError(f"{fname}: step must be a table {{name = ..., type = ...}}, got {type_name(t)}")
    name = host.field(t, "name")
    if not isinstance(name, str) or not name:
        raise LuaApiError(f"{fname}: step needs a name (a non-empty string)")
    fn = host.field(t, "fn")
    if fn is None:
        fn = host.field(t, "function")
    typ = _step_type(host, t, name, fn, fname)
    step = Step(name=name, type=typ)
    inp = host.field(t, "input")
    if typ == "agent":
        a = host.field(t, "agent")
        if a is None:
            raise LuaApiError(f"{fname}: agent step '{name}' needs agent (an agent name or Agent object)")
        agent = a if isinstance(a, str) else host.agent_name(a)
        if agent is None:
            raise LuaApiError(f"{fname}: agent step '{name}': agent must be a name or an Agent, got "
                              f"{type_name(a)}")
        step.agent = agent
        if inp is not None:
            step.input = inp if isinstance(inp, str) else data(host, inp, fname, f"step '{name}' input")
    elif typ == "tool":
        tool = host.field(t, "tool")
        if not isinstance(tool, str) or not tool:
            raise LuaApiError(f"{fname}: tool step '{name}' needs tool (a tool name string)")
        step.tool = tool
        params = inp if inp is not None else host.field(t, "parameters")
        if params is not None:
            if not host.is_table(params):
                raise LuaApiError(f"{fname}: tool step '{name}': input must be a table of parameters, "
                                  f"got {type_name(params)}")
            step.input = data(host, params, fname, f"step '{name}' input")
    elif typ == "workflow":
        w = host.field(t, "workflow")
        if w is None:
            raise LuaApiError(f"{fname}: workflow step '{name}' needs workflow (a Workflow, id or name)")
        if isinstance(w, str):
            step.workflow = w
        else:
            h = host.workflow_of(w)
            if h is None:
                raise LuaApiError(f"{fname}: workflow step '{name}': workflow must be a Workflow, id or name")
            step.workflow = h
        if inp is not None:
            step.input = data(host, inp, fname, f"step '{name}' input") if host.is_table(inp) else {"text": str(inp)}
    else:
        if fn is None or not (host.is_function(fn) or isinstance(fn, str)):
            raise LuaApiError(f"{fname}: custom step '{name}' needs fn (a Lua function or a global "
                              "function name)")
        step.fn = fn
    params = host.field(t, "parameters")
    if typ in ("custom", "agent") and params is not None:
        step.parameters = data(host, params, fname, f"step '{name}' parameters")
    for key in ("timeout_ms", "retry_count", "retry_delay_ms"):
        v = host.field(t, key)
        if v is not None:
            setattr(step, key, need_int(v, fname, f"step '{name}' {key}"))
    step.continue_on_error = bool(host.field(t, "continue_on_error"))
    desc = host.field(t, "description")
    if isinstance(desc, str):
        step.description = desc
    return step


def parse_steps(host: SpecHost, arr: Any, fname: str, what: str = "steps") -> list[Step]:
    """An array of step tables (nil: none)."""
    if arr is None:
        return []
    if not host.is_table(arr):
        raise LuaApiError(f"{fname}: {what} must be an array of step tables")
    return [parse_step(host, t, fname) for t in host.items(arr)]


def set_collection(host: SpecHost, spec: WorkflowSpec, arr: Any, fname: str) -> None:
    """Iterate a loop over the values of an array."""
    if not host.is_table(arr):
        raise LuaApiError(f"{fname}: expected an array, got {type_name(arr)}")
    v = host.to_py(arr)
    spec.loop.iterator, spec.loop.collection = "collection", (v if isinstance(v, list) else list(v.values()))


def set_range(host: SpecHost, lp: LoopSpec, r: Any, fname: str) -> None:
    """Iterate a loop over `{start, end, step}` (array or named; defaults 1, 10, 1)."""
    if r is not None and not host.is_table(r):
        raise LuaApiError(f"{fname}: expected a table {{start, ['end'], step}}, got {type_name(r)}")
    rv = host.to_py(r) if r is not None else {}
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


def conditions(wf: WorkflowDef) -> list[Condition]:
    """Every condition of a workflow (branches, loop)."""
    out = [b.condition for b in wf.branches if b.condition is not None]
    lp = wf.loop
    out += [c for c in (lp.while_cond, lp.loop_condition) if c is not None]
    out += lp.break_conditions
    return out


def build(spec: WorkflowSpec, fname: str, default_strategy: str, default_concurrency: int) -> WorkflowDef:
    """A new WorkflowDef from (a copy of) `spec`; raises for a missing type or iterator, a bad condition."""
    if spec.type is None:
        raise LuaApiError("Workflow type not specified (call :sequential(), :parallel(), :conditional() or "
                          ":loop() before :build())")
    wf = WorkflowDef(name=spec.name or f"workflow_{uuid.uuid4().hex[:8]}", type=spec.type,
                     description=spec.description, timeout_ms=spec.timeout_ms,
                     error_strategy=spec.error_strategy or default_strategy,
                     max_concurrency=spec.max_concurrency or default_concurrency)
    if spec.type == "parallel":
        wf.branches = [Branch(s.name, [s]) for s in spec.steps]
    elif spec.type == "conditional":
        wf.steps = list(spec.steps)
        wf.branches = [Branch("then", list(spec.then_steps), spec.then_cond)]
        wf.branches += [Branch(f"branch_{i}", list(st), c) for i, (c, st) in enumerate(spec.extra_branches, 1)]
        wf.branches.append(Branch("else", list(spec.else_steps), None))
    else:
        wf.steps = list(spec.steps)
    if spec.type == "loop":
        lp = LoopSpec(**{k: getattr(spec.loop, k) for k in LoopSpec.__dataclass_fields__})
        lp.collection = list(spec.loop.collection)
        lp.break_conditions = list(spec.loop.break_conditions)
        if spec.loop_condition is not None:
            if lp.iterator is None:
                lp.iterator, lp.while_cond = "while_condition", spec.loop_condition
            else:
                lp.loop_condition = spec.loop_condition
        if lp.iterator is None:
            raise LuaApiError(f"{fname}: loop workflow '{wf.name}' has no iterator (use :with_collection, "
                              ":with_range or :with_while)")
        wf.loop = lp
    check_conditions(wf, fname)
    names = [s.name for s in wf.all_steps()]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        log.warning("workflow '%s': duplicate step names %s; the later output wins", wf.name, dupes)
    return wf


def check_conditions(wf: WorkflowDef, fname: str) -> None:
    """Raise the first condition expression that did not compile."""
    for c in conditions(wf):
        if c.error:
            raise LuaApiError(f"{fname}: {c.error}")


# ---------------------------------------------------------------------- table constructors (§5.2)
def _common(host: SpecHost, spec: WorkflowSpec, cfg: Any, fname: str) -> None:
    if not host.is_table(cfg):
        raise LuaApiError(f"{fname}: expected a config table {{name = ..., ...}}, got {type_name(cfg)}")
    name = host.field(cfg, "name")
    if not isinstance(name, str) or not name:
        raise LuaApiError(f"{fname}: name is required (a non-empty string)")
    spec.name = name
    if host.field(cfg, "description") is not None:
        spec.description = need_str(host.field(cfg, "description"), fname, "description")
    if host.field(cfg, "error_strategy") is not None:
        spec.error_strategy = error_strategy(host.field(cfg, "error_strategy"), fname)
    if host.field(cfg, "timeout_ms") is not None:
        n = need_int(host.field(cfg, "timeout_ms"), fname, "timeout_ms")
        spec.timeout_ms = n if n > 0 else None
    if host.field(cfg, "max_concurrency") is not None:
        spec.max_concurrency = max(1, need_int(host.field(cfg, "max_concurrency"), fname, "max_concurrency"))


def _branch_tables(host: SpecHost, cfg: Any, fname: str, shape: str) -> Iterator[tuple[int, Any]]:
    """(1-based index, table) of each entry of `cfg.branches`, each checked as it is reached."""
    br = host.field(cfg, "branches")
    if br is None:
        return
    if not host.is_table(br):
        raise LuaApiError(f"{fname}: branches must be an array of {shape}")
    for i, e in enumerate(host.items(br), 1):
        if not host.is_table(e):
            raise LuaApiError(f"{fname}: branch {i} must be a table {shape}")
        yield i, e


def _label(host: SpecHost, e: Any, default: str) -> str:
    label = host.field(e, "name")
    return label if isinstance(label, str) else default


def from_table(host: SpecHost, kind: str, cfg: Any, default_strategy: str, default_concurrency: int) -> WorkflowDef:
    """`Workflow.<kind>{...}` (kind: sequential, parallel, conditional, loop) into a WorkflowDef."""
    fname = f"Workflow.{kind}"
    spec = WorkflowSpec(type=kind)
    _common(host, spec, cfg, fname)
    branches: list[Branch] | None = None
    if kind == "sequential":
        spec.steps = parse_steps(host, host.field(cfg, "steps"), fname)
    elif kind == "parallel":
        branches = [Branch(_label(host, e, f"branch_{i}"),
                           parse_steps(host, host.field(e, "steps"), fname, f"branch {i} steps"))
                    for i, e in _branch_tables(host, cfg, fname, "{name?, steps = {...}}")]
        branches += [Branch(s.name, [s]) for s in parse_steps(host, host.field(cfg, "steps"), fname)]
    elif kind == "conditional":
        spec.steps = parse_steps(host, host.field(cfg, "steps"), fname)
        branches = []
        for i, e in _branch_tables(host, cfg, fname, "{name?, condition?, steps}"):
            c = host.field(e, "condition")
            cond = parse_condition(host, c, fname) if c is not None else None
            label = _label(host, e, "then" if i == 1 else f"branch_{i - 1}")
            branches.append(Branch(label, parse_steps(host, host.field(e, "steps"), fname), cond))
        d = host.field(cfg, "default_branch")
        if d is not None:
            if not host.is_table(d):
                raise LuaApiError(f"{fname}: default_branch must be a table {{steps = {{...}}}}")
            branches.append(Branch("else", parse_steps(host, host.field(d, "steps"), fname), None))
    else:
        _loop_table(host, spec, cfg, fname)
    wf = build(spec, fname, default_strategy, default_concurrency)
    if branches is not None:
        wf.branches = branches
        check_conditions(wf, fname)
    return wf


def _loop_table(host: SpecHost, spec: WorkflowSpec, cfg: Any, fname: str) -> None:
    it = host.field(cfg, "iterator")
    if host.is_table(it):
        if host.field(it, "collection") is not None:
            set_collection(host, spec, host.field(it, "collection"), "WorkflowBuilder:with_collection")
        elif host.field(it, "range") is not None:
            set_range(host, spec.loop, host.field(it, "range"), fname)
        elif host.field(it, "while_condition") is not None:
            spec.loop.iterator = "while_condition"
            spec.loop.while_cond = parse_condition(host, host.field(it, "while_condition"), fname)
            if host.field(it, "max_iterations") is not None:
                spec.loop.max_iterations = need_int(host.field(it, "max_iterations"), fname, "iterator.max_iterations")
    elif it is not None:
        raise LuaApiError(f"{fname}: iterator must be a table {{collection=...}} | {{range=...}} | "
                          "{while_condition=..., max_iterations=n}")
    body = host.field(cfg, "body")
    if body is None:
        body = host.field(cfg, "steps")
    spec.steps = parse_steps(host, body, fname, "body")
    bcs = host.field(cfg, "break_conditions")
    if bcs is not None:
        if not host.is_table(bcs):
            raise LuaApiError(f"{fname}: break_conditions must be an array of conditions")
        spec.loop.break_conditions = [parse_condition(host, c, fname) for c in host.items(bcs)]
    if host.field(cfg, "max_iterations") is not None:
        spec.loop.max_iterations = need_int(host.field(cfg, "max_iterations"), fname, "max_iterations")
