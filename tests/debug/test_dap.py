"""The DAP dispatcher in-process: envelopes, events, errors for bad requests."""

from __future__ import annotations

import queue
from typing import Any

import pytest

from llmspell.debug.dap import DapSession
from tests.debug.debug_support import L_LOOP_BODY, L_SQUARE_BODY, Session


@pytest.fixture
def dap(session: Session) -> tuple[DapSession, queue.Queue[dict[str, Any]], Session]:
    sent: queue.Queue[dict[str, Any]] = queue.Queue()
    return DapSession(session.dbg, sent.put), sent, session


def _event(sent: queue.Queue[dict[str, Any]], name: str) -> dict[str, Any]:
    while True:
        msg = sent.get(timeout=10)
        if msg["type"] == "event" and msg["event"] == name:
            return msg


def test_envelopes_and_initialized_event(dap: tuple[DapSession, Any, Session]) -> None:
    d, sent, _ = dap
    r = d.handle({"seq": 7, "type": "request", "command": "initialize", "arguments": {"adapterID": "x"}})
    assert r["type"] == "response" and r["request_seq"] == 7 and r["success"] is True
    assert r["command"] == "initialize" and r["body"]["supportsLogPoints"] is True
    assert sent.empty()  # initialized only after the response went out
    d.run_deferred()
    ev = _event(sent, "initialized")
    assert ev["seq"] > r["seq"]
    r2 = d.handle({"seq": 8, "type": "request", "command": "threads"})
    assert r2["seq"] > ev["seq"] and r2["body"]["threads"] == [{"id": 1, "name": "main"}]


def test_bad_requests(dap: tuple[DapSession, Any, Session]) -> None:
    d, _, _ = dap
    r = d.handle({"seq": 1, "type": "request", "command": "nope"})
    assert r["success"] is False and r["message"] == "unknown command 'nope'" and r["body"]["error"]["format"]
    assert d.handle({"seq": 2, "type": "request", "command": "pause", "arguments": {"threadId": 1}})["message"] \
        == "nothing is running"
    for cmd, args in [("stackTrace", {"threadId": 1}), ("next", {"threadId": 1}), ("continue", {"threadId": 1}),
                      ("variables", {"variablesReference": 99}), ("scopes", {}), ("setBreakpoints", {}),
                      ("evaluate", {}), ("source", {"source": {"path": "/nonexistent.lua"}})]:
        r = d.handle({"seq": 3, "type": "request", "command": cmd, "arguments": args})
        assert r["success"] is False and r["message"], (cmd, r)
    assert d.handle({"seq": 4, "type": "event", "command": "x"})["success"] is False


