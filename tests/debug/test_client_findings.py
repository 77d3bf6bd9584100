"""What VS Code's DAP client and JupyterLab found (issue 20), in-process through the DAP dispatcher."""

from __future__ import annotations

import os
import queue
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from llmspell.debug.coordinator import DebugCoordinator
from llmspell.debug.dap import DapSession
from llmspell.debug.tcp import encode_message


class Client:
    """A DapSession driven like a transport does: respond, send, then run the deferred actions."""

    def __init__(self, rt: Any) -> None:
        self.rt = rt
        self.sent: queue.Queue[dict[str, Any]] = queue.Queue()
        self.wire: list[bytes] = []
        self.coord = DebugCoordinator(rt)
        self.dap = DapSession(self.coord, self._send)
        self.seq = 0
        self.thread: threading.Thread | None = None
        self.outcome: list[Any] = []

    def _send(self, msg: dict[str, Any]) -> None:
        self.wire.append(encode_message(msg))  # what the TCP writer would put on the wire
        self.sent.put(msg)

    def req(self, command: str, **arguments: Any) -> dict[str, Any]:
        self.seq += 1
        self.dap.dispatch({"seq": self.seq, "type": "request", "command": command, "arguments": arguments})
        while True:
            msg = self.sent.get(timeout=10)
            if msg["type"] == "response" and msg["request_seq"] == self.seq:
                return msg
            self.sent.put(msg)  # an event: keep it for event()

    def ok(self, command: str, **arguments: Any) -> dict[str, Any]:
        r = self.req(command, **arguments)
        assert r["success"], r
        return r.get("body") or {}

    def event(self, name: str) -> dict[str, Any]:
        while True:
            msg = self.sent.get(timeout=10)
            if msg["type"] == "event" and msg["event"] == name:
                return msg["body"] or {}

    def run(self, path: Path) -> None:
        def go() -> None:
            try:
                self.outcome.append(self.rt.run_file(str(path)))
            except BaseException as e:  # noqa: BLE001 - inspected by the test
                self.outcome.append(e)

        self.thread = threading.Thread(target=go, daemon=True)
        self.thread.start()

    def finish(self) -> Any:
        assert self.thread is not None
        self.thread.join(10)
        assert not self.thread.is_alive(), "script did not finish"
        return self.outcome[0]

    def top(self) -> dict[str, Any]:
        return self.ok("stackTrace", threadId=1)["stackFrames"][0]  # type: ignore[no-any-return]

    def locals(self, frame_id: int) -> dict[str, dict[str, Any]]:
        ref = self.ok("scopes", frameId=frame_id)["scopes"][0]["variablesReference"]
        return {v["name"]: v for v in self.ok("variables", variablesReference=ref)["variables"]}


@pytest.fixture
def client(lua_runtime: Any) -> Any:
    c = Client(lua_runtime)
    c.ok("initialize", adapterID="llmspell")
    c.ok("attach")
    yield c
    c.coord.detach()
    if c.thread is not None:
        c.thread.join(5)


def _script(tmp_path: Path, text: str, name: str = "s.lua") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_non_utf8_strings_are_escaped_everywhere(client: Client, tmp_path: Path) -> None:
    path = _script(tmp_path, 'local s = "ok\\255\\254A"\nlocal t = {[s] = 1}\nprint(s)\nerror("bad \\255 text")\n')
    client.ok("setBreakpoints", source={"path": str(path)}, breakpoints=[{"line": 3}])
    client.ok("setExceptionBreakpoints", filters=["uncaught"])
    client.run(path)
    client.event("stopped")
    loc = client.locals(client.top()["id"])
    assert loc["s"]["value"] == '"ok\\xff\\xfeA"' and loc["s"]["type"] == "str"
    keys = client.ok("variables", variablesReference=loc["t"]["variablesReference"])["variables"]
    assert keys[0]["name"] == "ok\\xff\\xfeA"
    client.ok("continue", threadId=1)
    stopped = client.event("stopped")  # the uncaught error whose text is not UTF-8 still stops
    assert stopped["reason"] == "exception" and "bad \\xff text" in stopped["text"]
    assert "bad \\xff text" in client.ok("exceptionInfo", threadId=1)["description"]
    client.ok("continue", threadId=1)
    client.finish()
    assert all(w.decode("utf-8") for w in client.wire)  # every message was valid UTF-8


#: A recursive function (lines 1-6; line 3 is the base case, line 5 the recursive call).
FACT = "local function fact(n)\n  if n <= 1 then\n    return 1\n  end\n  return n * fact(n - 1)\nend\n"


