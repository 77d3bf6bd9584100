"""VS Code's own DAP test client (@vscode/debugadapter-testsupport's DebugClient, run by node) against
`llmspell debug --port 0`: launch with the token, breakpoints of every kind, steps, variables,
evaluate, completions, an uncaught error with exceptionInfo, restart and terminate."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.debug.debug_support import debuggee_process

CLIENT_DIR = Path(__file__).with_name("dap_client")

APP = """\
local function square(x)
  local y = x * x
  return y
end

local function fact(n)
  if n <= 1 then
    return 1
  end
  return n * fact(n - 1)
end

local total = 0
for i = 1, 5 do
  total = total + square(i)
end
local data = {name = "demo", list = {10, 20, 30}}
local f = fact(4) + 0
print("total", total, f)
error({code = 7, message = "app failed"})
"""

pytestmark = pytest.mark.timeout(240)


def _client_installed() -> bool:
    """node and the DebugClient package (installed from the committed package-lock.json if missing)."""
    if shutil.which("node") is None:
        pytest.skip("node is not installed: the VS Code DebugClient test needs node and npm")
    if (CLIENT_DIR / "node_modules" / "@vscode" / "debugadapter-testsupport").is_dir():
        return True
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed: cannot install @vscode/debugadapter-testsupport")
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=CLIENT_DIR, check=True, timeout=180,
                   capture_output=True)
    return True


def test_vscode_debug_client_session(tmp_path: Path) -> None:
    assert _client_installed()
    script = tmp_path / "app.lua"
    script.write_text(APP, encoding="utf-8")
    with debuggee_process(tmp_path, str(script), wait_timeout=60) as (proc, _host, port, token):
        run = subprocess.run(["node", str(CLIENT_DIR / "vscode_session.js"), str(port), token, str(script)],
                             cwd=CLIENT_DIR, capture_output=True, text=True, timeout=180)
        assert run.returncode == 0 and run.stdout.rstrip().endswith("ALL OK"), run.stdout + run.stderr
        checks = [ln for ln in run.stdout.splitlines() if ln.startswith("ok ")]
        assert len(checks) == 11, checks
        assert proc.wait(20) == 1  # terminated: the script ended with an error
