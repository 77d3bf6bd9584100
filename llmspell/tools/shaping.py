"""The §4.2 result shape: turn a tool's output text, response and metadata into the Lua result table."""

from __future__ import annotations

from typing import Any

import orjson

from llmspell.tools.base import ToolOutput

_FLATTEN_KEYS = ("success", "result", "operation")


def _parse(text: str) -> tuple[bool, Any]:
    s = text.strip()
    if not s or s[0] not in '{["-0123456789tfn':
        return False, None
    try:
        return True, orjson.loads(s)
    except orjson.JSONDecodeError:
        return False, None


def shape_result(tool: str, out: ToolOutput, duration_ms: int, operation: str | None) -> dict[str, Any]:
    """Build R per §4.2 (flatten JSON objects with success/result/operation, else `data`)."""
    text = out.text
    r: dict[str, Any] = {}
    parsed_ok, parsed = _parse(text)
    flattened = False
    if parsed_ok and isinstance(parsed, dict) and any(k in parsed for k in _FLATTEN_KEYS):
        r.update(parsed)
        r["_raw_text"] = text
        flattened = True
    elif parsed_ok and parsed is not None:
        r["data"] = parsed
    if "text" not in r or not flattened:
        r["text"] = text
    if flattened and isinstance(parsed, dict) and "success" in parsed:
        r["success"] = bool(parsed["success"])
    elif out.response is not None and "success" in out.response:
        r["success"] = bool(out.response["success"])
    else:
        r["success"] = True
    meta: dict[str, Any] = {"tool": tool}
    if operation is not None:
        meta["operation"] = operation
    meta["duration_ms"] = int(duration_ms)
    meta["execution_time_ms"] = int(duration_ms)
    for k, v in out.metadata.items():
        meta.setdefault(k, v)
    if out.response is not None and tool == "file_operations":
        meta["response"] = out.response
    r["metadata"] = meta
    if out.media:
        r["media"] = out.media
    return r