def test_step_out_under_recursion_returns_to_each_caller(client: Client, tmp_path: Path) -> None:
    path = _script(tmp_path, FACT + "local r = fact(4) + 0\nreturn r\n")
    client.ok("setBreakpoints", source={"path": str(path)}, breakpoints=[{"line": 3}])
    client.run(path)
    client.event("stopped")
    assert client.locals(client.top()["id"])["n"]["value"] == "1"
    client.ok("setBreakpoints", source={"path": str(path)}, breakpoints=[])
    for n in ("2", "3", "4"):
        client.ok("stepOut", threadId=1)
        assert client.event("stopped")["reason"] == "step"
        top = client.top()
        assert (top["name"], top["line"]) == ("fact", 5)
        assert client.locals(top["id"])["n"]["value"] == n
    client.ok("stepOut", threadId=1)
    client.event("stopped")
    assert client.top()["name"] == "main chunk" and client.top()["line"] == 7
    client.ok("continue", threadId=1)
    assert client.finish().values == [24]


def test_next_at_the_end_of_a_recursive_call_stops_in_the_caller(client: Client, tmp_path: Path) -> None:
    path = _script(tmp_path, FACT + "return fact(3)\n")
    client.ok("setBreakpoints", source={"path": str(path)}, breakpoints=[{"line": 3}])
    client.run(path)
    client.event("stopped")
    client.ok("setBreakpoints", source={"path": str(path)}, breakpoints=[])
    client.ok("next", threadId=1)
    client.event("stopped")
    top = client.top()
    assert top["line"] == 5 and client.locals(top["id"])["n"]["value"] == "2"
    client.ok("continue", threadId=1)
    assert client.finish().values == [6]


def test_error_with_a_table_value_stops_uncaught(client: Client, tmp_path: Path) -> None:
    path = _script(tmp_path, "local function f()\n  error({code = 42})\nend\nf()\n")
    client.ok("setExceptionBreakpoints", filters=["uncaught"])
    client.run(path)
    stopped = client.event("stopped")
    assert stopped["reason"] == "exception" and "code=42" in stopped["text"]
    assert (client.top()["name"], client.top()["line"]) == ("f", 2)
    info = client.ok("exceptionInfo", threadId=1)
    assert info["breakMode"] == "unhandled" and "code=42" in info["details"]["message"]
    assert "s.lua:2" in info["details"]["stackTrace"]
    client.ok("continue", threadId=1)
    err = client.finish()
    assert "code=42" in str(err)
    tb = err.traceback
    assert "s.lua:2" in tb and "s.lua:4" in tb, tb  # the user's frames survive the stop
    assert "raw_xpcall" not in tb and "llmspell.debug" not in tb, tb


def test_uncaught_error_in_coroutine_wrap_shows_the_coroutine_frames(client: Client, tmp_path: Path) -> None:
    path = _script(tmp_path, "local gen = coroutine.wrap(function(v)\n  local w = v + 1\n  error('inside ' .. w)\nend)\n"
                             "local r = gen(41)\nprint(r)\n")
    client.ok("setExceptionBreakpoints", filters=["uncaught"])
    client.run(path)
    assert "inside 42" in client.event("stopped")["text"]
    frames = client.ok("stackTrace", threadId=1)["stackFrames"]
    assert frames[0]["line"] == 3 and client.locals(frames[0]["id"])["w"]["value"] == "42"
    names = [f["name"] for f in frames]
    assert "coroutine resumed from" in names
    assert frames[-1]["name"] == "main chunk" and frames[-1]["line"] == 5
    client.ok("continue", threadId=1)
    err = client.finish()
    assert "s.lua:3" in err.traceback and "s.lua:5" in err.traceback, err.traceback


def test_two_breakpoints_moving_to_one_line_are_both_answered(client: Client, tmp_path: Path) -> None:
    path = _script(tmp_path, "local a = 1\n\n-- comment\nlocal b = a + 1\nreturn b\n")
    bps = client.ok("setBreakpoints", source={"path": str(path)},
                    breakpoints=[{"line": 2}, {"line": 3}])["breakpoints"]
    assert [(b["verified"], b["line"]) for b in bps] == [(True, 4), (True, 4)]
    assert bps[0]["id"] != bps[1]["id"]
    client.run(path)
    assert sorted(client.event("stopped")["hitBreakpointIds"]) == sorted(b["id"] for b in bps)
    client.ok("continue", threadId=1)
    assert client.finish().values == [2]


