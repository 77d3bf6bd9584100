"""The `[state]` settings (§20.4, §21) read from the config, with both layouts and the env overrides."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmspell.config import state_db_file


def section_value(config: Any, names: tuple[str, ...], keys: tuple[str, ...], default: Any = None) -> Any:
    """The first key found; the nested layout (`names[1:]`) wins over the canonical one (`names[0]`)."""
    for section in reversed(names):
        sec = config.get(section) if config is not None else None
        if isinstance(sec, dict):
            for k in keys:
                if k in sec and sec[k] is not None:
                    return sec[k]
    return default


def env_of(config: Any) -> dict[str, str]:
    env = getattr(config, "env", None)
    return dict(env) if env is not None else dict(os.environ)


def as_bool(v: Any, default: bool) -> bool:
    if v is None:
        return default
    if isinstance(v, str):
        return v.strip().lower() in ("1", "true", "yes", "on")
    return bool(v)


@dataclass
class StateSettings:
    """Effective state configuration."""

    backend: str = "sqlite"
    path: Path | None = None
    url: str | None = None
    max_value_bytes: int = 10 * 1024 * 1024
    max_key_bytes: int = 4096
    backup_keep: int = 5
    busy_timeout_ms: int = 10_000

    @classmethod
    def from_config(cls, config: Any) -> StateSettings:
        names = ("state", "runtime.state_persistence")
        env = env_of(config)
        enabled = as_bool(section_value(config, names, ("enabled",)), True)
        persist = as_bool(section_value(config, names, ("persistence_enabled",)), True)
        backend = str(section_value(config, names, ("backend", "backend_type", "storage_backend"), "sqlite"))
        backend = env.get("LLMSPELL_STATE_BACKEND") or backend
        backend = backend.strip().lower()
        if backend == "postgresql":
            backend = "postgres"
        if not enabled or not persist:
            backend = "memory"
        raw_path = env.get("LLMSPELL_STATE_PATH") or section_value(
            config, names, ("path", "database_path", "persistence_path", "schema_directory"))
        path = state_db_file(raw_path, env)  # the rule RAG uses too (config.state_database_path)
        url = section_value(config, names, ("url",))
        url_env = section_value(config, names, ("connection_string_env",))
        if url_env and env.get(str(url_env)):
            url = env[str(url_env)]
        return cls(
            backend=backend, path=path, url=str(url) if url else None,
            max_value_bytes=int(section_value(config, names, ("max_value_bytes", "max_state_size_bytes"),
                                              10 * 1024 * 1024)),
            max_key_bytes=int(section_value(config, names, ("max_key_bytes",), 4096)),
            backup_keep=int(section_value(config, names, ("backup_keep",), 5)),
            busy_timeout_ms=int(section_value(config, names, ("busy_timeout_ms",), 10_000)),
        )
