"""State: scoped persistent key/value storage (lua-api.md §6) with memory, SQLite and PostgreSQL backends.

`build_state(config, services)` is the factory the composition root calls; the result is
`services.state`, a `StateStore` (save/load/delete/exists/list_keys/clear).
"""

from __future__ import annotations

import logging
from typing import Any

from llmspell.settings import settings_of
from llmspell.state.backend import Backend, StateError
from llmspell.state.memory import MemoryBackend
from llmspell.state.settings import StateSettings
from llmspell.state.store import RESERVED_PREFIX, StateStore, StateValueError

log = logging.getLogger("llmspell.state")

__all__ = ["Backend", "MemoryBackend", "RESERVED_PREFIX", "StateError", "StateSettings", "StateStore",
           "StateValueError", "build_state", "open_backend"]


def open_backend(settings: StateSettings) -> Backend:
    """Open the backend the settings name; raises StateError with the reason and the fix."""
    if settings.backend == "memory":
        return MemoryBackend()
    if settings.backend == "sqlite":
        from llmspell.state.sqlite import SqliteBackend

        assert settings.path is not None
        return SqliteBackend(settings.path, busy_timeout_ms=settings.busy_timeout_ms)
    if settings.backend == "postgres":
        if not settings.url:
            raise StateError("[state] backend = \"postgres\" needs a DSN: set [state] url or name an env "
                             "variable holding it with [state] connection_string_env")
        from llmspell.state.postgres import PostgresBackend

        return PostgresBackend(settings.url)
    raise StateError(f"unknown state backend '{settings.backend}' (use sqlite, memory or postgres)")


def build_state(config: Any, services: Any = None) -> StateStore:
    """The `services.state` factory: opens the configured backend, warning (not failing) when it cannot."""
    settings = settings_of(config).state
    store = StateStore(lambda: open_backend(settings), max_value_bytes=settings.max_value_bytes,
                       max_key_bytes=settings.max_key_bytes, backup_keep=settings.backup_keep, services=services)
    store.open()
    if store.open_error:
        log.warning("state backend unavailable (State calls will raise): %s", store.open_error)
    return store
