"""Failures, timeouts, error strategies, configuration errors, hooks and events around workflows."""

from __future__ import annotations

import threading
import time
from typing import Any

from tests.workflows.conftest import lua_error, run


def test_unknown_tool_step_raises_with_suggestions(rt: Any) -> None:
    msg = lua_error(rt, """
      Workflow.builder():name("u"):sequential():add_step{name = "s", tool = "file_ops", input = {}}:build():execute()
    """)
    assert "workflow 'u' step 's'" in msg and "unknown tool 'file_ops'" in msg and "'file_operations'" in msg


def test_missing_agent_raises_naming_workflow_and_step(rt: Any) -> None:
    msg = lua_error(rt, """
      Workflow.builder():name("m"):sequential():add_step{name = "sec", agent = "ghost"}:build():execute()
    """)
    assert "workflow 'm' step 'sec'" in msg and "unknown agent 'ghost'" in msg


def test_missing_api_key_raises(rt: Any, monkeypatch: Any) -> None:
    msg = lua_error(rt, """
      Agent.builder():name("keyless"):model("anthropic/claude-3-5-haiku-latest"):build()
      Workflow.builder():name("k"):sequential():add_step{name = "s", agent = "keyless"}:build():execute("hi")
    """)
    assert "workflow 'k' step 's'" in msg and "ANTHROPIC_API_KEY" in msg


def test_provider_failure_is_a_step_failure(rt: Any, llm: Any) -> None:
    llm.fail_status, llm.fail_times = 400, -1
    r = run(rt, """
      Agent.builder():name("a"):model("openai/gpt-4o-mini"):build()
      return Workflow.builder():name("pf"):sequential():add_step{name = "s", agent = "a"}
        :add_step{name = "never", fn = function() return "x" end}:build():execute("hi")
    """)
    assert r["success"] is False and "400" in r["error"]
    assert r["steps"][0]["success"] is False and len(r["steps"]) == 1
    assert r["metadata"]["extra"]["skipped_steps"] == 1


def test_tool_param_errors_are_step_failures(rt: Any) -> None:
    r = run(rt, """
      return Workflow.builder():name("tp"):sequential():error_strategy("continue")
        :add_step{name = "missing", tool = "text_manipulator", input = {operation = "uppercase"}}
        :add_step{name = "wrongtype", tool = "text_manipulator", input = {operation = "uppercase", input = {1, 2}}}
        :add_step{name = "outside", tool = "file_operations", input = {operation = "read", path = "/etc/hostname"}}
        :add_step{name = "graceful", tool = "file_operations", input = {operation = "write", path = "/etc/x", input = "x"}}
        :build():execute()
    """)
    steps = {s["name"]: s for s in r["steps"]}
    assert "missing required parameter 'input'" in steps["missing"]["error"]
    assert "parameter 'input' must be a string, got array" in steps["wrongtype"]["error"]
    assert "outside the allowed paths" in steps["outside"]["error"]
    assert steps["graceful"]["success"] is True and steps["graceful"]["tool_success"] is False
    assert steps["graceful"]["output"].startswith("Operation 'write' failed: path '/etc/x' is outside")
    assert r["success"] is False and r["metadata"]["extra"]["failed_steps"] == 3


def test_step_timeout(rt: Any, llm: Any) -> None:
    llm.delay = 1.0
    t0 = time.perf_counter()
    r = run(rt, """
      Agent.builder():name("slow"):model("openai/gpt-4o-mini"):build()
      return Workflow.builder():name("st"):sequential()
        :add_step{name = "s", agent = "slow", timeout_ms = 100}:build():execute("hi")
    """)
    assert time.perf_counter() - t0 < 0.9
    assert r["success"] is False and r["error"] == "step 's' timed out after 100 ms"


def test_workflow_timeout_keeps_partial_outputs(rt: Any, llm: Any) -> None:
    llm.delay = 1.0
    t0 = time.perf_counter()
    r = run(rt, """
      Agent.builder():name("slow"):model("openai/gpt-4o-mini"):build()
      return Workflow.builder():name("wt"):sequential():timeout_ms(250)
        :add_step{name = "fast", fn = function() return "done" end}
        :add_step{name = "s", agent = "slow"}:build():execute("hi")
    """)
    assert time.perf_counter() - t0 < 0.9
    assert r["success"] is False and r["error"] == "workflow 'wt' timed out after 250 ms"
    assert r["outputs"] == {"fast": "done"} and r["text"] == "done"


