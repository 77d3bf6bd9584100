"""Debugger paths through the engine: interrupts with the hook on, attach while running, coroutines."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from llmspell.debug.coordinator import SourceBreakpoint
from llmspell.script.engine import ScriptError
from tests.debug.debug_support import Session


def test_interrupt_still_works_with_debug_hook(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "spin.lua"
    path.write_text("local n = 0\nwhile true do\n  n = n + 1\nend\n")
    session.dbg.set_breakpoints(str(tmp_path / "other.lua"), [SourceBreakpoint(1)])
    session.run(str(path))
    threading.Timer(0.2, session.rt.interrupt).start()
    err = session.finish()
    assert isinstance(err, ScriptError) and err.kind == "interrupted"


def test_attach_while_running(session: Session, tmp_path: Path) -> None:
    session.dbg.detach()
    path = tmp_path / "later.lua"
    path.write_text("local n = 0\nwhile not go_on do\n  n = n + 1\nend\nlocal after = n\nreturn after\n")
    session.run(str(path))
    session.dbg.attach()  # the script holds the Lua lock: the hook goes in at its next check
    session.dbg.set_breakpoints(str(path), [SourceBreakpoint(3)])
    assert session.event("stopped")["reason"] == "breakpoint"
    session.dbg.evaluate("go_on = true", session.top().id)
    session.dbg.set_breakpoints(str(path), [])
    session.dbg.resume("continue")
    assert session.finish().values[0] >= 0


def test_coroutines_run_through_and_main_thread_stops(session: Session, tmp_path: Path) -> None:
    """Known limitation: no stops inside coroutines (lupa); their lines run, main-thread stops work."""
    path = tmp_path / "co.lua"
    path.write_text(
        "local co = coroutine.create(function(a)\n"
        "  local b = a + 1\n"
        "  local c = coroutine.yield(b)\n"
        "  return c * 2\n"
        "end)\n"
        "local _, first = coroutine.resume(co, 1)\n"
        "local _, second = coroutine.resume(co, 10)\n"
        "return first, second\n")
    session.dbg.set_breakpoints(str(path), [SourceBreakpoint(2), SourceBreakpoint(7)])
    session.run(str(path))
    session.event("stopped")
    top = session.top()
    assert top.line == 7 and session.locals()["first"]["value"] == "2"
    session.dbg.resume("in")
    session.event("stopped")
    assert session.top().line == 8
    session.dbg.resume("continue")
    assert session.finish().values == [2, 20]


def test_cell_chunk_names(session: Session) -> None:
    """Sources named with '=' (kernel cells without the debugger path) can hold breakpoints by name."""
    bps = session.dbg.set_breakpoints("=cell[3]", [SourceBreakpoint(2)])
    assert bps[0].path == "cell[3]"
    t = threading.Thread(target=lambda: session.outcome.append(
        session.rt.run_string("local a = 1\nlocal b = a + 1\nreturn b\n", "=cell[3]")), daemon=True)
    session.thread = t
    t.start()
    session.event("stopped")
    frame = session.top()
    assert frame.path is None and frame.as_dap()["source"]["name"] == "cell[3]"
    session.dbg.resume("continue")
    assert session.finish().values == [2]
    assert os.path.basename(session.path) == "multi.lua"


def test_uncaught_error_breakpoint(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "err.lua"
    path.write_text("local function fail(v)\n  local doubled = v * 2\n  error('bad value ' .. doubled)\nend\n"
                    "local ok = pcall(error, 'caught, no stop')\nfail(21)\n")
    session.dbg.set_exception_filters(["uncaught"])
    session.run(str(path))
    stopped = session.event("stopped")
    assert stopped["reason"] == "exception" and "bad value 42" in stopped["text"]
    top = session.top()
    assert (top.name, top.line) == ("fail", 3) and session.locals()["doubled"]["value"] == "42"
    session.dbg.resume("continue")
    err = session.finish()
    assert isinstance(err, ScriptError) and err.message == "bad value 42" and err.line == 3
    session.dbg.set_exception_filters([])
    with __import__("pytest").raises(ScriptError):
        session.rt.run_file(str(path))  # no stop without the filter
