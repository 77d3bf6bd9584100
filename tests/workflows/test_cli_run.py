"""`llmspell run` in a real process: a script with tools and workflows, output and the WARN line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

SCRIPT = """
Agent.builder():name("writer"):model("openai/gpt-4o-mini"):build()
local out = ARGS["out"]
local wf = Workflow.builder():name("cli_demo"):sequential()
  :add_step{name = "draft", agent = "writer", input = "Write about {{topic}}"}
  :add_step{name = "save", tool = "file_operations",
            input = {operation = "write", path = out .. "/draft.txt", input = "{{draft}}"}}
  :build()
local r = wf:execute{topic = "lua"}
print(r.success, r.outputs.draft)
print(State.load("custom", ":workflow:" .. r.execution_id .. ":agent:writer:output"))
local bad = Workflow.sequential{name = "broken", steps = {{name = "boom", fn = function() error("kaput", 0) end}}}
print(bad:execute().success)
"""


def test_cli_run_workflow_script(tmp_path: Path, llm: Any) -> None:
    script = tmp_path / "main.lua"
    script.write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMSPELL_") and not k.endswith("_API_KEY")}
    env.update(OPENAI_BASE_URL=llm.base_url, LLMSPELL_STATE_PATH=str(tmp_path / "s.sqlite3"))
    p = subprocess.run([sys.executable, "-m", "llmspell.cli.main", "run", str(script), "--", "--out", str(tmp_path)],
                       env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ["true\treply: Write about lua", "reply: Write about lua", "false"]
    assert "WARN workflow 'broken' failed at step 'boom': kaput" in p.stderr
    assert (tmp_path / "draft.txt").read_text() == "reply: Write about lua"
