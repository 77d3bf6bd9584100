"""The Lua shell: compile a cell, is_complete, complete, inspect, help and render, for every front end.

Like IPython's InteractiveShell under ipykernel and the terminal: the kernel's handlers, the REPL
(in-process) and `?name` all go through one `LuaShell` bound to a `ScriptRuntime`, so a cell
compiles, completes and renders the same everywhere. Its Lua side is shell.lua (package data),
compiled once per runtime. Every method runs on the Lua thread (the caller's).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmspell.script import docs
from llmspell.script.display import render_value, render_values
from llmspell.script.engine import ScriptError, ScriptRuntime

log = logging.getLogger("llmspell.script.shell")

SHELL_LUA = Path(__file__).with_name("shell.lua").read_text(encoding="utf-8")
CHUNK_NAME = "=llmspell.shell"

#: `exit` / `quit` (optionally called): a console asks to leave (they are not Lua statements).
EXIT_RE = re.compile(r"^\s*(exit|quit)(?:\s*\(\s*\))?\s*$")
#: `?name` or `name?`: show the help of `name` (IPython's pager syntax).
PAGER_RE = re.compile(r"^\s*(?:\?\s*([A-Za-z_][\w.:]*)|([A-Za-z_][\w.:]*)\s*\?)\s*$")
_COMPLETE_RE = re.compile(r"(?:([A-Za-z_]\w*(?:[.:][A-Za-z_]\w*)*)([.:]))?([A-Za-z_]\w*)?$")
_NAME_CHARS = re.compile(r"[\w.:]")
_LOCAL_RE = re.compile(r"\b(?:local\s+function|local|function)\s+([A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)*)")
_BLOCK_TOKENS = re.compile(r"--\[(=*)\[.*?\]\1\]|--[^\n]*|\[(=*)\[.*?\]\2\]|\"(?:\\.|[^\"\\\n])*\"|"
                           r"'(?:\\.|[^'\\\n])*'|\b(function|do|repeat|if|end|until)\b|([{}()])", re.S)

__all__ = ["LuaShell", "Completeness", "Completions", "render_value", "render_values", "pager_name",
           "exit_word"]


@dataclass(frozen=True)
class Completeness:
    """is_complete's answer: `complete`, `incomplete` (with the indent for the next line) or `invalid`."""

    status: str
    indent: str = ""

    def as_reply(self) -> dict[str, Any]:
        """The content of a Jupyter is_complete_reply."""
        return {"status": self.status, "indent": self.indent} if self.status == "incomplete" else {"status": self.status}


@dataclass(frozen=True)
class Completions:
    """Names that complete the word before the cursor, which starts at `start` (a code offset)."""

    matches: list[str]
    start: int
    end: int


def pager_name(code: str) -> str | None:
    """The name in a `?name` / `name?` cell, else None."""
    m = PAGER_RE.match(code)
    return (m.group(1) or m.group(2)) if m else None


def exit_word(code: str) -> str | None:
    """`exit` or `quit` when the cell is only that word (optionally called), else None."""
    m = EXIT_RE.match(code)
    return m.group(1) if m else None


