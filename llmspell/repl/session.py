"""The REPL itself: dot commands, debug commands and Lua input, independent of the terminal library."""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable
from typing import Any

from llmspell.repl.backends import Backend, LocalBackend
from llmspell.script.shell import pager_name

HELP = """\
Enter Lua statements or expressions (an expression's value is printed). Multi-line input continues
until the chunk is complete. Ctrl-C interrupts a running statement, Ctrl-D exits.
  .help [NAME]     this help, or NAME's (Agent, Tool.invoke, ...; the Lua API reference; also ?NAME)
  .exit            leave the REPL
  .load FILE       run FILE in this session   .run FILE [ARGS] run FILE as a script (ARGS/arg)
  .save FILE       save this session's input  .vars            user globals and their values
  .reset           fresh Lua state            .perf            toggle timing of each statement
debugger (local sessions): break FILE:LINE [if COND], delete [N], watch EXPR; at a stop also
  step, next, finish, continue, locals, backtrace, frame N, print EXPR, list
"""

DEBUG_WORDS = frozenset({"break", "b", "delete", "watch", "step", "s", "next", "n", "finish", "continue", "c",
                         "locals", "backtrace", "bt", "frame", "print", "p", "list"})


class ExitRepl(Exception):
    """.exit was entered."""


class ReplSession:
    """Interprets one complete input at a time; output goes through write/write_err."""

    def __init__(self, backend: Backend, write: Callable[[str], None], write_err: Callable[[str], None],
                 read_line: Callable[[str], str | None]) -> None:
        self.backend = backend
        self.write, self.write_err = write, write_err
        self.read_line = read_line
        self.inputs: list[str] = []
        self.perf = False
        self.console: Any = None
        self.count = 0
        if isinstance(backend, LocalBackend):
            backend.on_runtime.append(lambda rt: self._drop_debugger())

    # ------------------------------------------------------------------ input
    def handle(self, text: str) -> None:
        """Run one complete input (a dot command, a debug command, or Lua code)."""
        stripped = text.strip()
        if not stripped:
            return
        if stripped.startswith("."):
            self._dot(stripped)
            return
        name = pager_name(stripped)
        if name is not None:
            self._help(name)
            return
        word = stripped.split(None, 1)[0]
        if word in DEBUG_WORDS and self._looks_like_command(stripped):
            self._debug(stripped)
            return
        self.inputs.append(text)
        self.count += 1
        outcome = self.backend.execute(text, "=stdin")
        if self.perf:
            self.write_err(f"({outcome.wall_ms:.2f} ms)\n")

    def _looks_like_command(self, s: str) -> bool:
        """A debug command is input that is not valid Lua, or a bare debug word naming no Lua global."""
        if self.backend.is_complete(s) != "complete":
            return True
        words = s.split()
        return len(words) == 1 and self._is_unbound(words[0])

    def _is_unbound(self, name: str) -> bool:
        if not isinstance(self.backend, LocalBackend):
            return False
        return self.backend.rt.G[name] is None

    # ------------------------------------------------------------------ dot commands
    def _dot(self, line: str) -> None:
        cmd, _, arg = line.partition(" ")
        arg = arg.strip()
        if cmd == ".help" and arg:
            self._help(arg)
        elif cmd == ".help":
            self.write(HELP)
        elif cmd == ".exit":
            raise ExitRepl
        elif cmd == ".load":
            path = self._need(arg, ".load FILE")
            with open(path, encoding="utf-8") as f:
                code = f.read()
            self.backend.execute(code, "@" + path)
        elif cmd == ".run":
            parts = shlex.split(self._need(arg, ".run FILE [ARGS]"))
            if isinstance(self.backend, LocalBackend):
                outcome = self.backend.run_file(parts[0], parts[1:])
            else:
                with open(parts[0], encoding="utf-8") as f:
                    outcome = self.backend.execute(f.read(), "@" + parts[0])
            if self.perf:
                self.write_err(f"({outcome.wall_ms:.2f} ms)\n")
        elif cmd == ".save":
            path = self._need(arg, ".save FILE")
            with open(path, "w", encoding="utf-8") as f:
                f.write("\n".join(self.inputs) + ("\n" if self.inputs else ""))
            self.write(f"saved {len(self.inputs)} inputs to {path}\n")
        elif cmd == ".vars":
            rows = self.backend.variables()
            for name, value in rows:
                self.write(f"{name} = {value}\n")
            if not rows:
                self.write("(no user globals)\n")
        elif cmd == ".reset":
            self.backend.reset()
            self.write("Lua state reset\n")
        elif cmd == ".perf":
            self.perf = not self.perf
            self.write(f"timing {'on' if self.perf else 'off'}\n")
        else:
            self.write_err(f"unknown command {cmd} (type .help)\n")

    def _help(self, name: str) -> None:
        """`.help NAME` and `?NAME`: the shell's help text, as the kernel's `?NAME` shows it."""
        text = self.backend.help(name)
        if text is None:
            self.write_err(f"no help for {name} (try a global such as Agent, or Agent.builder)\n")
        else:
            self.write(text + "\n")

    def _need(self, arg: str, usage: str) -> str:
        if not arg:
            raise ValueError(f"usage: {usage}")
        return os.path.expanduser(arg)

    # ------------------------------------------------------------------ debugger
    def _debug(self, line: str) -> None:
        from llmspell.debug.coordinator import DebugError

        if not isinstance(self.backend, LocalBackend):
            self.write_err("debug commands work in local sessions (use JupyterLab or the kernel's debugger)\n")
            return
        console = self._console()
        try:
            if console.command(line):
                return
        except DebugError as e:
            self.write_err(f"error: {e}\n")

    def _console(self) -> Any:
        from llmspell.debug.console import DebugConsole
        from llmspell.debug.coordinator import DebugCoordinator

        if self.console is None:
            assert isinstance(self.backend, LocalBackend)
            coord = DebugCoordinator(self.backend.rt)
            coord.attach()
            self.console = DebugConsole(coord, self.read_line, self.write)
        return self.console

    def _drop_debugger(self) -> None:
        if self.console is not None:
            self.console.coord.detach()
            self.console = None

    def close(self) -> None:
        self._drop_debugger()
        self.backend.close()

