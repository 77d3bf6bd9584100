"""`JSON` global (lua-api.md §12): parse/stringify with the one §1.8 converter, JSON.array, JSON.null."""

from __future__ import annotations

import json as _stdjson
import math
import re
from typing import TYPE_CHECKING, Any

import orjson

from llmspell.script.bridge import ConversionError, LuaApiError, lua_type, type_name

if TYPE_CHECKING:
    from llmspell.script.engine import ScriptRuntime

_I64_MAX = 2**63 - 1
_I64_MIN = -(2**63)
_LONG_DIGITS = re.compile(r"\d{19}")


def decode(text: str) -> Any:
    """Parse JSON text into Python data; integers outside i64 become floats (§1.8)."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as e:
        if "surrogates not allowed" not in str(e) and "not valid UTF-8" not in str(e):
            raise LuaApiError(f"JSON.parse: {e.msg} at line {e.lineno} column {e.colno}") from None
        try:  # lone surrogates (invalid UTF-8 bytes from Lua): the stdlib parser accepts them
            value = _stdjson.loads(text)
        except _stdjson.JSONDecodeError as e2:
            raise LuaApiError(f"JSON.parse: {e2.msg} at line {e2.lineno} column {e2.colno}") from None
    if _LONG_DIGITS.search(text):
        value = _clamp_ints(value)
    return value


def _clamp_ints(v: Any) -> Any:
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return v if _I64_MIN <= v <= _I64_MAX else float(v)
    if isinstance(v, list):
        return [_clamp_ints(x) for x in v]
    if isinstance(v, dict):
        return {k: _clamp_ints(x) for k, x in v.items()}
    return v


def encode(value: Any, indent: int = 0) -> str:
    """Serialize converted data: compact with sorted keys, or pretty-printed with `indent` spaces."""
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        value = None
    if indent <= 0:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode("utf-8")
    if indent == 2:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2).decode("utf-8")
    return _stdjson.dumps(value, sort_keys=True, ensure_ascii=False, indent=indent, allow_nan=False)


def install(rt: ScriptRuntime) -> None:
    """Create the JSON table on the runtime."""
    b = rt.bridge
    T = b.table()

    def parse(text: Any = None) -> Any:
        if isinstance(text, bytes):
            text = text.decode("utf-8", "surrogateescape")
        if not isinstance(text, str):
            raise LuaApiError(f"JSON.parse: expected a JSON string, got {type_name(text)}")
        return decode(text)

    def stringify(value: Any = None, opts: Any = None) -> str:
        indent = 0
        if opts is not None:
            if lua_type(opts) != "table":
                raise LuaApiError(f"JSON.stringify: opts must be a table like {{indent = 2}}, got {type_name(opts)}")
            raw = opts["indent"]
            if raw is not None:
                if isinstance(raw, bool) or not isinstance(raw, int | float) or raw < 0:
                    raise LuaApiError("JSON.stringify: opts.indent must be a non-negative integer (e.g. 2)")
                indent = int(raw)
        try:
            data = b.to_py(value)
        except ConversionError as e:
            raise LuaApiError(f"JSON.stringify: {e.message}") from None
        return encode(data, indent)

    b.set_functions(T, {"parse": parse, "decode": parse, "stringify": stringify, "encode": stringify}, "JSON")
    # JSON.array returns the Lua table itself (no conversion), so it is plain Lua.
    T.array = b.lua.eval(
        "function(mark, T) return function(a, ...) local t = a "
        "if rawequal(a, T) then t = ... end "
        "if t ~= nil and type(t) ~= 'table' then "
        "error('JSON.array: expected a table or nothing, got ' .. type(t), 2) end "
        "return mark(t) end end"
    )(b.m.mark_array, T)
    T.null = b.null
    rt.G.JSON = T

