"""Shared fixtures: an isolated environment for every test (no user config, temp state dir)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Keep tests away from the user's config, state and keys."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    for var in list(os.environ):
        if var.startswith("LLMSPELL_") or var.endswith("_API_KEY") or var in ("OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "OLLAMA_HOST"):
            monkeypatch.delenv(var, raising=False)
    yield


@pytest.fixture
def lua_runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A ScriptRuntime with every global, output captured, state in tmp_path."""
    from llmspell.bootstrap import create_runtime
    from llmspell.config import load_config
    from llmspell.script.engine import BufferSink

    monkeypatch.setenv("LLMSPELL_STATE_PATH", str(tmp_path / "state.sqlite3"))
    out, err = BufferSink(), BufferSink()
    rt = create_runtime(load_config(env=dict(os.environ)), stdout=out, stderr=err)
    rt.test_out, rt.test_err = out, err  # type: ignore[attr-defined]
    yield rt
    rt.close()
