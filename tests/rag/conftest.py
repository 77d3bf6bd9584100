"""Fixtures for RAG tests: a service on a temp database, and a Lua runtime with RAG enabled."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llmspell.config import load_config
from llmspell.rag.service import RagService


def make_service(tmp_path: Path, **rag: Any) -> RagService:
    """A RagService whose vectors live in `tmp_path` (its own config, nothing else shared)."""
    cfg = load_config(env={**os.environ, "LLMSPELL_STATE_PATH": str(tmp_path / "state.sqlite3"),
                           "LLMSPELL_RAG_ENABLED": "1"})
    for key, value in rag.items():
        cfg.set(f"rag.{key}", value)
    return RagService(cfg)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[RagService]:
    svc = make_service(tmp_path)
    yield svc
    svc.close()


@pytest.fixture
def rag_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Enable RAG before `lua_runtime` builds its config."""
    monkeypatch.setenv("LLMSPELL_RAG_ENABLED", "1")


@pytest.fixture
def rag_runtime(rag_env: None, lua_runtime: Any) -> Any:
    return lua_runtime
