"""JupyterLab through a real browser: headless Debian chromium (selenium + the system chromedriver)
drives a `jupyter lab` server with the llmspell kernel: cells, interrupt, Tab completion and a
debugger session (breakpoint, variables with values, step, continue, pause on exceptions)."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.lab_browser import LabPage, find_browser, lab_server, start_chromium
from tests.kernel.kernel_support import temporary_jupyter_path

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(240)]

NOTEBOOK_CELLS = [
    'print("hello " .. _VERSION)\n6 * 7',
    "local t = 0\nwhile true do t = t + 1 end",
    'print("after the interrupt")',
    "Age",
    "print(",
    'local function g()\n  error("deep")\nend\ng()',
]
DEBUG_CELLS = [
    "function twice(v)\n  local w = v * 2\n  return w\nend",
    "local function f(x)\n  local y = x * 2\n  return y + 1\nend\nprint(f(10))",
    'local n = 0\nprint("looping")\nwhile true do\n  n = n + 1\nend',
    "print(twice(4))",
    'error("boom")',
    'print("still running")',
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabPage]:
    """A JupyterLab server (ports 19500-19599) with the llmspell kernelspec, and chromium on it."""
    found = find_browser()
    if isinstance(found, str):
        pytest.skip(found)
    pytest.importorskip("selenium", reason="selenium is not installed (it is in the test extra)")
    pytest.importorskip("jupyterlab", reason="jupyterlab is not installed (it is in the test extra)")
    base = tmp_path_factory.mktemp("lab")
    with temporary_jupyter_path(base / "jupyter") as jenv, lab_server(base / "server", jenv) as server:
        driver = start_chromium(*found)
        try:
            yield LabPage(driver, server)
        finally:
            driver.quit()


@pytest.fixture
def page(lab: LabPage, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[LabPage]:
    """The shared page; when the test failed, a screenshot and the HTML are kept and named on stdout.
    The test's kernels are shut down after it (a paused or looping one would keep a core busy)."""
    failed_before = request.session.testsfailed
    yield lab
    if request.session.testsfailed > failed_before:
        shot = lab.dump(tmp_path, "failure")
        print(f"JupyterLab screenshot: {shot}\nserver log tail:\n{lab.server.log_tail()}")
    lab.server.shutdown_kernels()


def test_cells_interrupt_and_completion(page: LabPage) -> None:
    """Run cells, interrupt an endless loop from the toolbar, Tab-complete a global, Shift+Tab help,
    and an error's traceback."""
    from selenium.webdriver.common.keys import Keys

    page.server.create_notebook("cells.ipynb", NOTEBOOK_CELLS)
    page.open("cells.ipynb")

    # A cell's printed output and its value.
    page.run(0)
    outputs = page.wait_outputs(0, "print and value")
    assert outputs == [("application/vnd.jupyter.stdout", "hello Lua 5.4"), ("text/plain", "42")], outputs
    assert page.prompt(0) == "[1]:"

    # An endless loop: busy until the toolbar's interrupt button; ends with the interrupted error.
    page.run(1)
    page.wait("the kernel to be busy with the loop", lambda: page.kernel_status().endswith("| Busy"))
    page.one(f'{page.NOTEBOOK} jp-button[data-command="notebook:interrupt-kernel"]').click()
    outputs = page.wait_outputs(1, "the interrupted loop")
    assert len(outputs) == 1 and outputs[0][0] == "application/vnd.jupyter.stderr", outputs
    assert "interrupted" in outputs[0][1].lower(), outputs

    # The kernel runs the next cell normally.
    page.run(2)
    assert page.wait_outputs(2, "the cell after the interrupt") == [
        ("application/vnd.jupyter.stdout", "after the interrupt")]

    # Tab after `Age` offers the global `Agent`; Enter inserts it.
    page.one(".cm-content", page.cell(3)).click()
    page.keys(Keys.END, Keys.TAB)
    items = page.wait("the completer", page.completer_items)
    assert "Agent" in items, items
    page.keys(Keys.ENTER)
    page.wait("the completion to be inserted", lambda: page.editor_text(3) == "Agent")
    page.keys(Keys.ESCAPE)

    # Shift+Tab after an open parenthesis shows the function's help in a tooltip.
    page.one(".cm-content", page.cell(4)).click()
    page.keys(Keys.END)
    page.keys(Keys.TAB, shift=True)
    tips = page.wait("the tooltip", lambda: [t.text for t in page.css(".jp-Tooltip") if t.is_displayed()])
    assert "print" in tips[0], tips
    page.keys(Keys.ESCAPE)
    page.keys(Keys.ESCAPE)

    # An error's traceback names the user's frames, and no internal ones or temporary paths.
    page.run(5)
    outputs = page.wait_outputs(5, "the erroring cell")
    assert len(outputs) == 1 and outputs[0][0] == "application/vnd.jupyter.stderr", outputs
    text = outputs[0][1]
    assert "deep" in text and "'g'" in text and "main chunk" in text, text
    assert not any(s in text for s in ("llmspell", "xpcall", "upvalue 'fn'", tempfile.gettempdir())), text


