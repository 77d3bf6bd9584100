"""workflows/spec.py without Lua: step, condition and loop tables into the typed model, and their errors."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from llmspell.script.bridge import LuaApiError
from llmspell.workflows import spec as sp
from llmspell.workflows.model import WorkflowDef


class Agent:
    def __init__(self, name: str) -> None:
        self.name = name


class Fn:
    """Stands for a Lua function."""


class Host:
    """SpecHost over plain Python values: dicts and lists are tables, Fn instances are functions."""

    def __init__(self, workflows: dict[int, WorkflowDef] | None = None) -> None:
        self.workflows = workflows or {}

    def is_table(self, v: Any) -> bool:
        return isinstance(v, dict | list)

    def is_function(self, v: Any) -> bool:
        return isinstance(v, Fn)

    def field(self, t: Any, key: str) -> Any:
        return t.get(key) if isinstance(t, dict) else None

    def items(self, t: Any) -> list[Any]:
        return list(t) if isinstance(t, list) else []

    def to_py(self, v: Any) -> Any:
        if isinstance(v, Fn | Agent):
            raise LuaApiError("cannot convert a function")
        if isinstance(v, dict):
            return {k: self.to_py(x) for k, x in v.items()}
        if isinstance(v, list):
            return [self.to_py(x) for x in v]
        return v

    def agent_name(self, v: Any) -> str | None:
        return v.name if isinstance(v, Agent) else None

    def workflow_of(self, v: Any) -> WorkflowDef | None:
        return self.workflows.get(id(v))

    def compile_condition(self, expr: str) -> tuple[Any, str | None]:
        return (None, "unexpected symbol") if "!!" in expr else (Fn(), None)


H = Host()
F = "Workflow.sequential"


def build(s: sp.WorkflowSpec, fname: str = "WorkflowBuilder:build") -> WorkflowDef:
    return sp.build(s, fname, "fail_fast", 4)


def err(fn: Any, *args: Any) -> str:
    with pytest.raises(LuaApiError) as e:
        fn(*args)
    return str(e.value)


# ---------------------------------------------------------------- steps
def test_step_type_comes_from_its_key() -> None:
    assert sp.parse_step(H, {"name": "a", "agent": "writer"}, F).type == "agent"
    assert sp.parse_step(H, {"name": "t", "tool": "calculator", "input": {"x": 1}}, F).input == {"x": 1}
    s = sp.parse_step(H, {"name": "f", "fn": Fn()}, F)
    assert s.type == "custom" and isinstance(s.fn, Fn)
    assert sp.parse_step(H, {"name": "g", "type": "function", "function": "global_fn"}, F).fn == "global_fn"


def test_agent_step_takes_a_name_or_an_agent_object() -> None:
    assert sp.parse_step(H, {"name": "a", "agent": Agent("w"), "input": "hi {{x}}"}, F).agent == "w"
    assert err(sp.parse_step, H, {"name": "a", "agent": 3}, F) == \
        "Workflow.sequential: agent step 'a': agent must be a name or an Agent, got integer"
    assert err(sp.parse_step, H, {"name": "a", "type": "agent"}, F) == \
        "Workflow.sequential: agent step 'a' needs agent (an agent name or Agent object)"


@pytest.mark.parametrize(("table", "message"), [
    ("x", "step must be a table {name = ..., type = ...}, got string"),
    ({"type": "tool"}, "step needs a name (a non-empty string)"),
    ({"name": ""}, "step needs a name (a non-empty string)"),
    ({"name": "s"}, "step 's' needs a type (agent, tool, workflow or custom) or one of the keys agent, tool, "
                    "workflow, fn"),
    ({"name": "s", "type": "llm"}, "step 's' has unknown type 'llm' (one of: agent, tool, workflow, custom)"),
    ({"name": "s", "type": "tool"}, "tool step 's' needs tool (a tool name string)"),
    ({"name": "s", "tool": "calc", "input": "1+1"}, "tool step 's': input must be a table of parameters, got string"),
    ({"name": "s", "type": "custom"}, "custom step 's' needs fn (a Lua function or a global function name)"),
    ({"name": "s", "type": "workflow"}, "workflow step 's' needs workflow (a Workflow, id or name)"),
    ({"name": "s", "workflow": {"not": "a workflow"}}, "workflow step 's': workflow must be a Workflow, id or name"),
    ({"name": "s", "tool": "calc", "timeout_ms": "5"}, "step 's' timeout_ms must be an integer, got string"),
    ({"name": "s", "tool": "calc", "retry_count": 1.5}, "step 's' retry_count must be an integer, got float"),
    ({"name": "s", "agent": "w", "input": {"f": Fn()}},
     "step 's' input: cannot convert a function (step inputs must be plain data)"),
])
def test_bad_step_tables_name_what_is_wrong(table: Any, message: str) -> None:
    assert err(sp.parse_step, H, table, F) == f"{F}: {message}"


def test_step_numbers_and_flags() -> None:
    s = sp.parse_step(H, {"name": "s", "tool": "calc", "timeout_ms": 250.0, "retry_count": 2, "retry_delay_ms": 10,
                          "continue_on_error": True, "description": "d"}, F)
    assert (s.timeout_ms, s.retry_count, s.retry_delay_ms, s.continue_on_error, s.description) == \
        (250, 2, 10, True, "d")
    assert isinstance(s.timeout_ms, int)


def test_workflow_step_refers_to_an_object_or_a_name() -> None:
    child = WorkflowDef(name="child", type="sequential")
    obj = object()
    host = Host({id(obj): child})
    assert sp.parse_step(host, {"name": "w", "workflow": obj}, F).workflow is child
    s = sp.parse_step(host, {"name": "w", "workflow": "child", "input": 42}, F)
    assert (s.workflow, s.input) == ("child", {"text": "42"})


def test_steps_must_be_an_array() -> None:
    assert sp.parse_steps(H, None, F) == []
    assert err(sp.parse_steps, H, "a", F, "body") == f"{F}: body must be an array of step tables"


# ---------------------------------------------------------------- conditions
def test_conditions() -> None:
    assert sp.parse_condition(H, Fn(), F).source == "function"
    c = sp.parse_condition(H, "x > 1", F)
    assert (c.kind, c.source, c.error) == ("lua", "x > 1", None) and isinstance(c.fn, Fn)
    bad = sp.parse_condition(H, "x !! 1", F)  # kept: reported when the workflow is built
    assert bad.fn is None and bad.error == "invalid condition expression 'x !! 1': unexpected symbol"
    t = sp.parse_condition(H, {"type": "shared_data_equals", "key": "k", "value": {"a": 1}}, F)
    assert (t.kind, t.key, t.value, t.step) == ("shared_data_equals", "k", {"a": 1}, None)
    assert err(sp.parse_condition, H, {}, F).startswith(f"{F}: condition table needs a type (one of: always, never")
    assert err(sp.parse_condition, H, {"type": "sometimes"}, F).startswith(
        f"{F}: unknown condition type 'sometimes' (one of: always")
    assert err(sp.parse_condition, H, 5, F) == \
        f"{F}: condition must be a table, a function or an expression string, got integer"


def test_a_bad_expression_fails_the_build() -> None:
    s = sp.WorkflowSpec(type="conditional", then_cond=sp.parse_condition(H, "a !! b", F))
    assert err(build, s) == "WorkflowBuilder:build: invalid condition expression 'a !! b': unexpected symbol"


# ---------------------------------------------------------------- builder state into a workflow
def test_error_strategy() -> None:
    assert sp.error_strategy("graceful", F) == "continue"
    assert err(sp.error_strategy, "panic", F) == \
        f"{F}: unknown error strategy 'panic' (one of: fail_fast, continue, retry)"
    assert err(sp.error_strategy, 1, F) == f"{F}: error_strategy must be a string, got integer"


def test_build_needs_a_type_and_a_loop_iterator() -> None:
    assert err(build, sp.WorkflowSpec()).startswith("Workflow type not specified")
    assert err(build, sp.WorkflowSpec(type="loop", name="l")) == \
        "WorkflowBuilder:build: loop workflow 'l' has no iterator (use :with_collection, :with_range or :with_while)"


def test_build_fills_defaults_and_copies_the_spec() -> None:
    s = sp.WorkflowSpec(type="parallel", steps=[sp.parse_step(H, {"name": n, "tool": "calc"}, F) for n in "ab"])
    wf = build(s)
    assert wf.name.startswith("workflow_") and (wf.error_strategy, wf.max_concurrency) == ("fail_fast", 4)
    assert [b.label for b in wf.branches] == ["a", "b"]
    s.steps.clear()
    assert len(wf.branches) == 2


def test_conditional_branches_in_order() -> None:
    step = sp.parse_step(H, {"name": "x", "tool": "calc"}, F)
    s = sp.WorkflowSpec(type="conditional", then_cond=sp.parse_condition(H, {"type": "always"}, F),
                        then_steps=[step], else_steps=[step],
                        extra_branches=[(sp.parse_condition(H, {"type": "never"}, F), [step])])
    assert [b.label for b in build(s).branches] == ["then", "branch_1", "else"]


def test_loop_condition_becomes_the_while_when_there_is_no_iterator() -> None:
    s = sp.WorkflowSpec(type="loop", loop_condition=sp.parse_condition(H, "i < 3", F))
    wf = build(s)
    assert wf.loop.iterator == "while_condition" and wf.loop.while_cond is s.loop_condition


def test_duplicate_step_names_warn(caplog: pytest.LogCaptureFixture) -> None:
    step = sp.parse_step(H, {"name": "x", "tool": "calc"}, F)
    with caplog.at_level(logging.WARNING, logger="llmspell.workflows"):
        build(sp.WorkflowSpec(type="sequential", name="d", steps=[step, step]))
    assert "workflow 'd': duplicate step names ['x']; the later output wins" in caplog.text


def test_range() -> None:
    s = sp.WorkflowSpec(type="loop")
    sp.set_range(H, s.loop, [2, 8], "WorkflowBuilder:with_range")
    assert (s.loop.iterator, s.loop.start, s.loop.end, s.loop.step) == ("range", 2, 8, 1)
    assert err(sp.set_range, H, s.loop, {"step": 0}, "R") == "R: step must not be 0"
    assert err(sp.set_range, H, s.loop, {"start": "1"}, "R") == "R: start must be a number, got str"
    assert err(sp.set_range, H, s.loop, 5, "R") == "R: expected a table {start, ['end'], step}, got integer"


# ---------------------------------------------------------------- table constructors
def table(kind: str, cfg: Any) -> WorkflowDef:
    return sp.from_table(H, kind, cfg, "continue", 2)


def test_common_keys() -> None:
    wf = table("sequential", {"name": "s", "description": "d", "error_strategy": "retry", "timeout_ms": 0,
                              "max_concurrency": 0, "steps": [{"name": "a", "tool": "calc"}]})
    assert (wf.name, wf.description, wf.error_strategy, wf.timeout_ms, wf.max_concurrency) == \
        ("s", "d", "retry", None, 1)
    assert err(table, "sequential", "s") == "Workflow.sequential: expected a config table {name = ..., ...}, got string"
    assert err(table, "parallel", {}) == "Workflow.parallel: name is required (a non-empty string)"


def test_parallel_branches_then_steps() -> None:
    wf = table("parallel", {"name": "p", "branches": [{"steps": [{"name": "a", "tool": "calc"}]},
                                                      {"name": "two", "steps": []}],
                            "steps": [{"name": "c", "tool": "calc"}]})
    assert [b.label for b in wf.branches] == ["branch_1", "two", "c"]
    assert err(table, "parallel", {"name": "p", "branches": [1]}) == \
        "Workflow.parallel: branch 1 must be a table {name?, steps = {...}}"


def test_conditional_table() -> None:
    wf = table("conditional", {"name": "c", "branches": [{"condition": "x", "steps": []}, {"steps": []}],
                               "default_branch": {"steps": [{"name": "d", "tool": "calc"}]}})
    assert [b.label for b in wf.branches] == ["then", "branch_1", "else"]
    assert err(table, "conditional", {"name": "c", "branches": [{"condition": "a !! b"}]}) == \
        "Workflow.conditional: invalid condition expression 'a !! b': unexpected symbol"
    assert err(table, "conditional", {"name": "c", "default_branch": 1}) == \
        "Workflow.conditional: default_branch must be a table {steps = {...}}"


def test_loop_table() -> None:
    wf = table("loop", {"name": "l", "iterator": {"collection": ["a", "b"]}, "body": [{"name": "s", "tool": "calc"}],
                        "break_conditions": ["done"], "max_iterations": 5})
    assert (wf.loop.iterator, wf.loop.collection, wf.loop.max_iterations) == ("collection", ["a", "b"], 5)
    assert len(wf.loop.break_conditions) == 1 and [s.name for s in wf.steps] == ["s"]
    wf = table("loop", {"name": "l", "iterator": {"while_condition": "i < 2", "max_iterations": 3}})
    assert (wf.loop.iterator, wf.loop.max_iterations) == ("while_condition", 3)
    assert err(table, "loop", {"name": "l", "iterator": 1}).startswith("Workflow.loop: iterator must be a table")
    assert err(table, "loop", {"name": "l", "iterator": {"collection": 1}}) == \
        "WorkflowBuilder:with_collection: expected an array, got integer"
