"""A JupyterLab server in a subprocess and a headless Debian chromium driving its UI (selenium), for
tests/integration/test_jupyterlab_browser.py; every wait is on a server or DOM condition."""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

from tests.kernel.kernel_support import KERNEL_NAME, kernel_env

PORTS = range(19500, 19600)
SERVER_START_TIMEOUT = 90.0
PAGE_TIMEOUT = 60.0
UI_TIMEOUT = 30.0
CHROMIUM_NAMES = ("chromium", "chromium-browser")
CHROMEDRIVER_NAMES = ("chromedriver",)
T = TypeVar("T")


def find_browser() -> tuple[str, str] | str:
    """(chromium, chromedriver) paths from PATH, or the reason the browser test cannot run."""
    browser = next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)
    driver = next((p for p in map(shutil.which, CHROMEDRIVER_NAMES) if p), None)
    if browser is None or driver is None:
        missing = " and ".join(n for n, p in (("chromium", browser), ("chromedriver", driver)) if p is None)
        return (f"{missing} not installed: the JupyterLab browser test needs Debian's chromium and "
                "chromium-driver (apt-get install chromium chromium-driver; .ci/run installs them)")
    return browser, driver


@dataclass
class LabServer:
    """A running `jupyter lab` subprocess: its base URL, token, notebook root and log."""

    url: str
    token: str
    root: Path
    log: Path
    process: subprocess.Popen[bytes]

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """One REST call to the server, authenticated by the token; returns the decoded JSON or None."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Authorization": f"token {self.token}",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    def create_notebook(self, name: str, cells: list[str]) -> None:
        """Write a notebook of code cells with the llmspell kernelspec through the contents API."""
        nb = {"cells": [{"id": f"cell-{i}", "cell_type": "code", "source": src, "metadata": {}, "outputs": [],
                         "execution_count": None} for i, src in enumerate(cells)],
              "metadata": {"kernelspec": {"name": KERNEL_NAME, "display_name": "llmspell", "language": "lua"},
                           "language_info": {"name": "lua"}},
              "nbformat": 4, "nbformat_minor": 5}
        self.api("PUT", f"/api/contents/{name}", {"type": "notebook", "format": "json", "content": nb})

    def shutdown_kernels(self) -> None:
        """End every notebook session and its kernel through the sessions API."""
        for session in self.api("GET", "/api/sessions"):
            self.api("DELETE", f"/api/sessions/{session['id']}")

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


def _free_ports() -> Iterator[int]:
    """Ports of this test's range that nothing listens on right now."""
    for port in PORTS:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        yield port


def _settings(settings_dir: Path) -> None:
    """User settings that keep pop-ups out of the way: no news or update notifications."""
    apputils = settings_dir / "@jupyterlab" / "apputils-extension"
    apputils.mkdir(parents=True)
    (apputils / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))


