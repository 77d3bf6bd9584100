"""Breakpoints as the debugger holds them: the requests, line resolution, hit counts, one table per session.

Pure Python: the coordinator asks Lua whether a condition compiles (the `check_condition` callable)
and pushes the table's lines to its Lua hook.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: A Lua name (variables, fields, function breakpoints).
IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HIT = re.compile(r"^\s*(==|>=|>|<=|<|%)?\s*(\d+)\s*$")
_NO_CODE = re.compile(r"^\s*(?:(?:end|else|do|then|repeat|\}|\)|\])[\s,;)}\]]*)*$")
_UNAVAILABLE = "source not available yet: the breakpoint is kept for this path"

#: Asks Lua whether a condition compiles: the error text, or None when it does.
ConditionCheck = Callable[[str], "str | None"]


@dataclass
class SourceBreakpoint:
    """What a client asks for at one line."""

    line: int
    condition: str | None = None
    hit_condition: str | None = None
    log_message: str | None = None


@dataclass
class FunctionBreakpoint:
    """A client's request to stop when a function of that name is called."""

    name: str
    condition: str | None = None
    hit_condition: str | None = None


@dataclass
class Breakpoint:
    """A breakpoint as the debugger holds it (line is the actual line after moving)."""

    id: int
    path: str
    line: int
    requested_line: int
    verified: bool
    message: str | None = None
    condition: str | None = None
    hit_condition: str | None = None
    log_message: str | None = None
    hits: int = 0
    #: The path as the client named it (breakpoints are keyed by the real path, symlinks resolved).
    client_path: str | None = None

    def as_dap(self) -> dict[str, Any]:
        path = self.client_path or self.path
        d: dict[str, Any] = {"id": self.id, "verified": self.verified}
        if self.line > 0:
            d["line"] = self.line
            d["source"] = {"path": path, "name": os.path.basename(path)}
        if self.message:
            d["message"] = self.message
        return d


class BreakpointTable:
    """Source breakpoints keyed by source key and line, function breakpoints by name; ids kept on update."""

    def __init__(self) -> None:
        self.by_source: dict[str, dict[int, list[Breakpoint]]] = {}
        self.functions: dict[str, Breakpoint] = {}
        self._ids = 0

    def at(self, key: str, line: int) -> list[Breakpoint] | None:
        return self.by_source.get(key, {}).get(line)

    def clear(self) -> None:
        self.by_source.clear()

    def set_source(self, key: str, client_path: str, requested: list[SourceBreakpoint], text: str | None,
                   active: set[int] | None, check_condition: ConditionCheck) -> list[Breakpoint]:
        """Replace the breakpoints of one source; lines without code move to the next line with code.

        `active` are the lines with instructions (None: guess from `text`); `text` None means the
        source is not readable yet (the breakpoints are kept unverified). Several requests that land on
        one line all stay; a request at the same (requested, actual) line keeps its id and hit count.
        """
        lines = text.splitlines() if text is not None else None
        old = {(bp.requested_line, bp.line): bp for lst in self.by_source.get(key, {}).values() for bp in lst}
        result: list[Breakpoint] = []
        new: dict[int, list[Breakpoint]] = {}
        for sb in requested:
            line, verified, msg = sb.line, True, None
            if lines is None:
                verified, msg = False, _UNAVAILABLE
            else:
                moved = _next_active(active, sb.line) if active is not None else _code_line(lines, sb.line)
                if moved is None:
                    verified, msg = False, f"no code at or after line {sb.line}"
                else:
                    line = moved
            if verified and sb.condition:
                err = check_condition(sb.condition)
                if err:
                    verified, msg = False, f"condition does not compile: {err}"
            if verified and sb.hit_condition and not _HIT.match(sb.hit_condition):
                verified, msg = False, (f"hit condition {sb.hit_condition!r} is not a count: use N, ==N, >N, "
                                        ">=N, <N, <=N or %N")
            prev = old.pop((sb.line, line), None)
            bp = Breakpoint(prev.id if prev is not None else self._next_id(), key, line, sb.line, verified, msg,
                            sb.condition or None, sb.hit_condition or None, sb.log_message, client_path=client_path)
            if prev is not None:
                bp.hits = prev.hits
            result.append(bp)
            if verified or msg == _UNAVAILABLE:
                new.setdefault(line, []).append(bp)
        if new:
            self.by_source[key] = new
        else:
            self.by_source.pop(key, None)
        return result

    def set_functions(self, requested: list[FunctionBreakpoint], check_condition: ConditionCheck) -> list[Breakpoint]:
        """Replace the function breakpoints; `obj:method` and `M.f` are matched by their last part."""
        out: list[Breakpoint] = []
        new: dict[str, Breakpoint] = {}
        for fb in requested:
            name = re.split(r"[.:]", fb.name.strip())[-1] if fb.name.strip() else ""
            verified, msg = True, None
            if not IDENT.match(name):
                verified, msg = False, f"{fb.name!r} is not a function name"
            elif fb.condition and (err := check_condition(fb.condition)):
                verified, msg = False, f"condition does not compile: {err}"
            elif fb.hit_condition and not _HIT.match(fb.hit_condition):
                verified, msg = False, f"hit condition {fb.hit_condition!r} is not a count"
            prev = self.functions.get(name)
            bp = Breakpoint(prev.id if prev is not None else self._next_id(), "", 0, 0, verified, msg,
                            fb.condition or None, fb.hit_condition or None)
            out.append(bp)
            if verified:
                new[name] = bp
        self.functions = new
        return out

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids


def hit_matches(cond: str, hits: int) -> bool:
    """Whether a hit condition (N, ==N, >N, >=N, <N, <=N, %N) holds at this hit count."""
    m = _HIT.match(cond)
    if not m:
        return True
    op, n = m.group(1) or "==", int(m.group(2))
    return {"==": hits == n, ">=": hits >= n, ">": hits > n, "<=": hits <= n, "<": hits < n,
            "%": n > 0 and hits % n == 0}[op]


def read_source(path: str) -> str | None:
    """A source file's text (undecodable bytes replaced), None when it cannot be read."""
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _next_active(active: set[int], line: int) -> int | None:
    """The first line at or after `line` with an instruction."""
    later = [n for n in active if n >= line]
    return min(later) if later else None


def _code_line(lines: list[str], line: int) -> int | None:
    """The first line at or after `line` that holds code (not blank, comment or a closing keyword)."""
    in_block = False
    status: list[bool] = []
    for text in lines:
        s = text.strip()
        if in_block:
            status.append(False)
            if "]]" in s:
                in_block = False
            continue
        if s.startswith("--[[") or s.startswith("--[=["):
            status.append(False)
            in_block = "]]" not in s[4:]
            continue
        if s.startswith("--") or not s or _NO_CODE.match(s):
            status.append(False)
            continue
        status.append(True)
    for i in range(max(line, 1), len(status) + 1):
        if status[i - 1]:
            return i
    return None
