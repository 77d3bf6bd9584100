"""The `{{placeholder}}` filler of lua-api.md §5.5, shared by workflows and `Utils.render`.

Pure Python, no Lua: `render(template, resolve)` fills each `{{ name }}` in one pass (filled text is
never scanned again) using a resolver that says whether a name is known and what its value is.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from llmspell.script import display

log = logging.getLogger("llmspell.script.placeholders")

#: `{{name}}` with optional spaces inside the braces; names never contain braces.
PLACEHOLDER_RE = re.compile(r"\{\{\s*([^{}\s](?:[^{}]*?[^{}\s])?)\s*\}\}")

Resolver = Callable[[str], tuple[bool, Any]]


def render_value(value: Any) -> str:
    """Render a filled value: the display rules of script/display.py, nil as "" and tables as compact JSON."""
    if value is None:
        return ""
    if isinstance(value, str | bool | int | float):
        return display.render_value(value)
    return to_json(value)


def to_json(value: Any) -> str:
    """Compact JSON with sorted keys (the §1.8 wire form used inside prompts)."""
    return display.to_json(value)


def placeholders(template: str) -> list[str]:
    """The placeholder names in a template, in order of appearance."""
    return [m.group(1) for m in PLACEHOLDER_RE.finditer(template)]


def render(template: str, resolve: Resolver) -> str:
    """Fill every `{{name}}` for which `resolve(name)` returns (True, value); leave the rest verbatim."""
    if "{{" not in template:
        return template

    def fill(m: re.Match[str]) -> str:
        name = m.group(1)
        try:
            found, value = resolve(name)
        except Exception:  # noqa: BLE001 - a failing resolver leaves the placeholder as written
            log.debug("placeholder {{%s}}: resolver failed", name, exc_info=True)
            found, value = False, None
        if not found or value is None:
            log.debug("placeholder {{%s}} is unresolved; left verbatim", name)
            return m.group(0)
        return render_value(value)

    return PLACEHOLDER_RE.sub(fill, template)


def walk(value: Any, parts: list[str]) -> tuple[bool, Any]:
    """Follow `parts` into dicts/lists, or into a string that parses as a JSON object (§5.5 dotted forms)."""
    node = value
    for part in parts:
        if isinstance(node, str):
            parsed = parse_json_object(node)
            if parsed is None:
                return False, None
            node = parsed
        if isinstance(node, Mapping):
            if part in node:
                node = node[part]
                continue
            return False, None
        if isinstance(node, list):
            try:
                idx = int(part)
            except ValueError:
                return False, None
            if 1 <= idx <= len(node):
                node = node[idx - 1]
                continue
            return False, None
        return False, None
    return True, node


def parse_json_object(text: str) -> dict[str, Any] | None:
    """The dict a string parses to when it is a JSON object, else None."""
    s = text.strip()
    if not s.startswith("{"):
        return None
    try:
        value = orjson.loads(s)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def mapping_resolver(variables: Mapping[str, Any]) -> Resolver:
    """A resolver over one table: `name` is a key, `name.a.b` walks into it (Utils.render)."""

    def resolve(name: str) -> tuple[bool, Any]:
        if name in variables:
            return True, variables[name]
        head, _, rest = name.partition(".")
        if rest and head in variables:
            return walk(variables[head], rest.split("."))
        return False, None

    return resolve