def test_session_through_dispatcher(dap: tuple[DapSession, Any, Session]) -> None:
    d, sent, s = dap
    d.handle({"seq": 1, "type": "request", "command": "attach", "arguments": {}})
    r = d.handle({"seq": 2, "type": "request", "command": "setBreakpoints", "arguments": {
        "source": {"path": s.path}, "breakpoints": [{"line": L_SQUARE_BODY}, {"line": 10}, {"line": 999}]}})
    bps = r["body"]["breakpoints"]
    assert [b["verified"] for b in bps] == [True, True, False] and bps[1]["line"] == 11
    assert d.handle({"seq": 3, "type": "request", "command": "setExceptionBreakpoints",
                     "arguments": {"filters": []}})["success"]
    s.run()
    stopped = _event(sent, "stopped")
    assert stopped["body"]["reason"] == "breakpoint"
    frames = d.handle({"seq": 4, "type": "request", "command": "stackTrace",
                       "arguments": {"threadId": 1, "startFrame": 1, "levels": 1}})["body"]
    assert frames["totalFrames"] == 3 and [f["name"] for f in frames["stackFrames"]] == ["sum_squares"]
    top = d.handle({"seq": 5, "type": "request", "command": "stackTrace", "arguments": {"threadId": 1}})
    fid = top["body"]["stackFrames"][0]["id"]
    scopes = d.handle({"seq": 6, "type": "request", "command": "scopes", "arguments": {"frameId": fid}})
    ref = scopes["body"]["scopes"][0]["variablesReference"]
    r = d.handle({"seq": 7, "type": "request", "command": "setVariable",
                  "arguments": {"variablesReference": ref, "name": "x", "value": "5"}})
    assert r["success"] and r["body"]["value"] == "5"
    src = d.handle({"seq": 8, "type": "request", "command": "source", "arguments": {"source": {"path": s.path}}})
    assert "sum_squares" in src["body"]["content"]
    d.handle({"seq": 9, "type": "request", "command": "setBreakpoints",
              "arguments": {"source": {"path": s.path}, "lines": [L_LOOP_BODY]}})
    r = d.handle({"seq": 10, "type": "request", "command": "continue", "arguments": {"threadId": 1}})
    assert r["success"] and s.dbg.stopped is not None  # resumes only after run_deferred
    d.run_deferred()
    _event(sent, "stopped")
    loaded = d.handle({"seq": 11, "type": "request", "command": "loadedSources"})["body"]["sources"]
    assert any(x.get("path", "").endswith("multi.lua") for x in loaded)
    d.handle({"seq": 12, "type": "request", "command": "disconnect", "arguments": {"terminateDebuggee": False}})
    d.run_deferred()
    assert d.disconnected.is_set()
    assert s.finish().values == [25 + 4 + 9]


def test_terminate_request(dap: tuple[DapSession, Any, Session]) -> None:
    from llmspell.script.engine import ScriptError

    d, sent, s = dap
    d.handle({"seq": 1, "type": "request", "command": "attach"})
    d.handle({"seq": 2, "type": "request", "command": "setBreakpoints",
              "arguments": {"source": {"path": s.path}, "breakpoints": [{"line": L_SQUARE_BODY}]}})
    s.run()
    _event(sent, "stopped")
    assert d.handle({"seq": 3, "type": "request", "command": "terminate"})["success"]
    d.run_deferred()
    assert isinstance(s.finish(), ScriptError)


def test_pause_running_loop_and_set_table_field(dap: tuple[DapSession, Any, Session], tmp_path: Any) -> None:
    d, sent, s = dap
    path = tmp_path / "spin.lua"
    path.write_text("local t = {10, 20, name = 'x'}\nwhile not done do\n  t[1] = t[1] + 1\nend\nreturn t[2], t.name\n")
    d.handle({"seq": 1, "type": "request", "command": "attach"})
    s.run(str(path))
    while True:  # wait until the script runs (pause with nothing running is an error)
        r = d.handle({"seq": 2, "type": "request", "command": "pause", "arguments": {"threadId": 1}})
        if r["success"]:
            break
    d.run_deferred()
    assert _event(sent, "stopped")["body"]["reason"] == "pause"
    frame = d.handle({"seq": 3, "type": "request", "command": "stackTrace", "arguments": {"threadId": 1}})
    fid = frame["body"]["stackFrames"][0]["id"]
    ref = d.handle({"seq": 4, "type": "request", "command": "scopes", "arguments": {"frameId": fid}})
    local_vars = d.handle({"seq": 5, "type": "request", "command": "variables", "arguments": {
        "variablesReference": ref["body"]["scopes"][0]["variablesReference"]}})["body"]["variables"]
    t_ref = next(v for v in local_vars if v["name"] == "t")["variablesReference"]
    for name, value in (("[2]", "99"), ("name", "'changed'")):
        r = d.handle({"seq": 6, "type": "request", "command": "setVariable",
                      "arguments": {"variablesReference": t_ref, "name": name, "value": value}})
        assert r["success"], r
    d.handle({"seq": 7, "type": "request", "command": "evaluate", "arguments": {"expression": "done = true",
                                                                               "frameId": fid}})
    d.handle({"seq": 8, "type": "request", "command": "continue", "arguments": {"threadId": 1}})
    d.run_deferred()
    assert s.finish().values == [99, "changed"]