class LuaShell:
    """Language services over one ScriptRuntime (its Lua helpers are compiled on first use)."""

    def __init__(self, rt: ScriptRuntime) -> None:
        self.rt = rt
        self._helpers: Any = None

    def _lua(self) -> Any:
        if self._helpers is None:
            self._helpers = self.rt.compile(SHELL_LUA, CHUNK_NAME)()
        return self._helpers

    # ---------------------------------------------------------------- compile
    def compile_cell(self, code: str, chunkname: str) -> Any:
        """Like the Lua REPL: `return <code>` first, then the code; a cell whose last line is an
        expression shows it (`return` is put before that line only, so line numbers stay exact).

        Expression results that are only io.stdout/io.stderr (from `io.write(...)`) are dropped.
        Raises the ScriptError of compiling the code as written."""
        expression = self._lua().expression
        try:
            return expression(self.rt.compile("return " + code, chunkname))
        except ScriptError:
            pass
        try:
            return self.rt.compile(code, chunkname)
        except ScriptError as first:
            head, sep, last = code.rstrip().rpartition("\n")
            if sep and last.strip() and not last.lstrip().startswith(("--", "return", "local")):
                try:
                    return expression(self.rt.compile(f"{head}\nreturn {last}", chunkname))
                except ScriptError:
                    pass
            raise first

    def is_complete(self, code: str) -> Completeness:
        """Lua's own rule (lua.c): a load error that ends at <eof> means more input is needed."""
        if not code.strip():
            return Completeness("complete")
        try:
            self.rt.compile("return " + code, "=is_complete")
            return Completeness("complete")
        except ScriptError:
            pass
        try:
            self.rt.compile(code, "=is_complete")
            return Completeness("complete")
        except ScriptError as e:
            if e.message.rstrip().endswith("<eof>"):
                return Completeness("incomplete", "  " * max(block_depth(code), 0))
            return Completeness("invalid")

    # --------------------------------------------------------------- complete
    def complete(self, code: str, cursor: int | None = None) -> Completions:
        """Globals, fields (`a.b.` and methods after `a:`), keywords and the cell's locals at the cursor."""
        cursor = clamp_cursor(code, cursor)
        before = code[:cursor]
        m = _COMPLETE_RE.search(before[-512:])
        if m is None or (m.group(1) is None and m.group(3) is None):
            return Completions([], cursor, cursor)
        path, sep, prefix = m.group(1) or "", m.group(2) or "", m.group(3) or ""
        start = cursor - len(prefix)
        if start > 0 and not path and before[start - 1] in ".:":
            return Completions([], cursor, cursor)  # e.g. after a call: f().x
        found = str(self._lua().complete(path, prefix, sep == ":") or "")
        names = set(found.split("\n")) if found else set()
        if not path:
            names.update(k for k in docs.KEYWORDS if k.startswith(prefix))
            for group in _LOCAL_RE.findall(before[-MAX_CALL_SCAN:]):  # locals declared near the cursor
                names.update(n.strip() for n in group.split(",") if n.strip().startswith(prefix))
        return Completions(sorted(names), start, cursor)

    # ---------------------------------------------------------------- inspect
    def inspect(self, code: str, cursor: int | None = None, detail: int = 0) -> str | None:
        """Help for the name at the cursor, or for the called function inside `f(`...; None if none."""
        cursor = clamp_cursor(code, cursor)
        name = name_at(code, cursor) or call_name(code, cursor)
        return self.help_text(name, detail, missing_ok=True) if name else None

    def help_text(self, name: str, detail: int = 1, missing_ok: bool = False) -> str | None:
        """The Lua API help for `name` and, at detail > 0 or when undocumented, its current value.

        None (or, unless missing_ok, "No documentation for NAME.") when neither exists."""
        doc = docs.lookup(name)
        described = None
        try:
            described = self._lua().describe(name.replace(":", "."))
        except Exception:  # noqa: BLE001 - help never fails a request
            log.debug("describe(%s) failed", name, exc_info=True)
        if doc is None and described is None:
            return None if missing_ok else f"No documentation for {name}."
        parts = [doc] if doc else []
        if described is not None and (detail > 0 or doc is None):
            kind, _, shown = str(described).partition("\n")
            parts.append(f"{name}: {kind} = {shown}")
        return "\n".join(parts)

    # ----------------------------------------------------------------- render
    @staticmethod
    def render(values: Iterable[Any]) -> str:
        """The results of a cell as text (tab-separated; tables as indented JSON)."""
        return render_values(values)


def clamp_cursor(code: str, cursor: int | None) -> int:
    """A cursor offset inside `code`; anything else (missing, negative, past the end) is the end."""
    if not isinstance(cursor, int) or cursor < 0 or cursor > len(code):
        return len(code)
    return cursor


#: Bounds of the text inspect looks at around the cursor (names; the enclosing call).
MAX_NAME_SCAN = 1024
MAX_CALL_SCAN = 65536


def name_at(code: str, cursor: int) -> str:
    """The dotted name under or just before the cursor (for inspect); at most MAX_NAME_SCAN characters."""
    start = cursor
    while start > 0 and cursor - start < MAX_NAME_SCAN and _NAME_CHARS.match(code[start - 1]):
        start -= 1
    end = cursor
    while end < len(code) and end - cursor < MAX_NAME_SCAN and _NAME_CHARS.match(code[end]):
        end += 1
    return code[start:end].strip(".:")


def call_name(code: str, cursor: int) -> str:
    """The function whose call the cursor is in: `print` for `print(` or `print("a", |`.

    Looks back at most MAX_CALL_SCAN characters, so a huge request cannot hold the shell."""
    depth = 0
    i = min(cursor, len(code)) - 1
    floor = max(-1, i - MAX_CALL_SCAN)
    quote = ""
    while i > floor:
        ch = code[i]
        if quote:
            if ch == quote and (i == 0 or code[i - 1] != "\\"):
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in ")]}":
            depth += 1
        elif ch in "([{":
            if depth == 0:
                if ch != "(":
                    return ""
                return name_at(code, len(code[:i].rstrip()))
            depth -= 1
        i -= 1
    return ""


def block_depth(code: str) -> int:
    """Open blocks and brackets at the end of `code` (indent for an incomplete cell)."""
    depth = 0
    for m in _BLOCK_TOKENS.finditer(code):
        word, bracket = m.group(3), m.group(4)
        if word in ("function", "do", "repeat", "if"):
            depth += 1
        elif word in ("end", "until"):
            depth -= 1
        elif bracket in ("{", "("):
            depth += 1
        elif bracket in ("}", ")"):
            depth -= 1
    return depth
