"""The SQLite backend (the embedded default): one file, WAL, one transaction per write, backups.

`synchronous=NORMAL` in WAL mode makes every committed write survive a crash of the process
(kill -9): the commit is in the WAL file when `put` returns; only an OS crash could lose it.
One connection is shared under a lock, so the Lua thread and the IO loop thread may both call in.
Another process may write the same file: SQLite's busy timeout serializes the writers.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from llmspell.runtime.files import ensure_private_file, private_dir
from llmspell.settings import state_backup_dir
from llmspell.state.backend import StateError, prefix_end
from llmspell.state.migrations import LATEST, MIGRATIONS, pending

_HEADER = b"SQLite format 3\x00"
DEFAULT_BUSY_TIMEOUT_MS = 10_000


def _blob(v: Any) -> bytes:
    """Values are BLOBs; TEXT written by other tools is read as its UTF-8 bytes."""
    return v.encode("utf-8") if isinstance(v, str) else bytes(v)


def _corrupt(path: str, why: str) -> StateError:
    return StateError(
        f"state database {path} is not a usable SQLite file ({why}); it was left untouched: move it "
        f"away or restore a backup (State.restore_backup / `llmspell state import`), or point "
        f"[state] path / LLMSPELL_STATE_PATH elsewhere")


class SqliteBackend:
    """State storage in one SQLite file (`[state] backend = "sqlite"`)."""

    name = "sqlite"

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
                 migrate: bool = True) -> None:
        self.path: str | None = str(path)
        p = Path(path)
        try:
            private_dir(p.parent)  # 0700 when created here; the database itself is created 0600 below
        except OSError as e:
            raise StateError(f"cannot create the state directory {p.parent}: {e.strerror}; "
                             "set [state] path or LLMSPELL_STATE_PATH to a writable place") from None
        if p.is_dir():
            raise StateError(f"state database path {p} is a directory; use a file name ending in .sqlite3")
        self._check_header(p)
        self._lock = threading.RLock()
        try:
            if not p.is_dir():
                ensure_private_file(p)  # SQLite gives its -wal/-shm/-journal files the same mode
            self._conn = sqlite3.connect(str(p), timeout=busy_timeout_ms / 1000.0, isolation_level=None,
                                         check_same_thread=False)
        except (sqlite3.Error, OSError) as e:
            raise StateError(f"cannot open the state database {p}: {e}; check the path and its "
                             "permissions ([state] path / LLMSPELL_STATE_PATH)") from None
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StateError(f"state database {p}: cannot switch to WAL mode (got {mode})")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.execute("CREATE TABLE IF NOT EXISTS schema_version "
                               "(version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)")
            if migrate:
                self.migrate(LATEST)
        except sqlite3.OperationalError as e:
            self._conn.close()
            if "locked" in str(e) or "busy" in str(e):
                raise StateError(f"state database {p} is locked by another process for longer than the busy "
                                 f"timeout ({busy_timeout_ms} ms): {e}") from None
            raise _corrupt(str(p), str(e)) from None
        except sqlite3.DatabaseError as e:
            self._conn.close()
            raise _corrupt(str(p), str(e)) from None

    @staticmethod
    def _check_header(p: Path) -> None:
        try:
            with open(p, "rb") as f:
                head = f.read(16)
        except FileNotFoundError:
            return
        except OSError as e:
            raise StateError(f"cannot read the state database {p}: {e.strerror}") from None
        if head and head != _HEADER:
            raise _corrupt(str(p), "file is not a database")

    # ------------------------------------------------------------------ schema
    def schema_version(self) -> int:
        with self._lock:
            row = self._conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        return int(row[0] or 0)

    def schema_versions(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT version, description, applied_at FROM schema_version ORDER BY version").fetchall()
        return [{"version": v, "description": d, "applied_at": a} for v, d, a in rows]

    def migrate(self, target: int) -> tuple[int, int]:
        """Apply the migrations up to `target` in one transaction; returns (from, to)."""
        if target > LATEST or target < 1:
            raise StateError(f"unknown schema version {target} (latest is {LATEST})")
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                row = self._conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
                current = int(row[0] or 0)
                if target < current:
                    raise StateError(f"cannot migrate down from schema version {current} to {target}")
                for m in pending(current, target):
                    for stmt in m.sqlite:
                        self._conn.execute(stmt)
                    self._conn.execute("INSERT INTO schema_version VALUES (?, ?, ?)",
                                       (m.version, m.description, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())))
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return current, max(current, target)

    # ------------------------------------------------------------------ data
    def _run(self, fn: Any) -> Any:
        try:
            with self._lock:
                return fn(self._conn)
        except sqlite3.OperationalError as e:
            if "locked" in str(e) or "busy" in str(e):
                raise StateError(f"state database {self.path} is busy (another process holds the write "
                                 f"lock longer than the busy timeout): {e}") from None
            raise StateError(f"state database {self.path}: {e}") from None
        except sqlite3.DatabaseError as e:
            raise _corrupt(str(self.path), str(e)) from None
        except sqlite3.ProgrammingError as e:
            raise StateError(f"state database {self.path}: {e}") from None

    def get(self, key: str) -> bytes | None:
        row = self._run(lambda c: c.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone())
        return None if row is None else _blob(row[0])

    def put(self, key: str, value: bytes) -> None:
        self._run(lambda c: c.execute(
            "INSERT INTO kv (key, value, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            (key, value, time.time())))

    def put_many(self, items: list[tuple[str, bytes]], delete: list[str] | None = None) -> None:
        now = time.time()

        def tx(c: sqlite3.Connection) -> None:
            c.execute("BEGIN IMMEDIATE")
            try:
                if delete:
                    c.executemany("DELETE FROM kv WHERE key = ?", [(k,) for k in delete])
                c.executemany(
                    "INSERT INTO kv (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE "
                    "SET value = excluded.value, updated_at = excluded.updated_at",
                    [(k, v, now) for k, v in items])
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise

        self._run(tx)

    def delete(self, key: str) -> bool:
        return bool(self._run(lambda c: c.execute("DELETE FROM kv WHERE key = ?", (key,)).rowcount))

    def exists(self, key: str) -> bool:
        return self._run(lambda c: c.execute("SELECT 1 FROM kv WHERE key = ?", (key,)).fetchone()) is not None

    def keys(self, prefix: str) -> list[str]:
        rows = self._run(lambda c: c.execute(
            "SELECT key FROM kv WHERE key >= ? AND key < ? ORDER BY key", (prefix, prefix_end(prefix))).fetchall())
        return [r[0] for r in rows]

    def items(self, prefix: str) -> list[tuple[str, bytes]]:
        rows = self._run(lambda c: c.execute(
            "SELECT key, value FROM kv WHERE key >= ? AND key < ? ORDER BY key",
            (prefix, prefix_end(prefix))).fetchall())
        return [(k, _blob(v)) for k, v in rows]

    def modified(self, prefix: str) -> dict[str, float]:
        """Modification times (epoch seconds) of the keys under `prefix`."""
        rows = self._run(lambda c: c.execute(
            "SELECT key, updated_at FROM kv WHERE key >= ? AND key < ?", (prefix, prefix_end(prefix))).fetchall())
        return {k: float(t) for k, t in rows}

    def clear(self, prefix: str) -> int:
        return int(self._run(lambda c: c.execute(
            "DELETE FROM kv WHERE key >= ? AND key < ?", (prefix, prefix_end(prefix))).rowcount))

    def usage(self) -> dict[str, Any]:
        n, total = self._run(lambda c: c.execute(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(key) + LENGTH(value)), 0) FROM kv").fetchone())
        size = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(OSError):
                size += os.path.getsize(str(self.path) + suffix)
        return {"keys": int(n), "total_bytes": int(total), "file_bytes": size, "backend": self.name,
                "path": self.path}

    # ------------------------------------------------------------------ backups
    def backup_dir(self) -> Path:
        """`settings.state_backup_dir`: <state dir>/backups."""
        return state_backup_dir(Path(str(self.path)))

    def create_backup(self) -> dict[str, Any]:
        """A consistent copy made with SQLite's backup API into `<state dir>/backups/<id>.sqlite3`."""
        d = private_dir(self.backup_dir())
        bid = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"{time.time() % 1:.6f}"[1:].replace(".", "") \
            + "-" + secrets.token_hex(3)
        dest_path = ensure_private_file(d / f"{bid}.sqlite3")
        dest = sqlite3.connect(str(dest_path))
        try:
            self._run(lambda c: c.backup(dest))
        finally:
            dest.close()
        return {"success": True, "id": bid, "path": str(dest_path), "size_bytes": dest_path.stat().st_size}

    def list_backups(self) -> list[dict[str, Any]]:
        d = self.backup_dir()
        if not d.is_dir():
            return []
        out = []
        for f in sorted(d.glob("*.sqlite3"), reverse=True):
            st = f.stat()
            out.append({"id": f.stem, "size_bytes": st.st_size,
                        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(st.st_mtime))})
        return out

    def _backup_path(self, bid: str) -> Path:
        if not bid or "/" in bid or "\\" in bid or bid.startswith("."):
            raise StateError(f"invalid backup id '{bid}' (use an id from State.list_backups())")
        p = self.backup_dir() / f"{bid}.sqlite3"
        if not p.is_file():
            raise StateError(f"no backup '{bid}' in {self.backup_dir()} (see State.list_backups())")
        return p

    def validate_backup(self, bid: str) -> dict[str, Any]:
        try:
            p = self._backup_path(bid)
            self._check_header(p)
            c = sqlite3.connect(f"file:{p}?mode=ro", uri=True)
            try:
                res = [r[0] for r in c.execute("PRAGMA integrity_check").fetchall()]
                c.execute("SELECT COUNT(*) FROM kv").fetchone()
            finally:
                c.close()
        except (StateError, sqlite3.Error) as e:
            return {"valid": False, "error": str(e)}
        if res != ["ok"]:
            return {"valid": False, "error": "; ".join(map(str, res))}
        return {"valid": True}

    def restore_backup(self, bid: str) -> dict[str, Any]:
        """Replace the live database with the backup's contents (one backup-API copy)."""
        check = self.validate_backup(bid)
        if not check["valid"]:
            raise StateError(f"backup '{bid}' is not valid: {check['error']}")
        src = sqlite3.connect(str(self._backup_path(bid)))
        try:
            self._run(lambda c: src.backup(c))
        finally:
            src.close()
        self.migrate(LATEST)
        return {"success": True}

    def delete_backup(self, bid: str) -> None:
        self._backup_path(bid).unlink()

    def close(self) -> None:
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._conn.close()


__all__ = ["SqliteBackend", "MIGRATIONS"]
