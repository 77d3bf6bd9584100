"""Schema versions of the state database, shared by the SQLite and PostgreSQL backends."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    """One schema step: `version` is reached by running `sqlite` (or `postgres`) statements."""

    version: int
    description: str
    sqlite: tuple[str, ...]
    postgres: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1, "key/value table",
        ("CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID",),
        ('CREATE TABLE IF NOT EXISTS llmspell_kv (key TEXT COLLATE "C" PRIMARY KEY, value BYTEA NOT NULL)',),
    ),
    Migration(
        2, "modification time per key",
        ("ALTER TABLE kv ADD COLUMN updated_at REAL NOT NULL DEFAULT 0",),
        ("ALTER TABLE llmspell_kv ADD COLUMN IF NOT EXISTS updated_at DOUBLE PRECISION NOT NULL DEFAULT 0",),
    ),
)

LATEST = MIGRATIONS[-1].version


def pending(current: int, target: int = LATEST) -> list[Migration]:
    """The migrations that take a database from `current` to `target`, in order."""
    return [m for m in MIGRATIONS if current < m.version <= target]
