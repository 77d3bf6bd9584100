"""The REPL driven through prompt_toolkit's pipe input (and a pseudo-terminal for Ctrl-C / Ctrl-D)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from llmspell.config import load_config
from llmspell.repl.app import run_repl
from llmspell.repl.backends import LocalBackend
from llmspell.script.docs import lookup

pytestmark = pytest.mark.timeout(60)


def drive(keys: str, tmp_path: Path | None = None, history: str | None = None) -> str:
    """Run a local REPL on `keys` (\\r is Enter) until .exit or end of input; return all output."""
    out: list[str] = []
    backend = LocalBackend(load_config(env=dict(os.environ)), out.append, out.append)
    with create_pipe_input() as inp:
        inp.send_text(keys)
        inp.close()
        run_repl(backend, input=inp, output=DummyOutput(), write=out.append, history_file=history, banner=False)
    return "".join(out)


def test_expressions_statements_and_multiline() -> None:
    text = drive("x = 20\rfunction add(a)\r  return a + x\rend\radd(22)\r'a' .. 'b'\r{1, 2}\r.exit\r")
    # Tables render as the kernel renders them (the one renderer of script/display.py): indented
    # JSON. Until issue 19 the REPL printed them on one line ("[1, 2]").
    assert text.splitlines() == ["42", "ab", "[", "  1,", "  2", "]"]


def test_results_render_like_the_kernel_and_io_write_is_not_a_result(tmp_path: Path) -> None:
    from llmspell.script.display import render_values

    cell = tmp_path / "cell.lua"
    cell.write_text("local a = 2\na * 3\n")  # the kernel's rule: a last-line expression is the result
    text = drive(f"io.write('w')\r1.5, nil, true\r.load {cell}\r.exit\r")
    assert text.splitlines() == ["w" + render_values([1.5, None, True]), "6"]


def test_incomplete_input_continues() -> None:
    assert drive("print('hello' ..\r', world')\rlocal t = {\r1,\r}\r.exit\r").splitlines() == ["hello, world"]


def test_errors_do_not_end_the_session() -> None:
    text = drive("error('boom')\rx = = 1\r1 + 1\r.exit\r")
    assert "boom" in text and "syntax error" in text and text.rstrip().endswith("2")


def test_dot_commands(tmp_path: Path) -> None:
    script = tmp_path / "script.lua"
    script.write_text("print('args', ARGS[1] or arg[1])\nloaded_value = 7\n")
    saved = tmp_path / "saved.lua"
    text = drive(f"y = 5\r.vars\r.save {saved}\r.load {script}\rloaded_value\r.run {script} first\r"
                 f".perf\r1\r.perf\r.reset\ry\r.bogus\r.help\r.exit\r")
    assert "y = 5" in text
    assert saved.read_text() == "y = 5\n"
    assert "7" in text.splitlines() and "args\tfirst" in text
    assert "timing on" in text and " ms)" in text and "timing off" in text
    assert "Lua state reset" in text
    assert text.split("Lua state reset\n", 1)[1].splitlines()[:2] == ["nil", "unknown command .bogus (type .help)"]
    assert ".save FILE" in text


def test_ctrl_d_exits_and_history_file(tmp_path: Path) -> None:
    hist = tmp_path / "hist" / "repl_history"
    text = drive("1 + 2\r\x04", history=str(hist))
    assert text.strip() == "3"
    assert "1 + 2" in hist.read_text()


def test_completion() -> None:
    backend = LocalBackend(load_config(env=dict(os.environ)), lambda s: None, lambda s: None)
    try:
        # complete(code, cursor) is the shell's: names and where the completed word starts (was: the
        # whole dotted text, computed by the REPL's own Lua helper, before issue 19).
        assert "print" in backend.complete("pri", 3).matches
        assert {"repeat", "require", "return"} <= set(backend.complete("re", 2).matches)
        got = backend.complete("string.fo", 9)
        assert got.matches == ["format"] and got.start == len("string.")
        backend.execute("obj = {alpha = 1, beta = 2}", "=t")
        assert backend.complete("obj.al", 6).matches == ["alpha"]
        assert backend.complete("(s", 2).matches.count("select") == 1
    finally:
        backend.close()


def test_completer_for_prompt_toolkit() -> None:
    from prompt_toolkit.completion import CompleteEvent
    from prompt_toolkit.document import Document

    from llmspell.repl.app import LuaCompleter

    backend = LocalBackend(load_config(env=dict(os.environ)), lambda s: None, lambda s: None)
    try:
        got = list(LuaCompleter(backend).get_completions(Document("x = string.up"), CompleteEvent(completion_requested=True)))
        assert [(c.text, c.start_position) for c in got] == [("upper", -len("up"))]
        doc = Document("print(str) -- rest", cursor_position=len("print(str"))
        got = list(LuaCompleter(backend).get_completions(doc, CompleteEvent(completion_requested=True)))
        assert ("string", -len("str")) in [(c.text, c.start_position) for c in got]
    finally:
        backend.close()


def test_is_complete_rule() -> None:
    backend = LocalBackend(load_config(env=dict(os.environ)), lambda s: None, lambda s: None)
    try:
        assert backend.is_complete("print('hello") == "incomplete"
        assert backend.is_complete("local t = {") == "incomplete"
        assert backend.is_complete("x = = 1") == "invalid"
        assert backend.is_complete("function f() return 1 end") == "complete"
    finally:
        backend.close()


def test_debug_commands(tmp_path: Path) -> None:
    script = tmp_path / "dbg.lua"
    script.write_text("local function inc(v)\n  local w = v + 1\n  return w\nend\nlocal r = inc(41)\nprint('r', r)\n")
    text = drive(f"break {script}:2\rwatch v * 2\r.run {script}\rlocals\rbacktrace\rprint v + 100\rlist\r"
                 f"frame 1\rframe 0\rnext\rfinish\rstep\rcontinue\rdelete\r.exit\r")
    assert "breakpoint 1 at dbg.lua:2" in text
    assert "stopped (breakpoint) at dbg.lua:2 in inc" in text
    assert "watch v * 2 = 82" in text
    assert "  v = 41" in text
    assert "#0 inc at dbg.lua:2" in text and "#1 main chunk at dbg.lua:5" in text
    assert "141" in text.splitlines()
    assert "->   local w = v + 1" in text.replace("  2 ", "")
    assert "stopped (step) at dbg.lua:3 in inc" in text
    assert "r\t42" in text


def test_ctrl_c_interrupts_running_statement(tmp_path: Path) -> None:
    pexpect = pytest.importorskip("pexpect")
    env = dict(os.environ, TERM="xterm", PYTHONUNBUFFERED="1", PROMPT_TOOLKIT_NO_CPR="1")
    child = pexpect.spawn(sys.executable, ["-m", "llmspell.cli.main", "repl", "--history",
                                           str(tmp_path / "h")], env=env, encoding="utf-8", timeout=30)
    try:
        child.expect("lua>")
        child.send("print('spin' .. 'ning') while true do end\r")
        child.expect("spinning")  # the statement runs: the terminal is back in cooked mode
        child.sendintr()
        child.expect("interrupted")
        child.expect("lua>")
        child.send("6 * 7\r")
        child.expect("42")
        child.expect("lua>")
        child.sendcontrol("d")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0


def test_connect_to_kernel(tmp_path_factory: pytest.TempPathFactory, jupyter_env: Any) -> None:
    from llmspell.repl.backends import KernelBackend
    from tests.kernel.kernel_support import start_kernel, stop_kernel

    km, kc, _log = start_kernel(tmp_path_factory.mktemp("repl-connect"), jupyter_env)
    out: list[str] = []
    try:
        backend = KernelBackend(km.connection_file, out.append, out.append)
        with create_pipe_input() as inp:
            inp.send_text("kv = 6\rfunction twice(a)\r  return a * 2\rend\rprint(twice(kv))\rkv * 7\r{kv}\r.vars\r"
                          "?Tool.invoke\r.help kv\rerror('bad')\r.exit\r")
            inp.close()
            assert backend.is_complete("local t = {") == "incomplete"
            got = backend.complete("x = string.up", len("x = string.up"))
            assert got.matches == ["upper"] and got.start == len("x = string.")
            run_repl(backend, input=inp, output=DummyOutput(), write=out.append, banner=False)  # closes it
    finally:
        stop_kernel(km, kc)
    text = "".join(out)
    assert "12" in text.splitlines() and "42" in text.splitlines()
    assert "[\n  6\n]\n" in text  # rendered by the kernel's shell, as in a local session
    assert "kv = 6" in text
    assert str(lookup("Tool.invoke")) in text and "kv: number = 6" in text
    assert "bad" in text


def test_help_name_shows_the_lua_api_reference_entry() -> None:
    text = drive(".help Tool.invoke\r.help Nope.nothing\r?Agent.builder\rmine = {}\r.help mine\r.exit\r")
    assert text.startswith(str(lookup("Tool.invoke")) + "\n")
    assert "no help for Nope.nothing" in text
    assert str(lookup("Agent.builder")) in text  # ?NAME as in the kernel
    assert "mine: table = table: " in text  # an undocumented user value is described, as by the kernel


def test_ctrl_c_over_connect_interrupts_the_kernel(tmp_path_factory: pytest.TempPathFactory, jupyter_env: Any) -> None:
    """Ctrl-C during a statement on a kernel sends interrupt_request; the session goes on."""
    import signal
    import threading

    from llmspell.repl.backends import KernelBackend
    from tests.kernel.kernel_support import start_kernel, stop_kernel

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("SIGINT handlers are installed only on the main thread")
    km, kc, _log = start_kernel(tmp_path_factory.mktemp("repl-intr"), jupyter_env)
    out: list[str] = []
    spinning = threading.Event()

    def write(text: str) -> None:
        out.append(text)
        if "spinning" in text:
            spinning.set()

    def press_ctrl_c() -> None:
        if spinning.wait(30):
            os.kill(os.getpid(), signal.SIGINT)

    try:
        backend = KernelBackend(km.connection_file, write, write)
        try:
            presser = threading.Thread(target=press_ctrl_c)
            presser.start()
            outcome = backend.execute("print('spinning') while true do end", "=stdin")
            presser.join()
            assert not outcome.ok and outcome.interrupted
            assert backend.execute("6 * 7", "=stdin").ok
        finally:
            backend.close()
    finally:
        stop_kernel(km, kc)
    assert "interrupted" in "".join(out) and "42\n" in out


def test_connect_with_a_bad_connection_file_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from llmspell.cli.main import main

    bad = tmp_path / "kernel.json"
    bad.write_text("{not json")
    assert main(["repl", "--connect", str(bad), "--history", "none"]) == 2
    assert f"cannot read connection file {bad}" in capsys.readouterr().err
