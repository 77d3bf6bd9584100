"""JSON (§12), Utils (§15) and the placeholder filler (§5.5)."""

from __future__ import annotations

from typing import Any

import pytest

from llmspell.script.engine import ScriptError
from llmspell.script.placeholders import mapping_resolver, placeholders, render, render_value, walk


def run(rt: Any, code: str) -> str:
    rt.run_string(code, "=(test)")
    return rt.test_out.text


def lua_error(rt: Any, code: str) -> str:
    with pytest.raises(ScriptError) as ei:
        rt.run_string(code, "=(test)")
    return ei.value.message


# ----------------------------------------------------------------------------- JSON
def test_stringify_sorted_compact_and_rules(lua_runtime: Any) -> None:
    text = run(lua_runtime, """
      print(JSON.stringify({b = 1, a = {1, 2, 3}, c = JSON.array({}), d = JSON.null, e = 1.5, f = {}}))
      print(JSON.stringify({[1] = "a", [2] = "b", x = 1}))
      print(JSON.stringify({[1] = "a", [3] = "c"}))
      print(JSON.stringify(0/0), JSON.stringify({n = 1/0}), JSON.stringify(nil), JSON.stringify("s\\n"))
      print(JSON.stringify(3), JSON.stringify(3.0), JSON.stringify(true))
      print(JSON.stringify({[1.5] = 1, [true] = 2}))
    """)
    assert text.splitlines() == [
        '{"a":[1,2,3],"b":1,"c":[],"d":null,"e":1.5,"f":{}}',
        '{"1":"a","2":"b","x":1}',
        '{"1":"a","3":"c"}',
        'null\t{"n":null}\tnull\t"s\\n"',
        "3\t3.0\ttrue",
        '{"1.5":1}',
    ]


def test_stringify_indent(lua_runtime: Any) -> None:
    text = run(lua_runtime, "print(JSON.stringify({b = {1}, a = 1}, {indent = 2})) print(JSON.stringify({a = 1}, {indent = 4}))")
    assert text == '{\n  "a": 1,\n  "b": [\n    1\n  ]\n}\n{\n    "a": 1\n}\n'


def test_stringify_errors(lua_runtime: Any) -> None:
    assert lua_error(lua_runtime, "JSON.stringify({f = print})") == "JSON.stringify: cannot convert function to JSON"
    assert "cycle detected" in lua_error(lua_runtime, "local t = {} t.t = t JSON.stringify(t)")
    assert "deeper than 1000" in lua_error(lua_runtime, "local t = {} local c = t for i = 1, 1100 do c.x = {} c = c.x end JSON.stringify(t)")
    assert "cannot convert Stream to JSON" in lua_error(lua_runtime, "JSON.stringify(Streaming.create(function() end))")
    assert "opts" in lua_error(lua_runtime, "JSON.stringify({}, 3)")


def test_invalid_utf8_is_replaced_not_raised(lua_runtime: Any) -> None:
    assert run(lua_runtime, "print(JSON.stringify({s = 'a\\xffb'}))") == '{"s":"a\ufffdb"}\n'


def test_parse_rules(lua_runtime: Any) -> None:
    text = run(lua_runtime, """
      local v = JSON.parse('{"1": "one", "n": 10, "f": 1.0, "e": 1e2, "arr": [1, null, 3], "z": null, "big": 99999999999999999999}')
      print(v["1"], v[1], math.type(v.n), math.type(v.f), math.type(v.e), v.arr[1], v.arr[2], v.arr[3], v.z, math.type(v.big))
      print(JSON.parse("null"), JSON.parse('"x"'), JSON.stringify(JSON.parse("[]")), JSON.stringify(JSON.parse("{}")))
      print(JSON.decode('[1]')[1], JSON.encode({1}))
    """)
    assert text.splitlines() == ["one\tnil\tinteger\tfloat\tfloat\t1\tnil\t3\tnil\tfloat", "nil\tx\t[]\t{}", "1\t[1]"]


