"""text_manipulator (§19.3): case, replace, substring, split/join, sanitize, wrap and friends."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from typing import Any

import orjson

from llmspell.tools.base import Tool, ToolContext, ToolOutput, ToolParamError, json_text, type_label

_NAME = "text_manipulator"
_TAG_RE = re.compile(r"<[^>]*>")
_CTRL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_WORD_RE = re.compile(r"[A-Z]+(?=[A-Z][a-z0-9])|[A-Z]?[a-z0-9]+|[A-Z]+|[0-9]+")


def _words(s: str) -> list[str]:
    out: list[str] = []
    for chunk in re.split(r"[^0-9A-Za-z]+", s):
        out.extend(_WORD_RE.findall(chunk))
    return out


def _int_opt(opts: dict[str, Any], key: str, default: int) -> int:
    v = opts.get(key, default)
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, str) and v.lstrip("-").isdigit():
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int):
        raise ToolParamError(f"{_NAME}: option '{key}' must be an integer, got {type(v).__name__}")
    return v


def _substring(s: str, opts: dict[str, Any]) -> str:
    n = len(s)
    i = _int_opt(opts, "start", 1)
    j = _int_opt(opts, "end", n)
    if i < 0:
        i = max(n + i + 1, 1)
    elif i == 0:
        i = 1
    if j < 0:
        j = n + j + 1
    elif j > n:
        j = n
    return s[i - 1:j] if i <= j else ""


def _replace(s: str, opts: dict[str, Any]) -> str:
    old = opts.get("from", opts.get("pattern"))
    if not isinstance(old, str) or old == "":
        raise ToolParamError(f"{_NAME}: replace needs options.from (alias pattern), a non-empty string")
    new = opts.get("to", opts.get("replacement", ""))
    new = "" if new is None else str(new)
    count = opts.get("count")
    cnt = int(count) if isinstance(count, int | float) and not isinstance(count, bool) else 0
    if opts.get("regex"):
        try:
            return re.sub(old, new, s, count=max(cnt, 0))
        except re.error as e:
            raise ToolParamError(f"{_NAME}: invalid regex in options.from: {e}") from None
    return s.replace(old, new, cnt if cnt > 0 else -1)


def _split(s: str, opts: dict[str, Any]) -> list[str]:
    d = opts.get("delimiter")
    if d is None or d == "":
        return s.split()
    return s.split(str(d))


def _join(value: Any, opts: dict[str, Any]) -> str:
    items = value
    if isinstance(value, str):
        try:
            items = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise ToolParamError(f"{_NAME}: join needs input as a JSON array string or a Lua array") from None
    if isinstance(items, dict) and not items:
        items = []
    if not isinstance(items, list):
        raise ToolParamError(f"{_NAME}: join needs input as a JSON array string or a Lua array")
    d = opts.get("delimiter", " ")
    return str(" " if d is None else d).join(_text(x) for x in items)


def _text(x: Any) -> str:
    if isinstance(x, str):
        return x
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, float) and x.is_integer():
        return str(int(x))
    if isinstance(x, dict | list):
        return json_text(x)
    return str(x)


def _truncate(s: str, opts: dict[str, Any]) -> str:
    length = _int_opt(opts, "length", 100)
    suffix = str(opts.get("suffix", "..."))
    if len(s) <= length:
        return s
    keep = max(length - len(suffix), 0)
    return s[:keep] + suffix


def _indent(s: str, opts: dict[str, Any]) -> str:
    prefix = opts.get("prefix")
    if prefix is None:
        prefix = " " * _int_opt(opts, "spaces", 4)
    return "\n".join(str(prefix) + line if line.strip() else line for line in s.split("\n"))


def _camel(s: str) -> str:
    w = _words(s)
    return (w[0].lower() + "".join(x.capitalize() for x in w[1:])) if w else ""


_OPS: dict[str, Callable[[str, dict[str, Any]], Any]] = {
    "uppercase": lambda s, o: s.upper(),
    "lowercase": lambda s, o: s.lower(),
    "reverse": lambda s, o: s[::-1],
    "trim": lambda s, o: s.strip(),
    "replace": _replace,
    "substring": _substring,
    "split": _split,
    "snake_case": lambda s, o: "_".join(x.lower() for x in _words(s)),
    "camel_case": lambda s, o: _camel(s),
    "pascal_case": lambda s, o: "".join(x.capitalize() for x in _words(s)),
    "sanitize": lambda s, o: _CTRL_RE.sub("", _TAG_RE.sub("", s)),
    "truncate": _truncate,
    "indent": _indent,
    "dedent": lambda s, o: textwrap.dedent(s),
    "normalize_whitespace": lambda s, o: " ".join(s.split()),
    "word_wrap": lambda s, o: "\n".join(
        textwrap.fill(p, width=max(_int_opt(o, "width", 80), 1), break_long_words=False, break_on_hyphens=False)
        if p.strip() else p for p in s.split("\n")),
}

OPERATIONS: tuple[str, ...] = (*_OPS, "join")


class TextManipulator(Tool):
    """text_manipulator: one string operation per call, result per the §19.1 output contract."""

    def run(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        op_raw = params.get("operation")
        if not isinstance(op_raw, str):
            raise ToolParamError(f"{_NAME}: missing required parameter 'operation' (one of: {', '.join(OPERATIONS)})")
        op = op_raw.lower()
        opts = params.get("options") or {}
        if not isinstance(opts, dict):
            raise ToolParamError(f"{_NAME}: parameter 'options' must be a table, got {type_label(opts)}")
        value = params.get("input")
        if op == "join":
            result: Any = _join(value, opts)
            original = value if isinstance(value, str) else json_text(value)
        else:
            fn = _OPS.get(op)
            if fn is None:
                raise ToolParamError(f"{_NAME}: invalid operation '{op_raw}' (allowed: {', '.join(OPERATIONS)})")
            if isinstance(value, int | float) and not isinstance(value, bool):
                value = _text(value)
            if not isinstance(value, str):
                raise ToolParamError(f"{_NAME}: parameter 'input' must be a string, got {type_label(value)}")
            original = value
            result = fn(value, opts)
        result_len = len(result) if isinstance(result, str | list) else len(json_text(result))
        body = {"operation": op, "success": True,
                "result": {"result": result, "operation": op, "original_length": len(original),
                           "result_length": result_len}}
        return ToolOutput(json_text(body), metadata={})
