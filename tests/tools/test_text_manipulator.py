"""text_manipulator (§19.3): every operation and its options, result shape and errors."""

from __future__ import annotations

from typing import Any

import pytest

from tests.tools.conftest import invoke, invoke_error


def _r(rt: Any, op: str, inp: str, opts: str = "{}") -> Any:
    out = invoke(rt, "text_manipulator", f"{{operation = {op!r}, input = {inp}, options = {opts}}}")
    assert out["success"] is True and out["operation"] == op
    return out["result"]["result"]


@pytest.mark.parametrize("op,inp,opts,expected", [
    ("uppercase", '"abc"', "{}", "ABC"),
    ("lowercase", '"AbC"', "{}", "abc"),
    ("reverse", '"héllo"', "{}", "olléh"),
    ("trim", '"  a b  "', "{}", "a b"),
    ("replace", '"a-b-c"', '{from = "-", to = "+"}', "a+b+c"),
    ("replace", '"a-b-c"', '{pattern = "-", replacement = "", count = 1}', "ab-c"),
    ("replace", '"a1b22c"', '{from = "%d+", to = "#"}', "a1b22c"),
    ("replace", '"a1b22c"', '{from = "\\\\d+", to = "#", regex = true}', "a#b#c"),
    ("substring", '"hello"', '{start = 2, ["end"] = 4}', "ell"),
    ("substring", '"hello"', '{start = -3}', "llo"),
    ("substring", '"hello"', '{start = 2, ["end"] = -2}', "ell"),
    ("substring", '"hello"', '{start = 4, ["end"] = 2}', ""),
    ("split", '"a  b\\tc"', "{}", ["a", "b", "c"]),
    ("split", '"a,b,,c"', '{delimiter = ","}', ["a", "b", "", "c"]),
    ("join", '{"a", "b", 3}', '{delimiter = "-"}', "a-b-3"),
    ("join", '\'["x","y"]\'', "{}", "x y"),
    ("snake_case", '"Hello World-fooBar"', "{}", "hello_world_foo_bar"),
    ("camel_case", '"hello world_foo"', "{}", "helloWorldFoo"),
    ("pascal_case", '"hello world HTTPServer"', "{}", "HelloWorldHttpServer"),
    ("sanitize", '"<b>hi</b>\\1 there\\n\\tok"', "{}", "hi there\n\tok"),
    ("truncate", '"abcdefghij"', "{length = 6}", "abc..."),
    ("truncate", '"abc"', "{length = 6}", "abc"),
    ("truncate", '"abcdefghij"', '{length = 4, suffix = "~"}', "abc~"),
    ("indent", '"a\\nb"', "{spaces = 2}", "  a\n  b"),
    ("indent", '"a\\nb"', '{prefix = "> "}', "> a\n> b"),
    ("dedent", '"    a\\n      b"', "{}", "a\n  b"),
    ("normalize_whitespace", '"  a \\n\\t b  "', "{}", "a b"),
    ("word_wrap", '"aaa bbb ccc"', "{width = 7}", "aaa bbb\nccc"),
])
def test_operations(rt: Any, op: str, inp: str, opts: str, expected: Any) -> None:
    assert _r(rt, op, inp, opts) == expected


def test_result_shape_and_lengths(rt: Any) -> None:
    u = invoke(rt, "text_manipulator", '{operation = "uppercase", input = "héllo"}')
    assert u["result"] == {"result": "HÉLLO", "operation": "uppercase", "original_length": 5, "result_length": 5}
    assert u["_raw_text"].startswith("{") and u["text"] == u["_raw_text"]
    assert u["metadata"]["operation"] == "uppercase" and u["metadata"]["tool"] == "text_manipulator"


def test_errors(rt: Any) -> None:
    assert "missing required parameter 'input'" in invoke_error(rt, "text_manipulator", '{operation = "trim"}')
    assert "missing required parameter 'operation'" in invoke_error(rt, "text_manipulator", '{input = "x"}')
    msg = invoke_error(rt, "text_manipulator", '{operation = "shout", input = "x"}')
    assert "invalid operation 'shout'" in msg and "uppercase" in msg
    assert "must be a string, got object" in invoke_error(rt, "text_manipulator", '{operation = "trim", input = {a = 1}}')
    assert "options.from" in invoke_error(rt, "text_manipulator", '{operation = "replace", input = "x"}')
    assert "parameter 'options' must be an object, got string" in invoke_error(
        rt, "text_manipulator", '{operation = "trim", input = "x", options = "y"}')
    assert "option 'length' must be an integer" in invoke_error(
        rt, "text_manipulator", '{operation = "truncate", input = "x", options = {length = "long"}}')
    assert "JSON array" in invoke_error(rt, "text_manipulator", '{operation = "join", input = "not json"}')


def test_numbers_are_coerced_like_lua(rt: Any) -> None:
    assert _r(rt, "reverse", "123") == "321"
