"""Tool registry and the Tool global (§4): resolution, suggestions, listing, schemas, result shaping."""

from __future__ import annotations

from typing import Any

import pytest

from llmspell.tools.base import ToolOutput
from llmspell.tools.catalog import CATEGORIES, SPECS
from llmspell.tools.registry import ToolRegistry, resolve_name, suggestions
from llmspell.tools.shaping import shape_result
from tests.tools.conftest import invoke, invoke_error, lua

UNAVAILABLE: set[str] = set()


def test_all_37_tools_are_registered_with_exact_names() -> None:
    names = {s.name for s in SPECS}
    assert len(SPECS) == 37 == len(names)
    for n in ("file_operations", "text_manipulator", "webhook-caller", "url-analyzer", "web-scraper",
              "api-tester", "webpage-monitor", "sitemap-crawler", "graph-builder", "email-sender",
              "database-connector", "date_time_handler", "process_executor"):
        assert n in names
    assert {s.category for s in SPECS} == set(CATEGORIES)


def test_every_available_tool_imports_and_builds() -> None:
    reg = ToolRegistry()
    for spec in SPECS:
        tool = reg.instance(spec)
        assert tool.spec is spec
        assert spec.available == (spec.name not in UNAVAILABLE)


def test_name_resolution() -> None:
    assert resolve_name("webhook_caller") == "webhook-caller"
    assert resolve_name("File-Operations") == "file_operations"
    assert resolve_name("datetime_handler") == "date_time_handler"
    assert resolve_name("file_ops") is None
    assert suggestions("file_ops")[0] == "file_operations"


def test_list_get_exists_categories_discover(rt: Any) -> None:
    r = lua(rt, """
      local l = Tool.list()
      local g = Tool.get("webhook_caller")
      return {n = #l, first = l[1], sorted = l[1].name < l[2].name, g = {name = g.name, category = g.category,
              schema = g.schema, has_exec = type(g.execute) == "function"},
              exists = {Tool.exists("file_operations"), Tool.exists("nope")}, missing = Tool.get("nope") == nil,
              cats = Tool.categories(), disc = Tool.discover{category = "web"}, tag = Tool.discover{tag = "CSV"},
              dot = Tool.text_manipulator.name, idx = Tool["webhook-caller"]:getSchema().name, none = Tool.zzz == nil,
              version = Tool.get("pdf-processor").version}
    """)
    assert r["n"] == 37 and r["sorted"] is True and set(r["first"]) == {"name", "description", "category", "version"}
    g = r["g"]
    assert g["name"] == "webhook-caller" and g["category"] == "api" and g["has_exec"] is True
    params = {p["name"]: p for p in g["schema"]["parameters"]}
    assert params["input"]["required"] is True and params["input"]["type"] == "string"
    assert params["max_retries"]["type"] == "integer" and params["max_retries"]["default"] == 3
    assert r["exists"] == [True, False] and r["missing"] is True
    assert r["cats"] == list(CATEGORIES)
    assert {t["name"] for t in r["disc"]} == {"web_search", "url-analyzer", "web-scraper", "webpage-monitor",
                                             "sitemap-crawler"}
    assert [t["name"] for t in r["tag"]] == ["csv_analyzer"]
    assert r["dot"] == "text_manipulator" and r["idx"] == "webhook-caller" and r["none"] is True
    assert r["version"] == "1.0.0"


def test_invoke_forms(rt: Any) -> None:
    r = lua(rt, """
      local a = Tool.invoke("text_manipulator", {operation = "uppercase", input = "a"})
      local b = Tool.execute("text_manipulator", {operation = "uppercase", input = "b"})
      local c = Tool:invoke("text_manipulator", {operation = "uppercase", input = "c"})
      local d = Tool.text_manipulator:execute{operation = "uppercase", input = "d"}
      local e = Tool.get("text_manipulator"):execute({operation = "uppercase", input = "e"})
      local f = Tool.get("text_manipulator").execute({operation = "uppercase", input = "f"})
      local g = Tool.uuid_generator:execute()
      return {a.result.result, b.result.result, c.result.result, d.result.result, e.result.result, f.result.result,
              g.success}
    """)
    assert r == ["A", "B", "C", "D", "E", "F", True]


