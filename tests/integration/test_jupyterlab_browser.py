"""JupyterLab through a real browser: headless Debian chromium (selenium + the system chromedriver)
drives a `jupyter lab` server with the llmspell kernel: cells, interrupt, Tab completion and a
debugger session (breakpoint, variables with values, step, continue, pause on exceptions)."""

from __future__ import annotations

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
]
DEBUG_CELLS = [
    "function twice(v)\n  local w = v * 2\n  return w\nend",
    "local function f(x)\n  local y = x * 2\n  return y + 1\nend\nprint(f(10))",
    "local n = 0\nwhile true do n = n + 1 end",
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
    """The shared page; when the test failed, a screenshot and the HTML are kept and named on stdout."""
    failed_before = request.session.testsfailed
    yield lab
    if request.session.testsfailed > failed_before:
        shot = lab.dump(tmp_path, "failure")
        print(f"JupyterLab screenshot: {shot}\nserver log tail:\n{lab.server.log_tail()}")


def test_cells_interrupt_and_completion(page: LabPage) -> None:
    """Run cells, interrupt an endless loop from the toolbar, then Tab-complete a global."""
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


def test_debugger_session(page: LabPage) -> None:
    """Breakpoint by the gutter, variables with values, Next, Continue with the paused UI cleared
    (after Next past the last line, after Continue, and while the resumed cell still runs), a
    breakpoint in a function defined before the debugger was on, and pause on an uncaught error."""
    page.server.create_notebook("debug.ipynb", DEBUG_CELLS)
    page.open("debug.ipynb")

    # `twice` is defined while the debugger is still off.
    page.run(0)
    assert page.wait_outputs(0, "the definition of twice") == []

    # The bug icon in the notebook toolbar (enabled once JupyterLab has asked the kernel for its
    # debugInfo) starts the debugger and opens its sidebar.
    page.select(1)
    button = page.wait("the debugger button to be enabled",
                       lambda: (b := page.debugger_button()).get_attribute("aria-disabled") == "false" and b)
    assert button.get_attribute("aria-pressed") == "false"
    button.click()
    page.wait("the debugger to be enabled", lambda: page.debugger_button().get_attribute("aria-pressed") == "true")
    page.wait("the debugger sidebar", lambda: page.one(page.SIDEBAR).is_displayed())

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
    page.one(f'{page.NOTEBOOK} jp-button[data-command="notebook:interrupt-kernel"]').click()
    outputs = page.wait_outputs(2, "the interrupted loop")
    assert len(outputs) == 1 and "interrupted" in outputs[0][1].lower(), outputs

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
    page.one(f"{page.SIDEBAR} .jp-PauseOnExceptions").click()
    filters = page.wait("the pause-on-exceptions menu",
                        lambda: page.css('.jp-PauseOnExceptions-menu li[data-command="debugger:pause-on-exceptions"]'))
    assert [f.text for f in filters], "the pause-on-exceptions menu is empty"
    filters[0].click()
    page.wait("the filter to be on",
              lambda: page.one(f"{page.SIDEBAR} .jp-PauseOnExceptions").get_attribute("aria-pressed") == "true")
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
