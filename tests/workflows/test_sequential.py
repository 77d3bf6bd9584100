"""Sequential workflows: step types, placeholders, result table (§5.8) and State keys (§5.9)."""

from __future__ import annotations

from typing import Any

from tests.workflows.conftest import run


def test_tool_and_function_steps_with_placeholders(rt: Any) -> None:
    r = run(rt, """
      local wf = Workflow.builder():name("s1"):sequential()
        :add_step{name = "up", tool = "text_manipulator", input = {operation = "uppercase", input = "{{topic}}"}}
        :add_step{name = "f", fn = function(ctx) return "got " .. ctx.outputs.up .. "/" .. ctx.input.topic end}
        :add_step{name = "t", type = "custom", fn = function(ctx) return {a = 1, b = {2, 3}} end}
        :build()
      local r = wf:execute{topic = "ai tools"}
      return {r = r, exec_type = math.type(r.metadata.execution_time_ms), same = rawequal(r._metadata, r.metadata),
              wfid = wf.id}
    """)
    res = r["r"]
    assert res["success"] is True
    assert "error" not in res
    assert res["text"] == '{"a":1,"b":[2,3]}'
    assert '"AI TOOLS"' in res["outputs"]["up"]
    assert res["outputs"]["f"].startswith("got {") and res["outputs"]["f"].endswith("/ai tools")
    assert r["exec_type"] == "integer" and r["same"] is True
    steps = res["steps"]
    assert [s["name"] for s in steps] == ["up", "f", "t"]
    assert steps[0]["type"] == "tool" and steps[0]["tool"] == "text_manipulator" and steps[0]["tool_success"] is True
    assert steps[2]["data"] == {"a": 1, "b": [2, 3]}
    extra = res["metadata"]["extra"]
    assert extra["workflow_id"] == extra["execution_id"] == res["execution_id"]
    assert extra["workflow_instance_id"] == r["wfid"]
    assert extra["workflow_type"] == "sequential" and extra["workflow_name"] == "s1"
    assert (extra["total_steps"], extra["successful_steps"], extra["failed_steps"], extra["skipped_steps"]) == (3, 3, 0, 0)
    assert extra["success_rate"] == 100.0
    assert extra["summary"].startswith("Sequential workflow 's1' completed successfully. 3 steps executed.")
    assert "agent_outputs" not in extra
    assert res["media"] == [] and res["tool_calls"] == []


def test_agent_steps_write_state_keys(rt: Any, llm: Any) -> None:
    r = run(rt, """
      Agent.builder():name("planner"):model("openai/gpt-4o-mini"):build()
      Agent.builder():name("writer"):model("openai/gpt-4o-mini"):build()
      local wf = Workflow.builder():name("review"):sequential()
        :add_step{name = "plan", type = "agent", agent = "planner", input = "Plan: {{topic}}"}
        :add_step{name = "draft", type = "agent", agent = "writer", input = "Write from this plan:\\n{{plan}}"}
        :build()
      local r = wf:execute{topic = "AI tools"}
      local id = r.metadata.extra.execution_id
      return {r = r,
        legacy = State.load("custom", ":workflow:" .. id .. ":agent:writer:output"),
        step = State.load("custom", "workflow:" .. id .. ":plan"),
        step2 = State.load("custom", "workflow:" .. id .. ":step:plan:output"),
        meta = State.load("custom", "workflow:" .. id .. ":agent:planner:metadata"),
        out = wf:get_output("plan"), all = wf:get_all_outputs(), names = wf:list_outputs(),
        eid = wf:get_execution_id()}
    """)
    res = r["r"]
    assert res["success"] is True
    assert res["outputs"]["plan"] == "reply: Plan: AI tools"
    assert res["text"] == "reply: Write from this plan:\nreply: Plan: AI tools"
    assert r["legacy"] == res["text"]
    assert r["step"] == r["step2"] == r["out"] == "reply: Plan: AI tools"
    assert r["meta"]["step"] == "plan" and r["meta"]["provider"] == "openai" and isinstance(r["meta"]["duration_ms"], int)
    assert r["all"] == {"plan": res["outputs"]["plan"], "draft": res["text"]}
    assert r["names"] == ["draft", "plan"]
    assert r["eid"] == res["execution_id"]
    assert res["steps"][0]["agent"] == "planner"
    # the provider saw real chat messages, with placeholders filled
    users = [m["content"] for req in llm.chat_requests() for m in req["messages"] if m["role"] == "user"]
    assert "Plan: AI tools" in users


