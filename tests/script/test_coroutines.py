"""API globals and objects called from inside coroutines (lupa binds values to the calling lua_State)."""

from __future__ import annotations

from typing import Any

import pytest

from llmspell.script.engine import ScriptError

BODY = """
local function body(tag)
  local s = JSON.stringify({a = 1, b = {2, 3}})
  State.save("global", "k" .. tag, {x = {1, 2}, y = tag})
  local v = State.load("global", "k" .. tag)
  local r = Tool.invoke("text_manipulator", {operation = "uppercase", input = tag})
  return s .. " " .. v.y .. " " .. #v.x .. " " .. JSON.parse(r.text).result.result
end
"""


def _values(rt: Any, code: str) -> list[Any]:
    return list(rt.run_string(code, "=(co)").values)


@pytest.mark.parametrize("call", [
    "select(2, coroutine.resume(coroutine.create(body), 'co'))",
    "coroutine.wrap(body)('co')",
    "select(2, coroutine.resume(coroutine.create(function() return coroutine.wrap(body)('co') end)))",
])
def test_globals_and_tables_work_inside_coroutines(lua_runtime: Any, call: str) -> None:
    assert _values(lua_runtime, BODY + f"return body('main'), {call}") == [
        '{"a":1,"b":[2,3]} main 2 MAIN', '{"a":1,"b":[2,3]} co 2 CO']


def test_object_methods_and_fields_inside_a_coroutine(lua_runtime: Any) -> None:
    assert _values(lua_runtime, """
      local co = coroutine.wrap(function()
        local t = Tool.text_manipulator
        local r = t:execute({operation = "lowercase", input = "ABC"})
        return JSON.parse(r.text).result.result, type(Tool.get("text_manipulator"))
      end)
      return co()
    """) == ["abc", "table"]


def test_functions_registered_in_a_collected_coroutine_stay_callable(lua_runtime: Any) -> None:
    """A hook registered from a coroutine outlives it (its Lua values are bound to the main state)."""
    assert _values(lua_runtime, """
      seen = {}
      coroutine.resume(coroutine.create(function()
        Hook.register("BeforeStateChange", function(ctx) seen[#seen + 1] = ctx.data.key end)
      end))
      for i = 1, 200 do coroutine.wrap(function() coroutine.yield(i) end)() end
      collectgarbage(); collectgarbage()
      State.save("global", "after", 1)
      return seen[1]
    """) == ["after"]


def test_anonymous_nested_coroutines_survive_a_collection_during_a_call(lua_runtime: Any) -> None:
    assert _values(lua_runtime, """
      local ok, v = coroutine.resume(coroutine.create(function()
        local ok2, w = coroutine.resume(coroutine.create(function()
          local s = JSON.stringify({n = 1})
          collectgarbage(); collectgarbage()
          return s .. JSON.stringify({m = 2})
        end))
        collectgarbage()
        return w
      end))
      return ok, v
    """) == [True, '{"n":1}{"m":2}']


def test_resume_keeps_its_argument_errors(lua_runtime: Any) -> None:
    with pytest.raises(ScriptError, match="bad argument #1 to 'resume'"):
        lua_runtime.run_string("coroutine.resume(42)", "=(co)")
    assert _values(lua_runtime, "return coroutine.resume(coroutine.create(function(a, b) return a + b end), 2, 3)") \
        == [True, 5]
