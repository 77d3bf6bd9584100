"""Terminal debugger commands (break, delete, list, step, next, finish, continue, locals, backtrace,
frame, print, watch), shared by `llmspell debug --break-at` and the REPL. Runs on the Lua thread."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from llmspell.debug.breakpoints import SourceBreakpoint
from llmspell.debug.coordinator import DebugCoordinator, DebugError, Stop

HELP = """\
debugger commands:
  break FILE:LINE [if COND]   set a breakpoint (b)      delete [N]     remove one or all breakpoints
  list                        source around the line    watch EXPR     show EXPR at every stop
  step (s)  next (n)  finish  step in / over / out      continue (c)   run to the next breakpoint
  locals                      variables of the frame    backtrace (bt) Lua frames
  frame N                     select frame N            print EXPR (p) evaluate in the frame
  quit                        stop the script
"""

_RESUME = {"step": "in", "s": "in", "next": "over", "n": "over", "finish": "out",
           "continue": "continue", "c": "continue"}


@dataclass
class _Bp:
    id: int
    path: str
    line: int
    condition: str | None


class DebugConsole:
    """Line-oriented debugger front end over a DebugCoordinator."""

    def __init__(self, coord: DebugCoordinator, read_line: Callable[[str], str | None],
                 write: Callable[[str], None]) -> None:
        self.coord = coord
        self.read_line = read_line
        self.write = write
        self.frame_index = 0
        self.watches: list[str] = []
        self._bps: list[_Bp] = []
        self._next_id = 0
        coord.stop_handler = self.on_stop

    # ------------------------------------------------------------ breakpoints
    def add_breakpoint(self, spec: str) -> None:
        cond = None
        if " if " in spec:
            spec, cond = spec.split(" if ", 1)
        file, sep, line = spec.strip().rpartition(":")
        if not sep or not line.isdigit():
            raise DebugError("usage: break FILE:LINE [if CONDITION]")
        path = os.path.normpath(os.path.abspath(file))
        self._next_id += 1
        self._bps.append(_Bp(self._next_id, path, int(line), cond))
        result = self._sync(path)
        mine = [b for b in result if b.requested_line == int(line)]
        if mine and mine[0].verified:
            self.write(f"breakpoint {self._next_id} at {os.path.basename(path)}:{mine[0].line}\n")
        elif mine:
            self.write(f"breakpoint {self._next_id} pending: {mine[0].message}\n")

    def delete(self, arg: str) -> None:
        if arg:
            paths = {b.path for b in self._bps if str(b.id) == arg}
            if not paths:
                raise DebugError(f"no breakpoint {arg}")
            self._bps = [b for b in self._bps if str(b.id) != arg]
        else:
            paths = {b.path for b in self._bps}
            self._bps = []
        for p in paths:
            self._sync(p)

    def _sync(self, path: str) -> list:  # type: ignore[type-arg]
        reqs = [SourceBreakpoint(b.line, b.condition) for b in self._bps if b.path == path]
        return self.coord.set_breakpoints(path, reqs)

    # ------------------------------------------------------------ the stop
    def on_stop(self, st: Stop) -> None:
        """Called on the Lua thread at each stop: prompt until a resume command."""
        self.frame_index = 0
        self._where(st.reason)
        for w in self.watches:
            self._print_expr(w, prefix=f"watch {w} = ")
        while True:
            line = self.read_line("(dbg) ")
            if line is None:
                self.coord.resume("continue")
                return
            try:
                if self.command(line):
                    return
            except DebugError as e:
                self.write(f"error: {e}\n")

    def command(self, line: str) -> bool:
        """Run one command; True when it resumed the script."""
        cmd, _, arg = line.strip().partition(" ")
        arg = arg.strip()
        if not cmd:
            return False
        if cmd in _RESUME:
            self.coord.resume(_RESUME[cmd])
            return True
        if cmd in ("break", "b"):
            self.add_breakpoint(arg)
        elif cmd == "delete":
            self.delete(arg)
        elif cmd == "watch":
            if not arg:
                raise DebugError("usage: watch EXPR")
            self.watches.append(arg)
            if self.coord.stopped is not None:
                self._print_expr(arg, prefix=f"watch {arg} = ")
        elif cmd in ("print", "p"):
            self._print_expr(arg)
        elif cmd in ("locals", "info"):
            self._locals()
        elif cmd in ("backtrace", "bt", "where"):
            self._backtrace()
        elif cmd in ("frame", "f"):
            frames, _ = self.coord.stack_trace()
            if not arg.isdigit() or int(arg) >= len(frames):
                raise DebugError(f"frame must be 0..{len(frames) - 1}")
            if frames[int(arg)].what == "resume":
                raise DebugError(f"frame {arg} marks where a coroutine was resumed; pick the frame below it")
            self.frame_index = int(arg)
            self._where(None)
        elif cmd in ("list", "l"):
            self._list()
        elif cmd in ("quit", "q"):
            self.coord.terminate("quit from the debugger")
            if self.coord.stopped is not None:
                self.coord.resume("continue")
            return True
        elif cmd in ("help", "h", "?"):
            self.write(HELP)
        else:
            raise DebugError(f"unknown command '{cmd}' (type help)")
        return False

    # ------------------------------------------------------------ display
    def _frame(self):  # type: ignore[no-untyped-def]
        frames, _ = self.coord.stack_trace()
        if not frames:
            raise DebugError("no Lua frame")
        return frames[min(self.frame_index, len(frames) - 1)]

    def _where(self, reason: str | None) -> None:
        fr = self._frame()
        where = os.path.basename(fr.path) if fr.path else fr.source.lstrip("=@")
        head = f"stopped ({reason}) " if reason else ""
        self.write(f"{head}at {where}:{fr.line} in {fr.name}\n")
        text = _source_line(fr.path, fr.line)
        if text is not None:
            self.write(f"{fr.line:>5}  {text}\n")

    def _list(self) -> None:
        fr = self._frame()
        if not fr.path:
            raise DebugError("no source file for this frame")
        for n in range(max(1, fr.line - 4), fr.line + 5):
            text = _source_line(fr.path, n)
            if text is None:
                break
            mark = "->" if n == fr.line else "  "
            self.write(f"{n:>5} {mark} {text}\n")

    def _locals(self) -> None:
        fr = self._frame()
        ref = self.coord.scopes(fr.id)[0]["variablesReference"]
        for v in self.coord.variables(ref):
            self.write(f"  {v['name']} = {v['value']}\n")

    def _backtrace(self) -> None:
        frames, _ = self.coord.stack_trace()
        for i, fr in enumerate(frames):
            mark = "*" if i == self.frame_index else " "
            if fr.what == "resume":
                self.write(f"{mark}#{i} -- {fr.name} --\n")
                continue
            where = os.path.basename(fr.path) if fr.path else fr.source.lstrip("=@")
            self.write(f"{mark}#{i} {fr.name} at {where}:{fr.line}\n")

    def _print_expr(self, expr: str, prefix: str = "") -> None:
        if not expr:
            raise DebugError("usage: print EXPR")
        frame_id = self._frame().id if self.coord.stopped is not None else None
        try:
            r = self.coord.evaluate(expr, frame_id, "repl")
        except DebugError as e:
            self.write(f"{prefix}<error: {e}>\n")
            return
        self.write(f"{prefix}{r['result']}\n")


def _source_line(path: str | None, line: int) -> str | None:
    if not path:
        return None
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    return lines[line - 1] if 0 < line <= len(lines) else None
