"""The PostgreSQL backend (psycopg 3): state shared by many kernels (`[state] backend = "postgres"`)."""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

from llmspell.state.backend import StateError, prefix_end
from llmspell.state.migrations import LATEST, pending


class PostgresBackend:
    """Key/value rows in `llmspell_kv`; one autocommit connection under a lock, reconnecting once on loss."""

    name = "postgres"
    path: str | None = None

    def __init__(self, dsn: str, *, migrate: bool = True) -> None:
        try:
            import psycopg
        except ImportError:
            raise StateError("the postgres state backend needs psycopg 3: pip install 'llmspell[postgres]'") from None
        self._psycopg = psycopg
        self._dsn = dsn
        self._lock = threading.RLock()
        self._conn = self._connect()
        with self._lock:
            self._conn.execute("CREATE TABLE IF NOT EXISTS llmspell_schema (version INTEGER PRIMARY KEY, "
                               "description TEXT NOT NULL, applied_at TEXT NOT NULL)")
        if migrate:
            self.migrate(LATEST)

    def _connect(self) -> Any:
        try:
            return self._psycopg.connect(self._dsn, autocommit=True, connect_timeout=10)
        except self._psycopg.Error as e:
            raise StateError(f"cannot connect to PostgreSQL for state ({str(e).strip()}); check [state] url "
                             "or the variable named by [state] connection_string_env") from None

    def _run(self, fn: Any) -> Any:
        with self._lock:
            for attempt in (0, 1):
                try:
                    return fn(self._conn)
                except self._psycopg.OperationalError as e:
                    if attempt == 0 and self._conn.closed:
                        self._conn = self._connect()
                        continue
                    raise StateError(f"PostgreSQL state backend: {str(e).strip()}") from None
                except self._psycopg.Error as e:
                    raise StateError(f"PostgreSQL state backend: {str(e).strip()}") from None
        raise AssertionError("unreachable")

    def schema_version(self) -> int:
        row = self._run(lambda c: c.execute("SELECT MAX(version) FROM llmspell_schema").fetchone())
        return int(row[0] or 0)

    def schema_versions(self) -> list[dict[str, Any]]:
        rows = self._run(lambda c: c.execute(
            "SELECT version, description, applied_at FROM llmspell_schema ORDER BY version").fetchall())
        return [{"version": v, "description": d, "applied_at": a} for v, d, a in rows]

    def migrate(self, target: int) -> tuple[int, int]:
        if target > LATEST or target < 1:
            raise StateError(f"unknown schema version {target} (latest is {LATEST})")

        def tx(c: Any) -> tuple[int, int]:
            with c.transaction():
                c.execute("SELECT pg_advisory_xact_lock(74736501)")
                row = c.execute("SELECT MAX(version) FROM llmspell_schema").fetchone()
                current = int(row[0] or 0)
                if target < current:
                    raise StateError(f"cannot migrate down from schema version {current} to {target}")
                for m in pending(current, target):
                    for stmt in m.postgres:
                        c.execute(stmt)
                    c.execute("INSERT INTO llmspell_schema VALUES (%s, %s, %s)",
                              (m.version, m.description, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())))
                return current, max(current, target)

        return self._run(tx)

    def get(self, key: str) -> bytes | None:
        row = self._run(lambda c: c.execute("SELECT value FROM llmspell_kv WHERE key = %s", (key,)).fetchone())
        return None if row is None else bytes(row[0])

    def put(self, key: str, value: bytes) -> None:
        self._run(lambda c: c.execute(
            "INSERT INTO llmspell_kv (key, value, updated_at) VALUES (%s, %s, %s) ON CONFLICT (key) "
            "DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at", (key, value, time.time())))

    def put_many(self, items: list[tuple[str, bytes]], delete: list[str] | None = None) -> None:
        now = time.time()

        def tx(c: Any) -> None:
            with c.transaction():
                cur = c.cursor()
                if delete:
                    cur.executemany("DELETE FROM llmspell_kv WHERE key = %s", [(k,) for k in delete])
                if items:
                    cur.executemany(
                        "INSERT INTO llmspell_kv (key, value, updated_at) VALUES (%s, %s, %s) ON CONFLICT (key) "
                        "DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at",
                        [(k, v, now) for k, v in items])

        self._run(tx)

    def delete(self, key: str) -> bool:
        return bool(self._run(lambda c: c.execute("DELETE FROM llmspell_kv WHERE key = %s", (key,)).rowcount))

    def exists(self, key: str) -> bool:
        return self._run(lambda c: c.execute("SELECT 1 FROM llmspell_kv WHERE key = %s", (key,)).fetchone()) is not None

    def keys(self, prefix: str) -> list[str]:
        rows = self._run(lambda c: c.execute(
            "SELECT key FROM llmspell_kv WHERE key >= %s AND key < %s ORDER BY key",
            (prefix, prefix_end(prefix))).fetchall())
        return [r[0] for r in rows]

    def items(self, prefix: str) -> list[tuple[str, bytes]]:
        rows = self._run(lambda c: c.execute(
            "SELECT key, value FROM llmspell_kv WHERE key >= %s AND key < %s ORDER BY key",
            (prefix, prefix_end(prefix))).fetchall())
        return [(k, bytes(v)) for k, v in rows]

    def clear(self, prefix: str) -> int:
        return int(self._run(lambda c: c.execute(
            "DELETE FROM llmspell_kv WHERE key >= %s AND key < %s", (prefix, prefix_end(prefix))).rowcount))

    def usage(self) -> dict[str, Any]:
        n, total = self._run(lambda c: c.execute(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(key) + LENGTH(value)), 0) FROM llmspell_kv").fetchone())
        return {"keys": int(n), "total_bytes": int(total), "backend": self.name}

    def close(self) -> None:
        with self._lock, contextlib.suppress(Exception):
            self._conn.close()
