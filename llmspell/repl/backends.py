"""Where REPL input runs: an in-process ScriptRuntime, or a running kernel (the project's KernelConnection).

Both go through the Lua shell (script/shell.py): locally by calling it, on a kernel through the
kernel's complete/inspect/is_complete handlers, which call the same shell there. So a cell
compiles, completes and renders the same in `llmspell repl`, `repl --connect` and Jupyter.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from llmspell.script.shell import Completions, LuaShell, render_values

Write = Callable[[str], None]


@dataclass
class Outcome:
    """What one execution produced (output was already written as it came)."""

    ok: bool
    wall_ms: float
    interrupted: bool = False


class Backend(Protocol):
    """The operations the REPL needs from wherever code runs."""

    def execute(self, code: str, chunkname: str) -> Outcome: ...

    def is_complete(self, code: str) -> str: ...

    def complete(self, code: str, cursor: int) -> Completions: ...

    def help(self, name: str) -> str | None: ...

    def variables(self) -> list[tuple[str, str]]: ...

    def reset(self) -> None: ...

    def close(self) -> None: ...


class LocalBackend:
    """Runs code in this process, on the calling (main) thread; Ctrl-C interrupts the statement."""

    def __init__(self, config: Any, write: Write, write_err: Write) -> None:
        self.config = config
        self._write, self._write_err = write, write_err
        self.rt: Any = None
        self.shell: LuaShell
        self.on_runtime: list[Callable[[Any], None]] = []
        self.reset()
        self._previous_sigint: Any = None
        if threading.current_thread() is threading.main_thread():
            # Installed for the whole session: a Ctrl-C that lands between the prompt returning and
            # the statement starting still interrupts that statement (the flag waits for the hook).
            self._previous_sigint = signal.signal(signal.SIGINT, self._on_sigint)

    def _on_sigint(self, signum: int, frame: Any) -> None:
        self.rt.interrupt("interrupted")

    def reset(self) -> None:
        from llmspell.bootstrap import create_runtime
        from llmspell.script.engine import CallbackSink

        if self.rt is not None:
            self.rt.close()
        self.rt = create_runtime(self.config, stdout=CallbackSink(self._write), stderr=CallbackSink(self._write_err))
        self.shell = LuaShell(self.rt)
        for fn in self.on_runtime:
            fn(self.rt)

    def execute(self, code: str, chunkname: str = "=stdin") -> Outcome:
        from llmspell.script.engine import ScriptError

        rt = self.rt
        t0 = time.perf_counter()
        try:
            result = rt.call_chunk(self.shell.compile_cell(code, chunkname))
        except ScriptError as e:
            ms = (time.perf_counter() - t0) * 1000
            if e.kind == "interrupted":
                self._write_err(f"{e.message}\n")
                return Outcome(False, ms, interrupted=True)
            self._write_err(f"{'syntax error: ' if e.kind == 'syntax' else ''}{e.full_message}\n")
            return Outcome(False, ms)
        ms = (time.perf_counter() - t0) * 1000
        if result.values:
            self._write(render_values(result.values) + "\n")
        return Outcome(True, ms)

    def run_file(self, path: str, args: list[str]) -> Outcome:
        from llmspell.script.engine import ScriptError

        t0 = time.perf_counter()
        try:
            self.rt.run_file(path, args)
            return Outcome(True, (time.perf_counter() - t0) * 1000)
        except ScriptError as e:
            self._write_err(f"{e.full_message}\n")
            return Outcome(False, (time.perf_counter() - t0) * 1000, interrupted=e.kind == "interrupted")

    def is_complete(self, code: str) -> str:
        return self.shell.is_complete(code).status

    def complete(self, code: str, cursor: int) -> Completions:
        return self.shell.complete(code, cursor)

    def help(self, name: str) -> str | None:
        return self.shell.help_text(name, 1, missing_ok=True)

    def variables(self) -> list[tuple[str, str]]:
        from llmspell.debug.coordinator import DebugCoordinator

        coord = getattr(self, "_vars_coord", None)
        if coord is None or coord.rt is not self.rt:
            coord = DebugCoordinator(self.rt)
            self._vars_coord = coord
        return [(v["name"], v["value"]) for v in coord.globals_snapshot()]

    def close(self) -> None:
        if self._previous_sigint is not None:
            signal.signal(signal.SIGINT, self._previous_sigint)
            self._previous_sigint = None
        if self.rt is not None:
            self.rt.close()


class KernelBackend:
    """Runs code on a running kernel through KernelConnection; output streams as it arrives."""

    def __init__(self, connection_file: str, write: Write, write_err: Write, timeout: float = 10.0) -> None:
        from llmspell.kernel.client import KernelConnection

        self._write, self._write_err = write, write_err
        self.conn = KernelConnection.from_file(connection_file)
        try:
            self.conn.wait_ready(timeout)
        except BaseException:
            self.conn.close()
            raise

    def execute(self, code: str, chunkname: str = "=stdin") -> Outcome:
        from llmspell.kernel.client import read_input
        from llmspell.kernel.wire import Message

        t0 = time.perf_counter()
        shown_error: list[bool] = []

        def on_output(msg: Message) -> None:
            t, c = msg.msg_type, msg.content
            if t == "stream":
                (self._write if c.get("name") == "stdout" else self._write_err)(str(c.get("text", "")))
            elif t in ("execute_result", "display_data"):
                self._write(str((c.get("data") or {}).get("text/plain", "")) + "\n")
            elif t == "error":
                shown_error.append(True)
                self._write_err(f"{c.get('evalue', c.get('ename', 'error'))}\n")

        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGINT, lambda s, f: self.conn.interrupt())
        try:
            reply = self.conn.execute(code, allow_stdin=True, on_output=on_output, on_input=read_input).content
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
        ok = reply.get("status") == "ok"
        if not ok and not shown_error:
            self._write_err(f"{reply.get('evalue', reply.get('ename', 'error'))}\n")
        return Outcome(ok, (time.perf_counter() - t0) * 1000, interrupted=reply.get("ename") == "Interrupted")

    def is_complete(self, code: str) -> str:
        return str(self.conn.request("is_complete_request", {"code": code}).content.get("status", "unknown"))

    def complete(self, code: str, cursor: int) -> Completions:
        c = self.conn.request("complete_request", {"code": code, "cursor_pos": cursor}).content
        return Completions([str(m) for m in c.get("matches", [])], int(c.get("cursor_start", cursor)),
                           int(c.get("cursor_end", cursor)))

    def help(self, name: str) -> str | None:
        c = self.conn.request("inspect_request", {"code": name, "cursor_pos": len(name), "detail_level": 1}).content
        text = (c.get("data") or {}).get("text/plain") if c.get("found") else None
        return str(text) if text is not None else None

    def variables(self) -> list[tuple[str, str]]:
        content = {"type": "request", "seq": 1, "command": "inspectVariables", "arguments": {}}
        body = self.conn.request("debug_request", content, control=True).content.get("body") or {}
        return [(v["name"], v["value"]) for v in body.get("variables", [])]

    def reset(self) -> None:
        self._write_err("reset: restart the kernel from its manager (not possible over --connect)\n")

    def close(self) -> None:
        self.conn.close()
