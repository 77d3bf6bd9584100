"""StateStore over the memory and SQLite backends: keys, values, redaction, limits, corruption, backups."""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from llmspell.config import LLMConfig
from llmspell.state import MemoryBackend, StateError, StateSettings, StateStore, StateValueError, build_state
from llmspell.state.sqlite import SqliteBackend


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> StateStore:
    backend = MemoryBackend() if request.param == "memory" else SqliteBackend(tmp_path / "s.sqlite3")
    s = StateStore(backend)
    yield s
    s.close()


def test_round_trip_keeps_types(store: StateStore) -> None:
    value = {"i": 3, "f": 1.5, "s": "x", "l": [1, 2, {"n": None}], "b": True, "big": 2**62}
    store.save("global", "k", value)
    got = store.load("global", "k")
    assert got == value
    assert isinstance(got["i"], int) and isinstance(got["big"], int)


def test_leading_colon_is_ignored_both_ways(store: StateStore) -> None:
    store.save("custom", ":workflow:1:a", "x")
    assert store.load("custom", "workflow:1:a") == "x"
    store.save("custom", "workflow:1:b", "y")
    assert store.load("custom", ":workflow:1:b") == "y"
    assert store.list_keys("custom") == ["workflow:1:a", "workflow:1:b"]


def test_delete_exists_list_clear(store: StateStore) -> None:
    for k in ("b", "a", "c"):
        store.save("s1", k, 1)
    store.save("s2", "a", 1)
    store.save("s10", "z", 1)
    assert store.list_keys("s1") == ["a", "b", "c"]
    assert store.exists("s1", "a") and not store.exists("s1", "zz")
    assert store.delete("s1", "a") is True and store.delete("s1", "a") is False
    store.save("s1", "b", None)
    assert store.list_keys("s1") == ["c"]
    assert store.clear("s1") == 1
    assert store.list_keys("s2") == ["a"] and store.list_keys("s10") == ["z"]
    assert store.load("s1", "missing", "dflt") == "dflt"


@pytest.mark.parametrize("secret", [
    "sk-abcdefghijklmnopqrstuvwx12345", "sk-ant-api03-abcdefghijklmnopqrstuvwxyz",
    "Bearer abc.def-ghi_123", "AKIAABCDEFGHIJKLMNOP", "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
])
def test_secrets_are_redacted_with_a_warning(store: StateStore, secret: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="llmspell.state"):
        store.save("agent", "cfg", {"headers": [f"token {secret} end"], "keep": "plain"})
    got = store.load("agent", "cfg")
    assert secret not in str(got) and "[REDACTED]" in got["headers"][0] and got["keep"] == "plain"
    assert "agent:cfg" in caplog.text


def test_unserializable_values_raise(store: StateStore) -> None:
    with pytest.raises(StateValueError, match="cannot be serialized"):
        store.save("g", "f", {"fn": lambda: 1})
    cyc: dict = {}
    cyc["self"] = cyc
    with pytest.raises(StateValueError, match="cannot be serialized"):
        store.save("g", "c", cyc)
    assert not store.exists("g", "f") and not store.exists("g", "c")


def test_key_and_value_limits(tmp_path: Path) -> None:
    s = StateStore(MemoryBackend(), max_value_bytes=100, max_key_bytes=64)
    with pytest.raises(StateValueError, match="max_value_bytes"):
        s.save("g", "v", "x" * 200)
    with pytest.raises(StateValueError, match="64-byte limit"):
        s.save("g", "k" * 100, 1)
    s.save("g", "ok", "x" * 50)


