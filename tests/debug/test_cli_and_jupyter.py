"""`llmspell debug --break-at` in the terminal, and JupyterDebugger's extra requests in-process."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from llmspell.debug.jupyter import JupyterDebugger
from llmspell.debug.murmur2 import murmur2

SCRIPT = "local function inc(v)\n  local w = v + 1\n  return w\nend\nlocal r = inc(41)\nprint('r', r)\n"


def test_terminal_debugger(tmp_path: Path) -> None:
    script = tmp_path / "t.lua"
    script.write_text(SCRIPT)
    commands = "bt\nprint v * 2\nlocals\nnext\nprint w\nbogus\ncontinue\n"
    proc = subprocess.run([sys.executable, "-m", "llmspell.cli.main", "debug", str(script), "--break-at",
                           f"{script}:2"], input=commands, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "stopped (breakpoint) at t.lua:2 in inc" in out
    assert "#1 main chunk at t.lua:5" in out and "(dbg) 82" in out and "  v = 41" in out
    assert "stopped (step) at t.lua:3 in inc" in out and "(dbg) 42" in out
    assert "unknown command 'bogus'" in out and out.rstrip().endswith("r\t42")


def test_terminal_debugger_inside_a_coroutine(tmp_path: Path) -> None:
    script = tmp_path / "c.lua"
    script.write_text("local gen = coroutine.wrap(function(v)\n  local w = v + 1\n  coroutine.yield(w)\nend)\n"
                      "local r = gen(41)\nprint('r', r)\n")
    proc = subprocess.run([sys.executable, "-m", "llmspell.cli.main", "debug", str(script), "--break-at",
                           "c.lua:2"], input="bt\nframe 1\nframe 2\nprint v\ncontinue\n", capture_output=True,
                          text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "*#0 function <c.lua:1> at c.lua:2" in out and " #1 -- coroutine resumed from --" in out
    assert " #2 main chunk at c.lua:5" in out and "frame 1 marks where a coroutine was resumed" in out
    assert "(dbg) nil" in out and out.rstrip().endswith("r\t42")


def test_terminal_debugger_eof_resumes(tmp_path: Path) -> None:
    script = tmp_path / "t.lua"
    script.write_text(SCRIPT)
    proc = subprocess.run([sys.executable, "-m", "llmspell.cli.main", "debug", str(script), "--break-at",
                           "t.lua:2"], input="", capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 0 and "r\t42" in proc.stdout


def test_debug_usage_errors(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "llmspell.cli.main", "debug", "x.lua"], capture_output=True,
                          text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 2 and "--port" in proc.stderr


@pytest.fixture
def jdbg(lua_runtime: Any) -> Any:
    events: queue.Queue[dict[str, Any]] = queue.Queue()
    d = JupyterDebugger(runtime=lua_runtime, send_event=events.put, kernel=None)
    d.test_events = events  # type: ignore[attr-defined]
    yield d
    d.stop()


def _req(d: JupyterDebugger, command: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    r = d.handle_request({"type": "request", "seq": 1, "command": command, "arguments": arguments or {}})
    assert r["type"] == "response" and r["command"] == command and "seq" in r
    d.after_reply()  # what the kernel does once the reply and its idle went out
    return r


def test_debug_info_before_initialize_and_cell_paths(jdbg: JupyterDebugger) -> None:
    info = _req(jdbg, "debugInfo")["body"]
    assert info["isStarted"] is False and info["hashSeed"] == 3339675911 and info["tmpFileSuffix"] == ".lua"
    assert info["tmpFilePrefix"].endswith(f"llmspell-ipykernel_{os.getpid()}{os.sep}")
    # cells always run under their debug path (a function defined now stops later); no file yet
    before = jdbg.chunkname_for("x = 1", 1)
    assert before == "@" + info["tmpFilePrefix"] + "3427300630.lua" and not Path(before[1:]).exists()
    assert _req(jdbg, "modules")["body"] == {"modules": [], "totalModules": 0}
    assert _req(jdbg, "initialize", {"adapterID": "llmspell"})["success"]
    chunk = jdbg.chunkname_for("x = 1", 1)
    assert chunk == "@" + info["tmpFilePrefix"] + "3427300630.lua"
    assert Path(chunk[1:]).read_text() == "x = 1"
    dumped = _req(jdbg, "dumpCell", {"code": 'print("hello, world")'})["body"]["sourcePath"]
    assert dumped.endswith(str(murmur2('print("hello, world")')) + ".lua")
    assert _req(jdbg, "dumpCell", {})["success"] is False


def test_variables_copy_to_globals_while_stopped(jdbg: JupyterDebugger, lua_runtime: Any) -> None:
    _req(jdbg, "initialize", {"adapterID": "llmspell"})
    _req(jdbg, "attach")
    code = "local secret = {k = 'v'}\nlocal n = 3\nvisible = n * 2\nreturn visible\n"
    chunk = jdbg.chunkname_for(code, 1)
    assert chunk is not None
    r = _req(jdbg, "setBreakpoints", {"source": {"path": chunk[1:]}, "breakpoints": [{"line": 3}]})
    assert r["body"]["breakpoints"][0]["verified"]
    result: list[Any] = []
    t = threading.Thread(target=lambda: result.append(lua_runtime.run_string(code, chunk)), daemon=True)
    t.start()
    while True:
        ev = jdbg.test_events.get(timeout=10)  # type: ignore[attr-defined]
        if ev.get("event") == "stopped":
            break
    assert ev["type"] == "event" and ev["body"]["hitBreakpointIds"]
    assert _req(jdbg, "debugInfo")["body"]["stoppedThreads"] == [1]
    frame = _req(jdbg, "stackTrace", {"threadId": 1})["body"]["stackFrames"][0]
    assert frame["source"]["path"] == chunk[1:]  # exactly the path JupyterLab computed
    copied = _req(jdbg, "copyToGlobals", {"srcVariableName": "secret", "srcFrameId": frame["id"],
                                          "dstVariableName": "exported"})
    assert copied["success"] and copied["body"]["variablesReference"] > 0
    rich = _req(jdbg, "richInspectVariables", {"variableName": "n", "frameId": frame["id"]})["body"]
    assert rich == {"data": {"text/plain": "3"}, "metadata": {}}
    names = {v["name"] for v in _req(jdbg, "inspectVariables")["body"]["variables"]}
    assert "exported" in names and "print" not in names
    _req(jdbg, "continue", {"threadId": 1})
    t.join(10)
    assert result[0].values == [6]
    assert lua_runtime.G.exported.k == "v"
    _req(jdbg, "disconnect", {"restart": False, "terminateDebuggee": False})
    assert _req(jdbg, "debugInfo")["body"]["isStarted"] is False
    assert jdbg.chunkname_for(code, 2) == chunk


def test_attach_fires_pre_debug_hook(jdbg: JupyterDebugger, lua_runtime: Any) -> None:
    if getattr(lua_runtime.services, "hooks", None) is None:
        pytest.skip("no hook service in this build")
    lua_runtime.run_string("pre_debug_seen = 0\n"
                           "Hook.register('PreDebug', function(ctx) pre_debug_seen = pre_debug_seen + 1 end)")
    _req(jdbg, "initialize", {"adapterID": "llmspell"})
    _req(jdbg, "attach")
    for _ in range(200):
        if lua_runtime.run_string("return pre_debug_seen").values == [1]:
            break
        threading.Event().wait(0.02)
    assert lua_runtime.run_string("return pre_debug_seen").values == [1]
