"""Where REPL input runs: an in-process ScriptRuntime, or a running kernel (jupyter_client)."""

from __future__ import annotations

import json
import math
import re
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

LUA_KEYWORDS = ("and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if", "in",
                "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:[.:][A-Za-z_][A-Za-z0-9_]*)*[.:]?$")

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

    def complete(self, text: str) -> list[str]: ...

    def variables(self) -> list[tuple[str, str]]: ...

    def reset(self) -> None: ...

    def close(self) -> None: ...


def format_value(v: Any) -> str:
    """A returned value as the REPL shows it."""
    if v is None:
        return "nil"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if math.isfinite(v) and v.is_integer() and abs(v) < 2**63:
            return str(int(v))
        return f"{v:.14g}"
    if isinstance(v, dict | list):
        return json.dumps(v, ensure_ascii=False)
    return str(v)


class LocalBackend:
    """Runs code in this process, on the calling (main) thread; Ctrl-C interrupts the statement."""

    def __init__(self, config: Any, write: Write, write_err: Write) -> None:
        self.config = config
        self._write, self._write_err = write, write_err
        self.rt: Any = None
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
        for fn in self.on_runtime:
            fn(self.rt)

    def execute(self, code: str, chunkname: str = "=stdin") -> Outcome:
        from llmspell.script.engine import ScriptError

        rt = self.rt
        t0 = time.perf_counter()
        try:
            try:
                fn = rt.compile("return " + code, chunkname)
            except ScriptError:
                fn = rt.compile(code, chunkname)
            result = rt.call_chunk(fn)
        except ScriptError as e:
            ms = (time.perf_counter() - t0) * 1000
            if e.kind == "interrupted":
                self._write_err(f"{e.message}\n")
                return Outcome(False, ms, interrupted=True)
            self._write_err(f"{'syntax error: ' if e.kind == 'syntax' else ''}{e.full_message}\n")
            return Outcome(False, ms)
        ms = (time.perf_counter() - t0) * 1000
        if result.values:
            self._write("\t".join(format_value(v) for v in result.values) + "\n")
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
        """Lua's own rule (lua.c): a load error that ends at <eof> means more input is needed."""
        from llmspell.script.engine import ScriptError

        if not code.strip():
            return "complete"
        try:
            self.rt.compile("return " + code, "=stdin")
            return "complete"
        except ScriptError:
            pass
        try:
            self.rt.compile(code, "=stdin")
            return "complete"
        except ScriptError as e:
            return "incomplete" if e.full_message.rstrip().endswith("<eof>") else "invalid"

    def complete(self, text: str) -> list[str]:
        m = _WORD.search(text)
        word = m.group(0) if m else ""
        if not word:
            return []
        head, sep, tail = word.rpartition(".") if "." in word or ":" in word else ("", "", word)
        if ":" in word and word.rfind(":") > word.rfind("."):
            head, sep, tail = word.rpartition(":")
        names = self._fields(head)
        out = sorted({n for n in names if n.startswith(tail)})
        if not head:
            out = sorted(set(out) | {k for k in LUA_KEYWORDS if k.startswith(tail)})
        return [f"{head}{sep}{n}" for n in out]

    def _fields(self, path: str) -> list[str]:
        fn = self.rt.lua.eval(
            "function(path) local t = _G "
            "for part in string.gmatch(path, '[^.:]+') do "
            "  if type(t) ~= 'table' then return {} end t = rawget(t, part) end "
            "local out, seen = {}, {} "
            "local function add(tab) for k in pairs(tab) do if type(k) == 'string' and not seen[k] then "
            "  seen[k] = true out[#out + 1] = k end end end "
            "if type(t) == 'table' then add(t) end "
            "local mt = getmetatable(t) "
            "if type(mt) == 'table' and type(mt.__index) == 'table' then add(mt.__index) end "
            "return out end")
        got = fn(path)
        return [str(got[i]) for i in range(1, len(got) + 1)]

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
    """Runs code on a running kernel through jupyter_client; output streams as it arrives."""

    def __init__(self, connection_file: str, write: Write, write_err: Write, timeout: float = 10.0) -> None:
        from jupyter_client import BlockingKernelClient

        self._write, self._write_err = write, write_err
        self.kc = BlockingKernelClient()
        self.kc.load_connection_file(connection_file)
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=timeout)

    def execute(self, code: str, chunkname: str = "=stdin") -> Outcome:
        t0 = time.perf_counter()
        interrupted = False
        msg_id = self.kc.execute(code)
        ok = True
        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGINT, lambda s, f: self._interrupt())
        try:
            while True:
                msg = self.kc.get_iopub_msg(timeout=None)
                if msg["parent_header"].get("msg_id") != msg_id:
                    continue
                t, c = msg["msg_type"], msg["content"]
                if t == "stream":
                    (self._write if c.get("name") == "stdout" else self._write_err)(c.get("text", ""))
                elif t in ("execute_result", "display_data"):
                    self._write(str(c.get("data", {}).get("text/plain", "")) + "\n")
                elif t == "error":
                    ok = False
                    interrupted = c.get("ename") == "Interrupted"
                    self._write_err(f"{c.get('evalue', c.get('ename', 'error'))}\n")
                elif t == "status" and c.get("execution_state") == "idle":
                    break
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
        return Outcome(ok, (time.perf_counter() - t0) * 1000, interrupted)

    def _interrupt(self) -> None:
        msg = self.kc.session.msg("interrupt_request", {})
        self.kc.control_channel.send(msg)

    def _shell(self, msg_id: str) -> dict[str, Any]:
        while True:
            reply = self.kc.get_shell_msg(timeout=10)
            if reply["parent_header"].get("msg_id") == msg_id:
                return dict(reply["content"])

    def is_complete(self, code: str) -> str:
        return str(self._shell(self.kc.is_complete(code)).get("status", "unknown"))

    def complete(self, text: str) -> list[str]:
        c = self._shell(self.kc.complete(text, len(text)))
        start = int(c.get("cursor_start", len(text)))
        return [text[:start] + m for m in c.get("matches", [])]

    def variables(self) -> list[tuple[str, str]]:
        content = {"type": "request", "seq": 1, "command": "inspectVariables", "arguments": {}}
        msg = self.kc.session.msg("debug_request", content)
        self.kc.control_channel.send(msg)
        while True:
            reply = self.kc.control_channel.get_msg(timeout=10)
            if reply["parent_header"].get("msg_id") == msg["header"]["msg_id"]:
                body = reply["content"].get("body") or {}
                return [(v["name"], v["value"]) for v in body.get("variables", [])]

    def reset(self) -> None:
        self._write_err("reset: restart the kernel from its manager (not possible over --connect)\n")

    def close(self) -> None:
        self.kc.stop_channels()