def test_corrupt_file_is_a_clear_error_and_left_untouched(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "state.sqlite3"
    junk = b"this is not a database at all" * 100
    db.write_bytes(junk)
    cfg = LLMConfig(data={"state": {"path": str(db)}}, env={})
    with caplog.at_level(logging.WARNING, logger="llmspell.state"):
        store = build_state(cfg)
    assert "not a usable SQLite file" in caplog.text
    with pytest.raises(StateError, match="not a usable SQLite file.*left untouched"):
        store.load("g", "k")
    with pytest.raises(StateError):
        store.save("g", "k", 1)
    assert db.read_bytes() == junk


def test_corrupt_pages_after_a_valid_header(tmp_path: Path) -> None:
    db = tmp_path / "state.sqlite3"
    b = SqliteBackend(db)
    for i in range(200):
        b.put(f"g:{i}", b"x" * 500)
    b.close()
    data = bytearray(db.read_bytes())
    data[100:] = b"\xff" * (len(data) - 100)
    db.write_bytes(bytes(data))
    for suffix in ("-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    with pytest.raises(StateError, match="not a usable SQLite file"):
        b2 = SqliteBackend(db)
        b2.get("g:1")


def test_threads_write_concurrently(tmp_path: Path) -> None:
    s = StateStore(SqliteBackend(tmp_path / "t.sqlite3"))

    def writer(n: int) -> None:
        for i in range(100):
            s.save("t", f"{n}:{i}", i)
            assert s.load("t", f"{n}:{i}") == i

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(s.list_keys("t")) == 400


_WRITER = """
import sys
from llmspell.state.sqlite import SqliteBackend
from llmspell.state import StateStore
s = StateStore(SqliteBackend(sys.argv[1], busy_timeout_ms=20000))
for i in range(150):
    s.save("p", f"{sys.argv[2]}:{i}", {"i": i, "pad": "x" * 200})
print("done", flush=True)
"""


def test_two_processes_write_one_file(tmp_path: Path) -> None:
    db = tmp_path / "shared.sqlite3"
    SqliteBackend(db).close()
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(db), name], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for name in ("a", "b")]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert "done" in out
    s = StateStore(SqliteBackend(db))
    keys = s.list_keys("p")
    assert len(keys) == 300
    assert s.load("p", "b:149") == {"i": 149, "pad": "x" * 200}


def test_schema_version_and_migration_on_open(tmp_path: Path) -> None:
    db = tmp_path / "old.sqlite3"
    b = SqliteBackend(db, migrate=False)
    b.migrate(1)
    b._conn.execute("INSERT INTO kv (key, value) VALUES ('g:a', '1')")
    assert b.schema_version() == 1
    b.close()
    s = StateStore(SqliteBackend(db))
    assert s.migration_status() == {"current": 2, "latest": 2}
    assert [v["version"] for v in s.schema_versions()] == [1, 2]
    assert s.load("g", "a") == 1
    s.save("g", "b", 2)
    with pytest.raises(StateError, match="migrate down"):
        s.migrate(1)
    with pytest.raises(StateError, match="unknown schema version"):
        s.migrate(99)
    assert s.migrate(2) == {"success": True, "from": 2, "to": 2}


def test_backups_create_validate_restore_cleanup(tmp_path: Path) -> None:
    s = StateStore(SqliteBackend(tmp_path / "db" / "state.sqlite3"), backup_keep=2)
    s.save("g", "k", "before")
    info = s.create_backup()
    assert info["success"] and Path(info["path"]).parent == tmp_path / "db" / "backups" and info["size_bytes"] > 0
    s.save("g", "k", "after")
    s.save("g", "extra", 1)
    assert s.validate_backup(info["id"]) == {"valid": True}
    assert s.restore_backup(info["id"]) == {"success": True}
    assert s.load("g", "k") == "before" and not s.exists("g", "extra")
    ids = [info["id"], s.create_backup()["id"], s.create_backup()["id"]]
    listed = [b["id"] for b in s.list_backups()]
    assert sorted(listed) == sorted(ids)
    dry = s.cleanup_backups(dry_run=True)
    assert len(dry["deleted"]) == 1 and dry["kept"] == 2 and len(s.list_backups()) == 3
    done = s.cleanup_backups()
    assert done["deleted"] == dry["deleted"] and len(s.list_backups()) == 2
    bad = tmp_path / "db" / "backups" / "broken.sqlite3"
    bad.write_bytes(b"garbage" * 10)
    assert s.validate_backup("broken")["valid"] is False
    with pytest.raises(StateError, match="not valid"):
        s.restore_backup("broken")
    with pytest.raises(StateError, match="no backup"):
        s.restore_backup("nope")


