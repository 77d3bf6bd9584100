"""The Lua shell (script/shell.py): compile a cell, is_complete, complete, inspect, help and rendering."""

from __future__ import annotations

import math
from typing import Any

import pytest

from llmspell.script import docs
from llmspell.script.display import render_value, render_values
from llmspell.script.engine import ScriptError
from llmspell.script.shell import (
    SHELL_LUA,
    Completeness,
    LuaShell,
    call_name,
    exit_word,
    name_at,
    pager_name,
)


@pytest.fixture
def shell(lua_runtime: Any) -> LuaShell:
    return LuaShell(lua_runtime)


def run(shell: LuaShell, code: str) -> list[Any]:
    return list(shell.rt.call_chunk(shell.compile_cell(code, "=cell[1]")).values)


# ----------------------------------------------------------------------------- compile a cell
def test_expression_first_then_statements(shell: LuaShell) -> None:
    assert run(shell, "1 + 2") == [3]
    assert run(shell, "x = 5") == []
    assert run(shell, "x * 2, 'a'") == [10, "a"]


def test_last_line_expression_is_shown_and_line_numbers_stay_exact(shell: LuaShell) -> None:
    assert run(shell, "local a = 20\nlocal b = 22\na + b") == [42]
    with pytest.raises(ScriptError) as e:
        run(shell, "local a = 1\nerror('boom')\na")
    assert e.value.line == 2


def test_last_line_comment_or_local_is_not_returned(shell: LuaShell) -> None:
    assert run(shell, "y = 3\n-- y") == []
    assert run(shell, "y = 3\nlocal z = y") == []


def test_io_write_result_is_dropped(shell: LuaShell) -> None:
    assert run(shell, "io.write('hi')") == []
    assert shell.rt.test_out.text == "hi"  # type: ignore[attr-defined]


def test_syntax_error_is_that_of_the_code_as_written(shell: LuaShell) -> None:
    with pytest.raises(ScriptError) as e:
        shell.compile_cell("x = = 1", "=cell[2]")
    assert e.value.kind == "syntax" and "cell[2]:1" in e.value.full_message


# ----------------------------------------------------------------------------- is_complete
@pytest.mark.parametrize(("code", "status", "indent"), [
    ("", "complete", ""), ("print('x')", "complete", ""), ("x = 1 +", "incomplete", ""),
    ("print('hello", "incomplete", "  "), ("local t = {", "incomplete", "  "),
    ("function f()\n  if x then", "incomplete", "    "), ("x = = 1", "invalid", ""),
    ("function f() return 1 end", "complete", ""),
])
def test_is_complete(shell: LuaShell, code: str, status: str, indent: str) -> None:
    got = shell.is_complete(code)
    assert (got.status, got.indent) == (status, indent)


def test_is_complete_reply_carries_indent_only_when_incomplete() -> None:
    assert Completeness("incomplete", "  ").as_reply() == {"status": "incomplete", "indent": "  "}
    assert Completeness("invalid").as_reply() == {"status": "invalid"}


# ----------------------------------------------------------------------------- complete
def test_complete_globals_keywords_and_fields(shell: LuaShell) -> None:
    assert "print" in shell.complete("pri").matches
    assert {"repeat", "require", "return"} <= set(shell.complete("re").matches)
    got = shell.complete("x = string.fo")
    assert got.matches == ["format"] and got.start == len("x = string.") and got.end == len("x = string.fo")
    run(shell, "obj = {alpha = 1, beta = 2, ['not a name'] = 3}")
    assert shell.complete("obj.").matches == ["alpha", "beta"]
    assert shell.complete("(s").matches.count("select") == 1


def test_complete_methods_after_colon_and_api_objects(shell: LuaShell) -> None:
    run(shell, "obj2 = {n = 1, f = function() end}")
    assert shell.complete("obj2:").matches == ["f"]
    assert "builder" in shell.complete("Agent.bu").matches


def test_complete_cell_locals_and_cursor_in_the_middle(shell: LuaShell) -> None:
    assert "counter" in shell.complete("local counter = 1\nprint(cou").matches
    code = "print(str) -- tail"
    got = shell.complete(code, len("print(str"))
    assert "string" in got.matches and got.start == len("print(")
    assert shell.complete("f().x").matches == []


def test_complete_clamps_a_bad_cursor(shell: LuaShell) -> None:
    assert shell.complete("pri", 99).end == 3
    assert shell.complete("pri", -1).end == 3


# ----------------------------------------------------------------------------- inspect and help
def test_inspect_name_and_inside_a_call(shell: LuaShell) -> None:
    assert shell.inspect("Agent.builder") == docs.lookup("Agent.builder")
    assert shell.inspect("Agent.builder(") == docs.lookup("Agent.builder")
    assert shell.inspect('print("a", ') == docs.lookup("print")
    assert shell.inspect("nothing_here_at_all") is None


def test_help_text_describes_user_values(shell: LuaShell) -> None:
    run(shell, "answer = 42")
    assert shell.help_text("answer") == "answer: number = 42"
    assert shell.help_text("Nope.nothing") == "No documentation for Nope.nothing."
    assert shell.help_text("Nope.nothing", missing_ok=True) is None
    detailed = shell.help_text("Agent", 1)
    assert detailed is not None and detailed.startswith(str(docs.lookup("Agent"))) and "Agent: table" in detailed


def test_pager_and_exit_words() -> None:
    assert pager_name("?Agent.builder") == "Agent.builder"
    assert pager_name("Tool.invoke?") == "Tool.invoke"
    assert pager_name("x = 1 -- ?") is None
    assert exit_word("exit") == "exit" and exit_word(" quit() ") == "quit" and exit_word("exit(1)") is None


def test_name_and_call_at_cursor() -> None:
    assert name_at("x = Agent.builder", 10) == "Agent.builder"
    assert call_name("f(g(1), 'a)', ", 14) == "f"
    assert call_name("t[", 2) == ""


def test_shell_lua_is_package_data() -> None:
    assert "function M.complete" in SHELL_LUA


# ----------------------------------------------------------------------------- render
@pytest.mark.parametrize(("value", "text"), [
    (None, "nil"), (True, "true"), (False, "false"), (42, "42"), (3.0, "3"), (0.1, "0.1"),
    (1 / 3, "0.33333333333333"), (2.0**63, "9.2233720368548e+18"), (math.inf, "inf"), (-math.inf, "-inf"),
    (math.nan, "nan"), ("text", "text"), ([1, 2], "[\n  1,\n  2\n]"), ({"b": 1, "a": [True]},
                                                                       '{\n  "a": [\n    true\n  ],\n  "b": 1\n}'),
])
def test_render_value(value: Any, text: str) -> None:
    assert render_value(value) == text


def test_render_compact_and_several_values() -> None:
    assert render_value({"b": 1, "a": 2}, compact=True) == '{"a":2,"b":1}'
    assert render_value({1: "x"}, compact=True) == '{"1":"x"}'
    assert render_values([1, "a", None]) == "1\ta\tnil"
    assert LuaShell.render([{"k": 1}]) == '{\n  "k": 1\n}'
