"""Sessions: lifecycle, snapshots, expiry, policies, artifacts and replay (lua-api.md §8, §9, §18).

`build_sessions(config, services)` is the factory the composition root calls (`services.sessions`);
`llmspell.sessions.artifacts:build_artifacts` builds `services.artifacts` on top of it. Both are
None when `[sessions] enabled = false`.
"""

from __future__ import annotations

from typing import Any

from llmspell.sessions.manager import SessionManager
from llmspell.sessions.model import SessionError, SessionRecord, check_id, valid_id
from llmspell.sessions.policies import SessionPolicy
from llmspell.sessions.settings import SessionSettings
from llmspell.settings import settings_of

__all__ = ["SessionError", "SessionManager", "SessionPolicy", "SessionRecord", "SessionSettings", "build_sessions",
           "check_id", "valid_id"]


def build_sessions(config: Any, services: Any) -> SessionManager | None:
    """Sessions stored in the state backend (or in memory with `storage_backend = "memory"`)."""
    settings = settings_of(config).sessions
    if not settings.enabled:
        return None
    state = getattr(services, "state", None)
    if settings.storage_backend == "memory" or state is None:
        from llmspell.state.memory import MemoryBackend

        mem = MemoryBackend()
        return SessionManager(settings, lambda: mem, services)
    return SessionManager(settings, lambda: state.backend, services)
