"""How the debugger writes Lua scalars, keys and child expressions (no Lua needed for these)."""

from __future__ import annotations

from llmspell.debug.values import child_expr, describe, key_name, lua_float, quote


def test_scalars_as_lua_writes_them_with_jupyter_type_names() -> None:
    assert describe(None, None) == ("nil", "nil")
    assert describe(True, None) == ("true", "bool") and describe(3, None) == ("3", "int")
    assert describe(2.0, None) == ("2.0", "float") and describe(float("inf"), None) == ("inf", "float")
    assert describe('a"b\n', None) == ('"a\\"b\\n"', "str")
    assert lua_float(0.1) == "0.1" and lua_float(1e20) == "1e+20"


def test_keys_and_child_expressions() -> None:
    assert [key_name(k, None) for k in (False, 7, 1.5, "x")] == ["false", "7", "1.5", "x"]
    assert child_expr("t", "name") == "t.name" and child_expr("t", "two words") == 't["two words"]'
    assert child_expr("t", 3) == "t[3]" and child_expr("t", True) == "t[true]" and child_expr(None, "x") is None
    assert quote("back\\slash") == '"back\\\\slash"'
