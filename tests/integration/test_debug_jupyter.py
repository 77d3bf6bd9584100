"""A full DAP session over the kernel's control channel (debug_request / debug_reply, debug_event on
iopub), driven with jupyter_client the way JupyterLab drives it."""

from __future__ import annotations

import itertools
import os
import queue
import re
import time
from typing import Any

import pytest

from llmspell.debug.murmur2 import murmur2
from tests.debug.debug_support import FUNCTIONS
from tests.kernel.kernel_support import (
    jupyter_env,  # noqa: F401 - fixture
    start_kernel,
    stop_kernel,
)

pytestmark = pytest.mark.timeout(120)
TIMEOUT = 20.0

CELL = FUNCTIONS + """\
local data = {name = "demo", nested = {value = 42}}
result = sum_squares(3)
print("result", result)
"""


class DebugClient:
    """debug_request on control, debug_event from iopub."""

    def __init__(self, kc: Any) -> None:
        self.kc = kc
        self.seq = itertools.count(1)
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()

    def request(self, command: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        content: dict[str, Any] = {"type": "request", "seq": next(self.seq), "command": command}
        if arguments is not None:
            content["arguments"] = arguments
        msg = self.kc.session.msg("debug_request", content)
        self.kc.control_channel.send(msg)
        deadline = time.monotonic() + TIMEOUT
        while True:
            reply = self.kc.control_channel.get_msg(timeout=max(0.01, deadline - time.monotonic()))
            if reply["parent_header"].get("msg_id") == msg["header"]["msg_id"]:
                assert reply["msg_type"] == "debug_reply"
                return reply["content"]

    def ok(self, command: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        resp = self.request(command, arguments)
        assert resp["success"], resp
        assert resp["type"] == "response" and resp["command"] == command
        return resp.get("body", {})

    def event(self, name: str) -> dict[str, Any]:
        deadline = time.monotonic() + TIMEOUT
        while True:
            msg = self.kc.get_iopub_msg(timeout=max(0.01, deadline - time.monotonic()))
            if msg["msg_type"] == "debug_event" and msg["content"].get("event") == name:
                return msg["content"]


def _reply_to(kc: Any, msg_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + TIMEOUT
    while True:
        reply = kc.get_shell_msg(timeout=max(0.01, deadline - time.monotonic()))
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory, jupyter_env: dict[str, str]) -> Any:  # noqa: F811
    km, kc, _log = start_kernel(tmp_path_factory.mktemp("kernel-debug"), jupyter_env)
    yield km, kc
    stop_kernel(km, kc)


def test_kernel_info_advertises_debugger(kernel: Any) -> None:
    _km, kc = kernel
    kc.kernel_info()
    reply = kc.get_shell_msg(timeout=TIMEOUT)
    assert reply["content"]["debugger"] is True
    assert "debugger" in reply["content"].get("supported_features", [])


def test_full_session_over_control_channel(kernel: Any) -> None:
    _km, kc = kernel
    dbg = DebugClient(kc)
    info = dbg.ok("debugInfo")
    assert info["isStarted"] is False and info["hashMethod"] == "Murmur2"
    caps = dbg.ok("initialize", {"clientID": "jupyterlab", "adapterID": "llmspell", "pathFormat": "path",
                                 "linesStartAt1": True, "columnsStartAt1": True})
    assert caps["supportsSetVariable"] and caps["supportsModulesRequest"]
    dbg.ok("attach", {})
    path = dbg.ok("dumpCell", {"code": CELL})["sourcePath"]
    info = dbg.ok("debugInfo")
    assert info["isStarted"] is True
    assert path == f"{info['tmpFilePrefix']}{murmur2(CELL, int(info['hashSeed']))}{info['tmpFileSuffix']}"
    assert os.path.exists(path)
    bps = dbg.ok("setBreakpoints", {"source": {"path": path}, "breakpoints": [{"line": 15}],
                                    "sourceModified": False})
    assert bps["breakpoints"][0]["verified"] and bps["breakpoints"][0]["line"] == 15
    assert dbg.ok("debugInfo")["breakpoints"] == [{"source": path, "breakpoints": [{"line": 15}]}]

    msg_id = kc.execute(CELL)
    stopped = dbg.event("stopped")["body"]
    assert stopped["reason"] == "breakpoint" and stopped["threadId"] == 1
    assert dbg.ok("debugInfo")["stoppedThreads"] == [1]
    frames = dbg.ok("stackTrace", {"threadId": 1})["stackFrames"]
    assert frames[0]["source"]["path"] == path and frames[0]["line"] == 15
    scopes = dbg.ok("scopes", {"frameId": frames[0]["id"]})["scopes"]
    local_vars = dbg.ok("variables", {"variablesReference": scopes[0]["variablesReference"]})["variables"]
    data = next(v for v in local_vars if v["name"] == "data")
    kids = dbg.ok("variables", {"variablesReference": data["variablesReference"]})["variables"]
    assert {v["name"] for v in kids} == {"name", "nested"}
    assert isinstance(dbg.ok("inspectVariables")["variables"], list)

    dbg.ok("stepIn", {"threadId": 1})
    assert dbg.event("stopped")["body"]["reason"] == "step"
    top = dbg.ok("stackTrace", {"threadId": 1})["stackFrames"][0]
    assert (top["name"], top["line"]) == ("sum_squares", 7)
    dbg.ok("next", {"threadId": 1})
    dbg.event("stopped")
    dbg.ok("next", {"threadId": 1})
    dbg.event("stopped")
    dbg.ok("stepIn", {"threadId": 1})
    dbg.event("stopped")
    top = dbg.ok("stackTrace", {"threadId": 1})["stackFrames"][0]
    assert (top["name"], top["line"]) == ("square", 2)
    assert dbg.ok("evaluate", {"expression": "x + 100", "frameId": top["id"], "context": "repl"})["result"] == "101"
    rich = dbg.ok("richInspectVariables", {"variableName": "x", "frameId": top["id"]})
    assert rich["data"]["text/plain"] == "1"
    dbg.ok("stepOut", {"threadId": 1})
    dbg.event("stopped")
    assert dbg.ok("stackTrace", {"threadId": 1})["stackFrames"][0]["name"] == "sum_squares"
    assert dbg.ok("source", {"source": {"path": path}, "sourceReference": 0})["content"] == CELL
    dbg.ok("continue", {"threadId": 1})

    assert _reply_to(kc, msg_id)["content"]["status"] == "ok"
    names = {v["name"]: v["value"] for v in dbg.ok("inspectVariables")["variables"]}
    assert names.get("result") == "14"
    assert dbg.ok("modules")["totalModules"] >= 0
    dbg.ok("disconnect", {"restart": False, "terminateDebuggee": False})
    assert dbg.ok("debugInfo")["isStarted"] is False
    unknown = dbg.request("frobnicate")
    assert unknown["success"] is False and "unknown command" in unknown["message"]


def test_interrupt_while_paused_ends_the_cell(kernel: Any) -> None:
    km, kc = kernel
    dbg = DebugClient(kc)
    dbg.ok("initialize", {"adapterID": "llmspell"})
    dbg.ok("attach", {})
    code = "local waiting = true\nlocal n = 1\nreturn n\n"
    path = dbg.ok("dumpCell", {"code": code})["sourcePath"]
    dbg.ok("setBreakpoints", {"source": {"path": path}, "breakpoints": [{"line": 2}]})
    msg_id = kc.execute(code)
    dbg.event("stopped")
    km.interrupt_kernel()
    assert _reply_to(kc, msg_id)["content"]["status"] == "error"
    dbg.ok("setBreakpoints", {"source": {"path": path}, "breakpoints": []})
    dbg.ok("disconnect", {"restart": False, "terminateDebuggee": False})
    kc.execute("return 1")  # the kernel still runs cells
    deadline = time.monotonic() + TIMEOUT
    while True:
        reply = kc.get_shell_msg(timeout=max(0.01, deadline - time.monotonic()))
        if reply["content"].get("status") == "ok":
            break


def test_pause_while_a_coroutine_waits_in_a_blocking_call(kernel: Any) -> None:
    """JupyterLab's pause during a long call (here Utils.sleep) inside a coroutine: it stops there."""
    _km, kc = kernel
    dbg = DebugClient(kc)
    dbg.ok("initialize", {"adapterID": "llmspell"})
    dbg.ok("attach", {})
    code = ("local co = coroutine.wrap(function(ms)\n"
            "  print('sleeping')\n"
            "  Utils.sleep(ms)\n"
            "  local after = ms + 1\n"
            "  coroutine.yield(after)\n"
            "end)\n"
            "local got = co(1500)\n"
            "return got\n")
    path = dbg.ok("dumpCell", {"code": code})["sourcePath"]
    msg_id = kc.execute(code)
    deadline = time.monotonic() + TIMEOUT
    while True:  # the cell has reached its sleep once it printed
        msg = kc.get_iopub_msg(timeout=max(0.01, deadline - time.monotonic()))
        if msg["msg_type"] == "stream" and "sleeping" in msg["content"]["text"]:
            break
    dbg.ok("pause", {"threadId": 1})
    assert dbg.event("stopped")["body"]["reason"] == "pause"
    frames = dbg.ok("stackTrace", {"threadId": 1})["stackFrames"]
    assert [(f["line"], f.get("presentationHint")) for f in frames] == [(3, None), (0, "label"), (7, None)]
    assert frames[0]["source"]["path"] == path
    assert dbg.ok("evaluate", {"expression": "ms * 2", "frameId": frames[0]["id"]})["result"] == "3000"
    dbg.ok("next", {"threadId": 1})  # after the sleep: the next line of the coroutine
    dbg.event("stopped")
    assert dbg.ok("stackTrace", {"threadId": 1})["stackFrames"][0]["line"] == 4
    dbg.ok("continue", {"threadId": 1})
    assert _reply_to(kc, msg_id)["content"]["status"] == "ok"
    dbg.ok("disconnect", {"restart": False, "terminateDebuggee": False})


def _iopub_until(kc: Any, want: Any) -> list[dict[str, Any]]:
    """IOPub messages up to and including the first one `want(msg)` accepts."""
    seen = []
    deadline = time.monotonic() + TIMEOUT
    while True:
        msg = kc.get_iopub_msg(timeout=max(0.01, deadline - time.monotonic()))
        seen.append(msg)
        if want(msg):
            return seen


def _is_event(name: str) -> Any:
    return lambda m: m["msg_type"] == "debug_event" and m["content"].get("event") == name


def test_jupyterlab_findings(kernel: Any) -> None:
    """Issue 20, items 10-14, the way JupyterLab 4.6 drives a kernel."""
    _km, kc = kernel
    # 12: a function defined in a cell run before the debugger was started
    define = "function later(v)\n  local w = v * 2\n  local label = 'w'\n  return w\nend\n"
    _reply_to(kc, kc.execute(define))
    dbg = DebugClient(kc)
    dbg.ok("debugInfo")
    content = {"type": "request", "seq": 900, "command": "initialize",
               "arguments": {"clientID": "jupyterlab", "adapterID": "llmspell", "linesStartAt1": True}}
    msg = kc.session.msg("debug_request", content)
    kc.control_channel.send(msg)
    seen = _iopub_until(kc, _is_event("initialized"))
    idle = [i for i, m in enumerate(seen) if m["msg_type"] == "status"
            and m["content"]["execution_state"] == "idle" and m["parent_header"].get("msg_id") == msg["header"]["msg_id"]]
    assert idle and idle[0] < len(seen) - 1  # 11: initialized only after the request's reply and idle
    dbg.ok("attach", {})
    path = dbg.ok("dumpCell", {"code": define})["sourcePath"]
    info = dbg.ok("debugInfo")
    assert path == f"{info['tmpFilePrefix']}{murmur2(define, int(info['hashSeed']))}{info['tmpFileSuffix']}"
    bps = dbg.ok("setBreakpoints", {"source": {"path": path}, "breakpoints": [{"line": 3}], "sourceModified": False})
    assert bps["breakpoints"][0]["verified"]
    msg_id = kc.execute("return later(21)")
    assert dbg.event("stopped")["body"]["reason"] == "breakpoint"
    frame = dbg.ok("stackTrace", {"threadId": 1})["stackFrames"][0]
    assert frame["source"]["path"] == path and frame["line"] == 3  # 13: the path JupyterLab maps to "Cell [n]"
    scopes = dbg.ok("scopes", {"frameId": frame["id"]})["scopes"]
    local_vars = {v["name"]: v for v in dbg.ok("variables", {"variablesReference": scopes[0]["variablesReference"]})[
        "variables"]}
    assert (local_vars["v"]["value"], local_vars["v"]["type"]) == ("21", "int")  # 13: a type JupyterLab shows
    # 11 and 10: the step's reply comes before its events; continued clears the paused UI
    content = {"type": "request", "seq": 901, "command": "next", "arguments": {"threadId": 1}}
    step = kc.session.msg("debug_request", content)
    kc.control_channel.send(step)
    reply = kc.control_channel.get_msg(timeout=TIMEOUT)
    assert reply["content"]["command"] == "next" and reply["content"]["success"]
    seen = _iopub_until(kc, _is_event("stopped"))
    events = [m["content"]["event"] for m in seen if m["msg_type"] == "debug_event"]
    assert events == ["continued", "stopped"]
    reply_seq = reply["content"]["seq"]
    assert all(m["content"]["seq"] > reply_seq for m in seen if m["msg_type"] == "debug_event")
    dbg.ok("continue", {"threadId": 1})
    dbg.event("continued")
    assert _reply_to(kc, msg_id)["content"]["status"] == "ok"
    dbg.event("continued")  # 10: the debugged cell ended (as ipykernel clears its stopped state)
    dbg.ok("setBreakpoints", {"source": {"path": path}, "breakpoints": []})

    # 14: tracebacks show the user's frames as cell[n], without the runtime's or the debugger's own
    fail = "local function boom(x)\n  error('boom ' .. x)\nend\nboom(1)\n"
    for filters in ([], ["uncaught"]):
        dbg.ok("setExceptionBreakpoints", {"filters": filters})
        fail_id = kc.execute(fail)
        if filters:
            assert dbg.event("stopped")["body"]["reason"] == "exception"
            dbg.ok("continue", {"threadId": 1})
        content = _reply_to(kc, fail_id)["content"]
        assert content["status"] == "error", content
        text = "\n".join(content["traceback"])
        assert re.search(r"cell\[\d+\]:2: in ", text) and re.search(r"cell\[\d+\]:4: in main chunk", text), text
        for noise in ("raw_xpcall", "llmspell.debug", "upvalue 'fn'", info["tmpFilePrefix"]):
            assert noise not in text, (noise, text)
        assert info["tmpFilePrefix"] not in content["evalue"] and "boom 1" in content["evalue"]
    dbg.ok("setExceptionBreakpoints", {"filters": []})
    dbg.ok("disconnect", {"restart": False, "terminateDebuggee": False})
