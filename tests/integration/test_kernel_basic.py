"""Every handler of the kernel, over real sockets, against the installed kernelspec (jupyter_client)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.kernel_wire import module_kernel
from tests.kernel.kernel_support import (
    execute,
    iopub_until_idle,
    jupyter_env,  # noqa: F401 - fixture
    kernel_info_ok,
    request,
    shell_reply,
    start_kernel,
    stop_kernel,
    stream_text,
)

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory, jupyter_env: dict[str, str]) -> Any:  # noqa: F811
    yield from module_kernel(tmp_path_factory, jupyter_env, "kernel-basic")


@pytest.fixture
def kc(kernel: Any) -> Any:
    return kernel[1]


def types(outputs: list[dict[str, Any]]) -> list[str]:
    return [m["msg_type"] for m in outputs]


# ------------------------------------------------------------------ kernel_info
def test_kernel_info_on_shell_and_control(kc: Any) -> None:
    info = kernel_info_ok(kc)
    assert info["protocol_version"] == "5.3"
    assert info["language_info"]["name"] == "lua"
    assert info["language_info"]["file_extension"] == ".lua"
    assert "llmspell" in info["banner"]
    assert isinstance(info["help_links"], list)
    on_control = request(kc, "kernel_info_request", {}, channel="control")
    assert on_control["content"]["implementation"] == "llmspell"
    assert on_control["msg_type"] == "kernel_info_reply"


# ---------------------------------------------------------------------- execute
def test_execute_order_result_and_count(kc: Any) -> None:
    reply, out = execute(kc, "return 1")
    assert reply["content"]["status"] == "ok"
    n = reply["content"]["execution_count"]
    assert types(out) == ["status", "execute_input", "execute_result", "status"]
    assert out[0]["content"]["execution_state"] == "busy"
    assert out[1]["content"] == {"code": "return 1", "execution_count": n}
    assert out[2]["content"]["data"]["text/plain"] == "1"
    assert out[2]["content"]["execution_count"] == n
    reply2, _ = execute(kc, "6*7")
    assert reply2["content"]["execution_count"] == n + 1


def test_expression_cells_render_like_the_lua_repl(kc: Any) -> None:
    cases = {"'a' .. 'b'": "ab", "3.0": "3", "1/3": "0.33333333333333", "true, nil, 2": "true\tnil\t2"}
    for code, text in cases.items():
        _, out = execute(kc, code)
        results = [m for m in out if m["msg_type"] == "execute_result"]
        assert results and results[0]["content"]["data"]["text/plain"] == text, code
    _, out = execute(kc, "return {b = {1, 2}, a = 'x'}")
    data = next(m for m in out if m["msg_type"] == "execute_result")["content"]["data"]
    assert data["application/json"] == {"a": "x", "b": [1, 2]}


def test_statements_give_no_result(kc: Any) -> None:
    _, out = execute(kc, "local x = 1")
    assert "execute_result" not in types(out)
    _, out = execute(kc, "return print('side effect')")
    assert "execute_result" not in types(out)
    assert stream_text(out) == "side effect\n"


def test_stdout_and_stderr_streams_carry_the_parent_header(kc: Any) -> None:
    reply, out = execute(kc, "print('hello, world'); io.write('a', 1); io.stderr:write('oops\\n')")
    assert reply["content"]["status"] == "ok"
    assert stream_text(out, "stdout") == "hello, world\na1"
    assert stream_text(out, "stderr") == "oops\n"
    parent = reply["parent_header"]["msg_id"]
    assert all(m["parent_header"]["msg_id"] == parent for m in out)


def test_output_is_streamed_while_the_cell_runs(kc: Any) -> None:
    msg_id = kc.execute("print('first'); Utils.sleep(1500); print('second')")
    first = None
    while first is None:
        m = kc.iopub_channel.get_msg(timeout=20)
        if m["parent_header"].get("msg_id") == msg_id and m["msg_type"] == "stream":
            first = m
    assert first["content"]["text"] == "first\n"
    assert not kc.shell_channel.msg_ready()  # the reply has not come yet: output arrived during the cell
    rest = iopub_until_idle(kc, msg_id)
    assert stream_text(rest) == "second\n"
    assert shell_reply(kc, msg_id)["content"]["status"] == "ok"


def test_error_has_traceback_and_one_error_output(kc: Any) -> None:
    reply, out = execute(kc, "local function f() error('boom') end\nf()")
    c = reply["content"]
    assert c["status"] == "error"
    assert c["ename"] == "LuaError"
    n = c["execution_count"]
    assert c["evalue"] == f"cell[{n}]:1: boom"
    assert c["traceback"][0] == f"LuaError: cell[{n}]:1: boom"
    assert any("in local 'f'" in ln or "in function" in ln for ln in c["traceback"])
    assert types(out) == ["status", "execute_input", "error", "status"]


def test_syntax_error_and_error_in_a_coroutine(kc: Any) -> None:
    reply, _ = execute(kc, "x = = 1")
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "SyntaxError"
    assert "unexpected symbol" in reply["content"]["evalue"]
    reply, _ = execute(kc, "coroutine.wrap(function() error('inside') end)()")
    assert reply["content"]["status"] == "error"
    assert "inside" in reply["content"]["evalue"]
    kernel_info_ok(kc)


def test_os_exit_aborts_the_cell_and_the_kernel_keeps_running(kc: Any) -> None:
    reply, out = execute(kc, "print('before'); os.exit(3)")
    assert reply["content"]["status"] == "error"
    assert reply["content"]["evalue"] == "os.exit(3) called"
    assert stream_text(out) == "before\n"
    reply, _ = execute(kc, "return 5")
    assert reply["content"]["status"] == "ok"


def test_silent_and_store_history(kc: Any) -> None:
    reply, _ = execute(kc, "return 1")
    n = reply["content"]["execution_count"]
    reply, out = execute(kc, "print('hidden'); return 2", silent=True)
    assert reply["content"]["execution_count"] == n
    assert types(out) == ["status", "status"]
    reply, out = execute(kc, "return 3", store_history=False)
    assert reply["content"]["execution_count"] == n
    assert "execute_result" in types(out)
    reply, _ = execute(kc, "return 4")
    assert reply["content"]["execution_count"] == n + 1


def test_user_expressions(kc: Any) -> None:
    reply, _ = execute(kc, "ue_x = 20", user_expressions={"double": "ue_x * 2", "bad": "nope("})
    ue = reply["content"]["user_expressions"]
    assert ue["double"] == {"status": "ok", "data": {"text/plain": "40"}, "metadata": {}}
    assert ue["bad"]["status"] == "error"


def test_args_come_from_metadata_and_are_reset_per_execution(kc: Any) -> None:
    msg = kc.session.msg("execute_request", {"code": "return ARGS.input, ARGS[1], ARGS['0'], select('#', ...)",
                                             "silent": False, "store_history": True, "user_expressions": {},
                                             "allow_stdin": False, "stop_on_error": True},
                         metadata={"llmspell": {"args": ["--input", "x.txt", "pos1"]}})
    kc.shell_channel.send(msg)
    out = iopub_until_idle(kc, msg["header"]["msg_id"])
    reply = shell_reply(kc, msg["header"]["msg_id"])
    n = reply["content"]["execution_count"]
    result = next(m for m in out if m["msg_type"] == "execute_result")
    assert result["content"]["data"]["text/plain"] == f"x.txt\tpos1\tcell[{n}]\t3"
    reply, out = execute(kc, "return ARGS.input, ARGS[0]")
    n = reply["content"]["execution_count"]
    assert next(m for m in out if m["msg_type"] == "execute_result")["content"]["data"]["text/plain"] == f"nil\tcell[{n}]"


def test_execute_reply_metadata_carries_the_run_figures(kc: Any) -> None:
    reply, _ = execute(kc, "local s = 0 for i = 1, 1000 do s = s + i end return s")
    figures = reply["metadata"]["llmspell"]
    for key in ("tokens", "cost_usd", "agents_created", "tool_calls", "llm_calls", "wall_ms"):
        assert key in figures
    assert figures["llm_calls"] == 0
    assert figures["wall_ms"] >= 0


def test_stop_on_error_aborts_queued_executes(kc: Any) -> None:
    # The failing cell waits for input, so the next requests are surely queued behind it.
    bad = kc.execute("local v = io.read(); error('first fails: ' .. v)", allow_stdin=True)
    assert kc.stdin_channel.get_msg(timeout=20)["msg_type"] == "input_request"
    queued = kc.execute("never_run = true")
    info_id = kc.kernel_info()
    kc.input("now")
    other = shell_reply(kc, info_id)  # not an execute: still answered
    assert other["content"]["status"] == "ok"
    r1 = shell_reply(kc, bad)
    r2 = shell_reply(kc, queued)
    assert r1["content"]["status"] == "error"
    assert r2["content"]["status"] == "error"
    assert r2["content"]["ename"] == "ExecutionAborted"
    _, out = execute(kc, "return never_run == nil")
    assert next(m for m in out if m["msg_type"] == "execute_result")["content"]["data"]["text/plain"] == "true"
    ok1 = kc.execute("error('fails but does not stop')", stop_on_error=False)
    ok2 = kc.execute("return 'ran'")
    assert shell_reply(kc, ok1)["content"]["status"] == "error"
    assert shell_reply(kc, ok2)["content"]["status"] == "ok"


def test_pager_payload(kc: Any) -> None:
    reply, _ = execute(kc, "?Agent.builder")
    payload = reply["content"]["payload"]
    assert len(payload) == 1 and payload[0]["source"] == "page"
    assert "AgentBuilder" in payload[0]["data"]["text/plain"]


# ------------------------------------------------------------------- complete
def complete(kc: Any, code: str, cursor: int | None = None) -> dict[str, Any]:
    content = {"code": code, "cursor_pos": len(code) if cursor is None else cursor}
    return request(kc, "complete_request", content)["content"]


def test_complete_globals_keywords_fields_and_methods(kc: Any) -> None:
    r = complete(kc, "pri")
    assert r["matches"] == ["print"] and r["cursor_start"] == 0 and r["cursor_end"] == 3
    assert set(complete(kc, "re")["matches"]) == {"repeat", "require", "return"}
    r = complete(kc, "x = Agent.bu")
    assert r["matches"] == ["builder"] and r["cursor_start"] == len("x = Agent.")
    assert {"insert", "concat", "remove"} <= set(complete(kc, "table.")["matches"])
    execute(kc, "cfg = {alpha = 1, beta = {gamma = 2}}")
    assert complete(kc, "cfg.beta.g")["matches"] == ["gamma"]
    execute(kc, "sname = 'abc'")
    assert complete(kc, "s = sname:up")["matches"] == ["upper"]
    execute(kc, "b = Agent.builder()")
    methods = complete(kc, "b:")["matches"]
    assert "build" in methods and "model" in methods
    assert complete(kc, "local zeta_local = 1\nzeta_l")["matches"] == ["zeta_local"]
    assert complete(kc, "print(1)  ")["matches"] == []
    r = complete(kc, "Tool.inv, more", cursor=len("Tool.inv"))
    assert r["matches"] == ["invoke"] and r["cursor_end"] == len("Tool.inv")


# -------------------------------------------------------------------- inspect
def test_inspect_llmspell_and_lua_names(kc: Any) -> None:
    r = request(kc, "inspect_request", {"code": "Tool.invoke", "cursor_pos": 6, "detail_level": 0})["content"]
    assert r["status"] == "ok" and r["found"] is True
    assert "Tool.invoke(name, params)" in r["data"]["text/plain"]
    r = request(kc, "inspect_request", {"code": "print", "cursor_pos": 5, "detail_level": 0})["content"]
    assert r["found"] is True
    execute(kc, "my_value = 41")
    r = request(kc, "inspect_request", {"code": "my_value", "cursor_pos": 3, "detail_level": 1})["content"]
    assert r["found"] is True and "number = 41" in r["data"]["text/plain"]
    r = request(kc, "inspect_request", {"code": "no_such_name", "cursor_pos": 3, "detail_level": 0})["content"]
    assert r == {"status": "ok", "found": False, "data": {}, "metadata": {}}


# ---------------------------------------------------------------- is_complete
@pytest.mark.parametrize("code, status", [
    ("print('hello, world')", "complete"),
    ("x", "complete"),
    ("function f() return 1 end", "complete"),
    ("print('hello", "incomplete"),
    ("local t = {", "incomplete"),
    ("for i = 1, 3 do", "incomplete"),
    ('print("a" ..', "incomplete"),
    ("x = = 1", "invalid"),
    ("local 1 = 2", "invalid"),
])
def test_is_complete(kc: Any, code: str, status: str) -> None:
    r = request(kc, "is_complete_request", {"code": code})["content"]
    assert r["status"] == status
    if status == "incomplete":
        assert isinstance(r["indent"], str)
    else:
        assert "indent" not in r


def test_is_complete_indent_follows_open_blocks(kc: Any) -> None:
    r = request(kc, "is_complete_request", {"code": "for i = 1, 3 do\n  if i then"})["content"]
    assert r == {"status": "incomplete", "indent": "    "}


# -------------------------------------------------------------------- history
def test_history_tail_range_search(kc: Any) -> None:
    codes = ["hist_a = 1", "hist_b = 2", "hist_a = 1"]
    counts = [execute(kc, c)[0]["content"]["execution_count"] for c in codes]
    tail = request(kc, "history_request", {"output": False, "raw": True, "hist_access_type": "tail", "n": 3})
    hist = tail["content"]["history"]
    assert [h[2] for h in hist] == codes
    assert [h[1] for h in hist] == counts
    session = hist[0][0]
    rng = request(kc, "history_request", {"output": False, "raw": True, "hist_access_type": "range",
                                          "session": session, "start": counts[1], "stop": counts[1] + 1})
    assert rng["content"]["history"] == [[session, counts[1], "hist_b = 2"]]
    found = request(kc, "history_request", {"output": False, "raw": True, "hist_access_type": "search",
                                            "pattern": "hist_?*"})["content"]["history"]
    assert len(found) == 3
    unique = request(kc, "history_request", {"output": False, "raw": True, "hist_access_type": "search",
                                             "pattern": "hist_a*", "unique": True})["content"]["history"]
    assert [h[2] for h in unique] == ["hist_a = 1"]
    last2 = request(kc, "history_request", {"output": False, "raw": True, "hist_access_type": "search",
                                            "pattern": "hist_*", "n": 2})["content"]["history"]
    assert [h[1] for h in last2] == counts[1:]
    execute(kc, "40 + 2")
    with_out = request(kc, "history_request", {"output": True, "raw": True, "hist_access_type": "tail", "n": 1})
    assert with_out["content"]["history"][0][2] == ["40 + 2", "42"]


# ---------------------------------------------------------------------- comms
def test_comm_lifecycle_and_unknown_target(kc: Any) -> None:
    open_msg = kc.session.msg("comm_open", {"comm_id": "c1", "target_name": "llmspell", "data": {}})
    kc.shell_channel.send(open_msg)
    iopub_until_idle(kc, open_msg["header"]["msg_id"])
    info = request(kc, "comm_info_request", {"target_name": "llmspell"})["content"]
    assert info["comms"] == {"c1": {"target_name": "llmspell"}}
    msg = kc.session.msg("comm_msg", {"comm_id": "c1", "data": {"request": "globals"}})
    kc.shell_channel.send(msg)
    out = iopub_until_idle(kc, msg["header"]["msg_id"])
    answer = next(m for m in out if m["msg_type"] == "comm_msg")
    assert "json" in answer["content"]["data"]["globals"]
    close = kc.session.msg("comm_close", {"comm_id": "c1", "data": {}})
    kc.shell_channel.send(close)
    iopub_until_idle(kc, close["header"]["msg_id"])
    assert request(kc, "comm_info_request", {})["content"]["comms"] == {}
    bad = kc.session.msg("comm_open", {"comm_id": "c2", "target_name": "no.such.target", "data": {}})
    kc.shell_channel.send(bad)
    out = iopub_until_idle(kc, bad["header"]["msg_id"])
    assert any(m["msg_type"] == "comm_close" and m["content"]["comm_id"] == "c2" for m in out)


# ---------------------------------------------------------------------- stdin
def test_io_read_asks_the_frontend_when_stdin_is_allowed(kc: Any) -> None:
    msg_id = kc.execute("io.write('name? '); local v = io.read(); return 'hi ' .. v", allow_stdin=True)
    req = kc.stdin_channel.get_msg(timeout=20)
    assert req["msg_type"] == "input_request"
    assert req["parent_header"]["msg_id"] == msg_id
    kc.input("lua")
    out = iopub_until_idle(kc, msg_id)
    assert stream_text(out) == "name? "
    assert next(m for m in out if m["msg_type"] == "execute_result")["content"]["data"]["text/plain"] == "hi lua"
    assert shell_reply(kc, msg_id)["content"]["status"] == "ok"


def test_io_read_without_stdin_raises(kc: Any) -> None:
    reply, _ = execute(kc, "return io.read()", allow_stdin=False)
    assert reply["content"]["status"] == "error"
    assert "stdin is not available" in reply["content"]["evalue"]


# ------------------------------------------------------------------ interrupt
def _interrupt_loop(kc: Any, send_interrupt: Any) -> dict[str, Any]:
    msg_id = kc.execute("while true do end")
    busy = None
    while busy is None:  # wait until the cell is running
        m = kc.iopub_channel.get_msg(timeout=20)
        if m["parent_header"].get("msg_id") == msg_id and m["msg_type"] == "execute_input":
            busy = m
    send_interrupt()
    reply = shell_reply(kc, msg_id, timeout=20)
    iopub_until_idle(kc, msg_id)  # queued executes sent before idle would be aborted (stop_on_error)
    return reply


def test_interrupt_request_on_control_stops_a_pure_lua_loop(kc: Any) -> None:
    replies: list[dict[str, Any]] = []

    def send() -> None:
        replies.append(request(kc, "interrupt_request", {}, channel="control"))

    reply = _interrupt_loop(kc, send)
    assert replies[0]["content"]["status"] == "ok"
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "Interrupted"
    r, _ = execute(kc, "return 'usable'")
    assert r["content"]["status"] == "ok"


def test_sigint_stops_a_pure_lua_loop(kernel: Any) -> None:
    km, kc, _ = kernel
    reply = _interrupt_loop(kc, lambda: os.kill(km.provisioner.pid, signal.SIGINT))
    assert reply["content"]["ename"] == "Interrupted"
    r, _ = execute(kc, "return 'usable'")
    assert r["content"]["status"] == "ok"


def test_interrupt_while_idle_does_not_affect_the_next_cell(kernel: Any) -> None:
    km, kc, _ = kernel
    os.kill(km.provisioner.pid, signal.SIGINT)
    request(kc, "interrupt_request", {}, channel="control")
    r, _ = execute(kc, "local s = 0 for i = 1, 3e6 do s = s + 1 end return s")
    assert r["content"]["status"] == "ok"


def test_unknown_message_type_is_ignored(kc: Any) -> None:
    msg = kc.session.msg("frobnicate_request", {})
    kc.shell_channel.send(msg)
    kernel_info_ok(kc)


def test_debug_request_gets_a_dap_response(kc: Any) -> None:
    reply = request(kc, "debug_request", {"type": "request", "seq": 7, "command": "nosuchcommand",
                                          "arguments": {}}, channel="control")
    c = reply["content"]
    assert c["type"] == "response" and c["request_seq"] == 7 and c["command"] == "nosuchcommand"
    assert isinstance(c["success"], bool)
    kernel_info_ok(kc)


# -------------------------------------------------------------- restart, shutdown
def test_restart_then_shutdown(tmp_path: Path, jupyter_env: dict[str, str]) -> None:  # noqa: F811
    km, kc, _ = start_kernel(tmp_path, jupyter_env)
    try:
        execute(kc, "survivor = 1")
        km.restart_kernel(now=False)
        kc.wait_for_ready(timeout=30)
        _, out = execute(kc, "return survivor == nil")
        assert next(m for m in out if m["msg_type"] == "execute_result")["content"]["data"]["text/plain"] == "true"
        reply = request(kc, "shutdown_request", {"restart": False}, channel="control")
        assert reply["content"] == {"status": "ok", "restart": False}
        deadline = time.monotonic() + 10
        while km.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not km.is_alive()
    finally:
        stop_kernel(km, kc, now=True)


def test_pre_and_post_execute_hooks_fire_around_each_cell(kc: Any) -> None:
    execute(kc, "hook_log = {}\n"
                "Hook.register('PreExecute', function(ctx) "
                "hook_log[#hook_log + 1] = 'pre' .. ctx.data.execution_count end)\n"
                "Hook.register('PostExecute', function(ctx) "
                "hook_log[#hook_log + 1] = 'post' .. ctx.data.execution_count .. ctx.data.status end)")
    n = execute(kc, "error('hooked failure')")[0]["content"]["execution_count"]
    _, out = execute(kc, "return table.concat(hook_log, ',')")
    text = next(m for m in out if m["msg_type"] == "execute_result")["content"]["data"]["text/plain"]
    assert text == f"post{n - 1}ok,pre{n},post{n}error,pre{n + 1}"


def _debug_event(kc: Any, event: str, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"no {event} debug_event"
        try:
            m = kc.iopub_channel.get_msg(timeout=left)
        except Exception:  # noqa: BLE001 - queue.Empty: keep waiting until the deadline
            continue
        if m["msg_type"] == "debug_event" and m["content"].get("event") == event:
            return m["content"]


def test_debugger_seam_breakpoint_in_a_cell(kc: Any) -> None:
    import importlib.util

    if importlib.util.find_spec("llmspell.debug.jupyter") is None:
        pytest.skip("llmspell.debug.jupyter is not present")
    info = kernel_info_ok(kc)
    assert info["debugger"] is True and info["supported_features"] == ["debugger"]
    seq = iter(range(1, 1000))

    def dap(command: str, **arguments: Any) -> dict[str, Any]:
        r = request(kc, "debug_request", {"type": "request", "seq": next(seq), "command": command,
                                          "arguments": arguments}, channel="control")
        assert r["content"]["success"] is True, r["content"]
        return r["content"]

    dap("initialize", adapterID="llmspell", clientID="test", linesStartAt1=True, columnsStartAt1=True)
    dap("attach")
    _debug_event(kc, "initialized")
    code = "local a = 1\nlocal b = a + 1\nreturn b * 21"
    path = dap("dumpCell", code=code)["body"]["sourcePath"]
    dap("setBreakpoints", source={"path": path}, breakpoints=[{"line": 2}])
    dap("configurationDone")
    msg_id = kc.execute(code)
    stopped = _debug_event(kc, "stopped")
    frames = dap("stackTrace", threadId=stopped["body"].get("threadId", 1))["body"]["stackFrames"]
    assert frames[0]["source"]["path"] == path and frames[0]["line"] == 2
    dap("continue", threadId=stopped["body"].get("threadId", 1))
    out = iopub_until_idle(kc, msg_id)
    assert next(m for m in out if m["msg_type"] == "execute_result")["content"]["data"]["text/plain"] == "42"
    assert shell_reply(kc, msg_id)["content"]["status"] == "ok"
    dap("disconnect")
    kernel_info_ok(kc)


def test_heartbeat_echoes_while_a_cell_runs(kernel: Any) -> None:
    import zmq

    km, kc, _ = kernel
    info = km.get_connection_info()
    sock = zmq.Context.instance().socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(f"tcp://{info['ip']}:{info['hb_port']}")
    try:
        msg_id = kc.execute("local t = os.clock() while os.clock() - t < 1 do end")
        while True:
            m = kc.iopub_channel.get_msg(timeout=20)
            if m["parent_header"].get("msg_id") == msg_id and m["msg_type"] == "execute_input":
                break
        sock.send(b"ping-123")
        assert sock.poll(20000)
        assert sock.recv() == b"ping-123"
        assert not kc.shell_channel.msg_ready()  # answered while the cell was still running
        assert shell_reply(kc, msg_id)["content"]["status"] == "ok"
        iopub_until_idle(kc, msg_id)
    finally:
        sock.close()