def test_loop_workflow_timeout(rt: Any, llm: Any) -> None:
    llm.delay = 0.1
    r = run(rt, """
      Agent.builder():name("a"):model("openai/gpt-4o-mini"):build()
      return Workflow.builder():name("lt"):loop():with_while("true"):max_iterations(10000):timeout_ms(250)
        :add_step{name = "t", agent = "a", input = "n{{iteration}}"}:build():execute()
    """)
    assert r["success"] is False and r["metadata"]["extra"]["break_reason"] == "timeout"
    assert 1 <= len(r["iterations"]) <= 3


def test_retry_count_and_retry_strategy(rt: Any) -> None:
    r = run(rt, """
      local n = 0
      local a = Workflow.builder():name("rc"):sequential()
        :add_step{name = "flaky", retry_count = 2, retry_delay_ms = 10,
                  fn = function() n = n + 1; if n < 3 then error("flake " .. n) end return "ok after " .. n end}
        :build():execute()
      local m = 0
      local b = Workflow.builder():name("rs"):sequential():error_strategy("retry")
        :add_step{name = "always", retry_delay_ms = 5, fn = function() m = m + 1; error("nope") end}:build():execute()
      return {a = a, b = b, m = m}
    """)
    assert r["a"]["success"] is True and r["a"]["text"] == "ok after 3"
    assert r["b"]["success"] is False and r["m"] == 4  # 1 + retry_attempts (3)


def test_continue_on_error_step(rt: Any) -> None:
    r = run(rt, """
      return Workflow.builder():name("coe"):sequential()
        :add_step{name = "bad", continue_on_error = true, fn = function() error("ignored") end}
        :add_step{name = "good", fn = function() return "fine" end}:build():execute()
    """)
    assert r["success"] is True and r["text"] == "fine" and r["steps"][0]["success"] is False


def test_default_error_handler_and_on_error(rt: Any) -> None:
    r = run(rt, """
      local seen = {}
      Workflow.setDefaultErrorHandler(function(e) seen.default = e.step .. ":" .. e.error end)
      local wf = Workflow.builder():name("eh"):sequential()
        :add_step{name = "x", fn = function() error("bad", 0) end}:build()
      wf:on_error(function(e) seen.on_error = e.step end)
      local r = wf:execute()
      return seen
    """)
    assert r == {"default": "x:bad", "on_error": "x"}


def test_no_hung_threads_after_failures(rt: Any, llm: Any) -> None:
    before = threading.active_count()
    llm.delay = 0.3
    run(rt, """
      Agent.builder():name("s"):model("openai/gpt-4o-mini"):build()
      for i = 1, 3 do
        Workflow.parallel{name = "h" .. i, timeout_ms = 100, steps = {{name = "a", agent = "s"}, {name = "b", agent = "s"}}}:execute()
      end
    """)
    time.sleep(0.5)
    assert threading.active_count() <= before + 6  # server handler threads finish; nothing accumulates per run


def test_hooks_and_events_fire_for_steps(rt: Any) -> None:
    r = run(rt, """
      local sub = Event.subscribe("workflow.*")
      local tsub = Event.subscribe("tool.execution.*")
      local points = {}
      Hook.register("BeforeWorkflowStage", function(ctx) points[#points + 1] = "stage:" .. ctx.data.step end)
      Hook.register("BeforeToolExecution", function(ctx) points[#points + 1] = "tool:" .. ctx.data.tool end)
      Hook.register("AfterWorkflowStage", function(ctx)
        if ctx.data.step == "b" then return {type = "modified", data = {output = "changed"}} end end)
      Hook.register("BeforeWorkflowStage", function(ctx) if ctx.data.step == "skipme" then return "skip" end end, "low")
      local r = Workflow.builder():name("hk"):sequential()
        :add_step{name = "a", tool = "text_manipulator", input = {operation = "trim", input = " x "}}
        :add_step{name = "b", fn = function() return "orig" end}
        :add_step{name = "skipme", fn = function() return "never" end}
        :build():execute()
      local types = {}
      while true do local e = Event.receive(sub, 0); if not e then break end types[#types + 1] = e.event_type end
      local ttypes = {}
      while true do local e = Event.receive(tsub, 0); if not e then break end ttypes[#ttypes + 1] = e.event_type end
      return {r = r, points = points, types = types, ttypes = ttypes}
    """)
    assert r["points"][:2] == ["stage:a", "tool:text_manipulator"]
    assert r["r"]["outputs"]["b"] == "changed"
    skip = [s for s in r["r"]["steps"] if s["name"] == "skipme"][0]
    assert skip["skipped"] is True and "skipme" not in r["r"]["outputs"]
    assert r["types"][0] == "workflow.started" and r["types"][-1] == "workflow.completed"
    assert "workflow.step.started" in r["types"] and "workflow.step.completed" in r["types"]
    assert r["ttypes"] == ["tool.execution.started", "tool.execution.completed"]