def test_invalid_hit_condition_is_unverified(client: Client, tmp_path: Path) -> None:
    path = _script(tmp_path, "local a = 1\nreturn a\n")
    bps = client.ok("setBreakpoints", source={"path": str(path)},
                    breakpoints=[{"line": 1, "hitCondition": "abc"}, {"line": 2, "hitCondition": ">= 2"}])
    first, second = bps["breakpoints"]
    assert first["verified"] is False and "hit condition" in first["message"]
    assert second["verified"] is True


def test_lines_start_at_zero(lua_runtime: Any, tmp_path: Path) -> None:
    c = Client(lua_runtime)
    c.ok("initialize", adapterID="x", linesStartAt1=False, columnsStartAt1=False)
    c.ok("attach")
    path = _script(tmp_path, "local a = 1\nlocal b = 2\nreturn a + b\n")
    bp = c.ok("setBreakpoints", source={"path": str(path)}, breakpoints=[{"line": 1}])["breakpoints"][0]
    assert bp["line"] == 1  # 0-based line 1 is the second line
    c.run(path)
    c.event("stopped")
    top = c.top()
    assert top["line"] == 1 and top["column"] == 0
    assert c.coord.stopped is not None and c.coord.stack_trace()[0][0].line == 2
    c.ok("continue", threadId=1)
    assert c.finish().values == [3]
    c.coord.detach()


def test_function_breakpoints(client: Client, tmp_path: Path) -> None:
    path = _script(tmp_path, "local M = {}\nfunction M.square(x)\n  local y = x * x\n  return y\nend\n"
                             "local function twice(v)\n  return v * 2\nend\n"
                             "return M.square(3) + twice(M.square(2))\n")
    bps = client.ok("setFunctionBreakpoints", breakpoints=[{"name": "M.square", "condition": "x == 2"},
                                                           {"name": "twice"}, {"name": "not a name!"}])
    assert [b["verified"] for b in bps["breakpoints"]] == [True, True, False]
    client.run(path)
    stopped = client.event("stopped")
    assert stopped["reason"] == "function breakpoint"
    top = client.top()
    assert (top["name"], top["line"]) == ("square", 3) and client.locals(top["id"])["x"]["value"] == "2"
    client.ok("continue", threadId=1)
    client.event("stopped")
    assert (client.top()["name"], client.top()["line"]) == ("twice", 7)
    client.ok("continue", threadId=1)
    assert client.finish().values == [17]


def test_completions_in_the_debug_console(client: Client, tmp_path: Path) -> None:
    path = _script(tmp_path, "local data = {name = 'x', nested = {deep = 1}}\nlocal datum = 2\nreturn data\n")
    client.ok("setBreakpoints", source={"path": str(path)}, breakpoints=[{"line": 3}])
    client.run(path)
    client.event("stopped")
    fid = client.top()["id"]
    labels = {t["label"] for t in client.ok("completions", text="dat", column=4, frameId=fid)["targets"]}
    assert {"data", "datum"} <= labels
    targets = client.ok("completions", text="data.n", column=7, frameId=fid)["targets"]
    assert [t["label"] for t in targets] == ["name", "nested"] and targets[0]["start"] == 6  # 1-based column
    assert "format" in {t["label"] for t in client.ok("completions", text="string.fo", column=10)["targets"]}
    client.ok("continue", threadId=1)
    client.finish()


