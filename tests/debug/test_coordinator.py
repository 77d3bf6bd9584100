"""The debugging core on a multi-function script: breakpoints, stepping, variables, evaluate, pause."""

from __future__ import annotations

import os
import threading

import pytest

from llmspell.debug.breakpoints import SourceBreakpoint
from llmspell.debug.coordinator import Attachment, DebugError, StopState
from tests.debug.debug_support import (
    L_AFTER,
    L_CALL,
    L_DATA,
    L_LOOP_BODY,
    L_SQUARE_BODY,
    L_SQUARE_RET,
    L_SUM_RET,
    Session,
)


def test_breakpoint_stack_and_continue(session: Session) -> None:
    bps = session.dbg.set_breakpoints(session.path, [SourceBreakpoint(L_SQUARE_BODY)])
    assert bps[0].verified and bps[0].line == L_SQUARE_BODY
    session.run()
    stopped = session.event("stopped")
    assert stopped["reason"] == "breakpoint" and stopped["hitBreakpointIds"] == [bps[0].id]
    frames, total = session.dbg.stack_trace()
    assert [f.name for f in frames] == ["square", "sum_squares", "main chunk"]
    assert [f.line for f in frames] == [L_SQUARE_BODY, L_LOOP_BODY, L_CALL]
    assert frames[0].path == os.path.abspath(session.path) and total == 3
    assert session.locals()["x"]["value"] == "1"
    session.dbg.set_breakpoints(session.path, [])
    session.dbg.resume("continue")
    result = session.finish()
    assert result.values == [14]
    assert "result\t14" in session.rt.test_out.text


def test_step_over_in_out(session: Session) -> None:
    session.dbg.set_breakpoints(session.path, [SourceBreakpoint(L_CALL)])
    session.run()
    session.event("stopped")
    session.dbg.set_breakpoints(session.path, [])
    session.dbg.resume("in")
    assert session.event("stopped")["reason"] == "step"
    top = session.top()
    assert top.name == "sum_squares" and top.line == 7
    session.dbg.resume("over")
    session.event("stopped")
    assert session.top().line == 8
    session.dbg.resume("over")
    session.event("stopped")
    assert session.top().line == L_LOOP_BODY
    session.dbg.resume("in")
    session.event("stopped")
    assert (session.top().name, session.top().line) == ("square", L_SQUARE_BODY)
    session.dbg.resume("over")
    session.event("stopped")
    assert session.top().line == L_SQUARE_RET
    session.dbg.resume("out")
    session.event("stopped")
    top = session.top()
    assert top.name == "sum_squares"
    session.dbg.resume("out")
    session.event("stopped")
    assert (session.top().name, session.top().line) == ("main chunk", L_AFTER)
    session.dbg.resume("continue")
    assert session.finish().values == [14]


def test_step_over_skips_calls(session: Session) -> None:
    session.dbg.set_breakpoints(session.path, [SourceBreakpoint(L_LOOP_BODY)])
    session.run()
    session.event("stopped")
    session.dbg.set_breakpoints(session.path, [])
    lines = []
    for _ in range(3):
        session.dbg.resume("over")
        session.event("stopped")
        lines.append((session.top().name, session.top().line))
    assert lines == [("sum_squares", 8), ("sum_squares", L_LOOP_BODY), ("sum_squares", 8)]
    session.dbg.resume("continue")
    session.finish()


def test_condition_hit_count_and_logpoint(session: Session) -> None:
    bps = session.dbg.set_breakpoints(session.path, [
        SourceBreakpoint(L_SQUARE_BODY, condition="x == 3"),
        SourceBreakpoint(L_LOOP_BODY, hit_condition="2"),
        SourceBreakpoint(L_SUM_RET, log_message="total is {total}"),
    ])
    assert all(b.verified for b in bps)
    session.run()
    assert session.event("stopped")["hitBreakpointIds"] == [bps[1].id]
    assert session.locals()["i"]["value"] == "2"
    session.dbg.resume("continue")
    assert session.event("stopped")["hitBreakpointIds"] == [bps[0].id]
    assert session.locals()["x"]["value"] == "3"
    session.dbg.resume("continue")
    out = session.event("output")
    assert out["output"] == "total is 14\n"
    session.finish()


