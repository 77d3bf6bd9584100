"""Real frontends on the installed kernelspec: nbclient runs a notebook, jupyter console is driven
through its prompt, jupyter run executes a file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from tests.kernel.kernel_support import KERNEL_NAME, jupyter_env, kernel_env  # noqa: F401 - fixture

pytestmark = pytest.mark.timeout(180)


def _notebook(*cells: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": KERNEL_NAME, "display_name": "llmspell", "language": "lua"}
    return nb


def _env(tmp_path: Path, jupyter_env: dict[str, str]) -> dict[str, str]:  # noqa: F811
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {**kernel_env(home), **jupyter_env}


def test_nbclient_executes_a_notebook_of_lua_cells(tmp_path: Path, jupyter_env: dict[str, str]) -> None:  # noqa: F811
    nb = _notebook(
        "local greeting = 'hello'\nprint(greeting .. ', notebook')",
        "counter = 0\nfor i = 1, 5 do counter = counter + i end\ncounter",
        "JSON.stringify({b = 2, a = {1, 2}})",
        "io.stderr:write('warning line\\n')\nreturn State ~= nil",
    )
    client = NotebookClient(nb, timeout=60, kernel_name=KERNEL_NAME, startup_timeout=60,
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # the kernel inherits this test's isolated HOME and JUPYTER_PATH
    assert nb.metadata["language_info"]["name"] == "lua"
    outs = [c.outputs for c in nb.cells]
    assert outs[0] == [{"output_type": "stream", "name": "stdout", "text": "hello, notebook\n"}]
    assert outs[1][0]["output_type"] == "execute_result" and outs[1][0]["data"]["text/plain"] == "15"
    assert outs[2][0]["data"]["text/plain"] == '{"a":[1,2],"b":2}'
    assert outs[3][0] == {"output_type": "stream", "name": "stderr", "text": "warning line\n"}
    assert outs[3][1]["data"]["text/plain"] == "true"
    assert [c.execution_count for c in nb.cells] == [1, 2, 3, 4]


def test_nbclient_stops_at_the_first_failing_cell(tmp_path: Path, jupyter_env: dict[str, str]) -> None:  # noqa: F811
    nb = _notebook("x = 1", "error('cell two fails')", "x = 3")
    client = NotebookClient(nb, timeout=60, kernel_name=KERNEL_NAME, startup_timeout=60)
    with pytest.raises(CellExecutionError, match="cell two fails"):
        client.execute()
    assert nb.cells[1].outputs[0]["output_type"] == "error"
    assert nb.cells[2].outputs == []


def test_jupyter_console_is_driven_through_its_prompt(tmp_path: Path, jupyter_env: dict[str, str]) -> None:  # noqa: F811
    script = "print(1+1)\n6*7\nfor i = 1, 2 do print('loop', i) end\nerror('console boom')\n"
    proc = subprocess.run(
        [sys.executable, "-m", "jupyter_console", f"--kernel={KERNEL_NAME}", "--simple-prompt",
         "--no-confirm-exit", "--ZMQTerminalInteractiveShell.kernel_timeout=60"],
        input=script, capture_output=True, text=True, timeout=120, env=_env(tmp_path, jupyter_env))
    out = proc.stdout
    assert "llmspell" in out  # the banner
    assert "In [1]:" in out
    assert "2\n" in out
    assert "Out[2]: 42" in out
    assert "loop\t1\nloop\t2" in out
    assert "console boom" in out + proc.stderr


def test_jupyter_run_executes_a_lua_file(tmp_path: Path, jupyter_env: dict[str, str]) -> None:  # noqa: F811
    script = tmp_path / "job.lua"
    script.write_text("for i = 1, 3 do print('line ' .. i) end\n", encoding="utf-8")
    env = _env(tmp_path, jupyter_env)
    ok = subprocess.run([sys.executable, "-m", "jupyter_client.runapp", f"--kernel={KERNEL_NAME}", str(script)],
                        capture_output=True, text=True, timeout=120, env=env)
    assert ok.returncode == 0, ok.stderr
    assert "line 1\nline 2\nline 3" in ok.stdout
    bad = tmp_path / "bad.lua"
    bad.write_text("error('run fails')\n", encoding="utf-8")
    failed = subprocess.run([sys.executable, "-m", "jupyter_client.runapp", f"--kernel={KERNEL_NAME}", str(bad)],
                            capture_output=True, text=True, timeout=120, env=env)
    assert failed.returncode == 1
    assert os.path.exists(script)
