"""`[sessions]` settings (§20.5) from either layout, with LLMSPELL_SESSIONS_ENABLED."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmspell.state.settings import as_bool, env_of, section_value

_NAMES = ("sessions", "runtime.sessions")


@dataclass
class SessionSettings:
    """Effective session and artifact limits."""

    enabled: bool = True
    max_sessions: int = 1000
    max_artifacts_per_session: int = 1000
    artifact_compression_threshold: int = 10240
    max_artifact_bytes: int = 100 * 1024 * 1024
    session_timeout_seconds: float = 3600.0
    storage_backend: str | None = None
    max_timeline_entries: int = 10_000

    @classmethod
    def from_config(cls, config: Any) -> SessionSettings:
        env = env_of(config)
        enabled = as_bool(section_value(config, _NAMES, ("enabled",)), True)
        if env.get("LLMSPELL_SESSIONS_ENABLED"):
            enabled = as_bool(env["LLMSPELL_SESSIONS_ENABLED"], enabled)
        timeout = section_value(config, _NAMES, ("session_timeout_seconds",))
        if timeout is None:
            minutes = section_value(config, _NAMES, ("session_timeout_minutes",))
            timeout = float(minutes) * 60.0 if minutes is not None else 3600.0
        backend = section_value(config, _NAMES, ("storage_backend",))
        return cls(
            enabled=enabled,
            max_sessions=int(section_value(config, _NAMES, ("max_sessions",), 1000)),
            max_artifacts_per_session=int(section_value(config, _NAMES, ("max_artifacts_per_session",), 1000)),
            artifact_compression_threshold=int(section_value(config, _NAMES, ("artifact_compression_threshold",),
                                                             10240)),
            max_artifact_bytes=int(section_value(config, _NAMES, ("max_artifact_bytes", "max_artifact_size_bytes"),
                                                 100 * 1024 * 1024)),
            session_timeout_seconds=float(timeout),
            storage_backend=str(backend).lower() if backend else None,
        )
