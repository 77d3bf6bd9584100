"""State and RAG share one database file for any `[state] path` (issue 19: `State.DB` split them in two)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from llmspell.config import load_config, state_db_file
from llmspell.rag.service import RagService
from llmspell.state.settings import StateSettings


def _config(tmp_path: Path, path_value: str, **env: str) -> object:
    cfg = tmp_path / "llmspell.toml"
    cfg.write_text(f'[state]\npath = "{path_value}"\n[rag]\nenabled = true\n')
    return load_config(cfg, env={**os.environ, **env})


@pytest.mark.parametrize("name", ["State.DB", "state.Sqlite3", "x.SQLITE", "plain.db"])
def test_state_and_rag_resolve_the_same_file(tmp_path: Path, name: str) -> None:
    cfg = _config(tmp_path, str(tmp_path / name))
    state_path = StateSettings.from_config(cfg).path
    rag_db, index_dir = RagService(cfg)._locations()
    assert state_path == rag_db == tmp_path / name
    assert index_dir is not None and index_dir.parent == tmp_path


def test_a_folder_holds_state_sqlite3_for_both(tmp_path: Path) -> None:
    cfg = _config(tmp_path, str(tmp_path / "data.d"))
    assert StateSettings.from_config(cfg).path == RagService(cfg)._locations()[0] == tmp_path / "data.d" / "state.sqlite3"


def test_home_relative_path_expands_for_both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    cfg = _config(tmp_path, "~/store/State.DB")
    assert StateSettings.from_config(cfg).path == RagService(cfg)._locations()[0] == tmp_path / "store" / "State.DB"
    assert state_db_file(None, {"XDG_DATA_HOME": str(tmp_path)}) == tmp_path / "llmspell" / "state.sqlite3"


def test_runtime_writes_state_and_vectors_into_one_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from llmspell.bootstrap import create_runtime
    from llmspell.script.engine import BufferSink

    db = tmp_path / "State.DB"
    cfg = _config(tmp_path, str(db))
    rt = create_runtime(cfg, stdout=BufferSink(), stderr=BufferSink())
    try:
        rt.run_string('State.save("custom", "k", "v")\n'
                      'RAG.ingest({content = "Tides follow the Moon.", id = "t"})\n'
                      'assert(#RAG.search("moon and the sea") == 1)', "=t")
    finally:
        rt.close()
    assert db.is_file(), "State.DB must be the database file, not a folder holding another database"
    assert not (db / "state.sqlite3").exists()
    with sqlite3.connect(db) as c:
        tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert "rag_vectors" in tables
        assert c.execute("SELECT COUNT(*) FROM rag_vectors").fetchone()[0] == 1
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix.lower() in (".db", ".sqlite3")) == ["State.DB"]


def test_postgres_state_puts_vectors_in_the_data_directory(tmp_path: Path) -> None:
    cfg = tmp_path / "llmspell.toml"
    cfg.write_text('[state]\nbackend = "postgres"\n[rag]\nenabled = true\n')
    config = load_config(cfg, env={**os.environ, "XDG_DATA_HOME": str(tmp_path / "xdg")})
    db, index_dir = RagService(config)._locations()
    assert db == tmp_path / "xdg" / "llmspell" / "rag.sqlite3"
    assert db.parent == state_db_file(None, {"XDG_DATA_HOME": str(tmp_path / "xdg")}).parent
    assert index_dir == db.with_name("rag.rag-index")
