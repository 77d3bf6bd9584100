"""Retention of the §5.9 workflow State keys: kept for the runtime (the session), the last N executions only.

Before the rule every `wf:execute` left 2 keys per step in the persistent `custom` scope forever
(359 keys after the nine apps).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.workflows.conftest import run

_WF = """
  WF = WF or Workflow.builder():name("ret"):sequential()
    :add_step{name = "a", fn = function(ctx) return "A" .. ctx.input.text end}
    :add_step{name = "b", tool = "text_manipulator", input = {operation = "uppercase", input = "{{a}}"}}
    :build()
  local r = WF:execute{text = ARG_TEXT}
  return {id = r.execution_id, a = State.load("custom", "workflow:" .. r.execution_id .. ":a"),
          out = WF:get_output("a")}
"""


def _runtime(tmp_path: Path, **workflows: Any) -> Any:
    from llmspell.bootstrap import create_runtime
    from llmspell.config import load_config
    from llmspell.script.engine import BufferSink

    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMSPELL_")}
    env["LLMSPELL_STATE_PATH"] = str(tmp_path / "state.sqlite3")
    cfg = load_config(env=env, overrides={f"workflows.{k}": v for k, v in workflows.items()})  # settings parse once
    return create_runtime(cfg, stdout=BufferSink(), stderr=BufferSink())


def _workflow_keys(path: Path) -> list[str]:
    """The §5.9 keys in the State file, read by a fresh store (what a later process would see)."""
    from llmspell.config import LLMConfig
    from llmspell.state import build_state

    st = build_state(LLMConfig(data={"state": {"path": str(path)}}, env={}))
    try:
        return [k for k in st.list_keys("custom") if k.lstrip(":").startswith("workflow:")]
    finally:
        st.close()


def _execute(rt: Any, text: str) -> dict[str, Any]:
    rt.G.ARG_TEXT = text
    return run(rt, _WF)  # type: ignore[no-any-return]


def test_keys_readable_during_the_session_and_gone_after_it(tmp_path: Path) -> None:
    rt = _runtime(tmp_path)
    try:
        r = _execute(rt, "x")
        assert r["a"] == r["out"] == "Ax"  # §5.9 still holds while the runtime lives
        assert len(_workflow_keys(tmp_path / "state.sqlite3")) == 4  # 2 keys for each of the 2 steps
        run(rt, 'State.save("custom", "mine", 1)')
    finally:
        rt.close()
    assert _workflow_keys(tmp_path / "state.sqlite3") == []
    from llmspell.config import LLMConfig
    from llmspell.state import build_state

    st = build_state(LLMConfig(data={"state": {"path": str(tmp_path / "state.sqlite3")}}, env={}))
    assert st.load("custom", "mine") == 1  # the script's own keys in the scope are untouched
    st.close()


def test_only_the_last_n_executions_keep_their_keys(tmp_path: Path) -> None:
    rt = _runtime(tmp_path, state_max_executions=3)
    try:
        ids = [_execute(rt, str(i))["id"] for i in range(6)]
        keys = _workflow_keys(tmp_path / "state.sqlite3")
        assert sorted({k.lstrip(":").split(":")[1] for k in keys}) == sorted(ids[-3:])
        assert len(keys) == 3 * 4
        old = run(rt, f'return WF:get_output("a", "{ids[0]}") == nil')
        assert old is True
        assert run(rt, f'return WF:get_output("a", "{ids[-1]}")') == "A5"
        assert rt.services.workflow_engine.kept_executions() == 3
    finally:
        rt.close()


def test_running_parent_keeps_its_keys_while_many_children_finish(tmp_path: Path) -> None:
    rt = _runtime(tmp_path, state_max_executions=2)
    try:
        r = run(rt, """
          local child = Workflow.builder():name("child"):sequential()
            :add_step{name = "c", fn = function(ctx) return "c" end}:build()
          local seen
          local parent = Workflow.builder():name("parent"):sequential()
            :add_step{name = "first", fn = function(ctx) return "F" end}
            :add_step{name = "kids", fn = function(ctx)
                for i = 1, 5 do child:execute{} end
                seen = State.load("custom", "workflow:" .. ctx.execution_id .. ":first")
                return "done"
              end}
            :build()
          local r = parent:execute{}
          return {seen = seen, after = State.load("custom", "workflow:" .. r.execution_id .. ":kids")}
        """)
        assert r == {"seen": "F", "after": "done"}  # five finished children did not evict the running parent
    finally:
        rt.close()


def test_persist_is_opt_in(tmp_path: Path) -> None:
    rt = _runtime(tmp_path, state_retention="persist", state_max_executions=1)
    try:
        for i in range(3):
            _execute(rt, str(i))
    finally:
        rt.close()
    assert len(_workflow_keys(tmp_path / "state.sqlite3")) == 3 * 4


@pytest.mark.parametrize("bad", ['state_retention = "forever"', "state_max_executions = 0",
                                 'state_max_executions = "all"'])
def test_bad_retention_settings_are_config_errors(tmp_path: Path, bad: str) -> None:
    from llmspell.config import ConfigError, load_config

    p = tmp_path / "c.toml"
    p.write_text(f"[workflows]\n{bad}\n")
    with pytest.raises(ConfigError, match="state_"):
        load_config(p, env={})
