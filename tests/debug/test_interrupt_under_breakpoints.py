"""An interrupt reaches a tight loop while the debugger traces its lines (found by the JupyterLab test).

The hook's own instructions use up Lua's instruction count with hooks off, so a one-line loop on a
line that holds a breakpoint elsewhere could expire the count inside the hook every time and never
poll. These loops must still end promptly on an interrupt.
"""

from __future__ import annotations

import os
import queue
from pathlib import Path
from typing import Any

import pytest

from llmspell.debug.breakpoints import SourceBreakpoint
from llmspell.debug.coordinator import DebugCoordinator
from tests.debug.debug_support import Session

LOOPS = {
    "one line": 'print("looping")\nwhile true do n = 1 end\n',
    "one line with a call": 'print("looping")\nlocal function f() end\nwhile true do f() end\n',
    "three lines": 'print("looping")\nwhile true do\n  n = 1\nend\n',
}


@pytest.mark.parametrize("loop", list(LOOPS), ids=list(LOOPS))
@pytest.mark.parametrize("other_line", [2, 3])
def test_interrupt_ends_a_loop_on_a_breakpoint_line_of_another_source(
        tmp_path: Path, lua_runtime: Any, loop: str, other_line: int) -> None:
    script, other = tmp_path / "loop.lua", tmp_path / "other.lua"
    script.write_text(LOOPS[loop], encoding="utf-8")
    other.write_text("local a = 1\nlocal b = 2\nprint(a + b)\n", encoding="utf-8")
    events: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
    dbg = DebugCoordinator(lua_runtime, lambda n, b: events.put((n, b)))
    dbg.attach()
    session = Session(lua_runtime, dbg, events, os.fspath(script))
    try:
        dbg.set_breakpoints(os.fspath(script), [SourceBreakpoint(line=1)])
        dbg.set_breakpoints(os.fspath(other), [SourceBreakpoint(line=other_line)])
        session.run()
        session.event("stopped")
        dbg.resume("continue")
        assert session.thread is not None
        session.thread.join(0.3)
        assert session.thread.is_alive(), "the loop should still be running"
        lua_runtime.interrupt("interrupted")
        outcome = session.finish(timeout=5)
        assert "interrupted" in str(outcome)
    finally:
        dbg.detach()
