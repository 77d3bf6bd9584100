"""Argument checks shared by the Lua globals and the spec parsers, so misuse errors read the same everywhere.

Each raises `LuaApiError("<fname>: <what> must be ..., got <Lua type>")` (lua-api.md §1.7); `example`
adds ` (e.g. <example>)` for the globals whose messages show one. Layer 2, so workflows/spec.py and
agents/spec.py use it as well as the bindings.
"""

from __future__ import annotations

from typing import Any, cast

from llmspell.script.bridge import check_type


def _hint(example: str | None) -> str:
    return f" (e.g. {example})" if example is not None else ""


def need_str(v: Any, fname: str, what: str, example: str | None = None) -> str:
    """`v` if it is a string."""
    return cast(str, check_type(v, "string", fname, what, _hint(example)))


def need_int(v: Any, fname: str, what: str) -> int:
    """`v` as an int if it is an integer (a float with no fraction counts, as in Lua)."""
    return cast(int, check_type(v, "integer", fname, what))


def need_number(v: Any, fname: str, what: str) -> int | float:
    """`v` if it is a number (not a boolean)."""
    return cast("int | float", check_type(v, "number", fname, what))