def test_default_agent_input_is_workflow_input_and_agent_object(rt: Any, llm: Any) -> None:
    r = run(rt, """
      local a = Agent.builder():name("echo"):model("openai/gpt-4o-mini"):build()
      local wf = Workflow.sequential{name = "d", steps = {{name = "e", agent = a}}}
      return wf:execute("hello there")
    """)
    assert r["success"] is True and r["text"] == "reply: hello there"
    assert r["steps"][0]["type"] == "agent"


def test_empty_workflow_succeeds_and_each_execution_is_fresh(rt: Any) -> None:
    r = run(rt, """
      local wf = Workflow.builder():sequential():build()
      local a, b = wf:execute(), wf:execute({x = 1})
      return {a = a, b = b, name = wf.name, metrics = wf:get_metrics()}
    """)
    assert r["a"]["success"] is True and r["a"]["text"] == ""
    assert r["a"]["execution_id"] != r["b"]["execution_id"]
    assert r["name"].startswith("workflow_") and len(r["name"]) == len("workflow_") + 8
    assert r["metrics"]["executions"] == 2 and r["metrics"]["successes"] == 2


def test_workflow_object_api(rt: Any) -> None:
    r = run(rt, """
      local wf = Workflow.builder():name("api"):description("demo"):sequential()
        :add_step{name = "a", fn = function(ctx) return "x" end}:build()
      local calls = {}
      wf:on_before_execute(function(c) calls[#calls + 1] = "before:" .. c.execution_id end)
        :on_after_execute(function(c) calls[#calls + 1] = "after:" .. tostring(c.result.success) end)
      wf:set_shared_data("k", "v")
      local r = wf:execute()
      local ok, err = pcall(function() return wf.nope end)
      local ok2, err2 = pcall(wf.execute)
      local info = wf:get_info()
      return {calls = calls, info = info, shared = wf:get_shared_data("k"), err = err, err2 = err2,
              s = tostring(wf), got = Workflow.get("api").id == wf.id, byid = Workflow.get(wf.id).name,
              list = Workflow.list(), types = Workflow.types(), set = wf:set_state("x", 5), st = wf:get_state("x"),
              valid = wf:validate(), cleared = wf:clear_outputs(), after = wf:get_output("a"), dbg = wf:debug()}
    """)
    assert r["calls"][0].startswith("before:") and r["calls"][1] == "after:true"
    assert r["info"] == {"id": r["info"]["id"], "name": "api", "type": "sequential", "description": "demo", "steps": ["a"]}
    assert r["shared"] == "v"
    assert "unknown field 'nope' on Workflow" in r["err"]
    assert "Workflow:execute must be called with ':'" in r["err2"]
    assert r["s"].startswith("Workflow(api, sequential, workflow_")
    assert r["got"] is True and r["byid"] == "api"
    assert [w["name"] for w in r["list"]] == ["api"]
    assert r["types"] == ["sequential", "parallel", "conditional", "loop"]
    assert r["set"] is True and r["st"] == 5
    assert r["valid"]["valid"] is True
    assert r["cleared"] == 2 and r.get("after") is None
    assert r["dbg"]["shared_data"] == {"k": "v"} and "completed successfully" in r["dbg"]["last_result_summary"]


def test_builder_statement_form_and_reuse(rt: Any) -> None:
    r = run(rt, """
      local b = Workflow.builder():name("review"):sequential()
      b:add_step{name = "one", fn = function() return "1" end}
      local w1 = b:build()
      b:add_step{name = "two", fn = function() return "2" end}
      local w2 = b:build()
      return {#w1:get_info().steps, #w2:get_info().steps, w1.id ~= w2.id, tostring(b)}
    """)
    assert r[:3] == [1, 2, True]


def test_table_constructors_and_register(rt: Any) -> None:
    r = run(rt, """
      local id = Workflow.register("sequential", {name = "reg", steps = {{name = "a", fn = function() return "r" end}}})
      local w = Workflow.get(id)
      local removed = Workflow.remove("reg")
      return {w:execute().text, removed, Workflow.get("reg") == nil}
    """)
    assert r == ["r", True, True]
