"""Issue 17 items 4 and 7 in the kernel: timeouts and interrupts hold, os.exit is not swallowed.

A real kernel from its kernelspec with a 2 s cell timeout and a 0.5 s grace period. A cell that
removes its hook is stopped by the hook that cannot be removed; a cell in one long C call (an
exponential string.find) or a looping finalizer is answered with an error by the watchdog and the
process replaces itself in place: the next execute_request on the same client is answered.
"""

from __future__ import annotations

import queue
import signal
import time
from typing import Any

import pytest

from tests.kernel.kernel_support import (
    execute,
    jupyter_env,  # noqa: F401 - fixture
    shell_reply,
    start_kernel,
    stop_kernel,
)

pytestmark = pytest.mark.timeout(240)

EXPONENTIAL_FIND = 'local s = string.rep("a", 26) return string.find(s, string.rep("a-", 26) .. "b")'


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory, jupyter_env: dict[str, str]) -> Any:  # noqa: F811
    tmp = tmp_path_factory.mktemp("kernel-watchdog")
    cfg = tmp / "llmspell.toml"
    cfg.write_text("[runtime]\nscript_timeout_seconds = 2\ninterrupt_grace_seconds = 0.5\n", encoding="utf-8")
    km, kc, log = start_kernel(tmp, jupyter_env, LLMSPELL_CONFIG=str(cfg))
    yield km, kc, log
    stop_kernel(km, kc)


def serves(kernel: Any) -> dict[str, Any]:
    km, kc, _ = kernel
    # no wait_for_ready: after an in-place restart the first request's iopub output must arrive too
    reply, out = execute(kc, "return 6 * 7", timeout=60)
    assert reply["content"]["status"] == "ok"
    assert any(m["msg_type"] == "execute_result" and m["content"]["data"]["text/plain"] == "42" for m in out)
    return reply


def wait_for_stream(kc: Any, msg_id: str, text: str, timeout: float = 30.0) -> None:
    """Wait until the cell `msg_id` has printed `text` (so it is running)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            msg = kc.iopub_channel.get_msg(timeout=0.2)
        except queue.Empty:
            continue
        if (msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream"
                and text in msg["content"]["text"]):
            return
    raise AssertionError(f"the cell never printed {text!r}")


def test_a_cell_that_removes_its_hook_still_times_out(kernel: Any) -> None:
    km, kc, _ = kernel
    pid = km.provisioner.process.pid
    reply, _ = execute(kc, "debug.sethook() while true do end", timeout=30)
    c = reply["content"]
    assert c["status"] == "error" and c["ename"] == "Timeout" and "script timed out after 2 s" in c["evalue"]
    assert "restarted" not in c["evalue"]  # the hook held: no hard stop was needed
    assert km.provisioner.process.pid == pid
    serves(kernel)


def test_a_cell_in_one_long_c_call_is_ended_and_the_kernel_keeps_serving(kernel: Any) -> None:
    km, kc, _ = kernel
    execute(kc, "kept_before = 1")
    before = serves(kernel)["content"]["execution_count"]
    reply, _ = execute(kc, EXPONENTIAL_FIND, timeout=60)
    c = reply["content"]
    assert c["status"] == "error" and c["ename"] == "Timeout"
    assert "script timed out after 2 s" in c["evalue"] and "restarted its Lua runtime" in c["evalue"]
    after = serves(kernel)
    assert after["content"]["execution_count"] == before + 2  # the count goes on in the new process
    assert km.is_alive()
    reply, out = execute(kc, "return kept_before == nil")
    assert next(m for m in out if m["msg_type"] == "execute_result")["content"]["data"]["text/plain"] == "true"


def test_a_looping_finalizer_is_ended(kernel: Any) -> None:
    km, kc, _ = kernel
    reply, _ = execute(kc, "setmetatable({}, {__gc = function() while true do end end}) collectgarbage()",
                       timeout=60)
    assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "Timeout"
    serves(kernel)


@pytest.mark.parametrize("how", ["interrupt_request", "SIGINT"])
def test_an_interrupt_ends_a_long_c_call(kernel: Any, how: str) -> None:
    km, kc, _ = kernel
    msg_id = kc.execute('print("started") ' + EXPONENTIAL_FIND)
    wait_for_stream(kc, msg_id, "started")
    if how == "SIGINT":  # what interrupt_mode "signal" sends; Python's handler cannot run during the C call
        km.signal_kernel(signal.SIGINT)
    else:  # the test kernelspec's interrupt_mode is "message": an interrupt_request on control
        km.interrupt_kernel()
    c = shell_reply(kc, msg_id, timeout=60)["content"]
    assert c["status"] == "error" and c["ename"] == "Interrupted", c
    assert "did not stop within 0.5 s" in c["evalue"]
    serves(kernel)


@pytest.mark.parametrize("code, exit_code", [
    ("pcall(os.exit, 2)", 2),
    ("local co = coroutine.wrap(function() pcall(function() os.exit(3) end) end) pcall(co)", 3),
    ("xpcall(function() os.exit(4) end, function(e) return e end) print('not reached')", 4),
])
def test_os_exit_inside_pcall_is_an_error_status_and_the_kernel_serves(kernel: Any, code: str,
                                                                       exit_code: int) -> None:
    reply, out = execute(kernel[1], code)
    c = reply["content"]
    assert c["status"] == "error" and c["ename"] == "SystemExit" and c["exit_code"] == exit_code
    assert not any(m["msg_type"] == "stream" and "not reached" in m["content"]["text"] for m in out)
    serves(kernel)


def test_run_connect_exits_124_for_a_timed_out_cell(kernel: Any, tmp_path: Any) -> None:
    import subprocess
    import sys

    km, _, _ = kernel
    script = tmp_path / "loop.lua"
    script.write_text("debug.sethook() while true do end\n", encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "llmspell.cli.main", "run", "--connect", km.connection_file,
                        str(script)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 124, r.stderr
    serves(kernel)


def test_requests_queued_behind_a_stuck_cell_are_answered_after_the_restart(kernel: Any) -> None:
    km, kc, _ = kernel
    stuck = kc.execute('print("started") ' + EXPONENTIAL_FIND)
    wait_for_stream(kc, stuck, "started")
    queued_exec = kc.execute("return 'queued'")  # stop_on_error: aborted, as after any failed cell
    info = kc.session.msg("kernel_info_request", {})
    kc.shell_channel.send(info)
    c = shell_reply(kc, stuck, timeout=60)["content"]
    assert c["status"] == "error" and c["ename"] == "Timeout"
    aborted = shell_reply(kc, queued_exec, timeout=60)["content"]
    assert aborted["status"] == "error" and aborted["ename"] == "ExecutionAborted"
    assert shell_reply(kc, info["header"]["msg_id"], timeout=60)["content"]["status"] == "ok"
    serves(kernel)