def test_debugger_session(page: LabPage) -> None:
    """Breakpoint by the gutter, variables with values, Next, Continue with the paused UI cleared
    (after Next past the last line, after Continue, and while the resumed cell still runs), a
    breakpoint in a function defined before the debugger was on, and pause on an uncaught error."""
    page.server.create_notebook("debug.ipynb", DEBUG_CELLS)
    page.open("debug.ipynb")

    # `twice` is defined while the debugger is still off.
    page.run(0)
    assert page.wait_outputs(0, "the definition of twice") == []

    # The bug icon in the notebook toolbar starts the debugger and opens its sidebar.
    page.enable_debugger()

    # A breakpoint on `local y = x * 2` by clicking the gutter; the kernel's answer lists it.
    page.wait("the breakpoint gutter", lambda: page.breakpoint_gutter(1, 2)).click()
    bps = page.wait("the breakpoint in the Breakpoints panel", page.breakpoints)
    assert [line for _, line in bps] == ["2"], bps

    # Run: paused at line 2 in f, x shows its value, nothing printed yet.
    page.run(1)
    page.wait("the pause at the breakpoint", page.is_paused)
    assert page.highlighted_lines() == ["  local y = x * 2"]
    assert page.frames()[0][0] == "f", page.frames()
    page.wait("the locals of f", lambda: "x" in page.variables())
    variables = page.variables()
    assert variables.get("x") == "10", variables
    assert page.outputs(1) == []

    # Next: one line on, the new local has its value.
    page.click_command("next")
    page.wait("the step to `return y + 1`", lambda: page.highlighted_lines() == ["  return y + 1"])
    page.wait("y among the locals", lambda: "y" in page.variables())
    variables = page.variables()
    assert variables == {"x": "10", "y": "20"}, variables

    # Next past the function's last line (via a stop back in the caller, if the kernel makes one):
    # the cell ends and the paused UI clears.
    for _ in range(3):
        before = page.frames()
        page.click_command("next")
        ended = page.wait("the step to stop elsewhere or the cell to end",
                          lambda b=before: ("ended" if page.finished(1) else  # type: ignore[misc]
                                            "paused" if page.is_paused() and page.frames() != b else None))
        if ended == "ended":
            break
    outputs = page.wait_outputs(1, "the stepped-through cell")
    assert outputs == [("application/vnd.jupyter.stdout", "21")], outputs
    page.wait("the paused UI to clear after Next past the last line", page.is_cleared, 10)

    # Run again: paused at the breakpoint, then Continue clears the paused UI and the cell finishes.
    page.run(1)
    page.wait("the second pause at the breakpoint", page.is_paused)
    assert page.highlighted_lines() == ["  local y = x * 2"]
    page.click_command("continue")
    assert page.wait_outputs(1, "the continued cell") == [("application/vnd.jupyter.stdout", "21")]
    page.wait("the paused UI to clear after Continue", page.is_cleared, 10)

    # Continue into an endless loop: the paused UI clears while the cell still runs (the kernel
    # says `continued`, not only the cell's end); the toolbar's interrupt then ends the cell.
    page.wait("the breakpoint gutter of the loop cell", lambda: page.breakpoint_gutter(2, 1)).click()
    page.wait("the loop cell's breakpoint", lambda: len(page.breakpoints()) == 2)
    page.run(2)
    page.wait("the pause before the loop", page.is_paused)
    assert page.highlighted_lines() == ["local n = 0"]
    page.click_command("continue")
    page.wait("the paused UI to clear while the loop runs", page.is_cleared, 10)
    assert page.prompt(2) == "[*]:" and page.kernel_status().endswith("| Busy"), (page.prompt(2), page.kernel_status())
    page.wait("the print before the loop", lambda: page.outputs(2))
    page.one(f'{page.NOTEBOOK} jp-button[data-command="notebook:interrupt-kernel"]').click()
    outputs = page.wait_outputs(2, "the interrupted loop")
    assert [mime for mime, _ in outputs] == ["application/vnd.jupyter.stdout", "application/vnd.jupyter.stderr"], outputs
    assert "interrupted" in outputs[1][1].lower() and "restarted" not in outputs[1][1], outputs

    # A breakpoint in `twice`, defined before the debugger was on, stops a call from another cell.
    page.wait("the breakpoint gutter of twice", lambda: page.breakpoint_gutter(0, 2)).click()
    page.wait("twice's breakpoint", lambda: len(page.breakpoints()) == 3)
    page.run(3)
    page.wait("the pause in twice", page.is_paused)
    assert page.highlighted_lines() == ["  local w = v * 2"]
    assert page.frames()[0][0] == "twice", page.frames()
    page.wait("the locals of twice", lambda: "v" in page.variables())
    assert page.variables() == {"v": "4"}, page.variables()
    page.click_command("continue")
    assert page.wait_outputs(3, "the call of twice") == [("application/vnd.jupyter.stdout", "8")]
    page.wait("the paused UI to clear after twice", page.is_cleared, 10)

    # Pause on exceptions: the filter from the menu, then an uncaught error pauses on its line.
    page.enable_exception_filter()
    page.run(4)
    page.wait("the pause on the uncaught error", page.is_paused)
    assert page.highlighted_lines() == ['error("boom")']
    page.click_command("continue")
    outputs = page.wait_outputs(4, "the erroring cell")
    assert len(outputs) == 1 and outputs[0][0] == "application/vnd.jupyter.stderr" and "boom" in outputs[0][1], outputs
    page.wait("the paused UI to clear after the error", page.is_cleared, 10)

    # The kernel goes on with the next cell.
    page.run(5)
    assert page.wait_outputs(5, "the cell after the error") == [("application/vnd.jupyter.stdout", "still running")]