def test_hook_cancel_fails_step(rt: Any) -> None:
    r = run(rt, """
      Hook.register("BeforeToolExecution", function(ctx) return {type = "cancel", reason = "not today"} end)
      local ok, err = pcall(Tool.invoke, "text_manipulator", {operation = "trim", input = "x"})
      local r = Workflow.sequential{name = "hc", steps = {{name = "t", tool = "text_manipulator",
                                                            input = {operation = "trim", input = "x"}}}}:execute()
      return {err = err, r = r}
    """)
    assert "cancelled by hook: not today" in r["err"]
    assert r["r"]["success"] is False and "cancelled by hook: not today" in r["r"]["error"]


def test_stats_count_tools_and_workflows(rt: Any) -> None:
    res = rt.run_string("""
      Tool.invoke("uuid_generator", {})
      Workflow.sequential{name = "st", steps = {{name = "t", tool = "text_manipulator",
                                                 input = {operation = "trim", input = "x"}}}}:execute()
    """, "=stats")
    assert res.stats.tool_calls == 2 and res.stats.workflows_run == 1


def test_interrupt_cancels_running_workflow(rt: Any, llm: Any) -> None:
    from llmspell.script.engine import ScriptError

    llm.delay = 3.0
    timer = threading.Timer(0.3, rt.interrupt)
    timer.start()
    t0 = time.perf_counter()
    try:
        rt.run_string("""
          Agent.builder():name("slow"):model("openai/gpt-4o-mini"):build()
          Workflow.parallel{name = "int", steps = {{name = "a", agent = "slow"}, {name = "b", agent = "slow"}}}:execute("x")
        """, "=int")
        raise AssertionError("expected an interrupt")
    except ScriptError as e:
        assert e.kind == "interrupted"
    finally:
        timer.cancel()
    assert time.perf_counter() - t0 < 1.5
    llm.delay = 0.0
    assert run(rt, 'return Workflow.sequential{name = "after", steps = {{name = "f", fn = function() return "ok" end}}}:execute().text') == "ok"


def test_function_steps_may_call_the_api_reentrantly(rt: Any) -> None:
    r = run(rt, """
      local inner = Workflow.sequential{name = "inner", steps = {{name = "i", fn = function() return "inner ok" end}}}
      return Workflow.parallel{name = "outer", steps = {
        {name = "nested", fn = function() return inner:execute().text end},
        {name = "tool", fn = function() return Tool.invoke("uuid_generator", {}).result.uuid end},
      }}:execute()
    """)
    assert r["success"] is True and r["outputs"]["nested"] == "inner ok" and len(r["outputs"]["tool"]) == 36


def test_parent_timeout_stops_nested_loop(rt: Any, llm: Any) -> None:
    llm.delay = 0.05
    t0 = time.perf_counter()
    r = run(rt, """
      Agent.builder():name("a"):model("openai/gpt-4o-mini"):build()
      local child = Workflow.builder():name("child"):loop():with_while("true"):max_iterations(1000)
        :add_step{name = "c", agent = "a", input = "x"}:build()
      return Workflow.builder():name("parent"):sequential():timeout_ms(300)
        :add_step{name = "kid", workflow = child}:build():execute()
    """)
    assert time.perf_counter() - t0 < 1.5
    assert r["success"] is False and r["error"] == "workflow 'parent' timed out after 300 ms"


def test_function_step_that_never_returns_is_stopped_at_its_timeout(rt: Any) -> None:
    t0 = time.perf_counter()
    r = run(rt, """
      local r = Workflow.sequential{name = "spin", steps = {
        {name = "forever", timeout_ms = 150, fn = function() while true do end end}}}:execute()
      local after = Workflow.sequential{name = "ok", steps = {{name = "a", fn = function() return "fine" end}}}:execute()
      return {r = r, after = after.text}
    """)
    assert time.perf_counter() - t0 < 2.0
    assert r["r"]["success"] is False and "timed out" in r["r"]["error"]
    assert r["after"] == "fine"
