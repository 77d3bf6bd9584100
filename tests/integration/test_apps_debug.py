"""Every example app can be debugged: a breakpoint in its main.lua, run on replay through the
kernel's debugger (DAP over the control channel, as JupyterLab does it), one step, then continue.
"""

from __future__ import annotations

import queue
import time
from pathlib import Path
from typing import Any

import pytest

from harness import APPS_DIR, CASSETTES_DIR
from harness.kernel_driver import KernelDriver, KernelStartError
from harness.manifest import AppManifest, discover
from harness.runner import HarnessOptions, app_args, kernel_settings

pytestmark = pytest.mark.slow

APPS = discover(APPS_DIR)


class Dap:
    """A minimal DAP client over a kernel's control channel (requests) and iopub (events)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.seq = 0

    def request(self, command: str, arguments: dict[str, Any] | None = None, timeout: float = 15.0) -> dict[str, Any]:
        self.seq += 1
        msg = self.client.session.msg("debug_request", {"type": "request", "seq": self.seq, "command": command,
                                                        "arguments": arguments or {}})
        self.client.control_channel.send(msg)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                reply = self.client.control_channel.get_msg(timeout=0.2)
            except queue.Empty:
                continue
            if reply["parent_header"].get("msg_id") == msg["header"]["msg_id"]:
                content = reply["content"]
                assert content.get("success", True), f"DAP {command} failed: {content.get('message')}"
                return dict(content)
        raise AssertionError(f"no debug_reply to '{command}' within {timeout:g} s")

    def wait_event(self, event: str, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                msg = self.client.get_iopub_msg(timeout=0.2)
            except queue.Empty:
                continue
            if msg["msg_type"] == "debug_event" and msg["content"].get("event") == event:
                return dict(msg["content"])
            if msg["msg_type"] == "error":
                raise AssertionError(f"the app failed before '{event}': {msg['content'].get('evalue')}")
        raise AssertionError(f"no debug_event '{event}' within {timeout:g} s")

    def top_frame(self) -> dict[str, Any]:
        frames = self.request("stackTrace", {"threadId": 1})["body"]["stackFrames"]
        assert frames, "stopped with an empty stack"
        return dict(frames[0])


def _first_code_line(source: str) -> int:
    """The line of `local OUT = ...`: the first statement of every app."""
    for n, line in enumerate(source.splitlines(), start=1):
        if line.startswith("local OUT ="):
            return n
    raise AssertionError("the app has no 'local OUT =' line")


def _preconditions(app: AppManifest) -> None:
    cassette = CASSETTES_DIR / app.name / "cassette.yaml"
    if not cassette.is_file():
        pytest.xfail(f"no cassette at {cassette}: record it with 'python -m harness record {app.name}'")


@pytest.mark.parametrize("app", APPS, ids=[a.name for a in APPS])
def test_breakpoint_step_and_continue_in_main_lua(app: AppManifest, tmp_path: Path) -> None:
    _preconditions(app)
    opts = HarnessOptions(traffic="replay", profile="local", report_dir=tmp_path)
    driver = KernelDriver(kernel_settings(app, opts))
    try:
        driver.start()
    except KernelStartError as e:
        pytest.fail(str(e))
    try:
        kc, dap = driver.client, Dap(driver.client)
        info = dap.request("debugInfo")["body"]
        assert info["hashMethod"] == "Murmur2"
        dap.request("initialize", {"clientID": "llmspell-tests", "adapterID": "llmspell", "pathFormat": "path",
                                   "linesStartAt1": True, "columnsStartAt1": True})
        dap.request("attach", {})
        code = app.main_lua.read_text(encoding="utf-8")
        path = dap.request("dumpCell", {"code": code})["body"]["sourcePath"]
        line = _first_code_line(code)
        bps = dap.request("setBreakpoints", {"source": {"path": path}, "breakpoints": [{"line": line}],
                                             "sourceModified": False})["body"]["breakpoints"]
        assert bps and bps[0].get("verified", True) and bps[0]["line"] == line
        dap.request("configurationDone")

        out_dir = tmp_path / "out"
        msg = kc.session.msg("execute_request", {"code": code, "silent": False, "store_history": False,
                                                 "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
                             metadata={"llmspell": {"args": app_args(app, out_dir)}})
        kc.shell_channel.send(msg)

        stopped = dap.wait_event("stopped")
        assert stopped["body"]["reason"] == "breakpoint"
        frame = dap.top_frame()
        assert (frame["line"], frame["source"]["path"]) == (line, path)

        dap.request("next", {"threadId": 1})
        assert dap.wait_event("stopped")["body"]["reason"] == "step"
        stepped = dap.top_frame()
        assert stepped["source"]["path"] == path and stepped["line"] > line

        dap.request("continue", {"threadId": 1})
        deadline = time.monotonic() + app.runtime_seconds
        while True:
            assert time.monotonic() < deadline, "the app did not finish after 'continue'"
            try:
                reply = kc.get_shell_msg(timeout=0.5)
            except queue.Empty:
                continue
            if reply["parent_header"].get("msg_id") == msg["header"]["msg_id"]:
                break
        assert reply["content"]["status"] == "ok", reply["content"].get("evalue")
        dap.request("disconnect", {"restart": False, "terminateDebuggee": False})
    finally:
        driver.shutdown()
