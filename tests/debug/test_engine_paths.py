"""Debugger paths through the engine: interrupts with the hook on, attach while running, coroutines."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from llmspell.debug.breakpoints import SourceBreakpoint
from llmspell.debug.coordinator import DebugError
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


CO_SCRIPT = (
    "local co = coroutine.create(function(a)\n"   # 1
    "  local b = a + 1\n"                          # 2
    "  local c = coroutine.yield(b)\n"             # 3
    "  return c * 2\n"                             # 4
    "end)\n"                                       # 5
    "local _, first = coroutine.resume(co, 1)\n"   # 6
    "local _, second = coroutine.resume(co, 10)\n" # 7
    "return first, second\n")                      # 8


def _where(session: Session) -> list[tuple[str, int]]:
    frames, _ = session.dbg.stack_trace()
    return [(f.name, f.line) for f in frames]


def _run_to(session: Session, path: Path, lines: list[int]) -> dict[str, object]:
    """Run CO_SCRIPT from `path` with breakpoints on `lines`; the first stopped event."""
    path.write_text(CO_SCRIPT)
    session.dbg.set_breakpoints(str(path), [SourceBreakpoint(n) for n in lines])
    session.run(str(path))
    return session.event("stopped")


def _pause_running(session: Session) -> dict[str, object]:
    while not session.dbg.pause():  # False until the script holds the Lua thread
        pass
    return session.event("stopped")


def test_breakpoint_inside_coroutine_shows_both_threads(session: Session, tmp_path: Path) -> None:
    assert _run_to(session, tmp_path / "co.lua", [4])["reason"] == "breakpoint"
    assert _where(session) == [("function <co.lua:1>", 4), ("coroutine resumed from", 0), ("main chunk", 7)]
    assert {k: v["value"] for k, v in session.locals().items()} == {"a": "1", "b": "2", "c": "10"}
    frames, _ = session.dbg.stack_trace()
    assert frames[1].as_dap()["presentationHint"] == "label"
    assert session.locals(2)["first"]["value"] == "2"  # the resumer's locals, on the main thread
    assert session.dbg.evaluate("c + a", frames[0].id)["result"] == "11"
    assert session.dbg.evaluate("first * 100", frames[2].id)["result"] == "200"
    with pytest.raises(DebugError, match="coroutine was resumed"):
        session.dbg.evaluate("1", frames[1].id)
    ref = session.dbg.scopes(frames[0].id)[0]["variablesReference"]
    session.dbg.set_variable(ref, "c", "50")
    session.dbg.resume("continue")
    assert session.finish().values == [2, 100]


def test_steps_leave_a_coroutine_for_its_resumer(session: Session, tmp_path: Path) -> None:
    _run_to(session, tmp_path / "co.lua", [2])
    assert session.top().line == 2
    session.dbg.resume("over")
    session.event("stopped")
    assert session.top().line == 3
    session.dbg.resume("over")  # the yield hands control back to the main thread
    session.event("stopped")
    assert _where(session) == [("main chunk", 7)] and session.locals()["first"]["value"] == "2"
    session.dbg.resume("in")  # into the resumed coroutine, after its yield
    session.event("stopped")
    assert session.top().line == 4 and session.locals()["c"]["value"] == "10"
    session.dbg.resume("out")  # the coroutine returns: on in the main thread
    session.event("stopped")
    assert _where(session) == [("main chunk", 8)]
    session.dbg.resume("continue")
    assert session.finish().values == [2, 20]


def test_step_in_at_a_resume_enters_the_suspended_coroutine(session: Session, tmp_path: Path) -> None:
    _run_to(session, tmp_path / "co.lua", [7])
    session.dbg.resume("in")
    session.event("stopped")
    assert _where(session) == [("function <co.lua:1>", 4), ("coroutine resumed from", 0), ("main chunk", 7)]
    session.dbg.resume("over")
    session.event("stopped")
    assert _where(session) == [("main chunk", 8)]
    session.dbg.resume("continue")
    assert session.finish().values == [2, 20]


def test_nested_coroutines_show_every_resumer(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "nest.lua"
    path.write_text("local inner = coroutine.create(function(x)\n"   # 1
                    "  local y = x * 2\n"                             # 2
                    "  return y\n"                                    # 3
                    "end)\n"                                          # 4
                    "local outer = coroutine.wrap(function(x)\n"      # 5
                    "  local _, v = coroutine.resume(inner, x + 1)\n" # 6
                    "  return v\n"                                    # 7
                    "end)\n"                                          # 8
                    "local r = outer(20)\n"                           # 9
                    "return r\n")                                     # 10
    session.dbg.set_breakpoints(str(path), [SourceBreakpoint(3)])
    session.run(str(path))
    session.event("stopped")
    assert _where(session) == [("function <nest.lua:1>", 3), ("coroutine resumed from", 0),
                               ("function <nest.lua:5>", 6), ("coroutine resumed from", 0), ("main chunk", 9)]
    frames, _ = session.dbg.stack_trace()
    assert session.dbg.evaluate("x", frames[2].id)["result"] == "20"
    assert session.dbg.evaluate("y", frames[0].id)["result"] == "42"
    session.dbg.resume("continue")
    assert session.finish().values == [42]


def test_breakpoints_set_inside_a_coroutine_stop_apply_to_the_main_thread(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "co.lua"
    _run_to(session, path, [2])
    session.dbg.set_breakpoints(str(path), [SourceBreakpoint(8)])
    session.dbg.resume("continue")
    session.event("stopped")
    assert _where(session) == [("main chunk", 8)] and session.locals()["second"]["value"] == "20"
    session.dbg.resume("continue")
    assert session.finish().values == [2, 20]


def test_pause_inside_a_wrapped_coroutine(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "spin.lua"
    path.write_text("local gen = coroutine.wrap(function()\n"
                    "  local n = 0\n"
                    "  while not stop_now do n = n + 1 end\n"
                    "  coroutine.yield(n)\n"
                    "end)\n"
                    "return gen() > 0\n")
    session.run(str(path))
    assert _pause_running(session)["reason"] == "pause"
    top = session.top()
    assert top.line == 3 and top.name.startswith("function <spin.lua:1>")
    session.dbg.evaluate("stop_now = true", top.id)
    session.dbg.resume("continue")
    assert session.finish().values == [True]


WAIT_SCRIPT = (
    "local function wait(ms)\n"        # 1
    "  local before = ms\n"            # 2
    "  Utils.sleep(ms)\n"              # 3
    "  return before\n"                # 4
    "end\n"                            # 5
    "local waited = wait(60000)\n"     # 6
    "return waited\n")                 # 7


def test_pause_while_waiting_in_a_blocking_call(session: Session, tmp_path: Path) -> None:
    """A pause lands during Utils.sleep (no Lua runs there); steps go on from the calling line."""
    path = tmp_path / "wait.lua"
    path.write_text(WAIT_SCRIPT.replace("60000", "300"))
    session.run(str(path))
    assert _pause_running(session)["reason"] == "pause"
    assert _where(session) == [("wait", 3), ("main chunk", 6)]
    assert session.locals()["before"]["value"] == "300"
    session.dbg.resume("over")  # the sleep ends, then the next line of wait
    session.event("stopped")
    assert _where(session) == [("wait", 4), ("main chunk", 6)]
    session.dbg.resume("continue")
    assert session.finish().values == [300]


def test_pause_while_waiting_then_step_out_and_terminate(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "wait.lua"
    path.write_text(WAIT_SCRIPT.replace("60000", "200"))
    session.run(str(path))
    _pause_running(session)
    session.dbg.resume("out")
    session.event("stopped")
    assert _where(session) == [("main chunk", 7)] and session.locals()["waited"]["value"] == "200"
    session.dbg.resume("continue")
    assert session.finish().values == [200]
    path.write_text(WAIT_SCRIPT)  # a long wait ended by the debugger's terminate
    session.outcome.clear()
    session.run(str(path))
    _pause_running(session)
    session.dbg.terminate()
    err = session.finish()
    assert isinstance(err, ScriptError) and err.kind == "interrupted"


def test_pause_while_a_coroutine_waits(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "cowait.lua"
    path.write_text("local gen = coroutine.wrap(function(ms)\n"
                    "  Utils.sleep(ms)\n"
                    "  coroutine.yield(ms)\n"
                    "end)\n"
                    "local v = gen(300)\n"
                    "return v\n")
    session.run(str(path))
    _pause_running(session)
    assert _where(session) == [("function <cowait.lua:1>", 2), ("coroutine resumed from", 0), ("main chunk", 5)]
    assert session.locals()["ms"]["value"] == "300"
    session.dbg.resume("in")
    session.event("stopped")
    assert session.top().line == 3
    session.dbg.resume("continue")
    assert session.finish().values == [300]


CALLBACK_SCRIPT = (
    "local function step(ctx)\n"                                          # 1
    "  local ms = MS; io.open(FLAG, 'w'):close(); Utils.sleep(ms)\n"      # 2
    "  return 'done'\n"                                                   # 3
    "end\n"                                                               # 4
    "local wf = Workflow.builder():name('cb'):sequential()\n"             # 5
    "  :add_step{name = 's', type = 'custom', fn = step}:build()\n"       # 6
    "local co = coroutine.create(function()\n"                            # 7
    "  local r = wf:execute{}\n"                                          # 8
    "  return r.text\n"                                                   # 9
    "end)\n"                                                              # 10
    "local _, text = coroutine.resume(co)\n"                              # 11
    "return text\n")                                                      # 12
CALLBACK_FRAMES = [("function <cb.lua:7>", 8), ("coroutine resumed from", 0), ("main chunk", 11)]


def _callback_script(tmp_path: Path, ms: int) -> tuple[Path, Path]:
    """CALLBACK_SCRIPT: a coroutine runs a workflow whose function step (Lua called back from Python
    on the main thread) waits ms in Utils.sleep, after creating the returned flag file."""
    flag = tmp_path / "step-started"
    path = tmp_path / "cb.lua"
    path.write_text(CALLBACK_SCRIPT.replace("MS", str(ms)).replace("FLAG", repr(str(flag))))
    return path, flag


def test_pause_in_a_callback_of_a_waiting_coroutine_starts_at_the_callback(session: Session,
                                                                           tmp_path: Path) -> None:
    """The step function is the innermost Lua code: the stack shows it above the coroutine that
    called wf:execute, and a step goes on in it."""
    path, flag = _callback_script(tmp_path, 400)
    session.run(str(path))
    while not flag.exists():  # the step has started; the pause lands on its line 2 (before or in the sleep)
        pass
    assert _pause_running(session)["reason"] == "pause"
    assert _where(session) == [("function <cb.lua:1>", 2), *CALLBACK_FRAMES]
    assert session.locals()["ms"]["value"] == "400"
    session.dbg.resume("over")
    session.event("stopped")
    assert _where(session) == [("function <cb.lua:1>", 3), *CALLBACK_FRAMES]
    session.dbg.resume("continue")
    assert session.finish().values == ["done"]


def test_breakpoint_in_a_callback_shows_the_coroutine_below_it(session: Session, tmp_path: Path) -> None:
    path, _ = _callback_script(tmp_path, 0)
    session.dbg.set_breakpoints(str(path), [SourceBreakpoint(3)])
    session.run(str(path))
    assert session.event("stopped")["reason"] == "breakpoint"
    assert _where(session) == [("function <cb.lua:1>", 3), *CALLBACK_FRAMES]
    frames, _ = session.dbg.stack_trace()
    assert session.dbg.evaluate("r == nil", frames[1].id)["result"] == "true"  # the coroutine's local, not yet set
    session.dbg.resume("continue")
    assert session.finish().values == ["done"]


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
