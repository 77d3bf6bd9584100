"""Issue 17 item 9 (part): state databases and log files are created 0600, their new directories 0700."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmspell.runtime.files import ensure_private_file, open_private, private_dir


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.fixture
def wide_umask() -> Iterator[None]:
    """A umask that would leave new files world-readable and writable (the attack's best case)."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def test_helpers_create_private_files_and_dirs(tmp_path: Path, wide_umask: None) -> None:
    f = ensure_private_file(tmp_path / "a" / "b" / "db.sqlite3")
    assert mode(f) == 0o600
    assert mode(tmp_path / "a") == 0o700 and mode(tmp_path / "a" / "b") == 0o700
    with open_private(tmp_path / "c" / "log.txt", "a", encoding="utf-8") as fh:
        fh.write("x\n")
    assert mode(tmp_path / "c" / "log.txt") == 0o600 and mode(tmp_path / "c") == 0o700
    assert mode(private_dir(tmp_path / "d")) == 0o700


def test_existing_files_and_directories_keep_their_modes(tmp_path: Path, wide_umask: None) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    f = shared / "db.sqlite3"
    f.write_text("", encoding="utf-8")
    os.chmod(f, 0o640)
    ensure_private_file(f)
    with open_private(f, "a", encoding="utf-8") as fh:
        fh.write("")
    assert mode(f) == 0o640 and mode(shared) == 0o755


def test_state_database_wal_files_and_backups_are_private(tmp_path: Path, wide_umask: None) -> None:
    from llmspell.state.sqlite import SqliteBackend

    db = tmp_path / "state" / "deep" / "state.sqlite3"
    backend = SqliteBackend(db)
    try:
        backend.create_backup()
    finally:
        backend.close()
    assert mode(db) == 0o600
    assert mode(db.parent) == 0o700 and mode(db.parent.parent) == 0o700
    created = [p for p in db.parent.rglob("*") if p.is_file()]
    assert any(p.suffix == ".sqlite3" and p.parent.name == "backups" for p in created)
    for p in created:
        assert mode(p) == 0o600, p
    assert mode(db.parent / "backups") == 0o700


def test_a_script_state_debug_log_and_event_export_are_private(tmp_path: Path, wide_umask: None,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from llmspell.bootstrap import create_runtime
    from llmspell.config import load_config
    from llmspell.script.engine import BufferSink

    logs = tmp_path / "logs"
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[debug]\noutput = "{logs / "debug.log"}"\n\n'
                   f'[events.export]\nfile = "{logs / "events.jsonl"}"\n', encoding="utf-8")
    monkeypatch.setenv("LLMSPELL_STATE_PATH", str(tmp_path / "data" / "state.sqlite3"))
    rt = create_runtime(load_config(cfg, env=dict(os.environ)), stdout=BufferSink(), stderr=BufferSink())
    try:
        rt.run_string('State.save("custom", "k", "secret value") Debug.info("to the log") '
                      'Event.publish("app.test", {x = 1})', "=(t)")
    finally:
        rt.close()
    files = {p.name: p for p in tmp_path.rglob("*") if p.is_file() and p.name != "c.toml"}
    assert {"state.sqlite3", "debug.log", "events.jsonl"} <= set(files), sorted(files)
    for p in files.values():
        assert mode(p) == 0o600, p
    assert mode(logs) == 0o700 and mode(tmp_path / "data") == 0o700
