"""Conditional (pre-steps, branches), loop (collection, range, while, break, caps) and nested workflows."""

from __future__ import annotations

from typing import Any

import pytest

from tests.workflows.conftest import lua_error, run


def test_conditional_pre_steps_then_else_and_branches(rt: Any) -> None:
    r = run(rt, """
      local function mk(cond)
        return Workflow.builder():name("c"):conditional()
          :add_step{name = "pre", fn = function() return "Yes indeed" end}
          :condition(cond)
          :add_then_step{name = "th", fn = function(ctx) return "then:" .. ctx.outputs.pre end}
          :add_branch({type = "shared_data_equals", key = "mode", value = "b"}, {{name = "bb", fn = function() return "B" end}})
          :add_else_step{name = "el", fn = function() return "else" end}
          :build()
      end
      local a = mk({type = "output_contains", step = "pre", value = "YES"}):execute()
      local b = mk({type = "never"}):execute{mode = "b"}
      local c = mk(function(ctx) return ctx.shared.pre == "nope" end):execute()
      local d = mk("shared.pre ~= nil and input.x == 1"):execute{x = 1}
      return {a = a, b = b, c = c, d = d}
    """)
    assert r["a"]["text"] == "then:Yes indeed" and r["a"]["metadata"]["extra"]["selected_branch"] == "then"
    assert [s["name"] for s in r["a"]["steps"]] == ["pre", "th"]
    assert r["b"]["text"] == "B" and r["b"]["metadata"]["extra"]["selected_branch"] == "branch_1"
    assert r["c"]["text"] == "else" and r["c"]["metadata"]["extra"]["selected_branch"] == "else"
    assert r["d"]["metadata"]["extra"]["selected_branch"] == "then"
    extra = r["a"]["metadata"]["extra"]
    assert extra["execute_all_matching"] is False and extra["short_circuit_evaluation"] is True
    assert extra["matched_branches"] == 1 and extra["executed_branches"] == 1


def test_conditional_no_match_and_empty_then(rt: Any) -> None:
    r = run(rt, """
      local none = Workflow.builder():name("n"):conditional():condition{type = "never"}
        :add_then_step{name = "t", fn = function() return "t" end}:build():execute()
      -- no condition: then is 'always', but a branch with no steps is never selected
      local skip = Workflow.builder():name("s"):conditional()
        :add_else_step{name = "e", fn = function() return "e" end}:build():execute()
      local ctor = Workflow.conditional{name = "k", branches = {
          {condition = {type = "input_equals", key = "x", value = "2"}, steps = {{name = "one", fn = function() return "1" end}}}},
        default_branch = {steps = {{name = "dflt", fn = function() return "d" end}}}}
      return {none = none, skip = skip, c1 = ctor:execute{x = 2}, c2 = ctor:execute{x = 3}}
    """)
    assert r["none"]["success"] is True and r["none"]["text"] == "" and "selected_branch" not in r["none"]["metadata"]["extra"]
    assert r["skip"]["text"] == "e"
    assert r["c1"]["text"] == "1" and r["c2"]["text"] == "d"


def test_conditional_pre_step_failure_ends_under_fail_fast(rt: Any) -> None:
    r = run(rt, """
      return Workflow.builder():name("cf"):conditional()
        :add_step{name = "pre", fn = function() error("pre failed") end}
        :add_then_step{name = "t", fn = function() return "t" end}:build():execute()
    """)
    assert r["success"] is False and "pre failed" in r["error"] and "t" not in r["outputs"]


def test_unknown_condition_type_raises_at_condition(rt: Any) -> None:
    msg = lua_error(rt, 'Workflow.builder():conditional():condition{type = "sometimes"}')
    assert "unknown condition type 'sometimes'" in msg


def test_loop_collection_and_state_iteration_keys(rt: Any) -> None:
    r = run(rt, """
      local wf = Workflow.builder():name("lc"):loop():with_collection({"a", "b", "c"})
        :add_step{name = "up", tool = "text_manipulator", input = {operation = "uppercase", input = "{{loop_value}}{{loop_index}}"}}
        :add_step{name = "echo", fn = function(ctx) return ctx.loop_value .. ":" .. ctx.iteration end}
        :build()
      local r = wf:execute()
      return {r = r, it2 = State.load("custom", "workflow:" .. r.execution_id .. ":iteration:2:echo")}
    """)
    res = r["r"]
    assert res["success"] is True and res["text"] == "c:3"
    assert [it["value"] for it in res["iterations"]] == ["a", "b", "c"]
    assert res["iterations"][0]["outputs"]["echo"] == "a:1" and res["iterations"][0]["index"] == 1
    assert r["it2"] == "b:2"
    extra = res["metadata"]["extra"]
    assert extra["iterator_type"] == "collection" and extra["collection_size"] == 3
    assert extra["total_iterations"] == 3 and extra["completed_iterations"] == 3
    assert extra["break_reason"] == "completed" and extra["aggregated_results_count"] == 3
    assert '"result":"B2"' in res["steps"][2]["output"] and res["steps"][2]["iteration"] == 2


