"""ScriptRuntime behaviour of lua-api.md §1: output rendering, ARGS/arg, errors, interrupts, os.exit, bytes."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from llmspell.script.bridge import lua_bytes
from llmspell.script.engine import ScriptError


def out(rt: Any) -> str:
    return rt.test_out.text


def run(rt: Any, code: str, *args: str) -> str:
    rt.run_string(code, "=(test)", list(args))
    return out(rt)


# ----------------------------------------------------------------------------- §1.5 rendering
@pytest.mark.parametrize(("expr", "expected"), [
    ("nil", "nil"), ("true", "true"), ("false", "false"), ("42", "42"), ("-7", "-7"),
    ("3.0", "3"), ("-0.0", "0"), ("1e15", "1000000000000000"), ("0.1", "0.1"), ("1/3", "0.33333333333333"),
    ("2^63", "9.2233720368548e+18"), ("1/0", "inf"), ("-1/0", "-inf"), ("0/0", "nan"),
    ("'text'", "text"), ("math.maxinteger", "9223372036854775807"),
])
def test_print_renders_values(lua_runtime: Any, expr: str, expected: str) -> None:
    assert run(lua_runtime, f"print({expr})") == expected + "\n"


def test_print_tables_functions_and_tostring(lua_runtime: Any) -> None:
    text = run(lua_runtime, """
      print({}, print)
      print(setmetatable({}, {__tostring = function() return "custom" end}))
      print(setmetatable({}, {__name = "MyType"}))
    """)
    lines = text.splitlines()
    assert lines[0].startswith("table: 0x") and "\tfunction: " in lines[0]
    assert lines[1] == "custom"
    assert lines[2].startswith("MyType: 0x")


def test_print_joins_with_tabs_and_empty_print(lua_runtime: Any) -> None:
    assert run(lua_runtime, "print(1, 'a', nil, 2.5) print()") == "1\ta\tnil\t2.5\n\n"


def test_print_is_one_write_per_call(lua_runtime: Any) -> None:
    run(lua_runtime, "print('a', 'b') print('c')")
    assert lua_runtime.test_out.parts == ["a\tb\n", "c\n"]


def test_tostring_keeps_float_form(lua_runtime: Any) -> None:
    assert run(lua_runtime, "print(tostring(3.0), 3.0 .. '')") == "3.0\t3.0\n"


def test_io_write_and_chaining(lua_runtime: Any) -> None:
    text = run(lua_runtime, "io.write('a', 1, 2.0, 0.5):write('b') io.stdout:write('c', '\\n')")
    assert text == "a120.5bc\n"


def test_io_write_rejects_other_types(lua_runtime: Any) -> None:
    with pytest.raises(ScriptError) as ei:
        run(lua_runtime, "io.write('ok', {})")
    assert ei.value.message == "bad argument #2 to 'write' (string expected, got table)"
    assert ei.value.line == 1
    with pytest.raises(ScriptError, match=r"bad argument #1 to 'write' \(string expected, got nil\)"):
        run(lua_runtime, "io.write(nil)")


def test_io_stderr_goes_to_stderr_sink(lua_runtime: Any) -> None:
    run(lua_runtime, "io.stderr:write('warn ', 1, '\\n')")
    assert lua_runtime.test_err.text == "warn 1\n"
    assert out(lua_runtime) == ""


def test_non_utf8_output_is_byte_exact(lua_runtime: Any) -> None:
    run(lua_runtime, "io.write('\\xff\\xfe') print('caf\\xc3\\xa9', '\\x80')")
    assert lua_bytes(out(lua_runtime)) == b"\xff\xfecaf\xc3\xa9\t\x80\n"


# ----------------------------------------------------------------------------- §1.9 ARGS and arg
def test_args_worked_example(lua_runtime: Any, tmp_path: Path) -> None:
    script = tmp_path / "app.lua"
    script.write_text("""
      print(ARGS.input, ARGS.verbose, ARGS.out, ARGS[1], ARGS["1"], #ARGS)
      print(ARGS[0] == ARGS["0"], arg[0] == ARGS[0], arg[-1], #arg, arg[1])
      print(select("#", ...), ...)
    """)
    path = str(script)
    lua_runtime.run_file(path, ["--", "--input", "data.txt", "--verbose", "--out=/tmp/x", "pos1"])
    lines = out(lua_runtime).splitlines()
    assert lines[0] == "data.txt\ttrue\t/tmp/x\tpos1\tpos1\t1"
    assert lines[1] == "true\ttrue\tllmspell\t5\t--input"
    assert lines[2] == "5\t--input\tdata.txt\t--verbose\t--out=/tmp/x\tpos1"


def test_args_flag_followed_by_flag_and_pairs(lua_runtime: Any) -> None:
    text = run(lua_runtime, """
      local keys = {}
      for k in pairs(ARGS) do keys[#keys + 1] = type(k) .. ":" .. tostring(k) end
      table.sort(keys)
      print(ARGS.a, ARGS.b, table.concat(keys, ","))
    """, "--a", "--b", "x", "p")
    assert text == "true\tx\tnumber:0,number:1,string:0,string:1,string:a,string:b\n"


# ----------------------------------------------------------------------------- §1.7 errors
def test_runtime_error_in_nested_function_has_file_and_line(lua_runtime: Any, tmp_path: Path) -> None:
    script = tmp_path / "main.lua"
    script.write_text("local function inner()\n  local t = nil\n  return t.x\nend\nlocal function outer() local v = inner() return v end\nouter()\n")
    with pytest.raises(ScriptError) as ei:
        lua_runtime.run_file(str(script))
    e = ei.value
    assert e.kind == "runtime" and e.file == str(script) and e.line == 3
    assert "attempt to index a nil value" in e.message
    assert f"{script}:3:" in e.full_message
    assert "inner" in e.traceback


def test_error_with_string_carries_position(lua_runtime: Any) -> None:
    with pytest.raises(ScriptError) as ei:
        run(lua_runtime, "\n\nerror('boom')")
    assert (ei.value.file, ei.value.line, ei.value.message) == ("(test)", 3, "boom")


def test_error_object_that_is_a_table_becomes_a_string(lua_runtime: Any) -> None:
    with pytest.raises(ScriptError) as ei:
        run(lua_runtime, "error({code = 42, message = 'bad thing'})")
    assert ei.value.message == "bad thing"
    with pytest.raises(ScriptError) as ei2:
        run(lua_runtime, "error({code = 42})")
    assert "error object is a table" in ei2.value.message and "code=42" in ei2.value.message
    with pytest.raises(ScriptError) as ei3:
        run(lua_runtime, "error(setmetatable({}, {__tostring = function() return 'E!' end}))")
    assert ei3.value.message == "E!"


def test_api_errors_are_strings_for_pcall(lua_runtime: Any) -> None:
    text = run(lua_runtime, "local ok, e = pcall(JSON.parse, '{') print(ok, type(e))")
    assert text == "false\tstring\n"


def test_syntax_error_kind_and_line(lua_runtime: Any, tmp_path: Path) -> None:
    script = tmp_path / "bad.lua"
    script.write_text("print('ok')\nlocal x = = 2\n")
    with pytest.raises(ScriptError) as ei:
        lua_runtime.run_file(str(script))
    assert ei.value.kind == "syntax" and ei.value.line == 2 and ei.value.file == str(script)
    assert out(lua_runtime) == ""  # nothing ran


def test_missing_and_non_utf8_files(lua_runtime: Any, tmp_path: Path) -> None:
    with pytest.raises(ScriptError) as ei:
        lua_runtime.run_file(str(tmp_path / "nope.lua"))
    assert ei.value.kind == "io" and "no such file" in ei.value.message
    bad = tmp_path / "latin1.lua"
    bad.write_bytes(b"print('ok')\nprint('caf\xe9')\n")
    with pytest.raises(ScriptError) as ei2:
        lua_runtime.run_file(str(bad))
    assert ei2.value.kind == "encoding" and "line 2" not in ei2.value.message.split(":")[0]
    assert ei2.value.line == 2 and "UTF-8" in ei2.value.message


def test_shebang_keeps_line_numbers(lua_runtime: Any, tmp_path: Path) -> None:
    script = tmp_path / "s.lua"
    script.write_text("#!/usr/bin/env llmspell\nprint('hi')\nerror('x')\n")
    with pytest.raises(ScriptError) as ei:
        lua_runtime.run_file(str(script))
    assert ei.value.line == 3 and out(lua_runtime) == "hi\n"


# ----------------------------------------------------------------------------- os.exit and interrupts
@pytest.mark.parametrize(("call", "code"), [("os.exit(3)", 3), ("os.exit(true)", 0), ("os.exit(false)", 1),
                                             ("os.exit()", 0)])
def test_os_exit_sets_exit_code(lua_runtime: Any, call: str, code: int) -> None:
    result = lua_runtime.run_string(f"print('before') {call} print('after')", "=(t)")
    assert result.exit_code == code
    assert out(lua_runtime) == "before\n"


def _interrupt_when_ready(rt: Any) -> threading.Thread:
    ready = threading.Event()
    rt.G.ready = lambda: ready.set()

    def go() -> None:
        if ready.wait(30):
            rt.interrupt()

    t = threading.Thread(target=go, daemon=True)
    t.start()
    return t


def test_interrupt_stops_a_busy_loop(lua_runtime: Any) -> None:
    t = _interrupt_when_ready(lua_runtime)
    with pytest.raises(ScriptError) as ei:
        run(lua_runtime, "ready() while true do end")
    t.join(5)
    assert ei.value.kind == "interrupted" and ei.value.message == "interrupted"
    # the runtime stays usable afterwards
    assert run(lua_runtime, "print('again')").endswith("again\n")


@pytest.mark.parametrize("code", [
    "local co = coroutine.wrap(function() ready() while true do end end) co()",  # a loop inside a coroutine
    "ready() Utils.sleep(600000)",  # a blocking sleep
    "ready() while true do pcall(function() while true do end end) end",  # pcall cannot swallow it forever
], ids=["coroutine", "blocking-sleep", "pcall"])
def test_interrupt_stops(lua_runtime: Any, code: str) -> None:
    t = _interrupt_when_ready(lua_runtime)
    with pytest.raises(ScriptError) as ei:
        run(lua_runtime, code)
    t.join(5)
    assert ei.value.kind == "interrupted"


# ----------------------------------------------------------------------------- globals present
def test_globals_of_this_issue_exist_and_no_python(lua_runtime: Any) -> None:
    text = run(lua_runtime, """
      for _, n in ipairs({"JSON", "Utils", "Logger", "Debug", "Streaming", "Config", "ARGS", "arg"}) do
        io.write(n, "=", type(_G[n]), " ")
      end
      print(python, Args)
    """)
    assert text == ("JSON=table Utils=table Logger=table Debug=table Streaming=table Config=table "
                    "ARGS=table arg=table nil\tnil\n")


def test_return_values_are_converted(lua_runtime: Any) -> None:
    result = lua_runtime.run_string("return 1, 'two', {a = 3}, {1, 2}", "=(t)")
    assert result.values == [1, "two", {"a": 3}, [1, 2]]