def test_memory_backend_has_no_backups() -> None:
    s = StateStore(MemoryBackend())
    with pytest.raises(StateError, match="not supported by the memory"):
        s.create_backup()
    assert s.list_backups() == []


def test_storage_usage(tmp_path: Path) -> None:
    s = StateStore(SqliteBackend(tmp_path / "u.sqlite3"))
    s.save("g", "a", "x" * 1000)
    u = s.storage_usage()
    assert u["keys"] == 1 and u["total_bytes"] >= 1000 and u["backend"] == "sqlite" and u["path"].endswith("u.sqlite3")


def test_settings_paths_env_and_backends(tmp_path: Path) -> None:
    cfg = LLMConfig(data={"state": {"path": str(tmp_path / "dir")}}, env={})
    assert StateSettings.from_config(cfg).path == tmp_path / "dir" / "state.sqlite3"
    cfg = LLMConfig(data={"runtime": {"state_persistence": {"database_path": str(tmp_path / "x.db")}}}, env={})
    assert StateSettings.from_config(cfg).path == tmp_path / "x.db"
    cfg = LLMConfig(data={"state": {"path": "/nope/a.db"}},
                    env={"LLMSPELL_STATE_PATH": str(tmp_path / "e.sqlite"), "LLMSPELL_STATE_BACKEND": "memory"})
    st = StateSettings.from_config(cfg)
    assert st.path == tmp_path / "e.sqlite" and st.backend == "memory"
    cfg = LLMConfig(data={"state": {"enabled": False}}, env={})
    assert build_state(cfg).backend_name == "memory"
    cfg = LLMConfig(data={}, env={"XDG_DATA_HOME": str(tmp_path / "xdg")})
    s = build_state(cfg)
    s.save("g", "k", 1)
    assert (tmp_path / "xdg" / "llmspell" / "state.sqlite3").is_file()


def test_postgres_without_dsn_raises_on_first_use(caplog: pytest.LogCaptureFixture) -> None:
    cfg = LLMConfig(data={"state": {"backend": "postgresql"}}, env={})
    with caplog.at_level(logging.WARNING, logger="llmspell.state"):
        s = build_state(cfg)
    assert "needs a DSN" in caplog.text
    with pytest.raises(StateError, match="connection_string_env"):
        s.save("g", "k", 1)


def test_export_and_import(tmp_path: Path) -> None:
    a = StateStore(SqliteBackend(tmp_path / "a.sqlite3"))
    a.save("g", "x", {"n": 1})
    a.save("custom", "y", [1, 2])
    a.backend.put("_llmspell.session:abc", b"{}")
    entries = a.export()
    assert entries == {"custom:y": [1, 2], "g:x": {"n": 1}}
    b = StateStore(MemoryBackend())
    assert b.import_entries(entries) == 2
    assert b.load("g", "x") == {"n": 1} and b.scopes() == ["custom", "g"]


def test_sqlite_file_is_wal_and_plain_sqlite(tmp_path: Path) -> None:
    db = tmp_path / "w.sqlite3"
    s = StateStore(SqliteBackend(db))
    s.save("g", "k", 1)
    c = sqlite3.connect(db)
    assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert c.execute("SELECT value FROM kv WHERE key = 'g:k'").fetchone()[0] == b"1"


def test_writer_lock_held_by_another_connection_is_a_clear_busy_error(tmp_path: Path) -> None:
    db = tmp_path / "busy.sqlite3"
    SqliteBackend(db).close()
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StateError, match="locked by another process"):
            SqliteBackend(db, busy_timeout_ms=50)
        s = StateStore(SqliteBackend(db, busy_timeout_ms=50, migrate=False))
        assert s.load("g", "k") is None
        with pytest.raises(StateError, match="busy"):
            s.save("g", "k", 1)
    finally:
        other.execute("ROLLBACK")
        other.close()
    s.save("g", "k", 1)
    assert s.load("g", "k") == 1