@contextlib.contextmanager
def lab_server(base: Path, jupyter_env: dict[str, str]) -> Iterator[LabServer]:
    """Start `jupyter lab` on a free port of 19500-19599 with a random token and an isolated home;
    ready once /api/status answers. Stopped (and its kernels with it) on exit."""
    home, root = base / "home", base / "root"
    root.mkdir(parents=True)
    home.mkdir(parents=True)
    _settings(home / "lab-settings")
    env = {**kernel_env(home), **jupyter_env,
           "JUPYTER_CONFIG_DIR": str(home / ".jupyter"),
           "JUPYTERLAB_SETTINGS_DIR": str(home / "lab-settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(home / "lab-workspaces")}
    token = secrets.token_hex(24)
    last_log = "no free port in 19500-19599"
    for attempt, port in enumerate(_free_ports()):
        log = base / f"server-{port}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
                 "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
                 f"--ServerApp.root_dir={root}", "--allow-root",
                 "--ServerApp.jpserver_extensions={'jupyter_lsp': False}"],
                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        server = LabServer(f"http://127.0.0.1:{port}", token, root, log, proc)
        try:
            if _wait_ready(server):
                yield server
                return
        finally:
            _stop(proc)
        last_log = server.log_tail()
        if attempt >= 3:
            break
    raise RuntimeError(f"jupyter lab did not start; last log:\n{last_log}")


def _wait_ready(server: LabServer) -> bool:
    """True once /api/status answers; False if the process exits first (port taken by a racer)."""
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            if "already in use" in server.log_tail() or "no available port" in server.log_tail():
                return False
            raise RuntimeError(f"jupyter lab exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            server.api("GET", "/api/status")
            return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)  # polling the server's own readiness endpoint
    raise TimeoutError(f"jupyter lab gave no /api/status within {SERVER_START_TIMEOUT} s:\n{server.log_tail()}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server (it shuts its kernels down), SIGKILL its process group if it hangs."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 9)
            proc.wait(timeout=5)


def start_chromium(browser: str, driver: str) -> Any:
    """Headless chromium through the system chromedriver (never Selenium Manager, never a download)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1000", "--no-first-run", "--disable-extensions"):
        opts.add_argument(arg)
    return webdriver.Chrome(service=Service(executable_path=driver), options=opts)


def _strip_svg(html: str) -> str:
    return re.sub(r"<svg.*?</svg>", "", html, flags=re.S)


class LabPage:
    """The open notebook in JupyterLab, driven the way a user does: clicks, keys, reading the DOM."""

    NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden)"
    SIDEBAR = "#jp-debugger-sidebar"

    def __init__(self, driver: Any, server: LabServer) -> None:
        self.d = driver
        self.server = server

    # -- plumbing ---------------------------------------------------------------------------------
    def wait(self, what: str, cond: Callable[[], T | None], timeout: float = UI_TIMEOUT) -> T:
        """Wait for cond() to be truthy (stale DOM reads count as not yet); the error names `what`."""
        from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
        from selenium.webdriver.support.ui import WebDriverWait

        def probe(_: Any) -> T | None:
            try:
                return cond()
            except StaleElementReferenceException:
                return None

        try:
            return cast(T, WebDriverWait(self.d, timeout, poll_frequency=0.1).until(probe))
        except TimeoutException:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}") from None

    def css(self, selector: str, root: Any = None) -> list[Any]:
        from selenium.webdriver.common.by import By

        return list((root or self.d).find_elements(By.CSS_SELECTOR, selector))

    def one(self, selector: str, root: Any = None) -> Any:
        found = self.css(selector, root)
        assert found, f"no element matches {selector!r}"
        return found[0]

    def keys(self, *keys: str, shift: bool = False) -> None:
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.keys import Keys

        chain = ActionChains(self.d)
        if shift:
            chain = chain.key_down(Keys.SHIFT)
        chain = chain.send_keys(*keys)
        if shift:
            chain = chain.key_up(Keys.SHIFT)
        chain.perform()

    def dump(self, directory: Path, name: str) -> Path:
        """A screenshot and the page's HTML, for the failure message."""
        directory.mkdir(parents=True, exist_ok=True)
        self.d.save_screenshot(str(directory / f"{name}.png"))
        (directory / f"{name}.html").write_text(self.d.page_source)
        return directory / f"{name}.png"

    # -- notebook ---------------------------------------------------------------------------------
    def open(self, name: str) -> None:
        """Open a notebook (a fresh workspace) and wait for its cells and an idle kernel."""
        self.d.get(f"{self.server.url}/lab/tree/{name}?reset&token={self.server.token}")
        self.wait("the notebook's cells", lambda: self.cells(), PAGE_TIMEOUT)
        self.wait("the kernel to be idle", lambda: self.kernel_status().endswith("| Idle"), PAGE_TIMEOUT)

    def kernel_status(self) -> str:
        """The status bar's 'llmspell (Lua 5.4) | Idle' item."""
        items = self.css('#jp-main-statusbar span.jp-StatusBar-TextItem[title^="Change kernel"]')
        return str(items[0].text) if items else ""

    def cells(self) -> list[Any]:
        return self.css(f"{self.NOTEBOOK} .jp-Notebook .jp-Cell")

    def cell(self, index: int) -> Any:
        return self.cells()[index]

    def select(self, index: int) -> None:
        """Select a cell in command mode by clicking its input prompt."""
        self.one(".jp-InputPrompt", self.cell(index)).click()

    def run(self, index: int) -> None:
        """Select the cell and press Shift+Enter."""
        from selenium.webdriver.common.keys import Keys

        self.select(index)
        self.keys(Keys.ENTER, shift=True)

    def prompt(self, index: int) -> str:
        return str(self.one(".jp-InputPrompt", self.cell(index)).text)

    def outputs(self, index: int) -> list[tuple[str, str]]:
        """(mime type, text) of each rendered output of a cell."""
        return [(str(o.get_attribute("data-mime-type")), str(o.text))
                for o in self.css(".jp-OutputArea-output", self.cell(index))]

    def finished(self, index: int) -> bool:
        """The cell has run (a number in its prompt) and the kernel is idle."""
        return bool(re.fullmatch(r"\[\d+\]:", self.prompt(index))) and self.kernel_status().endswith("| Idle")

    def wait_outputs(self, index: int, what: str, timeout: float = UI_TIMEOUT) -> list[tuple[str, str]]:
        """Wait for the cell to finish; return its outputs."""
        self.wait(f"cell {index} to finish ({what})", lambda: self.finished(index), timeout)
        return self.outputs(index)

    def editor_text(self, index: int) -> str:
        return str(self.one(".cm-content", self.cell(index)).text)

    def completer_items(self) -> list[str]:
        return [str(i.get_attribute("data-value")) for i in self.css(".jp-Completer .jp-Completer-item")
                if i.is_displayed()]

    # -- debugger ---------------------------------------------------------------------------------
    def debugger_button(self) -> Any:
        return self.one(f'{self.NOTEBOOK} [data-jp-item-name="debugger-icon"] jp-button')

    def enable_debugger(self) -> None:
        """Click the notebook toolbar's bug icon (enabled once JupyterLab has the kernel's debugInfo,
        and acting only on the current notebook) and wait for it to be pressed and the sidebar shown."""
        self.select(0)
        button = self.wait("the debugger button to be enabled",
                           lambda: (b := self.debugger_button()).get_attribute("aria-disabled") == "false" and b)
        assert button.get_attribute("aria-pressed") == "false", "the debugger is already on"
        button.click()
        self.wait("the debugger to be on", lambda: self.debugger_button().get_attribute("aria-pressed") == "true")
        self.wait("the debugger sidebar", lambda: self.one(self.SIDEBAR).is_displayed())

    def enable_exception_filter(self) -> list[str]:
        """Turn on the first pause-on-exceptions filter from the Breakpoints panel's menu; returns the
        menu's labels (built from the kernel's exceptionBreakpointFilters)."""
        self.one(f"{self.SIDEBAR} .jp-PauseOnExceptions").click()
        items = self.wait("the pause-on-exceptions menu",
                          lambda: self.css('.jp-PauseOnExceptions-menu li[data-command="debugger:pause-on-exceptions"]'))
        labels = [str(i.text) for i in items]
        assert labels, "the pause-on-exceptions menu is empty"
        items[0].click()
        self.wait("the exception filter to be on",
                  lambda: self.one(f"{self.SIDEBAR} .jp-PauseOnExceptions").get_attribute("aria-pressed") == "true")
        return labels

    def sidebar_command(self, command: str) -> Any:
        return self.one(f'{self.SIDEBAR} jp-button[data-command="debugger:{command}"]')

    def click_command(self, command: str) -> None:
        button = self.wait(f"the enabled {command} button",
                           lambda: (b := self.sidebar_command(command)).get_attribute("aria-disabled") != "true" and b)
        button.click()

    def breakpoint_gutter(self, index: int, line: int) -> Any | None:
        """The breakpoint-gutter element beside `line` of a cell (same row as the line number); None
        while the debugger has not added that gutter."""
        cell = self.cell(index)
        numbers = self.css(".cm-gutter.cm-lineNumbers .cm-gutterElement", cell)
        rows = [i for i, e in enumerate(numbers) if e.text == str(line) and e.is_displayed()]
        gutter = self.css(".cm-gutter.cm-breakpoint-gutter .cm-gutterElement", cell)
        return gutter[rows[0]] if rows and len(gutter) == len(numbers) else None

    def breakpoints(self) -> list[tuple[str, str]]:
        """(source, line) of each entry of the Breakpoints panel."""
        return [(str(self.one(".jp-DebuggerBreakpoint-source", b).text),
                 str(self.one(".jp-DebuggerBreakpoint-line", b).text))
                for b in self.css(f"{self.SIDEBAR} .jp-DebuggerBreakpoint")]

    def frames(self) -> list[tuple[str, str]]:
        """(name, location) of each Callstack frame."""
        return [(str(self.one(".jp-DebuggerCallstackFrame-name", f).text),
                 str(self.one(".jp-DebuggerCallstackFrame-location", f).text))
                for f in self.css(f"{self.SIDEBAR} .jp-DebuggerCallstackFrame")]

    def variables(self) -> dict[str, str]:
        """name -> shown detail (the value, or the type when the tree shows no value) of the top level of
        the Variables tree."""
        out: dict[str, str] = {}
        for item in self.css(f"{self.SIDEBAR} .jp-DebuggerVariables jp-tree-view > jp-tree-item"):
            names = self.css(":scope > .jp-DebuggerVariables-name", item)
            details = self.css(":scope > .jp-DebuggerVariables-detail", item)
            if names and item.is_displayed():
                out[str(names[0].text)] = str(details[0].text) if details else ""
        return out

    def highlighted_lines(self) -> list[str]:
        """Editor lines carrying the debugger's current-line highlight."""
        return [str(e.text) for e in self.css(f"{self.NOTEBOOK} .jp-DebuggerEditor-highlight")]

    def paused_ui(self) -> dict[str, Any]:
        """Everything JupyterLab shows while paused: overlay, highlighted line, call stack, Continue."""
        return {"overlay": any(e.is_displayed() for e in self.css(".jp-DebuggerPausedOverlay")),
                "highlight": self.highlighted_lines(),
                "frames": self.frames(),
                "continue_title": str(self.sidebar_command("continue").get_attribute("title"))}

    def is_paused(self) -> bool:
        ui = self.paused_ui()
        return bool(ui["overlay"] and ui["highlight"] and ui["frames"] and ui["continue_title"].startswith("Continue"))

    def is_cleared(self) -> bool:
        ui = self.paused_ui()
        return not ui["overlay"] and not ui["highlight"] and not ui["frames"] and ui["continue_title"].startswith("Pause")

    def html(self, selector: str) -> str:
        return "\n".join(_strip_svg(str(e.get_attribute("outerHTML"))) for e in self.css(selector))
