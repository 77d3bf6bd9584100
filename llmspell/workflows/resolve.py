"""Workflow-side placeholder resolution (§5.5 name lookup order and dotted forms).

Rendering itself is the shared filler `llmspell.script.placeholders.render`; this module only
answers "what does `{{name}}` mean inside this step".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from llmspell.script.placeholders import render, to_json, walk

LOOP_VARS = ("loop_value", "loop_index", "iteration")


def input_text(inp: Mapping[str, Any]) -> str:
    """The workflow input text: input.input, else input.text, else the JSON of the table ("" if empty)."""
    v = inp.get("input")
    if isinstance(v, str):
        return v
    v = inp.get("text")
    if isinstance(v, str):
        return v
    return to_json(dict(inp)) if inp else ""


@dataclass
class Scope:
    """What placeholders in one step can see."""

    inp: Mapping[str, Any]
    outputs: dict[str, str]
    shared: Mapping[str, Any]
    loop: dict[str, Any] = field(default_factory=dict)
    text: str | None = None

    def input_text(self) -> str:
        if self.text is None:
            self.text = input_text(self.inp)
        return self.text

    def child(self, outputs: dict[str, str] | None = None, loop: dict[str, Any] | None = None) -> Scope:
        return Scope(self.inp, self.outputs if outputs is None else outputs, self.shared,
                     dict(self.loop) if loop is None else loop, self.text)

    def lookup(self, name: str) -> tuple[bool, Any]:
        """Resolve a bare or dotted placeholder name by the §5.5 order."""
        found, value = self._bare(name)
        if found:
            return found, value
        head, _, rest = name.partition(".")
        if not rest:
            return False, None
        parts = rest.split(".")
        if head == "input":
            return walk(self.inp, parts)
        if head in ("steps", "outputs"):
            step = parts[0]
            if step not in self.outputs:
                return False, None
            return walk(self.outputs[step], parts[1:]) if len(parts) > 1 else (True, self.outputs[step])
        found, value = self._bare(head)
        if not found:
            return False, None
        return walk(value, parts)

    def _bare(self, name: str) -> tuple[bool, Any]:
        if name in LOOP_VARS and name in self.loop:
            return True, self.loop[name]
        if name == "input":
            return True, self.input_text()
        if name in self.outputs:
            return True, self.outputs[name]
        if name in self.inp:
            return True, self.inp[name]
        if name in self.shared:
            return True, self.shared[name]
        return False, None

    def fill(self, value: Any) -> Any:
        """Fill placeholders in a string, or in every string of a table, recursively."""
        if isinstance(value, str):
            return render(value, self.lookup)
        if isinstance(value, dict):
            return {k: self.fill(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.fill(v) for v in value]
        return value
