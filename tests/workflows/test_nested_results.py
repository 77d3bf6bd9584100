"""Nested results keep a reference to their children's results, never a copy: size is linear in depth.

Before, a function step returning `child:execute(x)` stored the child's whole result about 5 times
(output JSON, data, outputs, text, State), so 7 levels made a 21.8 MB result.
"""

from __future__ import annotations

import json
from typing import Any

from tests.workflows.conftest import run

_NEST = """
  local w = Workflow.builder():name("l0"):sequential()
    :add_step{name = "leaf", fn = function(ctx) return {text = string.rep("x", 200), n = 1} end}:build()
  for i = 1, %d do
    local child = w
    w = Workflow.builder():name("l" .. i):sequential()
      :add_step{name = "pre", fn = function(ctx) return "pre" .. i end}
      :add_step{name = "child", fn = function(ctx) return child:execute{text = "go"} end}
      :add_step{name = "also", type = "workflow", workflow = child}
      :add_step{name = "wrapped", fn = function(ctx) return {inner = child:execute{text = "go"}, k = i} end}
      :add_step{name = "last", fn = function(ctx) return "done" .. i end}
      :build()
  end
  return w:execute{text = "go"}
"""


def _size(rt: Any, depth: int) -> tuple[int, dict[str, Any]]:
    r = run(rt, _NEST % depth)
    return len(json.dumps(r)), r


def test_result_size_is_linear_in_nesting_depth(rt: Any) -> None:
    sizes = [_size(rt, d)[0] for d in range(1, 8)]
    # a level holds its own records and references to its children (ids, a short text): the size is
    # bounded by a linear function of depth; a copy of each child multiplied it by ~5 per level
    assert sizes[6] <= 7 * sizes[0], sizes
    assert all(b - a < 1024 for a, b in zip(sizes[1:], sizes[2:], strict=False)), sizes


def test_function_step_returning_a_child_result_keeps_a_reference(rt: Any) -> None:
    _, r = _size(rt, 2)
    child = next(s for s in r["steps"] if s["name"] == "child")
    ref = child["data"]
    assert set(ref) == {"workflow", "execution_id", "success", "text"}
    assert ref["workflow"] == "l1" and ref["success"] is True
    assert child["execution_id"] == ref["execution_id"] != r["execution_id"]
    assert child["output"] == ref["text"] == r["outputs"]["child"]
    wrapped = next(s for s in r["steps"] if s["name"] == "wrapped")["data"]
    assert wrapped["k"] == 2 and set(wrapped["inner"]) == {"workflow", "execution_id", "success", "text"}
    # the child's own State keys are still there to follow the reference
    assert ref["text"] == "done1"
    inner = run(rt, f'return State.load("custom", "workflow:{ref["execution_id"]}:wrapped")')
    assert json.loads(inner)["k"] == 1


def test_a_failed_child_is_referenced_with_its_error(rt: Any) -> None:
    r = run(rt, """
      local bad = Workflow.sequential{name = "bad", steps = {{name = "b", fn = function() error("child broke") end}}}
      return Workflow.sequential{name = "p", steps = {{name = "c", fn = function() return bad:execute() end}}}:execute()
    """)
    ref = r["steps"][0]["data"]
    assert ref["success"] is False and "child broke" in ref["error"] and ref["text"] == ""
    assert r["success"] is True  # the function ran; what it returned is data, as before


def test_plain_tables_that_look_almost_like_results_are_kept_whole(rt: Any) -> None:
    r = run(rt, """
      return Workflow.sequential{name = "p", steps = {{name = "c", fn = function()
        return {execution_id = "x", steps = {1, 2}, metadata = {extra = {}}, note = "mine"} end}}}:execute()
    """)
    assert r["steps"][0]["data"] == {"execution_id": "x", "steps": [1, 2], "metadata": {"extra": {}}, "note": "mine"}
