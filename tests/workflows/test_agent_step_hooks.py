"""Agent steps with hooks: the hooks before the model call run in one hop to the Lua thread, the hooks
after it in another (each point fired from the IO loop was a hop of its own); order and effects stay."""

from __future__ import annotations

from typing import Any

import pytest

from tests.workflows.conftest import lua_error, run

_HOOKS = """
SEEN = {}
local function note(ctx) SEEN[#SEEN + 1] = ctx.point end
for _, p in ipairs({"WorkflowStageTransition", "BeforeWorkflowStage", "BeforeAgentExecution",
                    "AfterAgentExecution", "AfterWorkflowStage"}) do Hook.register(p, note) end
Agent.builder():name("writer"):model("openai/gpt-4o-mini"):build()
"""


def _count_hops(rt: Any, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count calls queued for the Lua thread from other threads (the IO loop's hops)."""
    hops = [0]
    real = rt.call_on_lua_thread

    def counting(fn: Any, *args: Any) -> Any:
        if not rt.on_lua_thread():
            hops[0] += 1
        return real(fn, *args)

    monkeypatch.setattr(rt, "call_on_lua_thread", counting)
    return hops


def test_order_and_effects_of_the_hooks_of_agent_steps(rt: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    run(rt, _HOOKS + """
      Hook.register("BeforeWorkflowStage", function(ctx)
        if ctx.data.step == "a" then return {type = "modified", data = {input = "stage says {{topic}}"}} end end)
      Hook.register("BeforeAgentExecution", function(ctx)
        return {type = "modified", data = {input = {text = ctx.data.input.text .. " +agent"}}} end)
      Hook.register("AfterAgentExecution", function(ctx)
        return {type = "modified", data = {output = {text = ctx.data.output.text .. " +after"}}} end)
      Hook.register("AfterWorkflowStage", function(ctx)
        if ctx.data.step == "b" then return {type = "modified", data = {output = "final"}} end end)
    """)
    hops = _count_hops(rt, monkeypatch)
    r = run(rt, """
      local wf = Workflow.builder():name("two"):sequential()
        :add_step{name = "a", agent = "writer", input = "about {{topic}}"}
        :add_step{name = "b", agent = "writer", input = "{{a}}"}:build()
      local r = wf:execute{topic = "bees"}
      return {r = r, seen = SEEN}
    """)
    res = r["r"]
    assert res["outputs"]["a"] == "reply: stage says bees +agent +after"
    assert res["outputs"]["b"] == "final"
    assert r["seen"] == ["BeforeWorkflowStage", "BeforeAgentExecution", "AfterAgentExecution", "AfterWorkflowStage",
                         "WorkflowStageTransition", "BeforeWorkflowStage", "BeforeAgentExecution",
                         "AfterAgentExecution", "AfterWorkflowStage"]
    assert hops[0] == 4  # two per agent step (was five and four: one per point)


def test_a_cancelling_agent_hook_fails_the_step_and_the_stage_still_ends(rt: Any) -> None:
    r = run(rt, _HOOKS + """
      Hook.register("BeforeAgentExecution", function(ctx) return {type = "cancel", reason = "not today"} end)
      local r = Workflow.sequential{name = "c", steps = {{name = "a", agent = "writer", input = "x"}}}:execute()
      return {r = r, seen = SEEN}
    """)
    assert r["r"]["success"] is False and "cancelled by hook: not today" in r["r"]["error"]
    assert r["seen"] == ["BeforeWorkflowStage", "BeforeAgentExecution", "AfterWorkflowStage"]


def test_a_skipping_stage_hook_skips_the_agent(rt: Any, llm: Any) -> None:
    r = run(rt, _HOOKS + """
      Hook.register("BeforeWorkflowStage", function(ctx) return "skip" end, "highest")
      local r = Workflow.sequential{name = "s", steps = {{name = "a", agent = "writer", input = "x"}}}:execute()
      return {r = r, seen = SEEN}
    """)
    assert r["r"]["steps"][0]["skipped"] is True and not r["seen"]
    assert llm.requests == []


def test_unknown_agent_with_hooks_still_makes_execute_raise(rt: Any) -> None:
    msg = lua_error(rt, _HOOKS + """
      Workflow.sequential{name = "u", steps = {{name = "a", agent = "nobody", input = "x"}}}:execute()
    """)
    assert "unknown agent 'nobody'" in msg and "step 'a'" in msg


def test_agent_execute_from_lua_fires_its_hooks_without_a_hop(rt: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    run(rt, _HOOKS + """
      Hook.register("AfterAgentExecution", function(ctx)
        return {type = "modified", data = {output = {text = "changed"}}} end)
    """)
    hops = _count_hops(rt, monkeypatch)
    r = run(rt, 'local r = Agent.get("writer"):execute("hi") return {text = r.text, seen = SEEN}')
    assert r == {"text": "changed", "seen": ["BeforeAgentExecution", "AfterAgentExecution"]}
    assert hops[0] == 0


def test_a_top_level_execution_starts_and_finishes_on_the_lua_thread(rt: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """wf:execute fires BeforeWorkflowStart, AfterWorkflowComplete / WorkflowError and the callbacks in place."""
    run(rt, """
      SEEN = {}
      for _, p in ipairs({"BeforeWorkflowStart", "AfterWorkflowComplete", "WorkflowError"}) do
        Hook.register(p, function(ctx) SEEN[#SEEN + 1] = ctx.point end)
      end
      Hook.register("BeforeWorkflowStart", function(ctx)
        if ctx.data.name == "ok" then return {type = "modified", data = {input = {who = "hook"}}} end end)
      Workflow.setDefaultErrorHandler(function(info) SEEN[#SEEN + 1] = "default:" .. info.step end)
      local function cbs(wf)
        wf:on_before_execute(function(c) SEEN[#SEEN + 1] = "before:" .. c.input.who end)
        wf:on_after_execute(function(c) SEEN[#SEEN + 1] = "after:" .. tostring(c.result.success) end)
        wf:on_error(function(c) SEEN[#SEEN + 1] = "error:" .. c.step end)
      end
      OK = Workflow.sequential{name = "ok", steps = {{name = "f", fn = function(ctx) return ctx.input.who end}}}
      BAD = Workflow.sequential{name = "bad", steps = {{name = "g", fn = function() error("no") end}}}
      cbs(OK) cbs(BAD)
    """)
    hops = _count_hops(rt, monkeypatch)
    r = run(rt, 'local a = OK:execute{who = "me"} local b = BAD:execute{who = "me"} return {a.text, b.success, SEEN}')
    assert r[0] == "hook" and r[1] is False
    assert r[2] == ["BeforeWorkflowStart", "before:hook", "AfterWorkflowComplete", "after:true",
                    "BeforeWorkflowStart", "before:me", "WorkflowError", "error:g", "default:g", "after:false"]
    assert hops[0] == 2  # one span of function steps per execution; hooks and callbacks cost none
