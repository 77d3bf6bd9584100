"""Metrics global (lua-api.md §23): count/set/get/all, name and value rules, limits, reset per run, reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from jupyter_client import BlockingKernelClient

from llmspell.config import load_config
from llmspell.kernel.kernel import Kernel
from llmspell.script.engine import ScriptError
from tests.kernel.kernel_support import execute, kernel_in_thread


def run(rt: Any, code: str) -> str:
    rt.run_string(code, "=(test)")
    return str(rt.test_out.text)


def lua_error(rt: Any, code: str) -> str:
    with pytest.raises(ScriptError) as ei:
        rt.run_string(code, "=(test)")
    return str(ei.value.message)


def test_count_set_get_all(lua_runtime: Any) -> None:
    out = run(lua_runtime, """
      print(Metrics.count("classified_by_model"))
      print(Metrics.count("classified_by_model", 4))
      Metrics:count("fallbacks", 0.5)
      Metrics.set("model", "gemma") Metrics.set("ok", true) Metrics.set("share.model", 0.25)
      print(Metrics.get("classified_by_model"), Metrics.get("model"), Metrics.get("absent"))
      local all = Metrics.all()
      print(all.classified_by_model, all.fallbacks, all.ok, all["share.model"])
    """)
    assert out.splitlines() == ["1", "5", "5\tgemma\tnil", "5\t0.5\ttrue\t0.25"]
    assert lua_runtime.services.stats.as_dict()["metrics"] == {
        "classified_by_model": 5, "fallbacks": 0.5, "model": "gemma", "ok": True, "share.model": 0.25}


@pytest.mark.parametrize(("code", "message"), [
    ('Metrics.count("Bad-Name")', "may only use a-z, 0-9, '_' and '.'"),
    ('Metrics.count("")', "may only use"),
    ('Metrics.count(3)', "name must be a string"),
    ('Metrics.count("' + "x" * 65 + '")', "at most 64"),
    ('Metrics.count("n", "two")', "n must be a number, got string"),
    ('Metrics.count("n", 0/0)', "finite number"),
    ('Metrics.set("n", nil)', "got nil"),
    ('Metrics.set("n", {})', "value must be a number, got table"),
    ('Metrics.set("s", string.rep("a", 1025))', "at most 1024"),
    ('Metrics.set("label", "x") Metrics.count("label")', "holds a string, not a counter"),
])
def test_bad_names_and_values_raise_with_the_reason(lua_runtime: Any, code: str, message: str) -> None:
    assert message in lua_error(lua_runtime, code)


def test_at_most_256_names_per_run_and_the_old_ones_stay(lua_runtime: Any) -> None:
    msg = lua_error(lua_runtime, 'for i = 1, 257 do Metrics.count("m" .. i) end')
    assert "at most 256 metric names" in msg and "'m257'" in msg
    assert len(lua_runtime.services.stats.metrics) == 256
    # an existing name can still be updated at the limit
    out = run(lua_runtime, 'for i = 1, 256 do Metrics.count("m" .. i) end print(Metrics.count("m1", 10))')
    assert out.splitlines()[-1] == "11"


def test_each_run_starts_empty(lua_runtime: Any) -> None:
    run(lua_runtime, 'Metrics.count("a", 2)')
    assert lua_runtime.services.stats.metrics == {"a": 2}
    out = run(lua_runtime, 'print(Metrics.get("a"), next(Metrics.all()))')
    assert out.splitlines()[-1] == "nil\tnil"


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("LLMSPELL_STATE_PATH", str(tmp_path / "state.sqlite3"))
    with kernel_in_thread(Kernel(tmp_path / "conn.json", config=load_config()), tmp_path / "conn.json") as (kc, _):
        yield kc


@pytest.mark.timeout(120)
def test_kernel_reports_metrics_in_execute_reply_and_resets_them(served: BlockingKernelClient) -> None:
    reply, _ = execute(served, 'Metrics.count("classified_by_model", 6) Metrics.set("mode", "model")')
    assert reply["metadata"]["llmspell"]["metrics"] == {"classified_by_model": 6, "mode": "model"}
    assert reply["metadata"]["llmspell"]["quality"]["exchanges"] == 0 and reply["metadata"]["llmspell"]["exchanges"] == []
    reply, _ = execute(served, 'return Metrics.get("classified_by_model")')
    assert reply["content"]["status"] == "ok"
    assert reply["metadata"]["llmspell"]["metrics"] == {}
    reply, _ = execute(served, 'Metrics.count("x") error("boom")')
    assert reply["content"]["status"] == "error" and reply["metadata"]["llmspell"]["metrics"] == {"x": 1}


def test_cli_output_json_carries_metrics(tmp_path: Path) -> None:
    (tmp_path / "m.lua").write_text('Metrics.count("done", 3)\nMetrics.set("label", "x")\n')
    env = dict(os.environ, LLMSPELL_STATE_BACKEND="memory")
    r = subprocess.run([sys.executable, "-m", "llmspell.cli.main", "--output", "json", "run", "m.lua"],
                       cwd=tmp_path, env=env, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    payload = json.loads(r.stdout)
    assert payload["metrics"] == {"done": 3, "label": "x"}
    assert payload["stats"]["metrics"] == payload["metrics"]