def test_variables_nested_paging_and_set(session: Session) -> None:
    session.dbg.set_breakpoints(session.path, [SourceBreakpoint(L_CALL)])
    session.run()
    session.event("stopped")
    data = session.locals()["data"]
    assert data["type"] == "table" and data["variablesReference"] > 0
    kids = {v["name"]: v for v in session.dbg.variables(data["variablesReference"])}
    assert set(kids) == {"list", "name", "nested"}
    assert kids["name"]["value"] == '"demo"' and kids["nested"]["evaluateName"] == "data.nested"
    deep = {v["name"]: v for v in session.dbg.variables(kids["nested"]["variablesReference"])}["deep"]
    value = session.dbg.variables(deep["variablesReference"])
    assert value[0]["name"] == "value" and value[0]["value"] == "42"
    page = session.dbg.variables(kids["list"]["variablesReference"], "indexed", start=1, count=2)
    assert [(v["name"], v["value"]) for v in page] == [("[2]", "20"), ("[3]", "30")]
    frame = session.top()
    ev = session.dbg.evaluate("data.nested.deep.value + 1", frame.id)
    assert ev["result"] == "43"
    locals_ref = session.dbg.scopes(frame.id)[0]["variablesReference"]
    session.dbg.set_variable(locals_ref, "data", "{name = 'changed'}")
    assert session.dbg.evaluate("data.name", frame.id)["result"] == '"changed"'
    globals_ref = session.dbg.scopes(frame.id)[2]["variablesReference"]
    assert any(v["name"] == "counter" for v in session.dbg.variables(globals_ref))
    session.dbg.set_variable(globals_ref, "counter", "100")
    session.dbg.evaluate("counter = counter + 1", frame.id)
    session.dbg.resume("continue")
    session.finish()
    assert session.rt.G.counter == 101 + 14


