"""Fixtures for tool tests: runtimes with a given config, a local HTTP server, Lua helpers."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.llm_server import LLMServer


@pytest.fixture
def make_rt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], Any]]:
    """Build a runtime from config TOML text (cwd = tmp_path)."""
    from llmspell.bootstrap import create_runtime
    from llmspell.config import load_config
    from llmspell.script.engine import BufferSink

    monkeypatch.setenv("LLMSPELL_STATE_PATH", str(tmp_path / "state.sqlite3"))
    monkeypatch.chdir(tmp_path)
    made: list[Any] = []

    def make(toml: str = "") -> Any:
        cfg = tmp_path / f"config{len(made)}.toml"
        cfg.write_text(toml)
        out, err = BufferSink(), BufferSink()
        rt = create_runtime(load_config(cfg, env=dict(os.environ)), stdout=out, stderr=err)
        rt.test_out, rt.test_err = out, err
        made.append(rt)
        return rt

    yield make
    for rt in made:
        rt.close()


@pytest.fixture
def rt(make_rt: Callable[[str], Any]) -> Any:
    return make_rt("")


@pytest.fixture
def http() -> Iterator[LLMServer]:
    with LLMServer() as server:
        yield server


def invoke(rt: Any, name: str, params_lua: str) -> Any:
    """Tool.invoke(name, <lua table literal>) → Python data."""
    res = rt.run_string(f"return Tool.invoke({name!r}, {params_lua})", "=t")
    return res.values[0]


def invoke_error(rt: Any, name: str, params_lua: str) -> str:
    from llmspell.script.engine import ScriptError

    with pytest.raises(ScriptError) as ei:
        rt.run_string(f"return Tool.invoke({name!r}, {params_lua})", "=t")
    return ei.value.message


def lua(rt: Any, code: str) -> Any:
    res = rt.run_string(code, "=t")
    return res.values[0] if res.values else None
