"""`llmspell config init` writes a narrower file sandbox than the default (issue 17.1), as a real CLI run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, LLMSPELL_STATE_BACKEND="memory")
    env.pop("LLMSPELL_CONFIG", None)
    env.pop("LLMSPELL_TOOLS_ALLOWED_PATHS", None)
    return subprocess.run([sys.executable, "-m", "llmspell.cli.main", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def test_config_init_narrows_allowed_paths_to_a_workspace(tmp_path: Path) -> None:
    assert _cli("config", "init", cwd=tmp_path).returncode == 0
    assert (tmp_path / "workspace").is_dir()
    shown = _cli("--output", "json", "config", "show", "tools.file_operations.allowed_paths", cwd=tmp_path)
    assert json.loads(shown.stdout) == [str(tmp_path / "workspace")]
    script = (
        'local ok = Tool.invoke("file_operations", {operation = "write", path = "workspace/a.txt", input = "x"})\n'
        'local tmp = Tool.invoke("file_operations", {operation = "write", path = "/tmp/llmspell-init-x.txt", '
        'input = "x"})\n'
        'local cfg = Tool.invoke("file_operations", {operation = "write", path = "llmspell.toml", input = "x"})\n'
        'print(ok.success, tmp.success, cfg.success)\n')
    (tmp_path / "app.lua").write_text(script)
    r = _cli("run", "app.lua", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "true\tfalse\tfalse"
    assert (tmp_path / "workspace" / "a.txt").read_text() == "x"
    assert "[tools.file_operations]" in (tmp_path / "llmspell.toml").read_text()
