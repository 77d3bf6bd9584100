"""A State writer killed with SIGKILL mid-stream loses no committed key, and the file opens cleanly."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

_WRITER = r"""
import sys
from llmspell.state import StateStore
from llmspell.state.sqlite import SqliteBackend
s = StateStore(SqliteBackend(sys.argv[1]))
i = 0
while True:
    s.save("crash", f"k{i}", {"i": i, "pad": "y" * 512})
    sys.stdout.write(f"{i}\n")
    sys.stdout.flush()
    i += 1
"""


def kill_9_after(proc: subprocess.Popen[str], at_least: int) -> int:
    """SIGKILL a writer that prints each index it committed, once it printed `at_least` (or after 60 s);
    returns the last committed index."""
    committed = -1
    deadline = time.monotonic() + 60
    assert proc.stdout is not None
    while committed < at_least and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        committed = int(line)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    # lines already written by the child after our last read are committed too; read them
    for line in proc.stdout.read().splitlines():
        committed = int(line)
    assert committed >= at_least, "the writer did not get far enough before the deadline"
    return committed


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_kill_9_mid_stream_loses_no_committed_key(tmp_path: Path) -> None:
    db = tmp_path / "crash.sqlite3"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(db)], stdout=subprocess.PIPE, text=True)
    committed = kill_9_after(proc, 300)
    from llmspell.state import StateStore
    from llmspell.state.sqlite import SqliteBackend

    s = StateStore(SqliteBackend(db))
    for i in range(committed + 1):
        assert s.load("crash", f"k{i}") == {"i": i, "pad": "y" * 512}, f"committed key k{i} lost"
    s.save("crash", "after", 1)
    assert s.load("crash", "after") == 1
    s.close()
    c = sqlite3.connect(db)
    assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    c.close()


_LUA_WRITER = """
local i = 0
while true do
  State.save("crash", "k" .. i, {i = i})
  print(i)
  i = i + 1
end
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_kill_9_of_llmspell_exec_after_state_save(tmp_path: Path) -> None:
    db = tmp_path / "lua.sqlite3"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMSPELL_")}
    env["LLMSPELL_STATE_PATH"] = str(db)
    proc = subprocess.Popen([sys.executable, "-m", "llmspell.cli.main", "exec", _LUA_WRITER], stdout=subprocess.PIPE,
                            text=True, env=env, cwd=tmp_path)
    committed = kill_9_after(proc, 100)
    from llmspell.state import StateStore
    from llmspell.state.sqlite import SqliteBackend

    s = StateStore(SqliteBackend(db))
    assert [s.load("crash", f"k{i}") for i in range(committed + 1)] == [{"i": i} for i in range(committed + 1)]
    s.close()