ONE_LINE_LOOP_CELLS = [
    "local a = 1\nlocal b = 2\nprint(a + b)",
    'print("looping")\nwhile true do n = 1 end',
]


def test_debugger_interrupt_after_continue_into_one_line_loop(page: LabPage) -> None:
    """Continue from a breakpoint into `while true do n = 1 end` (line 2; the other cell has a
    breakpoint on its line 2), then the toolbar's interrupt: the cell ends with the plain interrupted
    error, as without the debugger."""
    page.server.create_notebook("loop.ipynb", ONE_LINE_LOOP_CELLS)
    page.open("loop.ipynb")
    page.enable_debugger()
    page.wait("the breakpoint gutter of the other cell", lambda: page.breakpoint_gutter(0, 2)).click()
    page.wait("the other cell's breakpoint", lambda: len(page.breakpoints()) == 1)
    page.wait("the breakpoint gutter of the loop cell", lambda: page.breakpoint_gutter(1, 1)).click()
    page.wait("the loop cell's breakpoint", lambda: len(page.breakpoints()) == 2)
    page.run(1)
    page.wait("the pause before the loop", page.is_paused)
    page.click_command("continue")
    page.wait("the print before the loop", lambda: page.outputs(1))
    page.one(f'{page.NOTEBOOK} jp-button[data-command="notebook:interrupt-kernel"]').click()
    outputs = page.wait_outputs(1, "the interrupted loop (an interrupt takes well under a second)", 10)
    assert [mime for mime, _ in outputs] == ["application/vnd.jupyter.stdout", "application/vnd.jupyter.stderr"], outputs
    assert "interrupted" in outputs[1][1].lower() and "restarted" not in outputs[1][1], outputs


NAMES_CELLS = ["local function h(a)\n  local b = a + 1\n  return b\nend\nprint(h(1))"]


def test_debugger_names_cells(page: LabPage) -> None:
    """The Breakpoints and Callstack panels name a notebook cell "Cell [n]", as for Python kernels,
    not by the kernel's temporary file path."""
    page.server.create_notebook("names.ipynb", NAMES_CELLS)
    page.open("names.ipynb")
    page.enable_debugger()
    page.wait("the breakpoint gutter", lambda: page.breakpoint_gutter(0, 2)).click()
    bps = page.wait("the breakpoint in the Breakpoints panel", page.breakpoints)
    assert re.fullmatch(r"Cell \[ ?\]", bps[0][0]), bps
    page.run(0)
    page.wait("the pause at the breakpoint", page.is_paused)
    assert page.frames() == [("h", "Cell [*]:2"), ("main chunk", "Cell [*]:5")], page.frames()
    page.click_command("continue")
    assert page.wait_outputs(0, "the continued cell") == [("application/vnd.jupyter.stdout", "2")]
    page.wait("the paused UI to clear", page.is_cleared, 10)
