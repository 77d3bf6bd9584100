"""Step spans: consecutive steps without I/O run on the Lua thread in one hop, and still stop on time."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.workflows.conftest import run

_STEPS = """
  local b = Workflow.builder():name("span"):sequential()
  for i = 1, 20 do
    b:add_step{name = "f" .. i, fn = function(ctx) return "f" .. i end}
    b:add_step{name = "t" .. i, type = "tool", tool = "text_manipulator",
               input = {operation = "uppercase", input = "{{f" .. i .. "}}"}}
  end
  WF = b:build()
"""


@pytest.mark.parametrize("hooked", [False, True])
def test_a_run_of_sync_steps_takes_one_hop_to_the_lua_thread(lua_runtime: Any, hooked: bool,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    run(lua_runtime, _STEPS)
    if hooked:
        run(lua_runtime, "for _, p in ipairs({'BeforeWorkflowStage', 'AfterWorkflowStage', 'BeforeToolExecution', "
                         "'WorkflowStageTransition'}) do Hook.register(p, function(ctx) end) end")
    hops: list[Any] = []
    real = lua_runtime.call_on_lua_thread

    def counting(fn: Any, *args: Any) -> Any:
        hops.append(fn)
        return real(fn, *args)

    monkeypatch.setattr(lua_runtime, "call_on_lua_thread", counting)
    r = run(lua_runtime, "return WF:execute({})")
    assert r["success"] is True and "F20" in r["outputs"]["t20"] and len(r["steps"]) == 40
    assert len(hops) == 1


def test_the_workflow_deadline_is_checked_between_steps_of_a_span(lua_runtime: Any) -> None:
    t0 = time.perf_counter()
    r = run(lua_runtime, """
      RAN = 0
      local b = Workflow.builder():name("slow"):sequential():timeout_ms(150)
      for i = 1, 20 do
        b:add_step{name = "s" .. i, fn = function()
          RAN = RAN + 1
          local t = Utils.now_ms() while Utils.now_ms() - t < 40 do end  -- wall time, as the deadline
          return "ok"
        end}
      end
      return b:build():execute({})
    """)
    assert time.perf_counter() - t0 < 1.5
    assert r["success"] is False and "timed out" in r["error"]
    ran = run(lua_runtime, "return RAN")
    assert 2 <= ran <= 6


def test_an_interrupt_stops_a_span_between_steps(lua_runtime: Any) -> None:
    from llmspell.script.engine import ScriptError

    lua_runtime.G.STOP = lambda: lua_runtime.interrupt("stop requested")
    with pytest.raises(ScriptError) as ei:
        run(lua_runtime, """
          RAN = 0
          local b = Workflow.builder():name("stop"):sequential()
          for i = 1, 10 do
            b:add_step{name = "s" .. i, fn = function() RAN = RAN + 1; if i == 3 then STOP() end return "ok" end}
          end
          return b:build():execute({})
        """)
    assert "stop requested" in str(ei.value)
    lua_runtime.clear_interrupt()
    assert run(lua_runtime, "return RAN") == 3


def test_fail_fast_in_a_parallel_workflow_of_span_branches(lua_runtime: Any) -> None:
    r = run(lua_runtime, """
      local branch = function(tag, fail)
        local steps = {}
        for i = 1, 5 do
          steps[i] = {name = tag .. i, fn = function() if fail and i == 2 then error("bad " .. tag) end return tag end}
        end
        return steps
      end
      return Workflow.parallel{name = "pf", branches = {{name = "a", steps = branch("a", true)},
                                                        {name = "b", steps = branch("b", false)}}}:execute()
    """)
    assert r["success"] is False and "bad a" in r["error"]
    names = [s["name"] for s in r["steps"]]
    assert names[:2] == ["a1", "a2"] and "a3" not in names
    assert len(names) == len(set(names))
