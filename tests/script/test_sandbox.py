"""Issue 17 item 4 and 7 inside the engine: os.exit through any call stack, Python objects out of
Lua's reach, binary chunks refused, and an interrupt hook that a script cannot remove."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest

from llmspell.script.engine import ScriptError


def out(rt: Any) -> str:
    return str(rt.test_out.text)


# ----------------------------------------------------------------------------- os.exit
EXIT_CASES = [
    ("pcall(os.exit, 2)", 2),
    ("local ok = pcall(function() os.exit(5) end) print('after', ok)", 5),
    ("xpcall(function() os.exit(6) end, function(e) print('handler', e) return e end) print('after')", 6),
    ("for i = 1, 3 do pcall(pcall, os.exit, 7) end print('after')", 7),
    ("local co = coroutine.create(function() pcall(os.exit, 8) print('in co') end)"
     " print(coroutine.resume(co)) print('after')", 8),
    ("local f = coroutine.wrap(function() pcall(os.exit, 9) end) print(pcall(f)) print('after')", 9),
    ("local f = coroutine.wrap(function() coroutine.yield(1) os.exit(10) end) f() pcall(f) print('after')", 10),
    ("setmetatable({}, {__index = function() os.exit(11) end}).x = nil print(pcall(function() "
     "return setmetatable({}, {__index = function() os.exit(11) end}).x end)) print('after')", 11),
    ("print(pcall(string.gsub, 'abc', '%w', function() os.exit(12) end)) print('after')", 12),
    ("print(pcall(table.sort, {3, 2, 1}, function(a, b) os.exit(13) end)) print('after')", 13),
    ("pcall(os.exit, 14.0) print('after')", 14),
    ("pcall(os.exit, false) print('after')", 1),
    ("pcall(os.exit, true) print('after')", 0),
]


@pytest.mark.parametrize(("code", "code_expected"), EXIT_CASES)
def test_os_exit_cannot_be_caught(lua_runtime: Any, code: str, code_expected: int) -> None:
    result = lua_runtime.run_string(code, "=(t)")
    assert result.exit_code == code_expected
    assert "after" not in out(lua_runtime) and "in co" not in out(lua_runtime)


def test_os_exit_from_a_lua_callback_that_python_swallows(lua_runtime: Any) -> None:
    """A Lua function called back from Python, whose Python caller catches everything."""
    def call_and_swallow(fn: Any) -> str:
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - the point: Python code that swallows errors
            return f"swallowed {type(e).__name__}"
        return "returned"

    lua_runtime.G.call_and_swallow = lua_runtime.bridge.function(call_and_swallow, "call_and_swallow")
    result = lua_runtime.run_string("print(call_and_swallow(function() os.exit(21) end)) print('after')", "=(t)")
    assert result.exit_code == 21
    assert "after" not in out(lua_runtime)


def test_os_exit_from_a_hook_callback(lua_runtime: Any) -> None:
    """A Lua hook run by the hook registry (Python), around a pcall."""
    code = """
      Hook.register("BeforeAgentExecution", function(ctx) os.exit(22) end)
      pcall(function() Hook.list() end)
      os.exit(22)
    """
    assert lua_runtime.run_string(code, "=(t)").exit_code == 22


def test_the_runtime_is_usable_after_os_exit(lua_runtime: Any) -> None:
    assert lua_runtime.run_string("pcall(os.exit, 3)", "=(t)").exit_code == 3
    result = lua_runtime.run_string("print(pcall(error, 'plain')) return 1", "=(t)")
    assert result.exit_code is None and result.values == [1]
    assert "false\tplain" in out(lua_runtime)


# ----------------------------------------------------------------------------- Python objects
ESCAPES = [
    # a Python callable found in an upvalue of an API function
    """local f
       for i = 1, 20 do local n, v = debug.getupvalue(Agent.builder, i)
         if type(v) == 'userdata' then f = v break end end
       assert(f, 'no Python function in the upvalues')
       return f.__globals__""",
    """for i = 1, 20 do local n, v = debug.getupvalue(Agent.builder, i)
         if type(v) == 'userdata' then return v.__class__.__base__.__subclasses__() end end""",
    """for i = 1, 20 do local n, v = debug.getupvalue(JSON.encode, i)
         if type(v) == 'userdata' then return v.__closure__ end end""",
    """for i = 1, 20 do local n, v = debug.getupvalue(print, i)
         if type(v) == 'userdata' then return v['__globals__'] end end""",
    """for i = 1, 20 do local n, v = debug.getupvalue(Agent.builder, i)
         if type(v) == 'userdata' then return debug.getmetatable(v).__index(v, '__globals__') end end""",
    """for i = 1, 20 do local n, v = debug.getupvalue(Agent.builder, i)
         if type(v) == 'userdata' then v.__doc__ = 'x' return 'set' end end""",
    # the error value of a failing Python call, caught by pcall
    """local ok, e = pcall(function() for i = 1, 20 do local n, v = debug.getupvalue(Agent.builder, i)
         if type(v) == 'userdata' then return v(nil, nil, nil) end end end)
       if type(e) == 'userdata' then return e.__traceback__.tb_frame.f_globals end
       return e.__traceback__""",
]


@pytest.mark.parametrize("code", ESCAPES)
def test_python_objects_are_unreachable(lua_runtime: Any, code: str) -> None:
    with pytest.raises(ScriptError) as ei:
        lua_runtime.run_string(code, "=(t)")
    msg = ei.value.message
    assert "Python objects have no fields visible to Lua" in msg or "attempt to index" in msg, msg
    assert "__builtins__" not in msg and "<module" not in msg


def test_python_and_eval_are_absent(lua_runtime: Any) -> None:
    result = lua_runtime.run_string("return python, package.loaded.python, rawget(_G, 'python')", "=(t)")
    assert result.values == [None, None, None]


# ----------------------------------------------------------------------------- binary chunks
def test_binary_chunks_are_refused_by_every_loader(lua_runtime: Any, tmp_path: Path) -> None:
    path = tmp_path / "chunk.luac"
    modpath = tmp_path / "binmod.lua"
    code = f"""
      local d = string.dump(function() return 1 end)
      local f = io.open({str(path)!r}, "wb") f:write(d) f:close()
      f = io.open({str(modpath)!r}, "wb") f:write(d) f:close()
      package.path = {str(tmp_path)!r} .. "/?.lua;" .. package.path
      local r = {{}}
      r[1] = select(2, load(d))
      r[2] = select(2, load(d, "x", "b"))
      r[3] = select(2, load(d, "x", "bt"))
      r[4] = select(2, loadfile({str(path)!r}))
      r[5] = select(2, pcall(dofile, {str(path)!r}))
      r[6] = select(2, pcall(require, "binmod"))
      r[7] = tostring(loadstring)
      local i = 0
      r[8] = select(2, load(function() i = i + 1 if i == 1 then return d end end))
      return r
    """
    values = lua_runtime.run_string(code, "=(t)").values[0]
    assert values[6] == "nil"  # Lua 5.4 has no loadstring
    for msg in values[:6] + values[7:]:
        assert "binary chunks are not allowed" in msg or "attempt to load a binary chunk" in msg, msg


def test_text_chunks_still_load(lua_runtime: Any) -> None:
    result = lua_runtime.run_string("return load('return 1 + 1')(), load('return 3', 'n', 't')()", "=(t)")
    assert result.values == [2, 3]


def test_the_config_switch_allows_binary_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from llmspell.bootstrap import create_runtime
    from llmspell.config import load_config
    from llmspell.script.engine import BufferSink

    cfg = tmp_path / "c.toml"
    cfg.write_text("[runtime]\nallow_binary_chunks = true\n", encoding="utf-8")
    monkeypatch.setenv("LLMSPELL_STATE_PATH", str(tmp_path / "s.sqlite3"))
    rt = create_runtime(load_config(cfg, env=dict(os.environ)), stdout=BufferSink(), stderr=BufferSink())
    try:
        assert rt.run_string("return load(string.dump(function() return 41 + 1 end))()", "=(t)").values == [42]
    finally:
        rt.close()


# ----------------------------------------------------------------------------- the interrupt hook holds
def _interrupt_when_ready(rt: Any) -> threading.Thread:
    ready = threading.Event()
    rt.G.ready = lambda: ready.set()

    def go() -> None:
        if ready.wait(30):
            rt.interrupt("stop now")

    t = threading.Thread(target=go, daemon=True)
    t.start()
    return t


@pytest.mark.parametrize("code", [
    "debug.sethook() ready() while true do end",
    "debug.sethook(nil) ready() while true do end",
    "debug.sethook(function() end, 'l') ready() while true do end",
    "debug.sethook(function() end, '', 1e9) ready() while true do end",
    "debug.sethook(coroutine.running(), nil) ready() while true do end",
    "local co = coroutine.create(function() debug.sethook() ready() while true do end end) coroutine.resume(co)",
    "local h = debug.gethook() debug.sethook() debug.sethook(h) debug.sethook() ready() while true do end",
])
def test_a_script_cannot_remove_the_interrupt_hook(lua_runtime: Any, code: str) -> None:
    t = _interrupt_when_ready(lua_runtime)
    with pytest.raises(ScriptError) as ei:
        lua_runtime.run_string(code, "=(t)")
    t.join(5)
    assert ei.value.kind == "interrupted" and ei.value.message == "stop now"


def test_a_script_hook_still_runs(lua_runtime: Any) -> None:
    code = """
      local lines = 0
      debug.sethook(function(ev) if ev == 'line' then lines = lines + 1 end end, 'l')
      local x = 0
      for i = 1, 3 do x = x + i end
      debug.sethook()
      return lines > 3
    """
    assert lua_runtime.run_string(code, "=(t)").values == [True]


def test_no_python_object_anywhere_in_lua_reach_opens_up(lua_runtime: Any) -> None:
    """Walk everything a script can reach (registry, globals, metatables, upvalues) and try every
    Python object found: none gives up a field."""
    code = """
      local seen, objects = {}, 0
      local leaks = {}
      local function try(v)
        objects = objects + 1
        for _, name in ipairs({"__class__", "__globals__", "__dict__", "__self__", "__func__", "gi_frame"}) do
          local ok, r = pcall(function() return v[name] end)
          if ok and r ~= nil then leaks[#leaks + 1] = tostring(v) .. "." .. name end  -- Lua files give nil
        end
      end
      local function walk(v, depth)
        if depth > 8 then return end
        local t = type(v)
        if t == "userdata" then
          if not seen[v] then seen[v] = true try(v) end
          return
        end
        if (t ~= "table" and t ~= "function") or seen[v] then return end
        seen[v] = true
        if t == "table" then
          for k, x in next, v do walk(k, depth + 1) walk(x, depth + 1) end
        else
          for i = 1, 255 do
            local n, x = debug.getupvalue(v, i)
            if n == nil then break end
            walk(x, depth + 1)
          end
        end
        walk(debug.getmetatable(v), depth + 1)
      end
      walk(debug.getregistry(), 0)
      walk(_G, 0)
      return objects, table.concat(leaks, "; ")
    """
    objects, leaks = lua_runtime.run_string(code, "=(t)").values
    assert objects > 100  # the walk did reach the Python functions behind the globals
    assert leaks == ""
