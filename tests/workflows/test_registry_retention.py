"""Workflow registry retention: what stays registered and usable once the script lets go of it."""

from __future__ import annotations

from typing import Any

from tests.workflows.conftest import run


def test_a_named_workflow_runs_from_the_registry_after_the_script_dropped_it(rt: Any) -> None:
    r = run(rt, """
      do
        local wf = Workflow.builder():name("kept"):sequential()
          :add_step{name = "f", fn = function() return "F" end}
          :add_step{name = "g", fn = function(ctx) return ctx.outputs.f .. "G" end}:build()
      end
      collectgarbage() collectgarbage()
      return Workflow.get("kept"):execute().text
    """)
    assert r == "FG"


def test_a_child_lives_as_long_as_its_parent_needs_it(rt: Any) -> None:
    r = run(rt, """
      local parent
      do
        local child = Workflow.builder():sequential()  -- no name: kept only while referred to
          :add_step{name = "c", fn = function() return "C" end}:build()
        child:on_after_execute(function(ctx) CB = (CB or 0) + 1 end)
        parent = Workflow.builder():name("par"):sequential()
          :add_step{name = "w", type = "workflow", workflow = child}:build()
      end
      collectgarbage() collectgarbage()
      return {text = parent:execute().text, cb = CB}
    """)
    assert r == {"text": "C", "cb": 1}


def test_replaced_and_anonymous_workflows_go_when_unreferenced(rt: Any) -> None:
    r = run(rt, """
      local first = Workflow.sequential{name = "dup", steps = {{name = "a", fn = function() return "1" end}}}
      local id1 = first.id
      Workflow.sequential{name = "dup", steps = {{name = "a", fn = function() return "2" end}}}
      Workflow.builder():sequential():add_step{name = "x", fn = function() return "x" end}:build()
      collectgarbage() collectgarbage()
      local while_held = {Workflow.get(id1) ~= nil, first:execute().text, Workflow.get("dup"):execute().text}
      first = nil
      collectgarbage() collectgarbage()
      return {held = while_held, after = Workflow.get(id1) == nil, n = #Workflow.list()}
    """)
    assert r == {"held": [True, "1", "2"], "after": True, "n": 1}


def test_a_builder_stays_usable_and_its_workflows_are_independent(rt: Any) -> None:
    r = run(rt, """
      local b = Workflow.builder():name("twice"):sequential():add_step{name = "a", fn = function() return "A" end}
      local w1 = b:build()
      b:add_step{name = "b", fn = function(ctx) return ctx.outputs.a .. "B" end}
      local w2 = b:build()
      return {w1:execute().text, w2:execute().text, #w1:get_info().steps, #w2:get_info().steps}
    """)
    assert r == ["A", "AB", 1, 2]


def test_conditions_and_loops_keep_their_functions(rt: Any) -> None:
    r = run(rt, """
      local wf
      do
        wf = Workflow.builder():name("cond"):conditional()
          :condition(function(ctx) return ctx.input.go == "yes" end)
          :add_then_step{name = "t", fn = function() return "then" end}
          :add_else_step{name = "e", fn = function() return "else" end}:build()
        Workflow.builder():name("lp"):loop():with_while(function(ctx) return ctx.iteration <= 2 end)
          :break_condition(function(ctx) return false end)
          :add_step{name = "s", fn = function(ctx) return "it" .. ctx.iteration end}:build()
      end
      collectgarbage() collectgarbage()
      return {wf:execute{go = "yes"}.text, wf:execute{go = "no"}.text, Workflow.get("lp"):execute().text}
    """)
    assert r == ["then", "else", "it2"]
