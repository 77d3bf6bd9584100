"""Parallel workflows: real concurrency, branch isolation, fail_fast and continue."""

from __future__ import annotations

import time
from typing import Any

from tests.workflows.conftest import run


def test_four_200ms_agent_steps_overlap(rt: Any, llm: Any) -> None:
    llm.delay = 0.2
    run(rt, 'Agent.builder():name("warm"):model("openai/gpt-4o-mini"):build():execute("warm up")')
    t0 = time.perf_counter()
    r = run(rt, """
      for i = 1, 4 do Agent.builder():name("a" .. i):model("openai/gpt-4o-mini"):build() end
      local p = Workflow.builder():name("p"):parallel()
      for i = 1, 4 do p:add_step{name = "s" .. i, agent = "a" .. i, input = "q{{input}}" .. i} end
      return p:build():execute("x")
    """)
    elapsed = time.perf_counter() - t0
    assert r["success"] is True
    assert r["text"] == "reply: qx1\n\nreply: qx2\n\nreply: qx3\n\nreply: qx4"
    assert elapsed < 0.7, elapsed
    extra = r["metadata"]["extra"]
    assert extra["total_branches"] == 4 and extra["successful_branches"] == 4 and extra["stopped_early"] is False
    assert extra["max_concurrency"] == 8 and extra["fail_fast"] is True


def test_branches_with_sequences_and_isolated_placeholders(rt: Any) -> None:
    r = run(rt, """
      local wf = Workflow.parallel{name = "pb", branches = {
        {name = "left", steps = {{name = "a", fn = function() return "L" end},
                                 {name = "b", tool = "text_manipulator",
                                  input = {operation = "lowercase", input = "{{a}}|{{c}}"}}}},
        {name = "right", steps = {{name = "c", fn = function(ctx) return "R:" .. tostring(ctx.outputs.a) end}}},
      }}
      return wf:execute()
    """)
    assert r["success"] is True
    out_b = r["outputs"]["b"]
    assert '"result":"l|{{c}}"' in out_b  # other branches are invisible; unresolved stays verbatim
    assert r["outputs"]["c"] == "R:nil"
    assert r["text"] == out_b + "\n\nR:nil"
    assert {s["branch"] for s in r["steps"]} == {"left", "right"}


def test_fail_fast_branch_raising_cancels_running_branches(rt: Any, llm: Any) -> None:
    llm.delay = 0.4
    t0 = time.perf_counter()
    r = run(rt, """
      Agent.builder():name("slow"):model("openai/gpt-4o-mini"):build()
      local wf = Workflow.parallel{name = "ff", steps = {
        {name = "quick", fn = function() return "ok" end},
        {name = "bad", fn = function() error("boom") end},
        {name = "s1", agent = "slow", input = "x"},
      }}
      return wf:execute()
    """)
    elapsed = time.perf_counter() - t0
    assert r["success"] is False
    assert "boom" in r["error"]
    assert r["outputs"] == {"quick": "ok"}
    extra = r["metadata"]["extra"]
    assert extra["stopped_early"] is True
    assert elapsed < 2.0
    names = {s["name"]: s for s in r["steps"]}
    assert names["bad"]["success"] is False and "boom" in names["bad"]["error"]
    assert "WARN workflow 'ff' failed at step 'bad'" in rt.test_err.text


def test_continue_runs_every_branch(rt: Any) -> None:
    r = run(rt, """
      local wf = Workflow.builder():name("pc"):parallel():error_strategy("continue"):max_concurrency(2)
        :add_step{name = "a", fn = function() return "A" end}
        :add_step{name = "b", fn = function() error("bad branch") end}
        :add_step{name = "c", fn = function() return "C" end}
        :build()
      return wf:execute()
    """)
    assert r["success"] is False and "bad branch" in r["error"]
    assert r["outputs"] == {"a": "A", "c": "C"}
    assert r["text"] == "A\n\nC"
    extra = r["metadata"]["extra"]
    assert (extra["successful_branches"], extra["failed_branches"], extra["stopped_early"]) == (2, 1, False)
    assert extra["max_concurrency"] == 2 and extra["fail_fast"] is False