def test_big_table_paging(session: Session, tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(os.fspath(tmp_path), "big.lua")
    with open(path, "w") as f:
        f.write("local big = {}\nfor i = 1, 1000 do big[i] = i * 2 end\nbig.label = 'x'\nlocal stop = 1\n")
    session.dbg.set_breakpoints(path, [SourceBreakpoint(4)])
    session.run(path)
    session.event("stopped")
    big = session.locals()["big"]
    assert big["indexedVariables"] == 1000 and big["namedVariables"] == 1
    page = session.dbg.variables(big["variablesReference"], "indexed", start=500, count=3)
    assert [v["value"] for v in page] == ["1002", "1004", "1006"]
    named = session.dbg.variables(big["variablesReference"], "named")
    assert [v["name"] for v in named] == ["label"]
    session.dbg.resume("continue")
    session.finish()


def test_set_local_in_frame_changes_execution(session: Session) -> None:
    session.dbg.set_breakpoints(session.path, [SourceBreakpoint(L_SQUARE_RET)])
    session.run()
    session.event("stopped")
    ref = session.dbg.scopes(session.top().id)[0]["variablesReference"]
    session.dbg.set_variable(ref, "y", "1000")
    session.dbg.set_breakpoints(session.path, [])
    session.dbg.resume("continue")
    assert session.finish().values == [1000 + 4 + 9]


def test_pause_running_loop(session: Session, tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(os.fspath(tmp_path), "loop.lua")
    with open(path, "w") as f:
        f.write("local n = 0\nwhile not stop_now do\n  n = n + 1\nend\nreturn n\n")
    session.run(path)
    while not session.dbg.pause():
        pass
    assert session.event("stopped")["reason"] == "pause"
    top = session.top()
    assert top.line in (2, 3)
    session.dbg.evaluate("stop_now = true", top.id)
    session.dbg.resume("continue")
    assert session.finish().values[0] > 0


def test_pause_with_nothing_running(session: Session) -> None:
    assert session.dbg.pause() is False


def test_bad_inputs(session: Session) -> None:
    bps = session.dbg.set_breakpoints(session.path, [
        SourceBreakpoint(5), SourceBreakpoint(4), SourceBreakpoint(400),
        SourceBreakpoint(L_LOOP_BODY, condition="x ==== 1"),
    ])
    assert (bps[0].verified, bps[0].line) == (True, 7)  # line 6 is a function header: its code starts at 7
    assert bps[1].verified and bps[1].line == 4  # a function's `end` is its return: it has code
    assert not bps[2].verified and "no code" in (bps[2].message or "")
    assert not bps[3].verified and "condition" in (bps[3].message or "")
    session.dbg.set_breakpoints(session.path, [SourceBreakpoint(L_SQUARE_BODY)])
    session.run()
    session.event("stopped")
    frame = session.top()
    with pytest.raises(DebugError, match="attempt to"):
        session.dbg.evaluate("nil + 1", frame.id)
    with pytest.raises(DebugError):
        session.dbg.evaluate("(((", frame.id)
    ref = session.dbg.scopes(frame.id)[0]["variablesReference"]
    session.dbg.resume("continue")
    session.event("stopped")
    with pytest.raises(DebugError, match="expired"):
        session.dbg.variables(ref)
    session.dbg.set_breakpoints(session.path, [])
    session.dbg.resume("continue")
    session.finish()
    with pytest.raises(DebugError, match="not stopped"):
        session.dbg.resume("continue")


def test_detach_while_paused_resumes(session: Session) -> None:
    session.dbg.set_breakpoints(session.path, [SourceBreakpoint(L_SQUARE_BODY)])
    session.run()
    session.event("stopped")
    session.dbg.detach()
    assert session.finish().values == [14]
    # the interrupt hook is back: a later run can still be interrupted
    assert session.rt.run_string("return 1").values == [1]


def test_terminate_while_paused(session: Session) -> None:
    from llmspell.script.engine import ScriptError

    session.dbg.set_breakpoints(session.path, [SourceBreakpoint(L_DATA)])
    session.run()
    session.event("stopped")
    session.dbg.terminate("stopped by test")
    err = session.finish()
    assert isinstance(err, ScriptError) and err.kind == "interrupted"


def test_breakpoint_in_required_module(session: Session, tmp_path: os.PathLike[str]) -> None:
    d = os.fspath(tmp_path)
    with open(os.path.join(d, "helper.lua"), "w") as f:
        f.write("local M = {}\nfunction M.twice(v)\n  return v * 2\nend\nreturn M\n")
    main = os.path.join(d, "usesmod.lua")
    with open(main, "w") as f:
        f.write("local helper = require('helper')\nlocal r = helper.twice(21)\nreturn r\n")
    session.dbg.set_breakpoints(os.path.join(d, "helper.lua"), [SourceBreakpoint(3)])
    session.run(main)
    session.event("stopped")
    frames, _ = session.dbg.stack_trace()
    assert frames[0].path == os.path.abspath(os.path.join(d, "helper.lua")) and frames[0].line == 3
    assert frames[1].path == os.path.abspath(main)
    session.dbg.resume("continue")
    assert session.finish().values == [42]
    assert any(s.get("path", "").endswith("helper.lua") for s in session.dbg.loaded_sources())


def test_no_stop_inside_debugger_evaluations(session: Session) -> None:
    session.dbg.set_breakpoints(session.path, [SourceBreakpoint(L_SQUARE_BODY)])
    session.run()
    session.event("stopped")
    frame = session.top()
    # calling a function with a breakpoint from evaluate while stopped does not stop again
    assert session.dbg.evaluate("square(5)", session.dbg.stack_trace()[0][1].id)["result"] == "25"
    assert session.dbg.evaluate("x", frame.id)["result"] == "1"
    session.dbg.set_breakpoints(session.path, [])
    session.dbg.resume("continue")
    session.finish()


def test_no_stop_in_idle_evaluate_from_request_thread(session: Session, tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(os.fspath(tmp_path), "lib.lua")
    with open(path, "w") as f:
        f.write("function twice(v)\n  return v * 2\nend\n")
    session.rt.run_file(path)
    session.dbg.set_breakpoints(path, [SourceBreakpoint(2)])
    assert session.dbg.evaluate("twice(21)")["result"] == "42"  # would wait for itself if it stopped


def test_states_through_a_stop_and_a_detach(session: Session) -> None:
    dbg = session.dbg
    assert (dbg.attachment, dbg.state) == (Attachment.INSTALLED, StopState.RUNNING)
    dbg.set_breakpoints(session.path, [SourceBreakpoint(L_SQUARE_BODY)])
    session.run()
    session.event("stopped")
    assert dbg.state is StopState.STOPPED and dbg.stopped is not None and dbg.stopped.reason == "breakpoint"
    dbg.set_breakpoints(session.path, [])
    dbg.resume("continue")
    assert session.finish().values == [14]
    assert (dbg.state, dbg.stopped) == (StopState.RUNNING, None)
    dbg.detach()
    assert dbg.attachment is Attachment.DETACHED and not dbg.attached


def test_stop_on_entry_is_one_stop_reported_as_entry(session: Session) -> None:
    session.dbg.step_in_next()
    assert session.dbg.state is StopState.ENTRY
    session.run()
    assert session.event("stopped")["reason"] == "entry"
    session.dbg.resume("over")
    assert session.event("stopped")["reason"] == "step"  # the entry was used by the first stop
    session.dbg.resume("continue")
    assert session.finish().values == [14]


def test_a_pause_is_satisfied_by_the_breakpoint_stop_that_comes_first(session: Session,
                                                                      tmp_path: os.PathLike[str]) -> None:
    """The pause is asked from another thread while the script runs, the next line has a breakpoint,
    and thousands of polls follow: one stop (the breakpoint), not a second "pause" after the resume."""
    dbg = session.dbg
    seen: list[StopState] = []

    def ask_pause() -> None:
        t = threading.Thread(target=lambda: seen.append(dbg.pause() and dbg.state))
        t.start()
        t.join(5)

    session.rt.G.ask_pause = session.rt.bridge.function(ask_pause, "ask_pause")
    path = os.path.join(os.fspath(tmp_path), "pause_then_bp.lua")
    with open(path, "w") as f:
        f.write("ask_pause()\nlocal n = 0\nfor i = 1, 200000 do n = n + i end\nreturn n\n")
    dbg.set_breakpoints(path, [SourceBreakpoint(2)])
    session.run(path)
    stopped = session.event("stopped")
    assert seen == [StopState.PAUSE_PENDING]
    assert stopped["reason"] == "breakpoint" and dbg.state is StopState.STOPPED
    dbg.resume("continue")
    assert session.finish().values == [sum(range(1, 200001))]
    assert dbg.state is StopState.RUNNING
    assert session.events.empty() or all(n != "stopped" for n, _ in list(session.events.queue))
