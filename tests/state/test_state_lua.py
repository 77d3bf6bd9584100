"""The State global (§6) as scripts see it."""

from __future__ import annotations

from typing import Any

import pytest


def run(rt: Any, code: str) -> str:
    rt.test_out.parts.clear()
    rt.run_string(code, "=(test)")
    return rt.test_out.text


def test_save_load_types_and_colon_rule(lua_runtime: Any) -> None:
    out = run(lua_runtime, """
        State.save("custom", ":workflow:e1:agent:rev:output", "text")
        print(State.load("custom", "workflow:e1:agent:rev:output"))
        State.save("g", "n", {1, 2.5, {x = 3}})
        local v = State.load("g", "n")
        print(math.type(v[1]), math.type(v[2]), v[3].x, #v)
        print(State.load("g", "missing"), State.load("g", "missing", 7))
        State.save("g", "n", nil); print(State.exists("g", "n"))
        State.set("k", true); print(State.get("k"))
    """)
    assert out.splitlines() == ["text", "integer\tfloat\t3\t3", "nil\t7", "false", "true"]


def test_errors_are_strings_with_the_function_name(lua_runtime: Any) -> None:
    out = run(lua_runtime, """
        print(pcall(State.save, "g", "f", function() end))
        local t = {}; t.t = t
        print(pcall(State.save, "g", "c", t))
        print(pcall(State.save, 1, "x", 1))
        print(pcall(State.save, "_llmspell.session", "x", 1))
        print(pcall(State.save, "g", string.rep("k", 5000), 1))
    """)
    lines = out.splitlines()
    assert lines[0] == "false\tState.save: cannot convert function to JSON"
    assert lines[1] == "false\tState.save: cannot convert to JSON: cycle detected"
    assert lines[2].startswith("false\tState.save: scope must be a string")
    assert "reserved" in lines[3]
    assert "limit" in lines[4]


def test_helpers_workflow_agent_tool(lua_runtime: Any) -> None:
    out = run(lua_runtime, """
        State.save("custom", "workflow:e9:first", "a")
        State.save("custom", "workflow:e9:step:first:output", "a")
        State.save("custom", "workflow:e9:step:second:output", "b")
        State.save("custom", "workflow:e9:agent:x:output", "c")
        print(State.workflow_get("e9", "first"), table.concat(State.workflow_list("e9"), ","))
        State.agent_set("writer", "notes", {1}); print(State.agent_get("writer", "notes")[1], State.load("agent", "writer:notes")[1])
        State.tool_set("calc", "last", 5); print(State.tool_get("calc", "last"))
        print(#State.list_keys("nothing"), State.clear("custom"))
    """)
    assert out.splitlines() == ["a\tfirst,second", "1\t1", "5", "0\t4"]


def test_hooks_modify_and_cancel_state_changes(lua_runtime: Any) -> None:
    out = run(lua_runtime, """
        local seen = {}
        Hook.register("BeforeStateChange", function(ctx)
          if ctx.data.key == "deny" then return {type = "cancel", reason = "read-only"} end
          if ctx.data.key == "twice" then return {type = "modified", data = {value = ctx.data.value * 2}} end
        end)
        Hook.register("after_state_change", function(ctx) seen[#seen + 1] = ctx.data.op .. ":" .. ctx.data.key end)
        print(pcall(State.save, "g", "deny", 1))
        State.save("g", "twice", 21); print(State.load("g", "twice"))
        State.delete("g", "twice")
        print(table.concat(seen, ","))
    """)
    assert out.splitlines() == ["false\tcancelled by hook: read-only", "42", "save:twice,delete:twice"]


def test_state_changed_events(lua_runtime: Any) -> None:
    out = run(lua_runtime, """
        local s = Event.subscribe("state.*")
        State.save("g", ":a", 1); State.delete("g", "a")
        local e1, e2 = Event.receive(s, 100), Event.receive(s, 100)
        print(e1.data.scope, e1.data.key, e1.data.op, e2.data.op)
    """)
    assert out.strip() == "g\ta\tsave\tdelete"


def test_backups_usage_and_schema_from_lua(lua_runtime: Any) -> None:
    out = run(lua_runtime, """
        State.save("g", "k", "v")
        local b = State.create_backup()
        print(b.success, math.type(b.size_bytes), #State.list_backups(), State.validate_backup(b.id).valid)
        State.save("g", "k", "changed")
        print(State.restore_backup(b.id).success, State.load("g", "k"))
        local u = State.get_storage_usage(); print(u.backend, math.type(u.keys))
        local m = State.get_migration_status(); print(m.current, m.latest, #State.get_schema_versions())
        print(State.migrate(2).success, #State.cleanup_backups(true).deleted)
    """)
    assert out.splitlines() == ["true\tinteger\t1\ttrue", "true\tv", "sqlite\tinteger", "2\t2\t2", "true\t0"]


@pytest.mark.parametrize("bad", ["State.restore_backup('nope')", "State.migrate(7)"])
def test_storage_errors_raise(lua_runtime: Any, bad: str) -> None:
    out = run(lua_runtime, f"print(pcall(function() return {bad} end))")
    assert out.startswith("false\t") and "State." in out