def test_loop_range_exclusive_negative_and_break(rt: Any) -> None:
    r = run(rt, """
      local f = function(ctx) return ctx.loop_value end
      local a = Workflow.builder():name("r"):loop():with_range{start = 1, ["end"] = 4}:add_step{name = "v", fn = f}:build():execute()
      local b = Workflow.loop{name = "neg", iterator = {range = {start = 5, ["end"] = 0, step = -2}}, body = {{name = "v", fn = f}}}:execute()
      local c = Workflow.builder():name("br"):loop():with_range{start = 1, ["end"] = 100}
        :add_step{name = "sq", fn = function(ctx) return ctx.loop_value * ctx.loop_value end}
        :break_condition("tonumber($last_output) >= 9"):build():execute()
      local d = Workflow.builder():name("mx"):loop():with_collection({1, 2, 3, 4, 5}):max_iterations(2)
        :add_step{name = "v", fn = f}:build():execute()
      return {a = a, b = b, c = c, d = d}
    """)
    assert [it["value"] for it in r["a"]["iterations"]] == [1, 2, 3]
    assert [it["value"] for it in r["b"]["iterations"]] == [5, 3, 1]
    assert r["c"]["text"] == "9" and r["c"]["metadata"]["extra"]["break_reason"] == "condition"
    assert r["d"]["text"] == "2" and r["d"]["metadata"]["extra"]["break_reason"] == "max_iterations"
    assert r["a"]["metadata"]["extra"]["range_end"] == 4


def test_loop_while_function_and_default_max(rt: Any) -> None:
    r = run(rt, """
      local w = Workflow.builder():name("w"):loop():with_while(function(ctx) return ctx.iteration <= 3 end)
        :add_step{name = "x", fn = function(ctx) return "it" .. ctx.iteration end}:build():execute()
      local forever = Workflow.builder():name("f"):loop():with_while("true")
        :add_step{name = "x", fn = function(ctx) return ctx.iteration end}:build():execute()
      local ctor = Workflow.loop{name = "wc", iterator = {while_condition = "iteration < 3", max_iterations = 10},
                                 body = {{name = "x", fn = function(ctx) return ctx.iteration end}}}:execute()
      return {w = w, forever = forever, ctor = ctor}
    """)
    assert r["w"]["text"] == "it3" and r["w"]["metadata"]["extra"]["break_reason"] == "completed"
    assert len(r["forever"]["iterations"]) == 100
    assert r["forever"]["metadata"]["extra"]["break_reason"] == "max_iterations"
    assert r["ctor"]["text"] == "2"


def test_loop_errors(rt: Any) -> None:
    assert "has no iterator" in lua_error(rt, 'Workflow.builder():name("x"):loop():build()')
    assert "step must not be 0" in lua_error(rt, 'Workflow.builder():loop():with_range{step = 0}')
    assert "invalid condition expression" in lua_error(rt, 'Workflow.builder():loop():with_while("(("):build()')
    msg = lua_error(rt, """
      Workflow.builder():name("big"):loop():with_while("true"):max_iterations(20000)
        :add_step{name = "x", fn = function() end}:build():execute()
    """)
    assert "hard cap of 10000" in msg and "big" in msg


def test_loop_fail_fast_and_continue(rt: Any) -> None:
    r = run(rt, """
      local body = {{name = "x", fn = function(ctx) if ctx.iteration == 2 then error("it2") end return "ok" .. ctx.iteration end}}
      local ff = Workflow.loop{name = "lf", iterator = {range = {start = 1, ["end"] = 5}}, body = body}:execute()
      local co = Workflow.loop{name = "lk", iterator = {range = {start = 1, ["end"] = 5}}, body = body,
                               error_strategy = "continue"}:execute()
      return {ff = ff, co = co}
    """)
    assert r["ff"]["success"] is False and r["ff"]["metadata"]["extra"]["break_reason"] == "error"
    assert r["ff"]["text"] == "ok1"  # the last completed iteration
    assert len(r["ff"]["iterations"]) == 2
    assert r["co"]["success"] is False and len(r["co"]["iterations"]) == 4 and r["co"]["text"] == "ok4"


def test_nested_three_deep(rt: Any) -> None:
    r = run(rt, """
      local inner = Workflow.builder():name("inner"):sequential()
        :add_step{name = "i", fn = function(ctx) return "inner(" .. ctx.input.text .. ")" end}:build()
      local middle = Workflow.builder():name("middle"):sequential()
        :add_step{name = "m", type = "workflow", workflow = inner, input = {text = "{{input}}+m"}}:build()
      local outer = Workflow.builder():name("outer"):sequential()
        :add_step{name = "o", type = "workflow", workflow = "middle"}
        :add_step{name = "after", fn = function(ctx) return "got " .. ctx.outputs.o end}:build()
      return outer:execute("top")
    """)
    assert r["success"] is True
    assert r["outputs"]["o"] == "inner(top+m)"
    assert r["text"] == "got inner(top+m)"
    child_id = r["steps"][0]["execution_id"]
    assert child_id and child_id != r["execution_id"] and r["steps"][0]["workflow"] == "middle"


def test_nested_failure_propagates_and_depth_limit(rt: Any) -> None:
    r = run(rt, """
      local bad = Workflow.sequential{name = "bad", steps = {{name = "b", fn = function() error("child broke") end}}}
      return Workflow.sequential{name = "parent", steps = {{name = "c", workflow = bad}}}:execute()
    """)
    assert r["success"] is False and "child broke" in r["error"]
    msg = lua_error(rt, """
      local wf = Workflow.builder():name("rec"):sequential():add_step{name = "self", type = "workflow", workflow = "rec"}:build()
      wf:execute()
    """)
    assert "nesting deeper than 16" in msg


@pytest.mark.parametrize("bad", ["Workflow.builder():build()", "Workflow.builder():error_strategy('sometimes')",
                                 "Workflow.builder():add_step{name = 'x', type = 'robot'}",
                                 "Workflow.builder():add_step{name = 'x', type = 'agent'}",
                                 "Workflow.sequential{steps = {}}"])
def test_builder_misuse_raises(rt: Any, bad: str) -> None:
    assert lua_error(rt, bad)
