"""Shared pieces of the debugger tests: the multi-function script, its line numbers, a Session."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmspell.debug.coordinator import DebugCoordinator

#: The two functions every debugger test script starts with (lines 1-13; integration tests reuse them).
FUNCTIONS = """\
local function square(x)
  local y = x * x
  return y
end

local function sum_squares(n)
  local total = 0
  for i = 1, n do
    total = total + square(i)
  end
  return total
end

"""

SCRIPT = FUNCTIONS + """\
local data = {name = "demo", nested = {deep = {value = 42}}, list = {10, 20, 30}}
counter = 0
local result = sum_squares(3)
counter = counter + result
print("result", result)
return result
"""

#: 1-based line numbers in SCRIPT used by the tests.
L_SQUARE_BODY, L_SQUARE_RET, L_LOOP_BODY, L_SUM_RET, L_DATA, L_CALL, L_AFTER = 2, 3, 9, 11, 14, 16, 17


@dataclass
class Session:
    """A coordinator on a runtime, with the events it emitted and the script thread."""

    rt: Any
    dbg: DebugCoordinator
    events: queue.Queue[tuple[str, dict[str, Any]]]
    path: str
    thread: threading.Thread | None = None
    outcome: list[Any] = field(default_factory=list)

    def run(self, path: str | None = None) -> None:
        def go() -> None:
            try:
                self.outcome.append(self.rt.run_file(path or self.path))
            except BaseException as e:  # noqa: BLE001 - inspected by the test
                self.outcome.append(e)

        self.thread = threading.Thread(target=go, daemon=True)
        self.thread.start()

    def event(self, name: str, timeout: float = 10.0) -> dict[str, Any]:
        while True:
            n, body = self.events.get(timeout=timeout)
            if n == name:
                return body

    def finish(self, timeout: float = 10.0) -> Any:
        assert self.thread is not None
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "script did not finish"
        return self.outcome[0]

    def top(self) -> Any:
        frames, _ = self.dbg.stack_trace()
        return frames[0]

    def locals(self, frame_index: int = 0) -> dict[str, dict[str, Any]]:
        frames, _ = self.dbg.stack_trace()
        ref = self.dbg.scopes(frames[frame_index].id)[0]["variablesReference"]
        return {v["name"]: v for v in self.dbg.variables(ref)}


@contextlib.contextmanager
def debuggee_process(cwd: Path, *args: str, wait_timeout: float = 30) -> Iterator[
        tuple[subprocess.Popen[str], str, int, str]]:
    """`llmspell debug ARGS --port 0` run in `cwd`: the process, its address and its session token (read
    from its first two stderr lines); killed at the end if still running."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("LLMSPELL_DEBUG_TOKEN", None)
    proc = subprocess.Popen([sys.executable, "-m", "llmspell.cli.main", "debug", "--port", "0",
                             "--wait-timeout", f"{wait_timeout:g}", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=cwd)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        m = re.search(r"on ([\d.]+):(\d+)", line)
        assert m, line
        tok = re.search(r"session token (\S+)", proc.stderr.readline())
        assert tok
        yield proc, m.group(1), int(m.group(2)), tok.group(1)
    finally:
        if proc.poll() is None:
            proc.kill()
