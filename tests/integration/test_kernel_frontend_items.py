"""Issue 20 item 15 (kernel parts): Shift+Tab inside a call, `exit` in jupyter console, the install
help's default interrupt mode, and papermill `-p` through the Lua parameter translator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest

from tests.kernel.kernel_support import (
    KERNEL_NAME,
    execute,
    jupyter_env,  # noqa: F401 - fixture
    request,
    start_kernel,
    stop_kernel,
)

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory, jupyter_env: dict[str, str]) -> Any:  # noqa: F811
    tmp = tmp_path_factory.mktemp("kernel-frontend-items")
    km, kc, log = start_kernel(tmp, jupyter_env)
    yield km, kc, log
    stop_kernel(km, kc)


# ------------------------------------------------------------- Shift+Tab after an open parenthesis
@pytest.mark.parametrize("code, name", [
    ("print(", "print"),
    ('print("a", ', "print"),
    ("x = string.format(", "string.format"),
    ('string.format("%d", math.floor(1.5), ', "string.format"),
    ("Agent.builder(", "Agent.builder"),
    ('State.save(\n  "custom",\n  ', "State.save"),
    ('print("(", ', "print"),
])
def test_inspect_inside_a_call_finds_the_function(kernel: Any, code: str, name: str) -> None:
    r = request(kernel[1], "inspect_request", {"code": code, "cursor_pos": len(code), "detail_level": 0})["content"]
    assert r["status"] == "ok" and r["found"] is True, r
    assert name.rsplit(".", 1)[-1] in r["data"]["text/plain"]


def test_inspect_outside_any_call_finds_nothing(kernel: Any) -> None:
    code = "x = (1 + 2) "
    r = request(kernel[1], "inspect_request", {"code": code, "cursor_pos": len(code), "detail_level": 0})["content"]
    assert r["status"] == "ok" and r["found"] is False


# ------------------------------------------------------------- exit / quit
@pytest.mark.parametrize("code", ["exit", "quit", "exit()", " quit ( ) "])
def test_exit_and_quit_ask_the_frontend_to_leave(kernel: Any, code: str) -> None:
    reply, _ = execute(kernel[1], code)
    c = reply["content"]
    assert c["status"] == "ok" and c["payload"] == [{"source": "ask_exit", "keepkernel": False}]


def test_a_lua_function_named_exit_still_runs(kernel: Any) -> None:
    execute(kernel[1], "function exit() print('lua exit') end")
    try:
        reply, out = execute(kernel[1], "exit()")
        assert reply["content"]["status"] == "ok" and reply["content"]["payload"] == []
        assert any(m["msg_type"] == "stream" and "lua exit" in m["content"]["text"] for m in out)
    finally:
        execute(kernel[1], "exit = nil")


def test_exit_leaves_jupyter_console(tmp_path: Path, jupyter_env: dict[str, str]) -> None:  # noqa: F811
    env = {**os.environ, **jupyter_env, "LLMSPELL_STATE_PATH": str(tmp_path / "s.sqlite3")}
    console = Path(sys.executable).with_name("jupyter-console")
    r = subprocess.run([str(console), f"--kernel={KERNEL_NAME}", "--simple-prompt"],
                       input='print("before-" .. 1)\nexit\nprint("after-" .. 2)\n', capture_output=True,
                       text=True, env=env, timeout=40)
    assert "before-1" in r.stdout, r.stdout + r.stderr
    assert "after-2" not in r.stdout  # the console left at `exit`, it did not run the next line
    assert "Shutting down kernel" in r.stdout + r.stderr


# ------------------------------------------------------------- kernel install --help
def test_install_help_names_the_mode_install_writes(tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    env.pop("LLMSPELL_CONFIG", None)
    cli = [sys.executable, "-m", "llmspell.cli.main"]
    help_text = subprocess.run([*cli, "kernel", "install", "--help"], capture_output=True, text=True, env=env,
                               cwd=tmp_path, timeout=60).stdout
    subprocess.run([*cli, "kernel", "install", "--prefix", str(tmp_path / "p")], check=True, capture_output=True,
                   env=env, cwd=tmp_path, timeout=60)
    spec = json.loads((tmp_path / "p" / "share" / "jupyter" / "kernels" / "llmspell" / "kernel.json").read_text())
    mode = spec["interrupt_mode"]
    assert mode == "signal"
    assert f"which is {mode} unless the config says otherwise" in " ".join(help_text.split())


# ------------------------------------------------------------- papermill -p
def _notebook(path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": KERNEL_NAME, "display_name": "llmspell (Lua)", "language": "lua"}
    nb.metadata["language_info"] = {"name": "lua"}
    params = nbformat.v4.new_code_cell('name = "default"\ncount = 1 -- how many')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(
        'print(name .. "|" .. count .. "|" .. tostring(flag) .. "|" .. tostring(items[2]) .. "|" .. items[3] .. "|" .. cfg.k.z .. "|" .. ratio)')]
    nbformat.write(nb, str(path))


def _stdout(nb_path: Path) -> str:
    nb = nbformat.read(str(nb_path), as_version=4)
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                   if o.get("output_type") == "stream")


def test_papermill_parameters_reach_lua(tmp_path: Path, jupyter_env: dict[str, str]) -> None:  # noqa: F811
    import papermill

    src, out = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    _notebook(src)
    params = {"name": 'a "quoted"\\path\nline', "count": 3, "flag": True, "items": [1, None, "x"],
              "cfg": {"k": {"z": "deep"}}, "ratio": 0.25}
    papermill.execute_notebook(str(src), str(out), parameters=params, kernel_name=KERNEL_NAME, progress_bar=False)
    assert _stdout(out) == 'a "quoted"\\path\nline|3|true|nil|x|deep|0.25\n'
    injected = next(c for c in nbformat.read(str(out), as_version=4).cells
                    if "injected-parameters" in c.metadata.get("tags", []))
    assert injected.source.startswith("-- Parameters")


@pytest.mark.parametrize("engine", [[], ["--engine", "llmspell"]], ids=["default-engine", "llmspell-engine"])
def test_papermill_cli_dash_p(tmp_path: Path, jupyter_env: dict[str, str], engine: list[str]) -> None:  # noqa: F811
    src, out = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    _notebook(src)
    env = {**os.environ, **jupyter_env, "LLMSPELL_STATE_PATH": str(tmp_path / "s.sqlite3")}
    pm = Path(sys.executable).with_name("papermill")
    r = subprocess.run([str(pm), str(src), str(out), "-p", "name", "from-cli", "-p", "count", "7",
                        "-p", "flag", "false", "-y", "items: [1, 2, three]\ncfg: {k: {z: yaml}}\nratio: 1.5",
                        "--no-progress-bar", *engine], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert _stdout(out) == "from-cli|7|false|2|three|yaml|1.5\n"


def test_papermill_help_notebook_lists_the_parameters(tmp_path: Path) -> None:
    src = tmp_path / "in.ipynb"
    _notebook(src)
    pm = Path(sys.executable).with_name("papermill")
    r = subprocess.run([str(pm), "--help-notebook", str(src)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "name" in r.stdout and "count" in r.stdout and "how many" in r.stdout


def test_a_parameter_name_lua_cannot_take_is_refused() -> None:
    from llmspell.kernel.papermill_lua import LuaTranslator

    with pytest.raises(ValueError, match="not a Lua variable name"):
        LuaTranslator.codify({"end": 1})
    with pytest.raises(ValueError, match="not a Lua variable name"):
        LuaTranslator.codify({"a-b": 1})