def test_parse_errors_have_line_and_column(lua_runtime: Any) -> None:
    text = run(lua_runtime, """
      local ok, e = pcall(JSON.parse, '{"a":\\n 1,,}') print(e)
      print(select(2, pcall(JSON.parse, '')))
      print(select(2, pcall(JSON.parse, 42)))
    """)
    lines = text.splitlines()
    assert lines[0].startswith("JSON.parse: ") and lines[0].endswith("at line 2 column 4")
    assert lines[1].startswith("JSON.parse: ") and "line 1 column 1" in lines[1]
    assert lines[2] == "JSON.parse: expected a JSON string, got integer"


def test_parse_error_position_in_script(lua_runtime: Any) -> None:
    with pytest.raises(ScriptError) as ei:
        lua_runtime.run_string("\nlocal x = JSON.parse('{')", "=(t)")
    assert ei.value.line == 2 and ei.value.message.startswith("JSON.parse:")


def test_json_array_and_null(lua_runtime: Any) -> None:
    text = run(lua_runtime, """
      local t = JSON.array() ; print(JSON.stringify(t), JSON.stringify(JSON:array({})), tostring(JSON.null))
      print(pcall(JSON.array, 5))
      print(pcall(function() JSON.null.x = 1 end))
    """)
    lines = text.splitlines()
    assert lines[0] == "[]\t[]\tnull"
    assert lines[1].startswith("false\t") and "JSON.array: expected a table or nothing, got number" in lines[1]
    assert "read-only" in lines[2]


def test_round_trip(lua_runtime: Any) -> None:
    text = run(lua_runtime, """
      local src = '{"a":[1,2,{"b":"c"}],"d":{"e":true,"f":1.25},"g":"é"}'
      print(JSON.stringify(JSON.parse(src)) == src)
    """)
    assert text == "true\n"


# ----------------------------------------------------------------------------- Utils
def test_utils_strings(lua_runtime: Any) -> None:
    text = run(lua_runtime, """
      local p = Utils.split("a,b,,c", ",") print(#p, p[1], p[3] == "", p[4])
      print(JSON.stringify(Utils.split("  x \\t y\\n")), JSON.stringify(Utils.split("")))
      print(JSON.stringify(Utils.split("a.b", ".")), JSON.stringify(Utils.split("a1b22c", "%d+", false)))
      print(Utils.trim("  hi \\n"), Utils.starts_with("hello", "he"), Utils.ends_with("hello", "lo"), Utils.ends_with("x", ""))
      print(Utils:trim(" colon "))
    """)
    assert text.splitlines() == ["4\ta\ttrue\tc", '["x","y"]\t[]', '["a","b"]\t["a","b","c"]',
                                 "hi\ttrue\ttrue\ttrue", "colon"]


def test_utils_tables(lua_runtime: Any) -> None:
    text = run(lua_runtime, """
      local t = {b = 1, a = 2, [2] = "x", [1] = "y"}
      print(JSON.stringify(Utils.keys(t)), JSON.stringify(Utils.values(t)), Utils.len(t), Utils.len({}))
      print(Utils.is_empty({}), Utils.is_empty({1}), Utils.is_empty(nil), JSON.stringify(Utils.keys({})))
      local src = {a = {b = {1, 2}}} ; local c = Utils.deep_copy(src) ; c.a.b[1] = 9 ; print(src.a.b[1], c.a.b[1])
      local cyc = {} ; cyc.self = cyc ; local cc = Utils.deep_copy(cyc) ; print(cc.self == cc, cc ~= cyc)
      print(JSON.stringify(Utils.merge({a = 1, b = 1}, {b = 2}, nil, {c = 3})))
    """)
    assert text.splitlines() == ['[1,2,"a","b"]\t["y","x",2,1]\t4\t0', "true\tfalse\ttrue\t[]", "1\t9", "true\ttrue",
                                 '{"a":1,"b":2,"c":3}']