def test_breakpoint_on_a_script_reached_through_a_symlinked_directory(client: Client, tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    path = _script(real, "local a = 1\nreturn a\n")
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    bp = client.ok("setBreakpoints", source={"path": str(path)}, breakpoints=[{"line": 2}])["breakpoints"][0]
    assert bp["verified"]
    client.run(link / "s.lua")  # the script runs under the symlinked path
    client.event("stopped")
    assert client.top()["source"]["path"] == str(path)  # shown as the client named it
    client.ok("continue", threadId=1)
    assert client.finish().values == [1]


def test_source_serves_only_loaded_scripts(client: Client, tmp_path: Path) -> None:
    path = _script(tmp_path, "return 1\n")
    secret = _script(tmp_path, "password = 'x'\n", "secret.lua")
    refused = client.req("source", source={"path": str(secret)}, sourceReference=0)
    assert refused["success"] is False and "not a script source loaded" in refused["message"]
    assert client.req("source", source={"path": "/etc/passwd"})["success"] is False
    client.run(path)
    client.finish()
    assert client.ok("source", source={"path": str(path)})["content"] == "return 1\n"


def test_endless_evaluate_is_stopped_by_terminate(client: Client, tmp_path: Path) -> None:
    from llmspell.script.engine import ScriptError

    path = _script(tmp_path, "local a = 1\nreturn a\n")
    client.ok("setBreakpoints", source={"path": str(path)}, breakpoints=[{"line": 2}])
    client.run(path)
    client.event("stopped")
    fid = client.top()["id"]
    result: list[dict[str, Any]] = []
    evaluating = threading.Thread(target=lambda: result.append(client.req("evaluate", expression="while true do end",
                                                                        frameId=fid)))
    evaluating.start()
    while not client.coord._eval_running:  # the evaluation is in its loop
        threading.Event().wait(0.01)
    terminate = {"seq": 999, "type": "request", "command": "terminate", "arguments": {}}
    client.dap.preview(terminate)  # what the TCP reader does before queueing the request
    evaluating.join(10)
    assert not evaluating.is_alive() and result[0]["success"] is False and "cancelled" in result[0]["message"]
    client.dap.dispatch(terminate)
    assert isinstance(client.finish(), ScriptError)


def test_endless_evaluate_while_idle_times_out(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    import llmspell.debug.coordinator as coordinator

    monkeypatch.setattr(coordinator, "EVAL_TIMEOUT", 0.3)
    r = client.req("evaluate", expression="while true do end", context="repl")
    assert r["success"] is False and "evaluation stopped after" in r["message"]
    assert client.ok("evaluate", expression="1 + 1")["result"] == "2"


def test_variable_types_are_the_names_jupyterlab_shows_values_for(client: Client, tmp_path: Path) -> None:
    path = _script(tmp_path, "local i, f, b, s, t = 10, 1.5, true, 'x', {}\nreturn i\n")
    client.ok("setBreakpoints", source={"path": str(path)}, breakpoints=[{"line": 2}])
    client.run(path)
    client.event("stopped")
    loc = client.locals(client.top()["id"])
    assert {k: (v["value"], v["type"]) for k, v in loc.items() if k != "t"} == {
        "i": ("10", "int"), "f": ("1.5", "float"), "b": ("true", "bool"), "s": ('"x"', "str")}
    assert loc["t"]["type"] == "table"
    client.ok("continue", threadId=1)
    client.finish()


class SlowWire(Client):
    """A transport whose write takes a moment: a seq taken before the write would lose the race."""

    def _send(self, msg: dict[str, Any]) -> None:
        time.sleep(0.0002)
        super()._send(msg)


def test_seq_numbers_follow_the_wire_order_under_load(lua_runtime: Any, tmp_path: Path) -> None:
    client = SlowWire(lua_runtime)
    client.ok("initialize", adapterID="llmspell")
    client.ok("attach")
    path = _script(tmp_path, "for i = 1, 400 do\n  local x = i\nend\nlocal a = 1\nreturn a\n")
    client.ok("setBreakpoints", source={"path": str(path)},
              breakpoints=[{"line": 2, "logMessage": "x {i}"}, {"line": 5}])
    client.run(path)
    for _ in range(50):  # requests answered while logpoint output events stream from the Lua thread
        client.ok("threads")
    client.event("stopped")
    client.ok("continue", threadId=1)
    client.finish()
    seqs = [int(w.split(b'"seq":')[1].split(b",")[0]) for w in client.wire]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    client.coord.detach()


def test_token_required_before_anything_else(lua_runtime: Any) -> None:
    closed: list[bool] = []
    sent: list[dict[str, Any]] = []
    coord = DebugCoordinator(lua_runtime)
    d = DapSession(coord, sent.append, token="s3cret-token-value", close=lambda: closed.append(True))
    d.dispatch({"seq": 1, "type": "request", "command": "initialize", "arguments": {"adapterID": "x"}})
    assert sent[-1]["success"] and not any(m.get("event") == "initialized" for m in sent)
    d.dispatch({"seq": 2, "type": "request", "command": "evaluate", "arguments": {"expression": "1"}})
    assert sent[-1]["success"] is False and "before authentication" in sent[-1]["message"] and closed
    for args in ({}, {"llmspellToken": "wrong"}, {"llmspellToken": 5}):
        closed.clear()
        d2 = DapSession(coord, sent.append, token="s3cret-token-value", close=lambda: closed.append(True))
        d2.dispatch({"seq": 1, "type": "request", "command": "launch", "arguments": args})
        assert sent[-1]["success"] is False and closed and d2.disconnected.is_set()
    d3 = DapSession(coord, sent.append, token="s3cret-token-value")
    d3.dispatch({"seq": 1, "type": "request", "command": "initialize", "arguments": {"adapterID": "x"}})
    d3.dispatch({"seq": 2, "type": "request", "command": "launch", "arguments": {"llmspellToken": "s3cret-token-value"}})
    assert sent[-1].get("event") == "initialized" and sent[-2]["success"]  # initialized after launch's reply
    d3.dispatch({"seq": 3, "type": "request", "command": "threads"})
    assert sent[-1]["success"]
    coord.detach()


def test_jupyter_continued_after_resume_and_at_cell_end(lua_runtime: Any, tmp_path: Path) -> None:
    from llmspell.debug.jupyter import JupyterDebugger

    events: queue.Queue[dict[str, Any]] = queue.Queue()
    jd = JupyterDebugger(runtime=lua_runtime, send_event=events.put)

    def req(command: str, **arguments: Any) -> dict[str, Any]:
        r = jd.handle_request({"type": "request", "seq": 1, "command": command, "arguments": arguments})
        assert r["success"], r
        return r

    def event(name: str) -> dict[str, Any]:
        while True:
            ev = events.get(timeout=10)
            if ev["event"] == name:
                return ev

    def cell(code: str, n: int) -> threading.Thread:
        chunk = jd.chunkname_for(code, n)
        assert chunk is not None
        t = threading.Thread(target=lambda: lua_runtime.run_string(code, chunk), daemon=True)
        t.start()
        return t

    # a function defined in a cell run before the debugger was started
    define = "function late(v)\n  local w = v * 2\n  return w\nend\n"
    cell(define, 1).join(10)
    req("initialize", adapterID="llmspell")
    assert events.empty()  # initialized waits for after_reply (the kernel calls it after idle)
    jd.after_reply()
    assert event("initialized")
    req("attach")
    jd.after_reply()
    path = req("dumpCell", code=define)["body"]["sourcePath"]
    assert req("setBreakpoints", source={"path": path}, breakpoints=[{"line": 2}])["body"]["breakpoints"][0][
        "verified"]
    t = cell("return late(21)\n", 2)
    assert event("stopped")["body"]["reason"] == "breakpoint"
    frame = req("stackTrace", threadId=1)["body"]["stackFrames"][0]
    assert frame["source"]["path"] == path and frame["line"] == 2
    req("next", threadId=1)
    assert jd.coord.stopped is not None  # no resume before after_reply
    jd.after_reply()
    assert event("continued")["body"]["threadId"] == 1
    assert event("stopped")["body"]["reason"] == "step"
    req("continue", threadId=1)
    jd.after_reply()
    event("continued")
    t.join(10)
    assert event("continued")  # the cell that stopped has ended: the paused UI clears
    jd.stop()
    assert os.path.exists(path)


def test_continue_after_a_mid_line_step_stop_does_not_stop_on_that_line_again(client: Client, tmp_path: Path) -> None:
    path = _script(tmp_path, "local function sq(x)\n  return x * x\nend\nlocal total = 0\nfor i = 1, 4 do\n"
                             "  total = total + sq(i)\nend\nreturn total\n")
    client.ok("setBreakpoints", source={"path": str(path)}, breakpoints=[{"line": 6, "condition": "i >= 2"}])
    client.run(path)
    client.event("stopped")
    client.ok("stepIn", threadId=1)
    client.event("stopped")
    client.ok("stepOut", threadId=1)
    client.event("stopped")
    top = client.top()
    assert top["line"] == 6 and client.locals(top["id"])["i"]["value"] == "2"
    client.ok("continue", threadId=1)
    client.event("stopped")
    assert client.locals(client.top()["id"])["i"]["value"] == "3"  # not i == 2 a second time
    client.ok("setBreakpoints", source={"path": str(path)}, breakpoints=[])
    client.ok("continue", threadId=1)
    assert client.finish().values == [30]


def test_output_event_with_bytes_that_are_not_utf8_is_sent_escaped(client: Client) -> None:
    client.dap.emit("output", {"category": "stdout", "output": "ok \udcff\udcfe done\n"})  # Lua's "\255\254"
    body = client.event("output")
    assert body["output"] == "ok \\xff\\xfe done\n"
    assert b"ok \\\\xff\\\\xfe done" in client.wire[-1]


def test_hostile_envelopes_get_error_responses(lua_runtime: Any) -> None:
    sent: list[dict[str, Any]] = []
    coord = DebugCoordinator(lua_runtime)
    d = DapSession(coord, sent.append, token="s3cret-token-value")
    for msg in ({"seq": "abc", "type": "request", "command": "launch", "arguments": {"llmspellToken": "\udcff"}},
                {"seq": None, "type": "request", "command": 7},
                {"seq": 3, "type": "request", "command": "launch", "arguments": [1, 2]}):
        d.dispatch(msg)
        assert sent[-1]["type"] == "response" and sent[-1]["success"] is False
    coord.detach()
