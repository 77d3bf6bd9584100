"""A full DAP session over TCP against `llmspell debug FILE --port 0` (a real subprocess)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmspell.debug.tcp import DapClient
from tests.debug.debug_support import FUNCTIONS, debuggee_process

SCRIPT = FUNCTIONS + """\
local data = {name = "demo", nested = {deep = {value = 42}}}
local result = sum_squares(3)
print("result", result)
"""


def start_debuggee(tmp_path: Path, *extra: str) -> contextlib.AbstractContextManager[
        tuple[subprocess.Popen[str], str, int, str]]:
    """`llmspell debug multi.lua --port 0` (SCRIPT written once) as `debuggee_process`."""
    script = tmp_path / "multi.lua"
    if not script.exists():
        script.write_text(SCRIPT, encoding="utf-8")
    return debuggee_process(tmp_path, str(script), *extra)


@pytest.fixture
def debuggee(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], DapClient, str]]:
    with start_debuggee(tmp_path) as (proc, host, port, token):
        client = DapClient(host, port)
        client.token = token  # type: ignore[attr-defined]
        yield proc, client, str(tmp_path / "multi.lua")
        client.close()
        proc.wait(10)


def _ok(resp: dict) -> dict:  # type: ignore[type-arg]
    assert resp["type"] == "response" and resp["success"], resp
    return resp.get("body", {})


def _finish(c: DapClient, proc: subprocess.Popen[str], exit_code: int = 0) -> None:
    """The session ends: terminated event, disconnect, and the process exits with `exit_code`."""
    c.wait_event("terminated")
    _ok(c.request("disconnect"))
    assert proc.wait(10) == exit_code


def _launch_to_breakpoint(c: DapClient, token: str, script: str, line: int) -> dict:  # type: ignore[type-arg]
    """initialize, launch with the token, one breakpoint, configurationDone: the body of the first stop."""
    _ok(c.request("initialize", {"adapterID": "llmspell"}))
    _ok(c.request("launch", {"llmspellToken": token}))
    _ok(c.request("setBreakpoints", {"source": {"path": script}, "breakpoints": [{"line": line}]}))
    _ok(c.request("configurationDone"))
    return c.wait_event("stopped")["body"]


def _run_plainly(host: str, port: int, token: str, proc: subprocess.Popen[str]) -> None:
    """A fresh client launches with the token and lets the script run to its end."""
    c = _connect(host, port)
    _ok(c.request("initialize", {"adapterID": "x"}))
    _ok(c.request("launch", {"llmspellToken": token}))
    _ok(c.request("configurationDone"))
    _finish(c, proc)


def test_full_session(debuggee: tuple[subprocess.Popen[str], DapClient, str]) -> None:
    proc, c, script = debuggee
    caps = _ok(c.request("initialize", {"adapterID": "llmspell", "linesStartAt1": True, "pathFormat": "path"}))
    assert caps["supportsConfigurationDoneRequest"] and caps["supportsConditionalBreakpoints"]
    _ok(c.request("launch", {"program": script, "llmspellToken": c.token}))  # type: ignore[attr-defined]
    c.wait_event("initialized")  # once the token was shown
    bps = _ok(c.request("setBreakpoints", {"source": {"path": script}, "breakpoints": [{"line": 15}]}))
    assert bps["breakpoints"][0]["verified"]
    _ok(c.request("setExceptionBreakpoints", {"filters": []}))
    _ok(c.request("configurationDone"))
    stopped = c.wait_event("stopped")["body"]
    assert stopped["reason"] == "breakpoint" and stopped["threadId"] == 1
    assert _ok(c.request("threads"))["threads"] == [{"id": 1, "name": "main"}]
    frames = _ok(c.request("stackTrace", {"threadId": 1}))["stackFrames"]
    assert frames[0]["line"] == 15 and frames[0]["source"]["path"] == os.path.abspath(script)
    scopes = _ok(c.request("scopes", {"frameId": frames[0]["id"]}))["scopes"]
    assert [s["name"] for s in scopes] == ["Locals", "Upvalues", "Globals"]
    local_vars = _ok(c.request("variables", {"variablesReference": scopes[0]["variablesReference"]}))["variables"]
    data = next(v for v in local_vars if v["name"] == "data")
    kids = _ok(c.request("variables", {"variablesReference": data["variablesReference"]}))["variables"]
    nested = next(v for v in kids if v["name"] == "nested")
    assert nested["variablesReference"] > 0

    _ok(c.request("stepIn", {"threadId": 1}))
    assert c.wait_event("stopped")["body"]["reason"] == "step"
    top = _ok(c.request("stackTrace", {"threadId": 1}))["stackFrames"][0]
    assert (top["name"], top["line"]) == ("sum_squares", 7)
    _ok(c.request("next", {"threadId": 1}))
    c.wait_event("stopped")
    _ok(c.request("next", {"threadId": 1}))
    c.wait_event("stopped")
    _ok(c.request("stepIn", {"threadId": 1}))
    c.wait_event("stopped")
    top = _ok(c.request("stackTrace", {"threadId": 1}))["stackFrames"][0]
    assert (top["name"], top["line"]) == ("square", 2)
    ev = _ok(c.request("evaluate", {"expression": "x * 10", "frameId": top["id"], "context": "repl"}))
    assert ev["result"] == "10"
    bad = c.request("evaluate", {"expression": "nil + 1", "frameId": top["id"]})
    assert bad["success"] is False and "attempt to" in bad["message"]
    _ok(c.request("stepOut", {"threadId": 1}))
    c.wait_event("stopped")
    top = _ok(c.request("stackTrace", {"threadId": 1}))["stackFrames"][0]
    assert top["name"] == "sum_squares"
    unknown = c.request("frobnicate")
    assert unknown["success"] is False and "unknown command" in unknown["message"]
    _ok(c.request("continue", {"threadId": 1}))
    out = c.wait_event("output")
    assert out["body"]["output"] == "result\t14\n"
    assert c.wait_event("exited")["body"]["exitCode"] == 0
    _finish(c, proc)


def test_client_disconnects_while_paused(debuggee: tuple[subprocess.Popen[str], DapClient, str]) -> None:
    proc, c, script = debuggee
    _launch_to_breakpoint(c, c.token, script, 2)  # type: ignore[attr-defined]
    c.close()  # no disconnect request: the script must resume and finish
    assert proc.wait(10) == 0
    assert proc.stdout is not None and "result\t14" in proc.stdout.read()


def test_stop_on_entry(debuggee: tuple[subprocess.Popen[str], DapClient, str]) -> None:
    proc, c, script = debuggee
    _ok(c.request("initialize", {"adapterID": "llmspell"}))
    _ok(c.request("launch", {"stopOnEntry": True, "llmspellToken": c.token}))  # type: ignore[attr-defined]
    _ok(c.request("configurationDone"))
    assert c.wait_event("stopped")["body"]["reason"] == "entry"
    top = _ok(c.request("stackTrace", {"threadId": 1}))["stackFrames"][0]
    assert (top["name"], top["line"]) == ("main chunk", 4)
    pause = c.request("pause", {"threadId": 1})
    assert pause["success"]  # already stopped: nothing to do
    _ok(c.request("continue", {"threadId": 1}))
    _finish(c, proc)


def _connect(host: str, port: int) -> DapClient:
    return DapClient(host, port)


def _closed(c: DapClient) -> bool:
    """True once the server closed the connection (the reader saw end of stream)."""
    try:
        while True:
            ev = c.events.get(timeout=10)
            if ev.get("event") == "_closed":
                return True
    except Exception:  # noqa: BLE001 - queue.Empty: still open
        return False


def test_token_is_required_and_the_server_keeps_serving(tmp_path: Path) -> None:
    with start_debuggee(tmp_path, "--token-file", str(tmp_path / "tok")) as (proc, host, port, token):
        assert (tmp_path / "tok").read_text() == token and (tmp_path / "tok").stat().st_mode & 0o777 == 0o600
        for bad in ({}, {"llmspellToken": "wrong-token"}):
            c = _connect(host, port)
            _ok(c.request("initialize", {"adapterID": "x"}))
            r = c.request("launch", bad)
            assert r["success"] is False and "llmspellToken" in r["message"]
            assert _closed(c)
        c = _connect(host, port)
        r = c.request("evaluate", {"expression": "os.exit(3)"})  # nothing runs before the token
        assert r["success"] is False and "before authentication" in r["message"] and _closed(c)
        c = _connect(host, port)
        _ok(c.request("initialize", {"adapterID": "x"}))
        _ok(c.request("launch", {"llmspellToken": token}))
        _ok(c.request("configurationDone"))
        assert c.wait_event("exited")["body"]["exitCode"] == 0
        _finish(c, proc)
        assert not (tmp_path / "tok").exists()  # removed at exit


def test_bad_framing_closes_the_connection_not_the_server(tmp_path: Path) -> None:
    import socket

    with start_debuggee(tmp_path) as (proc, host, port, token):
        for attack in (b"Content-Length: 999999999\r\n\r\n{}", b"Content-Length: abc\r\n\r\n",
                       b"no colon here\r\n\r\n", b"X" * 5000, b"Content-Length: 2\r\n\r\n[]"):
            s = socket.create_connection((host, port), timeout=10)
            s.sendall(attack)
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            s.close()
            assert b'"category":"important"' in data and b"bad DAP message" in data, (attack[:40], data)
        _run_plainly(host, port, token, proc)


def test_configuration_done_first_then_launch(tmp_path: Path) -> None:
    with start_debuggee(tmp_path) as (proc, host, port, token):
        c = _connect(host, port)
        _ok(c.request("initialize", {"adapterID": "x", "llmspellToken": token}))
        c.wait_event("initialized")
        _ok(c.request("configurationDone"))  # before launch: the script must wait for launch
        _ok(c.request("setBreakpoints", {"source": {"path": str(tmp_path / "multi.lua")},
                                         "breakpoints": [{"line": 2}]}))
        _ok(c.request("launch", {}))
        assert c.wait_event("stopped")["body"]["reason"] == "breakpoint"
        _ok(c.request("continue", {"threadId": 1}))
        c.wait_event("stopped")
        _ok(c.request("setBreakpoints", {"source": {"path": str(tmp_path / "multi.lua")}, "breakpoints": []}))
        _ok(c.request("continue", {"threadId": 1}))
        _finish(c, proc)


def test_launch_program_args_and_cwd_and_uncaught_error_text(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "app.lua").write_text("print('args', ...)\nlocal f = io.open('data.txt')\nprint(f:read('a'))\n"
                                  "error('the app failed: ' .. select(1, ...))\n")
    (work / "data.txt").write_text("from cwd")
    with debuggee_process(tmp_path) as (proc, host, port, token):
        c = _connect(host, port)
        _ok(c.request("initialize", {"adapterID": "x"}))
        missing = c.request("launch", {"llmspellToken": token, "program": "nope.lua", "cwd": str(work)})
        assert missing["success"] is False and "does not exist" in missing["message"]
        _ok(c.request("launch", {"llmspellToken": token, "program": "app.lua", "cwd": str(work),
                                 "args": ["one", "two"]}))
        _ok(c.request("configurationDone"))
        outputs = []
        while True:
            ev = c.events.get(timeout=20)
            if ev.get("event") == "output":
                outputs.append(ev["body"])
            if ev.get("event") == "exited":
                assert ev["body"]["exitCode"] == 1
                break
        text = "".join(o["output"] for o in outputs if o["category"] == "stdout")
        assert "args\tone\ttwo" in text and "from cwd" in text
        errors = [o["output"] for o in outputs if o["category"] == "stderr"]
        assert any("the app failed: one" in e for e in errors), outputs  # the message reaches the client
        _finish(c, proc, 1)


def test_terminate_ends_an_endless_evaluate_and_the_process(debuggee: tuple[subprocess.Popen[str], DapClient, str]) -> None:
    proc, c, script = debuggee
    _launch_to_breakpoint(c, c.token, script, 2)  # type: ignore[attr-defined]
    frame = _ok(c.request("stackTrace", {"threadId": 1}))["stackFrames"][0]
    ev_seq = c.send("evaluate", {"expression": "while true do end", "frameId": frame["id"], "context": "repl"})
    term_seq = c.send("terminate", {})
    assert c.response(ev_seq)["success"] is False
    assert c.response(term_seq)["success"] is True
    _finish(c, proc, 1)  # the script ended with the terminate error


def test_restart_request_and_reconnect_after_disconnect_restart(tmp_path: Path) -> None:
    with start_debuggee(tmp_path) as (proc, host, port, token):
        script = str(tmp_path / "multi.lua")
        c = _connect(host, port)
        _launch_to_breakpoint(c, token, script, 15)
        _ok(c.request("evaluate", {"expression": "marker = 1", "context": "repl",
                                   "frameId": _ok(c.request("stackTrace", {"threadId": 1}))["stackFrames"][0]["id"]}))
        _ok(c.request("restart", {"arguments": {"llmspellToken": token}}))
        assert c.wait_event("stopped")["body"]["reason"] == "breakpoint"  # the run started again
        top = _ok(c.request("stackTrace", {"threadId": 1}))["stackFrames"][0]
        assert top["line"] == 15
        fresh = _ok(c.request("evaluate", {"expression": "marker", "frameId": top["id"], "context": "repl"}))
        assert fresh["result"] == "nil"  # a fresh runtime: globals of the first run are gone
        _ok(c.request("disconnect", {"restart": True}))
        c.close()
        c2 = _connect(host, port)  # VS Code's restart without the restart request reconnects
        assert _launch_to_breakpoint(c2, token, script, 15)["reason"] == "breakpoint"
        _ok(c2.request("setBreakpoints", {"source": {"path": script}, "breakpoints": []}))
        _ok(c2.request("continue", {"threadId": 1}))
        assert c2.wait_event("exited")["body"]["exitCode"] == 0
        _finish(c2, proc)


def test_a_client_that_never_shows_the_token_is_closed(tmp_path: Path) -> None:
    import socket

    with start_debuggee(tmp_path, "--auth-timeout", "1") as (proc, host, port, token):
        idle = socket.create_connection((host, port), timeout=20)
        data = b""
        while True:  # it sends nothing: the server closes it after the auth timeout
            chunk = idle.recv(65536)
            if not chunk:
                break
            data += chunk
        idle.close()
        assert b"no session token within 1 s" in data
        _run_plainly(host, port, token, proc)  # the seat is free again
