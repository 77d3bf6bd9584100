"""The same app run 30 times on one runtime keeps the same number of objects: nothing is kept per run.

Before, a kernel grew ~77 KB per run of webapp-creator: the workflow registry kept every workflow
ever built, an agent replaced by name was pinned by its own Lua proxy, and the provider exchange log
kept every exchange. Counts, not timings: live WorkflowDef / Agent objects, registry sizes, the
exchange log, the workflow State keys, and Lua's heap after a full collection.
"""

from __future__ import annotations

import gc
from typing import Any

from llmspell.providers import traffic

# An app in miniature: named agents rebuilt every run, named and anonymous workflows, nesting, a
# parallel and a loop workflow, a callback, a function step returning a child's result.
_APP = """
for i = 1, 6 do Agent.builder():name("agent" .. i):model("openai/gpt-4o-mini"):build() end
local inner = Workflow.builder():name("inner"):sequential()
  :add_step{name = "ask", type = "agent", agent = "agent1", input = "{{text}}"}:build()
local fan = Workflow.builder():name("fan"):parallel()
  :add_step{name = "p1", type = "agent", agent = "agent2", input = "one"}
  :add_step{name = "p2", type = "workflow", workflow = inner}
  :add_step{name = "p3", tool = "text_manipulator", input = {operation = "uppercase", input = "x"}}:build()
local loop = Workflow.builder():name("loop"):loop():with_range{start = 1, ["end"] = 3}
  :add_step{name = "l", fn = function(ctx) return "it" .. ctx.loop_value end}:build()
local outer = Workflow.builder():name("outer"):sequential()
  :add_step{name = "fan", type = "workflow", workflow = fan}
  :add_step{name = "loop", fn = function(ctx) return loop:execute{} end}
  :add_step{name = "last", type = "agent", agent = "agent3", input = "sum up {{fan}}"}:build()
outer:on_after_execute(function(ctx) return ctx.execution_id end)
Workflow.builder():sequential():add_step{name = "anon", fn = function() return "a" end}:build():execute()
local r = outer:execute{text = "go"}
assert(r.success, r.error)
"""


def _live(cls: type) -> int:
    return sum(1 for o in gc.get_objects() if type(o) is cls)


def _counts(rt: Any) -> dict[str, int]:
    from llmspell.agents.agent import Agent
    from llmspell.workflows.model import WorkflowDef

    rt.lua.gccollect()
    gc.collect()
    rt.lua.gccollect()
    st = rt.services.state
    return {
        "workflow objects": _live(WorkflowDef),
        "agent objects": _live(Agent),
        "workflow registry": len(rt.services.workflows.items),
        "agent registry": len(rt.services.agents._agents),
        "exchange log": len(traffic._exchanges),
        "workflow state keys": sum(1 for k in st.list_keys("custom") if k.lstrip(":").startswith("workflow:")),
        "lua heap KB": int(rt.G.collectgarbage("count")),
    }


def _thirty_runs(rt: Any, app: str) -> list[dict[str, int]]:
    code = rt.compile(app, "=app")
    seen = []
    for _ in range(30):
        mark = traffic.exchange_mark()  # what the kernel and `llmspell run` do around each run
        rt.call_chunk(code)
        traffic.exchanges_since(mark)
        seen.append(_counts(rt))
    return seen


def _assert_flat(seen: list[dict[str, int]]) -> None:
    warm, last = seen[9], seen[-1]  # ten runs fill the bounded parts (the last 32 executions' State keys)
    for name in warm:
        slack = 64 if name == "lua heap KB" else 0
        assert last[name] <= warm[name] + slack, (name, [c[name] for c in seen])


def test_thirty_runs_keep_no_objects_per_run(rt: Any) -> None:
    seen = _thirty_runs(rt, _APP)
    _assert_flat(seen)
    assert seen[-1]["workflow registry"] <= 6 and seen[-1]["agent objects"] == 6
    assert seen[-1]["exchange log"] == 0


def test_thirty_runs_with_functions_that_refer_to_their_own_workflow(rt: Any) -> None:
    """A callback, step function or condition whose closure holds its workflow: a cycle across the heaps.

    The workflow's Lua values live on the Lua side of its proxy (LuaRef), so the cycle stays inside
    Lua's heap and a workflow replaced by name is collected.
    """
    app = _APP.replace("return ctx.execution_id", "return outer.name").replace(
        'return "it" .. ctx.loop_value', 'return loop.name .. ctx.loop_value')
    _assert_flat(_thirty_runs(rt, app))
