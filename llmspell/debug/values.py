"""How the debugger shows Lua values: DAP value text and type, table key names, child expressions.

`D` is the debugger's Lua helper table (debug/hooks.lua): `D.tostr` and `D.tcount` read a value
without running its metamethods.
"""

from __future__ import annotations

from typing import Any

from llmspell.debug.breakpoints import IDENT
from llmspell.debug.tcp import escape_text
from llmspell.script.bridge import lua_type

#: Type names as JupyterLab's variables tree knows them (it shows the value only for these).
TYPE_NAMES = {"integer": "int", "float": "float", "boolean": "bool", "string": "str"}
_STD_GLOBALS = frozenset({
    "_G", "_VERSION", "assert", "collectgarbage", "coroutine", "debug", "dofile", "error", "getmetatable", "io",
    "ipairs", "load", "loadfile", "math", "next", "os", "package", "pairs", "pcall", "print", "rawequal", "rawget",
    "rawlen", "rawset", "require", "select", "setmetatable", "string", "table", "tonumber", "tostring", "type",
    "utf8", "warn", "xpcall", "arg", "ARGS", "python"})
_API_GLOBALS = frozenset({"Agent", "Tool", "Workflow", "State", "Event", "Hook", "JSON", "Config", "Logger", "Utils",
                          "Debug", "Provider", "Streaming", "Replay", "Session", "Artifact", "RAG"})
_BUILTIN_CACHE: dict[int, frozenset[str]] = {}


def describe(v: Any, D: Any) -> tuple[str, str]:
    """(value text, type) of a Lua value for a DAP variable; tables also show their size."""
    if v is None:
        return "nil", "nil"
    scalar = _scalar(v)
    if scalar is not None:
        return scalar, TYPE_NAMES["boolean" if isinstance(v, bool) else "integer" if isinstance(v, int) else "float"]
    if isinstance(v, str):
        return escape_text(quote(v)), TYPE_NAMES["string"]
    typ = lua_type(v) or "userdata"
    text = escape_text(str(D.tostr(v)))
    if typ == "table":
        named, n_arr = D.tcount(v)
        text = f"{text} [{named} entries]" if named != n_arr or not n_arr else f"{text} [#{n_arr}]"
    return text, typ


def key_name(k: Any, D: Any) -> str:
    """A table key as a variable name: strings as they are, numbers and booleans as Lua writes them."""
    scalar = _scalar(k)
    if scalar is not None:
        return scalar
    if isinstance(k, str):
        return k
    return str(D.tostr(k))


def child_expr(parent: str | None, k: Any) -> str | None:
    """The Lua expression of `parent`'s field `k` (`a.b`, `a["x y"]`, `a[1]`); None when it has none."""
    if not parent:
        return None
    if isinstance(k, str):
        return f"{parent}.{k}" if IDENT.match(k) else f"{parent}[{quote(k)}]"
    if isinstance(k, bool):
        return f"{parent}[{'true' if k else 'false'}]"
    if isinstance(k, int | float):
        return f"{parent}[{k}]"
    return None


def builtin_globals(rt: Any) -> frozenset[str]:
    """Globals that are not the user's: the standard library, the llmspell API, what the runtime installed."""
    key = id(rt)
    got = _BUILTIN_CACHE.get(key)
    if got is None:
        got = _BUILTIN_CACHE[key] = _STD_GLOBALS | _API_GLOBALS | frozenset(getattr(rt, "installed_globals", []))
    return got


def quote(s: str) -> str:
    """A string as a double-quoted Lua literal (backslash, quote, newline and CR escaped)."""
    body = s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{body}"'


def lua_float(v: float) -> str:
    """A float as Lua 5.4 prints it (`1.0`, `inf`, `-nan`, 14 significant digits)."""
    if v != v:
        return "nan" if str(v) == "nan" else "-nan"
    if v in (float("inf"), float("-inf")):
        return "inf" if v > 0 else "-inf"
    if v.is_integer() and abs(v) < 1e16:
        return f"{v:.1f}"
    return f"{v:.14g}"


def _scalar(v: Any) -> str | None:
    """The text of a boolean or number as Lua writes it; None for anything else."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return lua_float(v)
    return None
