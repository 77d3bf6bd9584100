"""How a value that came back from Lua is shown as text: one set of rules for every front end.

Lua's own rules for scalars (print's number format: integral floats without a fraction, others
`%.14g`), tables as JSON with sorted keys: indented for display (kernel results, the REPL, user
expressions), compact inside prompts (placeholders). Pure Python on converted values, so the
engine's layer can use it; the Lua shell (script/shell.py) is its front door for the interfaces.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

import orjson

#: Largest float magnitude shown as an integer (Lua's integer range, 2**63).
_INT_LIMIT = 2.0**63


def render_number(v: int | float) -> str:
    """A Lua number as print shows it: integers in decimal, floats `%.14g`, nan and +-inf spelled out."""
    if isinstance(v, int):
        return str(v)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if v.is_integer() and abs(v) < _INT_LIMIT:
        return str(int(v))
    return f"{v:.14g}"


def to_json(value: Any, *, indent: bool = False) -> str:
    """JSON with sorted keys: compact (the wire form used inside prompts) or indented by two spaces."""
    option = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS | (orjson.OPT_INDENT_2 if indent else 0)
    try:
        return orjson.dumps(value, option=option).decode("utf-8")
    except TypeError:
        if indent:
            return str(value)
        return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def render_value(v: Any, *, compact: bool = False, nil: str = "nil") -> str:
    """One value as text: nil, booleans, numbers, strings as is, tables as JSON (indented unless compact)."""
    if v is None:
        return nil
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return render_number(v)
    if isinstance(v, str):
        return v
    if isinstance(v, dict | list):
        return to_json(v, indent=not compact)
    return str(v)


def render_values(values: Iterable[Any]) -> str:
    """Several results of one expression as the Lua REPL shows them: tab-separated."""
    return "\t".join(render_value(v) for v in values)
