"""Issue 17 items 4 and 7 through `llmspell run` in a real process: exit codes that hold.

os.exit inside pcall exits with its code; a timeout exits 124 and Ctrl-C 130, also when the script
removed its hook or sits in one C call (the watchdog ends the process after the grace period); a
malformed binary chunk is refused instead of crashing the process.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)

EXPONENTIAL_FIND = 'local s = string.rep("a", 26) print(string.find(s, string.rep("a-", 26) .. "b"))\n'


def llmspell(tmp: Path, *args: str, config: str = "") -> list[str]:
    cfg = tmp / "llmspell.toml"
    cfg.write_text(config, encoding="utf-8")
    return [sys.executable, "-m", "llmspell.cli.main", "-c", str(cfg), *args]


def env(tmp: Path) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("LLMSPELL_")}
    e["LLMSPELL_STATE_PATH"] = str(tmp / "state.sqlite3")
    return e


def run(tmp: Path, code: str, config: str = "", *extra: str) -> subprocess.CompletedProcess[str]:
    script = tmp / "s.lua"
    script.write_text(code, encoding="utf-8")
    return subprocess.run(llmspell(tmp, *extra, "run", str(script), config=config), capture_output=True,
                          text=True, env=env(tmp), timeout=90)


@pytest.mark.parametrize("code, rc", [
    ("pcall(os.exit, 2) print('after')", 2),
    ("local co = coroutine.wrap(function() pcall(os.exit, 3) end) pcall(co) print('after')", 3),
    ("xpcall(function() os.exit(4) end, debug.traceback) print('after')", 4),
    ("print(pcall(table.sort, {3, 1, 2}, function() os.exit(5) end)) print('after')", 5),
])
def test_os_exit_inside_pcall_exits_with_its_code(tmp_path: Path, code: str, rc: int) -> None:
    r = run(tmp_path, code)
    assert r.returncode == rc, r.stderr
    assert "after" not in r.stdout


TIMEOUT_CFG = "[runtime]\nscript_timeout_seconds = 0.5\ninterrupt_grace_seconds = 0.5\n"


@pytest.mark.parametrize("code, hard", [
    ("while true do end", False),
    ("debug.sethook() while true do end", False),
    ("debug.sethook(function() end, 'l') while true do end", False),
    (EXPONENTIAL_FIND, True),
    ("setmetatable({}, {__gc = function() while true do end end}) collectgarbage()", True),
])
def test_a_timeout_exits_124_whatever_the_script_does(tmp_path: Path, code: str, hard: bool) -> None:
    r = run(tmp_path, code, TIMEOUT_CFG)
    assert r.returncode == 124, r.stderr
    assert "script timed out after 0.5 s" in r.stderr
    assert ("did not stop within 0.5 s" in r.stderr) == hard


def test_a_hard_timeout_with_output_json_still_prints_json(tmp_path: Path) -> None:
    r = run(tmp_path, EXPONENTIAL_FIND, TIMEOUT_CFG, "--output", "json")
    assert r.returncode == 124
    payload = json.loads(r.stdout)
    assert payload["success"] is False and payload["exit_code"] == 124
    assert payload["error"]["kind"] == "timeout"


def _start(tmp: Path, code: str, config: str) -> subprocess.Popen[str]:
    script = tmp / "s.lua"
    script.write_text('print("started") io.stdout:flush()\n' + code, encoding="utf-8")
    p = subprocess.Popen(llmspell(tmp, "run", str(script), config=config), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env(tmp))
    assert p.stdout is not None
    assert p.stdout.readline() == "started\n"
    return p


def test_ctrl_c_ends_a_long_c_call_with_130(tmp_path: Path) -> None:
    p = _start(tmp_path, EXPONENTIAL_FIND, "[runtime]\ninterrupt_grace_seconds = 0.5\n")
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "interrupted" in err


def test_a_second_ctrl_c_ends_at_once(tmp_path: Path) -> None:
    p = _start(tmp_path, EXPONENTIAL_FIND, "[runtime]\ninterrupt_grace_seconds = 600\n")
    deadline = time.monotonic() + 60  # with a 600 s grace, only a repeated Ctrl-C ends it this soon
    while p.poll() is None and time.monotonic() < deadline:
        p.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=0.2)
    p.communicate(timeout=10)
    assert p.returncode == 130


def test_ctrl_c_on_plain_lua_stops_softly_with_130(tmp_path: Path) -> None:
    p = _start(tmp_path, "debug.sethook() while true do end", "[runtime]\ninterrupt_grace_seconds = 600\n")
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130 and err.strip().endswith("interrupted")


# A binary chunk whose instructions are garbled: Lua does not verify bytecode, and loading and
# running this one crashed the process with SIGSEGV before binary chunks were refused.
MALFORMED = """
local d = string.dump(function(a) local t = {1, 2, 3} return t[a] + #t end, true)
local b = {d:byte(1, -1)}
for k = 40, math.min(#b, 60) do b[k] = (b[k] * 7 + 13) % 256 end
local s = string.char(table.unpack(b))
local f, err = load(s, "x", "b")
print("load:", f, err)
if f then print(pcall(f, 1)) end
print(pcall(require, "nonexistent_module_x"))
"""


def test_a_malformed_binary_chunk_is_refused_not_a_crash(tmp_path: Path) -> None:
    r = run(tmp_path, MALFORMED)
    assert r.returncode == 0, (r.returncode, r.stderr)
    assert "binary chunks are not allowed" in r.stdout


def test_the_same_chunk_crashes_when_binary_chunks_are_allowed(tmp_path: Path) -> None:
    """The control: the attack above is real (this is what the switch re-opens, see docs/SECURITY.md)."""
    r = run(tmp_path, MALFORMED, "[runtime]\nallow_binary_chunks = true\n")
    assert r.returncode == -signal.SIGSEGV