def test_utils_hash_encodings(lua_runtime: Any) -> None:
    text = run(lua_runtime, """
      print(Utils.hash("abc"))
      print(Utils.hash("abc", "md5"), Utils.hash("abc", "sha1"))
      print(#Utils.hash("abc", "sha512"), Utils.base64_encode("hi\\255"), Utils.base64_decode("aGk="))
      print(Utils.base64_decode(Utils.base64_encode("\\0\\255\\1")) == "\\0\\255\\1")
      print(Utils.url_encode("a b/c&d=é"), Utils.url_decode("a%20b%2Fc"), Utils.url_decode(Utils.url_encode("\\255")) == "\\255")
      print(pcall(Utils.hash, "x", "sha3"))
      print(pcall(Utils.base64_decode, "!!!"))
    """)
    lines = text.splitlines()
    assert lines[0] == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert lines[1] == "900150983cd24fb0d6963f7d28e17f72\ta9993e364706816aba3e25717850c26c9cd0d89d"
    assert lines[2] == "128\taGn/\thi"
    assert lines[3] == "true"
    assert lines[4] == "a%20b%2Fc%26d%3D%C3%A9\ta b/c\ttrue"
    assert "unknown algorithm 'sha3'" in lines[5]
    assert "not valid base64" in lines[6]


def test_utils_ids_and_time(lua_runtime: Any) -> None:
    text = run(lua_runtime, """
      local u = Utils.uuid()
      print(#u, u:sub(15, 15), u ~= Utils.uuid())
      print(math.type(Utils.now()), math.type(Utils.now_ms()), Utils.now_ms() > 1700000000000)
      print(Utils.timestamp():match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$") ~= nil)
      local t0 = Utils.now_ms() Utils.sleep(5) print(Utils.now_ms() >= t0)
      print(pcall(Utils.sleep, "x"))
    """)
    lines = text.splitlines()
    assert lines[0] == "36\t4\ttrue"
    assert lines[1] == "float\tinteger\ttrue"
    assert lines[2] == "true" and lines[3] == "true"
    assert "Utils.sleep: ms must be a number" in lines[4]


def test_utils_render(lua_runtime: Any) -> None:
    text = run(lua_runtime, """
      print(Utils.render("Hi {{ name }}, {{x.y}} {{n}} {{f}} {{g}} {{t}} {{b}} {{missing}} {{j.k}}",
        {name = "Bob", x = {y = 2}, n = 3, f = 0.5, g = 2.0, t = {b = 1, a = 2}, b = false, j = '{"k": "v"}'}))
      print(Utils.render("{{a}}", {a = "{{b}}", b = "no"}))
      print(Utils.render("{{list.2}}", {list = {"x", "y"}}))
    """)
    assert text.splitlines() == ['Hi Bob, 2 3 0.5 2 {"a":2,"b":1} false {{missing}} v', "{{b}}", "y"]


# ----------------------------------------------------------------------------- placeholders (pure Python)
def test_placeholder_filler_rules() -> None:
    seen: list[str] = []

    def resolve(name: str) -> tuple[bool, Any]:
        seen.append(name)
        return {"a": (True, "A"), "n": (True, 1.0), "none": (True, None)}.get(name, (False, None))

    assert render("x {{a}} {{ a }} {{n}} {{zz}} {{none}} {{}} {a}", resolve) == "x A A 1 {{zz}} {{none}} {{}} {a}"
    assert seen == ["a", "a", "n", "zz", "none"]
    assert render("no placeholders", resolve) == "no placeholders"
    assert placeholders("{{a}} and {{ b.c }}") == ["a", "b.c"]


@pytest.mark.parametrize(("value", "text"), [
    ("s", "s"), (3, "3"), (3.0, "3"), (0.1, "0.1"), (1 / 3, "0.33333333333333"), (True, "true"),
    ({"b": 1, "a": [1, 2]}, '{"a":[1,2],"b":1}'), ([1, "x"], '[1,"x"]'),
])
def test_render_value(value: Any, text: str) -> None:
    assert render_value(value) == text


def test_walk_and_mapping_resolver() -> None:
    assert walk({"a": {"b": [10, 20]}}, ["a", "b", "2"]) == (True, 20)
    assert walk('{"k": {"x": 1}}', ["k", "x"]) == (True, 1)
    assert walk("not json", ["k"]) == (False, None)
    r = mapping_resolver({"a.b": "literal", "a": {"b": "nested"}})
    assert r("a.b") == (True, "literal")
    assert r("a.c") == (False, None)


def test_failing_resolver_leaves_text() -> None:
    def boom(name: str) -> tuple[bool, Any]:
        raise RuntimeError("x")

    assert render("{{a}}", boom) == "{{a}}"
