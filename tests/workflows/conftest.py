"""Fixtures for workflow tests: a real local OpenAI-compatible server and a runtime pointed at it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.llm_server import LLMServer


@pytest.fixture
def llm() -> Iterator[LLMServer]:
    with LLMServer() as server:
        yield server


@pytest.fixture
def rt(llm: LLMServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A runtime whose openai provider is the local test server (loopback: no key needed)."""
    from llmspell.bootstrap import create_runtime
    from llmspell.config import load_config
    from llmspell.script.engine import BufferSink

    monkeypatch.setenv("LLMSPELL_STATE_PATH", str(tmp_path / "state.sqlite3"))
    monkeypatch.setenv("OPENAI_BASE_URL", llm.base_url)
    monkeypatch.chdir(tmp_path)
    out, err = BufferSink(), BufferSink()
    runtime = create_runtime(load_config(env=dict(os.environ)), stdout=out, stderr=err)
    runtime.test_out, runtime.test_err = out, err
    yield runtime
    runtime.close()


def run(rt: Any, code: str) -> Any:
    """Run a chunk and return its first return value as Python data."""
    res = rt.run_string(code, "=test")
    return res.values[0] if res.values else None


def lua_error(rt: Any, code: str) -> str:
    """Run a chunk that must raise; return the error message."""
    from llmspell.script.engine import ScriptError

    with pytest.raises(ScriptError) as ei:
        rt.run_string(code, "=test")
    return ei.value.message