def test_invoke_errors(rt: Any) -> None:
    msg = invoke_error(rt, "file_ops", "{}")
    assert msg == "Tool.invoke: unknown tool 'file_ops' (did you mean 'file_operations' or 'file_search' or 'file_converter'?)"
    assert "tool name must be a string" in lua(rt, "return select(2, pcall(Tool.invoke, 42, {}))")
    assert "params must be a table" in lua(rt, 'return select(2, pcall(Tool.invoke, "calculator", "1+1"))')
    assert "invalid algorithm 'crc'" in invoke_error(rt, "hash_calculator", '{operation = "hash", input = "x", algorithm = "crc"}')
    assert "parameter 'max_retries' must be an integer, got string" in invoke_error(
        rt, "webhook-caller", '{input = "http://x.invalid", max_retries = "many"}')


def test_rate_limit(make_rt: Any) -> None:
    rt = make_rt("[tools.uuid_generator]\nrate_limit = 2\n")
    invoke(rt, "uuid_generator", "{}")
    invoke(rt, "uuid_generator", "{}")
    assert "rate limit" in invoke_error(rt, "uuid_generator", "{}")


@pytest.mark.parametrize("text,expect", [
    ('{"success": false, "result": {"x": 1}, "operation": "op"}', {"success": False, "result": {"x": 1}}),
    ('{"a": 1}', {"data": {"a": 1}, "success": True}),
    ("[1, 2]", {"data": [1, 2]}),
    ("42", {"data": 42}),
    ("plain words", {"text": "plain words", "success": True}),
])
def test_shape_rules(text: str, expect: dict[str, Any]) -> None:
    r = shape_result("t", ToolOutput(text, metadata={"own": 1}), 5, "op")
    for k, v in expect.items():
        assert r[k] == v
    assert r["text"] == text and r["metadata"] == {"tool": "t", "operation": "op", "duration_ms": 5,
                                                   "execution_time_ms": 5, "own": 1}
    if "success" in text:
        assert r["_raw_text"] == text
    else:
        assert "_raw_text" not in r


def test_shape_uses_response_success() -> None:
    r = shape_result("file_operations", ToolOutput("x", response={"success": False}), 1, "write")
    assert r["success"] is False and r["metadata"]["response"] == {"success": False}


def test_tool_init_is_lazy_and_cheap() -> None:
    reg = ToolRegistry()
    assert reg._tools == {}
    spec = reg.require("file_operations")
    reg.instance(spec)
    assert list(reg._tools) == ["file_operations"]


def test_tool_hooks_retry_skip_and_events(rt: Any, tmp_path: Any) -> None:
    r = lua(rt, f"""
      local sub = Event.subscribe("tool.execution.*")
      local errors = 0
      Hook.register("ToolError", function(ctx)
        errors = errors + 1
        return {{type = "retry", delay_ms = 1, max_attempts = 2}}
      end)
      local ok, err = pcall(Tool.invoke, "file_operations", {{operation = "read", path = "{tmp_path}/missing.txt"}})
      Hook.register("BeforeToolExecution", function(ctx) if ctx.data.tool == "uuid_generator" then return "skip" end end)
      local skipped = Tool.invoke("uuid_generator", {{}})
      Hook.register("AfterToolExecution", function(ctx)
        if ctx.data.tool == "calculator" then return {{type = "modified", data = {{output = {{success = true, text = "42!"}}}}}} end
      end)
      local modified = Tool.invoke("calculator", {{input = "6 * 7"}})
      local types = {{}}
      while true do local e = Event.receive(sub, 0); if not e then break end types[#types + 1] = e.event_type end
      return {{ok = ok, err = err, errors = errors, skipped = skipped, modified = modified, types = types}}
    """)
    assert r["ok"] is False and "no such file" in r["err"] and r["errors"] == 2
    assert r["skipped"]["success"] is False and r["skipped"]["skipped"] is True
    assert r["modified"]["text"] == "42!"
    assert r["types"][:2] == ["tool.execution.started", "tool.execution.failed"]
    assert r["types"][-1] == "tool.execution.completed"
