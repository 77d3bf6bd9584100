"""A full DAP session over TCP against `llmspell debug FILE --port 0` (a real subprocess)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmspell.debug.tcp import DapClient

SCRIPT = """\
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

local data = {name = "demo", nested = {deep = {value = 42}}}
local result = sum_squares(3)
print("result", result)
"""


def start_debuggee(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen[str], str, int, str]:
    """`llmspell debug multi.lua --port 0`: the process, its address and its session token."""
    script = tmp_path / "multi.lua"
    if not script.exists():
        script.write_text(SCRIPT, encoding="utf-8")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("LLMSPELL_DEBUG_TOKEN", None)
    proc = subprocess.Popen([sys.executable, "-m", "llmspell.cli.main", "debug", str(script), "--port", "0",
                             "--wait-timeout", "30", *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=tmp_path)
    assert proc.stderr is not None
    line = proc.stderr.readline()
    m = re.search(r"on ([\d.]+):(\d+)", line)
    assert m, line
    tok = re.search(r"session token (\S+)", proc.stderr.readline())
    assert tok
    return proc, m.group(1), int(m.group(2)), tok.group(1)


@pytest.fixture
def debuggee(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], DapClient, str]]:
    proc, host, port, token = start_debuggee(tmp_path)
    client = DapClient(host, port)
    client.token = token  # type: ignore[attr-defined]
    yield proc, client, str(tmp_path / "multi.lua")
    client.close()
    try:
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()


def _ok(resp: dict) -> dict:  # type: ignore[type-arg]
    assert resp["type"] == "response" and resp["success"], resp
    return resp.get("body", {})


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
    c.wait_event("terminated")
    _ok(c.request("disconnect", {}))
    assert proc.wait(10) == 0


def test_client_disconnects_while_paused(debuggee: tuple[subprocess.Popen[str], DapClient, str]) -> None:
    proc, c, script = debuggee
    _ok(c.request("initialize", {"adapterID": "llmspell"}))
    _ok(c.request("launch", {"llmspellToken": c.token}))  # type: ignore[attr-defined]
    _ok(c.request("setBreakpoints", {"source": {"path": script}, "breakpoints": [{"line": 2}]}))
    _ok(c.request("configurationDone"))
    c.wait_event("stopped")
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
    c.wait_event("terminated")
    _ok(c.request("disconnect"))
    assert proc.wait(10) == 0
