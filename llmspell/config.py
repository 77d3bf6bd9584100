"""Configuration: TOML discovery, both layouts, LLMSPELL_* overrides, validation (lua-api.md §20-21).

`load_config(path, env, overrides)` returns an `LLMConfig`: the effective configuration (file, then
environment, then command-line overrides) normalized to the canonical (flat) layout with a default
for every key the spec lists, plus typed accessors, and `.settings`, the frozen per-service settings
(`llmspell.settings`) services use. This module is the one reader of `os.environ`. Problems that
stop start-up raise `ConfigError` (exit 2); unknown keys become one warning line in `.warnings`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from llmspell.settings import (
    LogSettings,
    Settings,
    TrafficSettings,
    config_dir,
    data_dir,
    default_state_db,
    default_tool_roots,
    is_under,
    state_db_file,
    temp_dir,
    trust_store_file,
    written_by_key,
)

__all__ = ["ConfigError", "LLMConfig", "Overrides", "Settings", "discover_config", "environment", "load_config",
           "log_settings", "normalize", "state_db_file"]

#: Keys whose string values are secrets (§13), besides names containing these words.
_SECRET_WORDS = ("token", "secret", "password")
_SECRET_NAMES = frozenset({"api_key", "authorization", "x-api-key", "x_api_key"})
MASK = "***"

TRAFFIC_MODES = ("live", "record", "replay", "fault")
BUILTIN_PROVIDER_TYPES = ("openai", "anthropic", "ollama")

#: Built-in providers and OpenAI-compatible presets: name -> (type, base URL, standard key variable).
BUILTIN_PROVIDERS: dict[str, tuple[str, str, str | None]] = {
    "openai": ("openai", "https://api.openai.com/v1", "OPENAI_API_KEY"),
    "anthropic": ("anthropic", "https://api.anthropic.com", "ANTHROPIC_API_KEY"),
    "ollama": ("ollama", "http://localhost:11434", None),
    "groq": ("openai", "https://api.groq.com/openai/v1", "GROQ_API_KEY"),
    "mistral": ("openai", "https://api.mistral.ai/v1", "MISTRAL_API_KEY"),
    "deepseek": ("openai", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY"),
    "openrouter": ("openai", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"),
    "together": ("openai", "https://api.together.xyz/v1", "TOGETHER_API_KEY"),
    "gemini": ("openai", "https://generativelanguage.googleapis.com/v1beta/openai", "GEMINI_API_KEY"),
}

#: Standard base-URL variables (§21): they override the file and lose to LLMSPELL_PROVIDER_<P>_BASE_URL.
STANDARD_BASE_URL_ENV = {"openai": "OPENAI_BASE_URL", "anthropic": "ANTHROPIC_BASE_URL", "ollama": "OLLAMA_HOST"}

#: LLMSPELL_PROVIDER_<NAME>_<SUFFIX> -> provider key (longest suffixes first).
_PROVIDER_ENV_SUFFIXES: tuple[tuple[str, str], ...] = (
    ("_FORCE_MODEL", "force_model"), ("_MAX_RETRIES", "max_retries"), ("_BASE_URL", "base_url"),
    ("_API_KEY", "api_key"), ("_TIMEOUT", "timeout_seconds"), ("_MODEL", "default_model"), ("_TYPE", "provider_type"),
)


class ConfigError(Exception):
    """A config problem that stops start-up (exit 2): names the file, the key and the fix."""


# --------------------------------------------------------------------------- schema
@dataclass(frozen=True, slots=True)
class _Key:
    """One known key: its type, default, aliases and allowed values."""

    type: str  # bool | int | number | str | strlist | table | path | pathlist | any
    default: Any = None
    aliases: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()
    value_aliases: tuple[tuple[str, str], ...] = ()
    min: float | None = None


_Schema = dict[str, "_Key | _Schema"]

_PROVIDER: _Schema = {
    "provider_type": _Key("str", None, ("type",), ("openai", "anthropic", "ollama"),
                          (("openai_compatible", "openai"), ("openai-compatible", "openai"))),
    "base_url": _Key("str", None, ("api_base", "endpoint")),
    "base_url_env": _Key("str", None, ("api_base_env",)),
    "api_key_env": _Key("str", None),
    "api_key": _Key("str", None),
    "api_key_required": _Key("bool", None),
    "default_model": _Key("str", None, ("model",)),
    "timeout_seconds": _Key("number", 120, ("timeout",), min=0),
    "max_retries": _Key("int", 2, ("retry_attempts",), min=0),
    "max_tokens": _Key("int", None, min=1),
    "temperature": _Key("number", None, min=0),
    "max_concurrent_requests": _Key("int", 8, min=1),
    "max_response_bytes": _Key("int", 16777216, min=1),
    "anthropic_version": _Key("str", "2023-06-01"),
    "headers": _Key("table", {}),
    "force_model": _Key("str", None),
    "api": _Key("str", None, choices=("chat", "completions")),
    "model_aliases": _Key("table", {}),
    "enabled": _Key("bool", True),
    "name": _Key("str", None),
    "rate_limit": _Key("table", None),
    "retry": _Key("any", None),
}

_SCHEMA: _Schema = {
    "providers": {
        "default_provider": _Key("str", "openai"),
        "default_model": _Key("str", None),
    },
    "runtime": {
        "default_engine": _Key("str", "lua", choices=("lua",)),
        "script_timeout_seconds": _Key("number", 0, min=0),
        "interrupt_grace_seconds": _Key("number", 5, min=0),
        "allow_binary_chunks": _Key("bool", False),
        "max_concurrent_scripts": _Key("int", 1, min=1),
        "enable_streaming": _Key("bool", True),
        "security": {
            "allow_file_access": _Key("bool", True),
            "allow_network_access": _Key("bool", True),
            "allow_process_spawn": _Key("bool", False),
            "max_execution_time_ms": _Key("int", 0, min=0),
            "max_memory_bytes": _Key("int", 0, min=0),
        },
    },
    "engines": {
        "lua": {
            "max_memory_bytes": _Key("int", 0, min=0),
            "stdlib": _Key("any", None),
            "security_level": _Key("any", None),
            "enable_debug": _Key("bool", None),
            "timeout_ms": _Key("int", None, min=0),
        },
    },
    "kernel": {
        "ip": _Key("str", "127.0.0.1"),
        "idle_timeout_seconds": _Key("number", 0, min=0),
        "max_message_bytes": _Key("int", 64 * 1024 * 1024, min=1),
        "interrupt_mode": _Key("str", "signal", choices=("signal", "message")),
        "debug": {"enabled": _Key("bool", True)},
    },
    "debug": {
        "enabled": _Key("bool", True),
        "level": _Key("str", "info", choices=("trace", "debug", "info", "warn", "error"),
                      value_aliases=(("warning", "warn"),)),
        "module_filters": _Key("strlist", []),
        "default_filter_enabled": _Key("bool", True),
        "output": _Key("path", "stderr"),
    },
    "state": {
        "enabled": _Key("bool", True),
        "backend": _Key("str", "sqlite", ("backend_type", "storage_backend"), ("sqlite", "memory", "postgres"),
                        (("postgresql", "postgres"),)),
        "persistence_enabled": _Key("bool", True),
        "path": _Key("path", None, ("database_path", "persistence_path", "schema_directory")),
        "url": _Key("str", None),
        "connection_string_env": _Key("str", None),
        "max_value_bytes": _Key("int", 10485760, ("max_state_size_bytes",), min=1),
        "backup_keep": _Key("int", 5, min=0),
        "backup_enabled": _Key("bool", False),
        "migration_enabled": _Key("bool", False),
        "backup_on_migration": _Key("bool", False),
    },
    "sessions": {
        "enabled": _Key("bool", True),
        "max_sessions": _Key("int", 1000, min=1),
        "max_artifacts_per_session": _Key("int", 1000, min=1),
        "artifact_compression_threshold": _Key("int", 10240, min=0),
        "session_timeout_seconds": _Key("number", 3600, min=0),
        "storage_backend": _Key("str", None, choices=("memory", "sqlite", "postgres", "state"),
                                value_aliases=(("postgresql", "postgres"),)),
        "auto_save": _Key("bool", None),
        "artifact_storage": _Key("any", None),
        "artifact_path": _Key("path", None),
    },
    "hooks": {
        "enabled": _Key("bool", True),
        "timeout_ms": _Key("int", 5000, min=0),
        "rate_limit_per_minute": _Key("int", 0, min=0),
        "circuit_breaker_threshold": _Key("int", 0, min=0),
        "max_hooks": _Key("int", 0, min=0),
    },
    "events": {
        "enabled": _Key("bool", True),
        "buffer_size": _Key("int", 1000, min=1),
        "emit_timing_events": _Key("bool", True),
        "emit_state_events": _Key("bool", True),
        "emit_debug_events": _Key("bool", True),
        "max_events_per_second": _Key("int", 0, min=0),
        "filtering": {"include_types": _Key("strlist", []), "exclude_types": _Key("strlist", [])},
        "export": {"stdout": _Key("bool", False), "file": _Key("path", None), "pretty_json": _Key("bool", False)},
    },
    "workflows": {
        "enabled": _Key("bool", True),
        "step_timeout_ms": _Key("int", 120000, min=0),
        "timeout_ms": _Key("int", 0, min=0),
        "max_concurrent": _Key("int", 8, min=1),
        "retry_attempts": _Key("int", 3, min=0),
        "error_strategy": _Key("str", "fail_fast", ("error_handling",), ("fail_fast", "continue", "retry"),
                               (("graceful", "continue"),)),
        "max_loop_iterations": _Key("int", 10000, min=1),
        "state_retention": _Key("str", "session", (), ("session", "persist")),
        "state_max_executions": _Key("int", 32, min=1),
    },
    "tools": {
        "enabled": _Key("bool", True),
        "rate_limit_per_minute": _Key("int", 0, min=0),
    },
    "rag": {
        "enabled": _Key("bool", False),
        "default_collection": _Key("str", "default", ("collection",)),
        "chunk_size": _Key("int", 256, min=1),
        "chunk_overlap": _Key("int", 32, min=0),
        "search_limit": _Key("int", 10, min=1),
        "search_threshold": _Key("number", None),
        "persistence_path": _Key("path", None),
        "max_vectors": _Key("int", 0, min=0),
        "multi_tenant": _Key("bool", False),
        "embedding": {
            "provider": _Key("str", "local"),
            "model": _Key("str", "all-MiniLM-L6-v2"),
            "dimensions": _Key("int", 384, min=1),
            "batch_size": _Key("int", 32, min=1),
        },
        "vector_storage": {
            "backend": _Key("str", "auto", choices=("exact", "hnsw", "auto")),
            "ann_threshold": _Key("int", 20000, min=0),
            "persistence_path": _Key("path", None),
            "hnsw": {"m": _Key("int", 16, min=2), "ef_construction": _Key("int", 200, min=1),
                     "ef_search": _Key("int", 64, min=1)},
        },
        "chunking": {
            "strategy": _Key("str", "sliding_window", choices=("sliding_window", "tokens", "sentences", "sentence",
                                                              "semantic")),
            "chunk_size": _Key("int", 256, min=1),
            "overlap": _Key("int", 32, min=0),
        },
    },
}

#: Per-tool keys every `[tools.<name>]` section accepts; other keys are the tool's own (§19).
_TOOL_COMMON: _Schema = {"enabled": _Key("bool", True), "rate_limit": _Key("int", None, min=0)}
_TOOL_PATH_KEYS = frozenset({"allowed_paths"})

#: Keys read from nowhere, with a hint for the warning line.
_HINTS = {
    "rag.provider": "use [rag.embedding]", "rag.embedding_model": "use [rag.embedding]",
    "rag.vector_dimensions": "use [rag.embedding]",
}

_TYPE_WORDS = {
    "bool": "a boolean (true or false)", "int": "an integer", "number": "a number", "str": "a string",
    "strlist": "an array of strings", "table": "a table", "path": "a path string", "pathlist": "an array of paths",
}


# --------------------------------------------------------------------------- the config object
@dataclass
class LLMConfig:
    """The effective configuration: file + environment + defaults, canonical layout."""

    data: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    warnings: list[str] = field(default_factory=list)
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    traffic: str = "live"
    cassette_dir: Path | None = None
    #: How the file was found: "explicit" (-c / LLMSPELL_CONFIG), "cwd", "home", "xdg"; "" for defaults.
    origin: str = ""
    #: The fault schedule of `fault` traffic (LLMSPELL_FAULTS, comma-separated).
    faults: tuple[str, ...] = ()
    #: The log spec (`--trace`, LLMSPELL_LOG); None: the environment's or "warn".
    log_spec: str | None = None
    #: Path keys the file itself set (dotted -> value as normalized), before environment and command line.
    claimed_paths: Mapping[str, str] = field(default_factory=dict)
    _settings: Settings | None = field(default=None, repr=False, compare=False)

    @property
    def settings(self) -> Settings:
        """The typed, frozen settings of every service, parsed once from `data` and `env` (rebuilt after `set`)."""
        if self._settings is None:
            self._settings = Settings.build(
                self.data, self.env, traffic=TrafficSettings(self.traffic, self.cassette_dir, self.faults),
                log=LogSettings.build(self.env, self.log_spec))
        return self._settings

    def get(self, dotted: str | None = None, default: Any = None) -> Any:
        """The value at a dotted path, or `default` when any part is missing."""
        if not dotted:
            return self.data
        node: Any = self.data
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return default if node is None else node

    def section(self, name: str) -> dict[str, Any]:
        """The table at a dotted path, or {} when it is missing or not a table."""
        value = self.get(name)
        return value if isinstance(value, dict) else {}

    def set(self, dotted: str, value: Any) -> None:
        """Set a value (CLI flags apply their overrides this way)."""
        node = self.data
        parts = dotted.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
        self._settings = None

    # ------------------------------------------------------------ typed accessors
    def enabled(self, section: str) -> bool:
        """`<section>.enabled` as a bool (rag, sessions, events, hooks, tools, state, debug...)."""
        return bool(self.get(f"{section}.enabled", False))

    def provider_names(self) -> list[str]:
        """Sorted names of the providers configured in the file or the environment."""
        return sorted(k for k, v in self.section("providers").items() if isinstance(v, dict))

    def provider(self, name: str) -> dict[str, Any] | None:
        """The normalized provider table (§20.2): configured, or a built-in/preset; None when unknown."""
        entry = self.section("providers").get(name)
        if isinstance(entry, dict):
            return entry
        if name in BUILTIN_PROVIDERS:
            return _finalize_provider(_provider_defaults(name, {}, self.env))
        return None

    def tool(self, name: str) -> Mapping[str, Any]:
        """The `[tools.<name>]` table (`settings.tools.tool`: `-` and `_` equal; read-only); empty when absent."""
        return self.settings.tools.tool(name)

    def allowed_paths(self) -> list[Path]:
        """The file-tool sandbox roots: `[tools.file_operations] allowed_paths` or CWD + temp dirs."""
        paths = self.settings.tools.allowed_paths
        return [Path(p) for p in (paths or default_tool_roots(str(Path.cwd())))]

    def file_access_allowed(self, path: str | os.PathLike[str]) -> bool:
        """Whether `path` (absolute against the CWD, resolved) lies under an allowed root (§19.1)."""
        s = self.settings
        if not s.security.allow_file_access or not s.tools.enabled:
            return False
        target = os.path.realpath(os.path.abspath(os.fspath(path)))
        return any(is_under(target, os.path.realpath(os.path.abspath(root))) for root in self.allowed_paths())

    def state_database_path(self) -> Path:
        """The SQLite file of the state store (the one path rule State and RAG share: `settings.state.path`)."""
        return self.settings.paths.state_db

    def masked(self) -> dict[str, Any]:
        """A deep copy of the data with secret values replaced by "***" (Config global, `config show`)."""
        return mask_secrets(self.data)


def is_secret_key(key: str) -> bool:
    """Whether a key names a secret (§13: `api_key`, `*token*`, `*secret*`, `*password*`)."""
    k = key.lower()
    return k in _SECRET_NAMES or any(w in k for w in _SECRET_WORDS)


_URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")


def mask_secrets(value: Any, key: str = "") -> Any:
    """Copy `value`, replacing secret strings with "***" (numbers such as max_tokens stay)."""
    if isinstance(value, dict):
        return {k: mask_secrets(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_secrets(v, key) for v in value]
    if isinstance(value, str):
        if key and is_secret_key(key) and value:
            return MASK
        if "://" in value and "@" in value:
            return _URL_PASSWORD.sub(r"\1***@", value)
    return value


# --------------------------------------------------------------------------- trust of working-directory files
def digest(path: Path) -> str:
    """SHA-256 of a config file's bytes (hex): what `llmspell config trust` records."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def trusted_hashes(env: Mapping[str, str]) -> dict[str, str]:
    """The trust store (`settings.trust_store_file`): resolved file path -> trusted SHA-256; {} when unreadable."""
    try:
        data = json.loads(trust_store_file(env).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    trusted = data.get("trusted") if isinstance(data, dict) else None
    return {str(k): str(v) for k, v in trusted.items()} if isinstance(trusted, dict) else {}


def is_trusted(path: Path, env: Mapping[str, str]) -> bool:
    """Whether this exact file content was trusted by `llmspell config trust`."""
    try:
        return trusted_hashes(env).get(str(path.resolve())) == digest(path)
    except OSError:
        return False


# --------------------------------------------------------------------------- loading
def discover_config(env: Mapping[str, str] | None = None, cwd: Path | None = None) -> tuple[Path | None, str]:
    """The config file by the §20.1 discovery order (steps 3-5), and how it was found."""
    env = os.environ if env is None else env
    cwd = cwd or Path.cwd()
    for rel in ("llmspell.toml", ".llmspell.toml", "config/llmspell.toml", ".config/llmspell.toml"):
        p = cwd / rel
        if p.is_file():
            return p, "cwd"
    home = env.get("HOME") or os.path.expanduser("~")
    for rel in (".llmspell.toml", ".config/llmspell.toml"):
        p = Path(home) / rel
        if p.is_file():
            return p, "home"
    if env.get("XDG_CONFIG_HOME"):  # only when set: ~/.config/llmspell.toml above covers the default
        p = config_dir(env) / "config.toml"
        if p.is_file():
            return p, "xdg"
    return None, "defaults"


@dataclass(frozen=True)
class Overrides:
    """What the command line sets: applied by `load_config` over the file and the environment."""

    traffic: str | None = None
    cassette_dir: str | os.PathLike[str] | None = None
    rag_enabled: bool | None = None
    log: str | None = None
    #: Dotted keys set over everything (`{"rag.enabled": True}`).
    values: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    #: Dotted keys laid over the file before the environment applies (an app's own needs; env still wins).
    defaults: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def from_args(cls, args: Any, **more: Any) -> Overrides:
        """The global flags of a parsed command line (`--traffic`, `--rag`, `--trace`), plus `more`."""
        fields: dict[str, Any] = {"traffic": getattr(args, "traffic", None) or None,
                                  "rag_enabled": True if getattr(args, "rag", False) else None,
                                  "log": getattr(args, "trace", None) or None}
        fields.update({k: v for k, v in more.items() if v is not None})
        return cls(**fields)


def environment() -> dict[str, str]:
    """A snapshot of the process environment, for what is needed before a config file is chosen (the apps
    and cassettes folders); `load_config` takes its own snapshot as `.env`. Only config reads os.environ."""
    return dict(os.environ)


def log_settings(spec: str | None = None, env: Mapping[str, str] | None = None) -> LogSettings:
    """Logging settings before any config file is read: `spec` (`--trace`), else LLMSPELL_LOG; LLMSPELL_OTEL."""
    return LogSettings.build(os.environ if env is None else env, spec)


def load_config(path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None,
                overrides: Overrides | Mapping[str, Any] | None = None, *,
                refuse_untrusted: bool = True) -> LLMConfig:
    """Find, read, normalize and validate the configuration, file + environment + `overrides`, once.

    The process environment is read here (or `env` is used instead) and kept as `.env`; `.settings`
    holds the typed settings services use. Raises ConfigError (exit 2). `refuse_untrusted=False`
    (`config show` / `config validate`, which act on nothing) turns the untrusted working-directory
    refusals into warnings, so the file can be inspected before it is trusted.
    """
    env = dict(os.environ if env is None else env)
    if overrides is None:
        overrides = Overrides()
    elif not isinstance(overrides, Overrides):
        overrides = Overrides(values=MappingProxyType(dict(overrides)))
    chosen: Path | None = None
    how = "explicit"
    if path is not None:
        chosen = Path(path)
        _check_explicit(chosen, "-c/--config")
    elif env.get("LLMSPELL_CONFIG"):
        chosen = Path(env["LLMSPELL_CONFIG"])
        _check_explicit(chosen, "LLMSPELL_CONFIG")
    else:
        chosen, how = discover_config(env)
    raw: dict[str, Any] = {}
    if chosen is not None:
        raw = _read_toml(chosen)
    for dotted, value in overrides.defaults.items():
        raw = _deep_merge(raw, _nest(dotted, value))
    cfg = normalize(raw, path=chosen, env=env)
    cfg.origin = how if chosen is not None else ""
    _apply_overrides(cfg, overrides)
    try:
        cfg.settings  # noqa: B018 - parsed once, here, so a bad value fails at start-up
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{cfg.path or 'config'}: {e}") from None
    for vet in (_check_cwd_written_paths, _check_cwd_state_server):
        try:
            vet(cfg)
        except ConfigError as e:
            if refuse_untrusted:
                raise
            cfg.warnings.append(f"every command that runs code refuses this file until it is trusted: {e}")
    return cfg


def safe_write_roots(env: Mapping[str, str], cwd: Path | None = None) -> tuple[str, ...]:
    """Where an untrusted working-directory config may put files llmspell writes: the working directory,
    the temp directory ($TMPDIR, else /tmp) and llmspell's data directory (real paths)."""
    return tuple(dict.fromkeys(os.path.realpath(str(r)) for r in (cwd or Path.cwd(), temp_dir(), data_dir(env))))


def _key_label(dotted: str) -> str:
    """`events.export.file` -> `[events.export] file` (how the refusal messages name a key)."""
    table, _, leaf = dotted.rpartition(".")
    return f"[{table}] {leaf}"


def _kept_files(cfg: LLMConfig, written: Mapping[str, tuple[Path, ...]]) -> dict[str, str]:
    """llmspell's own files (real path -> what it is) that a text output must not be appended to."""
    s = cfg.settings
    kept = {os.path.realpath(p): "llmspell's RAG store" for p in written.get("rag.persistence_path", ())}
    kept.update({os.path.realpath(p): "llmspell's state database" for p in written.get("state.path", ())})
    kept[os.path.realpath(s.paths.repl_history)] = "llmspell's REPL history"
    kept[os.path.realpath(s.paths.trust_store)] = "llmspell's trust store"
    return kept


def _check_cwd_written_paths(cfg: LLMConfig) -> None:
    """An untrusted working-directory file may not point a file llmspell writes outside the working
    directory, the temp directory and the data directory, nor append its text outputs to llmspell's own
    files (issue 17's trust step, for written paths).

    Only keys the file itself set and that the environment or the command line did not replace are
    vetted; each written file (symlinks resolved, SQLite companions included) must lie under a safe root.
    """
    if cfg.origin != "cwd" or cfg.path is None or not cfg.claimed_paths:
        return
    written = written_by_key(cfg.settings)
    roots = safe_write_roots(cfg.env)
    kept = _kept_files(cfg, written)
    problems: list[str] = []
    for dotted, value in cfg.claimed_paths.items():
        if cfg.get(dotted) != value or dotted not in written:
            continue
        files = [(str(w), os.path.realpath(w)) for w in written[dotted]]
        outside = [(w, real) for w, real in files if not any(is_under(real, r) for r in roots)]
        if outside:
            w, real = outside[0]
            how = "" if w == value else f" (writes {w})"
            how += f" (resolves to {real})" if real != w else ""
            problems.append(f"{_key_label(dotted)} = {toml_literal(value)}{how}, outside")
        elif dotted in _TEXT_OUTPUTS and files[0][1] in kept:
            problems.append(f"{_key_label(dotted)} = {toml_literal(value)}, which is {kept[files[0][1]]}")
    if not problems or is_trusted(cfg.path, cfg.env):
        return
    p = cfg.path.resolve()
    raise ConfigError(
        f"{p} (found in the working directory, not trusted) points files llmspell writes where it may not: "
        f"{'; '.join(problems)}. Untrusted, it must keep them inside the working directory, the temp directory "
        f"({temp_dir()}) and llmspell's data directory ({data_dir(cfg.env)}), and off llmspell's own files; "
        f"refused — check that file, then run `llmspell config trust {p}` (or pass it with -c)")


def _state_server_is_local(url: str) -> bool:
    """Whether a PostgreSQL URL or key=value DSN names this machine (loopback, or a Unix socket)."""
    if "://" in url:
        try:
            parts = urlsplit(url)
            host = parts.hostname or ""
            query_host = parse_qs(parts.query).get("host", [""])[0]
        except ValueError:
            return False
        hosts = [h for h in (host, query_host) if h]
    else:
        hosts = [tok.split("=", 1)[1].strip("'\"") for tok in url.split() if tok.startswith(("host=", "hostaddr="))]
    return all(h.startswith("/") or h == "" or is_loopback(h) for h in hosts)


def _check_cwd_state_server(cfg: LLMConfig) -> None:
    """An untrusted working-directory file may not send State to a PostgreSQL server on another host.

    Its `[state] url` (or the variable its `connection_string_env` names) would copy every State value
    of the user's scripts to that server; loopback and Unix-socket servers are this machine's.
    """
    if cfg.origin != "cwd" or cfg.path is None:
        return
    state = cfg.settings.state
    if state.backend != "postgres" or not state.url or _state_server_is_local(state.url):
        return
    if is_trusted(cfg.path, cfg.env):
        return
    p = cfg.path.resolve()
    where = "[state] url" if cfg.get("state.url") else f"[state] connection_string_env ({cfg.get('state.connection_string_env')})"
    raise ConfigError(
        f"{p} (found in the working directory, not trusted) sends State to a PostgreSQL server on another host "
        f"through {where}; refused — check that file, then run `llmspell config trust {p}` (or pass it with -c)")


#: Keys whose file llmspell appends text lines to (never a database or another file llmspell keeps).
_TEXT_OUTPUTS = frozenset({"events.export.file", "debug.output"})


def _nest(dotted: str, value: Any) -> dict[str, Any]:
    out: Any = value
    for part in reversed(dotted.split(".")):
        out = {part: out}
    return dict(out)


def _apply_overrides(cfg: LLMConfig, o: Overrides) -> None:
    """Lay the command line over file and environment (it wins over both)."""
    if o.traffic is not None:
        mode = o.traffic.strip().lower()
        if mode not in TRAFFIC_MODES:
            raise ConfigError(f'--traffic "{o.traffic}" is not a traffic mode (use live, record, replay or fault)')
        cfg.traffic = mode
    if o.cassette_dir is not None:
        cfg.cassette_dir = Path(os.path.abspath(os.path.expanduser(os.fspath(o.cassette_dir))))
    if o.rag_enabled is not None:
        cfg.set("rag.enabled", bool(o.rag_enabled))
    for dotted, value in o.values.items():
        cfg.set(dotted, value)
    if o.log is not None:
        cfg.log_spec = o.log
    cfg._settings = None


def _check_explicit(p: Path, via: str) -> None:
    if p.is_dir():
        raise ConfigError(f"config file {p} is a directory (check {via}; point it at a .toml file)")
    if not p.is_file():
        raise ConfigError(f"config file {p} not found (check {via}, or run 'llmspell config init')")


def _read_toml(p: Path) -> dict[str, Any]:
    try:
        data = p.read_bytes()
    except OSError as e:
        raise ConfigError(f"config {p}: cannot read: {e.strerror} (check the file's permissions)") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise ConfigError(f"config {p}: not valid UTF-8 at line {line} (save the file as UTF-8)") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        msg = _toml_error_position(str(e), text)
        raise ConfigError(f"config {p}: invalid TOML: {msg} (fix the syntax; 'llmspell config init' writes a commented example)") from None


_TOML_POS = re.compile(r"^(?P<reason>.*?)\s*\(at line (?P<line>\d+), column (?P<col>\d+)\)$", re.S)


def _toml_error_position(msg: str, text: str) -> str:
    """tomllib's message rewritten as `<reason> at line L column C`."""
    m = _TOML_POS.match(msg)
    if m:
        return f"{m.group('reason')} at line {m.group('line')} column {m.group('col')}"
    if msg.endswith("(at end of document)"):
        lines = text.split("\n")
        return f"{msg[: -len('(at end of document)')].strip()} at line {len(lines)} column {len(lines[-1]) + 1} (end of file)"
    return msg


def normalize(raw: Mapping[str, Any], *, path: Path | None = None, env: Mapping[str, str] | None = None) -> LLMConfig:
    """Turn a parsed TOML document into the effective LLMConfig (both layouts, env, defaults)."""
    env = dict(os.environ if env is None else env)
    n = _Normalizer(path, env)
    data = n.run(dict(raw))
    cfg = LLMConfig(data=data, path=path, warnings=n.warnings, env=env, claimed_paths=n.claimed)
    _apply_traffic_env(cfg, env)
    return cfg


class _Normalizer:
    """One pass over a raw document: layouts merged, keys checked and converted, defaults filled."""

    def __init__(self, path: Path | None, env: Mapping[str, str]) -> None:
        self.path = path
        self.base = path.parent.resolve() if path is not None else Path.cwd()
        self.env = env
        self.unknown: list[str] = []
        self.warnings: list[str] = []
        self.notes: list[str] = []
        #: Path keys the document set (dotted -> normalized value): the working-directory check vets them.
        self.claimed: dict[str, str] = {}

    @property
    def where(self) -> str:
        return f"config {self.path}" if self.path is not None else "config (defaults)"

    def run(self, raw: dict[str, Any]) -> dict[str, Any]:
        raw = self._merge_layouts(raw)
        out: dict[str, Any] = {}
        for top in raw:
            if top not in _SCHEMA:
                self.unknown.append(top)
        for top, schema in _SCHEMA.items():
            value = raw.get(top, {})
            if not isinstance(value, dict):
                self._type_error(top, "table", value)
            assert isinstance(schema, dict)
            if top == "providers":
                out[top] = self._providers(value)
            elif top == "tools":
                out[top] = self._tools(value)
            else:
                out[top] = self._section(schema, value, top)
        self._apply_env(out)
        self._check_providers(out["providers"])
        self._check_state(out["state"])
        if self.unknown:
            keys = ", ".join(self.unknown)
            self.warnings.insert(0, f"{self.where}: ignored unknown keys: {keys}")
        self.warnings.extend(self.notes)
        return out

    # ------------------------------------------------------------ layouts
    def _merge_layouts(self, raw: dict[str, Any]) -> dict[str, Any]:
        raw = dict(raw)
        runtime = raw.get("runtime")
        if isinstance(runtime, dict):
            runtime = dict(runtime)
            for nested, canonical in (("state_persistence", "state"), ("sessions", "sessions"), ("debug", "debug")):
                if nested not in runtime:
                    continue
                value = runtime.pop(nested)
                if nested == "debug" and isinstance(value, bool):
                    value = {"enabled": value}
                if not isinstance(value, dict):
                    self._type_error(f"runtime.{nested}", "table", value)
                base = raw.get(canonical, {})
                if not isinstance(base, dict):
                    self._type_error(canonical, "table", base)
                schema = _SCHEMA[canonical]
                assert isinstance(schema, dict)
                raw[canonical] = _deep_merge(_dealias(schema, base), _dealias(schema, value))
            raw["runtime"] = runtime
        providers = raw.get("providers")
        if isinstance(providers, dict) and "providers" in providers:
            providers = dict(providers)
            nested_p = providers.pop("providers")
            if not isinstance(nested_p, dict):
                self._type_error("providers.providers", "table", nested_p)
            for name, entry in nested_p.items():
                base = providers.get(name, {})
                if isinstance(base, dict) and isinstance(entry, dict):
                    providers[name] = _deep_merge(_dealias(_PROVIDER, base), _dealias(_PROVIDER, entry))
                else:
                    providers[name] = entry
            raw["providers"] = providers
        return raw

    # ------------------------------------------------------------ generic sections
    def _section(self, schema: _Schema, raw: Mapping[str, Any], prefix: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        given = self._canonical_keys(schema, raw, prefix)
        for key, spec in schema.items():
            dotted = f"{prefix}.{key}"
            if isinstance(spec, dict):
                sub = given.get(key, {})
                if not isinstance(sub, dict):
                    self._type_error(dotted, "table", sub)
                out[key] = self._section(spec, sub, dotted)
                continue
            if key in given:
                out[key] = self._value(spec, given[key], dotted)
            else:
                out[key] = copy.deepcopy(spec.default)
        return out

    def _canonical_keys(self, schema: _Schema, raw: Mapping[str, Any], prefix: str) -> dict[str, Any]:
        """Map aliases and unit-suffixed keys onto schema keys; record unknown keys."""
        given: dict[str, Any] = {}
        alias_of: dict[str, str] = {}
        for key, spec in schema.items():
            if isinstance(spec, _Key):
                for a in spec.aliases:
                    alias_of[a] = key
        # canonical spellings first, aliases only fill gaps
        for key, value in raw.items():
            if key in schema:
                given[key] = value
        for key, value in raw.items():
            if key in schema:
                continue
            dotted = f"{prefix}.{key}"
            if key in alias_of:
                given.setdefault(alias_of[key], value)
                continue
            conv = _unit_conversion(key, schema)
            if conv is not None:
                target, factor = conv
                if target not in given:
                    given[target] = self._scaled(value, factor, dotted)
                continue
            if dotted in _HINTS:
                self.unknown.append(f"{dotted} ({_HINTS[dotted]})")
                continue
            if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
                hint = " (use Hook.register)" if prefix == "hooks" else ""
                self.unknown.append(f"{dotted}{hint}")
                continue
            self.unknown.append(dotted)
        return given

    def _scaled(self, value: Any, factor: float, dotted: str) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self._type_error(dotted, "number", value)
        scaled = value * factor
        return int(scaled) if float(scaled).is_integer() else scaled

    def _value(self, spec: _Key, value: Any, dotted: str) -> Any:
        t = spec.type
        if t == "any":
            return value
        if t == "bool":
            if not isinstance(value, bool):
                self._type_error(dotted, t, value, spec)
        elif t == "int":
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int):
                self._type_error(dotted, t, value, spec)
        elif t == "number":
            if isinstance(value, bool) or not isinstance(value, int | float):
                self._type_error(dotted, t, value, spec)
        elif t in ("str", "path"):
            if not isinstance(value, str):
                self._type_error(dotted, t, value, spec)
            if spec.value_aliases:
                value = dict(spec.value_aliases).get(value.lower(), value)
            if spec.choices:
                low = value.lower()
                if low not in spec.choices:
                    choices = ", ".join(f'"{c}"' for c in spec.choices)
                    raise ConfigError(
                        f'{self.where}: key {dotted} has the value "{value}", expected one of {choices} '
                        f'(fix: {dotted.rsplit(".", 1)[-1]} = "{spec.default or spec.choices[0]}")')
                value = low
            if t == "path":
                value = self._path(value)
                self.claimed[dotted] = value
        elif t in ("strlist", "pathlist"):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                self._type_error(dotted, t, value, spec)
            if t == "pathlist":
                value = [self._path(v) for v in value]
        elif t == "table":
            if not isinstance(value, dict):
                self._type_error(dotted, t, value, spec)
            return copy.deepcopy(value)
        if spec.min is not None and isinstance(value, int | float) and not isinstance(value, bool) and value < spec.min:
            raise ConfigError(f"{self.where}: key {dotted} must be >= {spec.min:g}, got {value} "
                              f"(fix: {dotted.rsplit('.', 1)[-1]} = {toml_literal(spec.default)})")
        return value

    def _path(self, value: str) -> str:
        """A path from the file, made absolute against the config file's directory."""
        if value in ("stderr", "stdout", "") or "://" in value:
            return value
        p = Path(os.path.expanduser(value))
        if not p.is_absolute():
            p = self.base / p
        return os.path.normpath(str(p))

    def _type_error(self, dotted: str, expected: str, value: Any, spec: _Key | None = None) -> None:
        word = _TYPE_WORDS.get(expected, expected)
        got = _toml_type(value)
        leaf = dotted.rsplit(".", 1)[-1]
        if spec is not None and spec.default is not None and spec.default != [] and spec.default != {}:
            fix = f"{leaf} = {toml_literal(spec.default)}"
        else:
            fix = {"bool": f"{leaf} = true", "int": f"{leaf} = 10", "number": f"{leaf} = 1.5",
                   "str": f'{leaf} = "..."', "path": f'{leaf} = "path/to/file"',
                   "strlist": f'{leaf} = ["..."]', "pathlist": f'{leaf} = ["path"]',
                   "table": f"[{dotted}]"}.get(expected, f"{leaf} = ...")
        raise ConfigError(f"{self.where}: key {dotted} must be {word}, got {got} {_short(value)} (fix: {fix})")

    # ------------------------------------------------------------ providers
    def _providers(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        top = {k: v for k, v in raw.items() if not isinstance(v, dict)}
        out = self._section(_SCHEMA["providers"], top, "providers")  # type: ignore[arg-type]
        for name, entry in raw.items():
            if not isinstance(entry, dict):
                continue
            if name == "providers":
                raise ConfigError(f"{self.where}: 'providers' is not allowed as a provider name "
                                  "(use [providers.<name>], e.g. [providers.openai])")
            out[name] = self._provider(name, entry)
        return out

    def _provider(self, name: str, entry: Mapping[str, Any]) -> dict[str, Any]:
        dotted = f"providers.{name}"
        given = self._canonical_keys(_PROVIDER, entry, dotted)
        values: dict[str, Any] = {}
        problems: list[str] = []
        for key, spec in _PROVIDER.items():
            assert isinstance(spec, _Key)
            if key in given:
                try:
                    values[key] = self._value(spec, given[key], f"{dotted}.{key}")
                except ConfigError as e:  # provider entries never fail loading (§20.1)
                    problems.append(str(e))
        if "api_key" in values and values["api_key"]:
            self.notes.append(f"{self.where}: providers.{name}.api_key is a plaintext key "
                              f"(prefer api_key_env or LLMSPELL_PROVIDER_{_env_name(name)}_API_KEY)")
        out = _provider_defaults(name, values, self.env)
        if problems:
            self.notes.extend(problems)
            out["config_error"] = "; ".join(problems)
        return out

    def _check_providers(self, providers: dict[str, Any]) -> None:
        for name, p in providers.items():
            if not isinstance(p, dict):
                continue
            env_var = p.get("base_url_env")
            if env_var and not self.env.get(env_var) and not p.get("_base_url_explicit"):
                self.notes.append(f"{self.where}: provider {name}: base_url_env {env_var} is not set "
                                  f"(using {p.get('base_url')})")
            elif not p.get("base_url"):
                self.notes.append(f"{self.where}: provider {name} has no base_url "
                                  f"(set [providers.{name}] base_url, or LLMSPELL_PROVIDER_{_env_name(name)}_BASE_URL)")
            _finalize_provider(p)

    def _check_state(self, state: dict[str, Any]) -> None:
        """Backends open lazily (§20.1): a PostgreSQL backend without a DSN is a warning, not an error."""
        if state.get("backend") != "postgres":
            return
        var = state.get("connection_string_env")
        if not state.get("url") and not (var and self.env.get(var)):
            how = f"{var} is not set" if var else "no url or connection_string_env"
            self.notes.append(f"{self.where}: state backend postgres: {how} (State fails on first use; set "
                              "[state] url or connection_string_env)")

    # ------------------------------------------------------------ tools
    def _tools(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        top = {k: v for k, v in raw.items() if not isinstance(v, dict)}
        out = self._section(_SCHEMA["tools"], top, "tools")  # type: ignore[arg-type]
        sections: dict[str, tuple[str, Mapping[str, Any]]] = {}
        for name, entry in raw.items():
            if not isinstance(entry, dict):
                continue
            if name == "custom":
                for cname, centry in entry.items():
                    if not isinstance(centry, dict):
                        self._type_error(f"tools.custom.{cname}", "table", centry)
                    sections[cname] = (f"tools.custom.{cname}", centry)
                continue
            sections[name] = (f"tools.{name}", entry)
        for name, (dotted, entry) in sections.items():
            tool: dict[str, Any] = {}
            for key, value in entry.items():
                spec = _TOOL_COMMON.get(key)
                if isinstance(spec, _Key):
                    tool[key] = self._value(spec, value, f"{dotted}.{key}")
                elif key in _TOOL_PATH_KEYS:
                    tool[key] = self._value(_Key("pathlist", []), value, f"{dotted}.{key}")
                elif key.endswith("_minutes"):
                    tool[key[: -len("_minutes")] + "_seconds"] = self._scaled(value, 60, f"{dotted}.{key}")
                else:
                    tool[key] = copy.deepcopy(value)
            tool.setdefault("enabled", True)
            out[name] = _deep_merge(out.get(name, {}), tool)
        return out

    # ------------------------------------------------------------ environment (§21)
    def _apply_env(self, out: dict[str, Any]) -> None:
        env = self.env
        providers = out["providers"]
        # standard base URL variables first; LLMSPELL_PROVIDER_<P>_BASE_URL wins below
        for name, var in STANDARD_BASE_URL_ENV.items():
            url = env.get(var)
            if url:
                if var == "OLLAMA_HOST" and "://" not in url:
                    url = "http://" + url
                entry = providers.get(name) or _provider_defaults(name, {}, env)
                entry["base_url"] = url.rstrip("/")
                entry["_base_url_explicit"] = True
                providers[name] = entry
        by_env_name = {_env_name(n): n for n, v in providers.items() if isinstance(v, dict)}
        for var in sorted(env):
            if not var.startswith("LLMSPELL_PROVIDER_"):
                continue
            rest = var[len("LLMSPELL_PROVIDER_"):]
            for suffix, pkey in _PROVIDER_ENV_SUFFIXES:
                if rest.endswith(suffix) and len(rest) > len(suffix):
                    pname, key = rest[: -len(suffix)], pkey
                    break
            else:
                self.notes.append(f"environment: {var} is not a provider setting "
                                  "(use _API_KEY, _BASE_URL, _TYPE, _MODEL, _FORCE_MODEL, _TIMEOUT or _MAX_RETRIES)")
                continue
            name = by_env_name.get(pname) or pname.lower()
            entry = providers.get(name)
            if not isinstance(entry, dict):
                entry = _provider_defaults(name, {}, env)
                providers[name] = entry
                by_env_name[pname] = name
            if key == "api_key":
                continue  # the key itself is read from the environment at use (§2.4), never copied here
            value: Any = env[var]
            spec = _PROVIDER[key]
            assert isinstance(spec, _Key)
            try:
                value = _env_value(var, value, spec)
                if key == "provider_type" and value not in BUILTIN_PROVIDER_TYPES:
                    raise ConfigError(f'environment: {var}="{env[var]}" is not a provider type '
                                      '(use openai, anthropic or ollama)')
            except ConfigError as e:  # provider entries never fail loading (§20.1)
                self.notes.append(str(e))
                entry["config_error"] = "; ".join(x for x in (entry.get("config_error"), str(e)) if x)
                continue
            entry[key] = value
            if key == "base_url":
                entry["base_url"] = str(value).rstrip("/")
                entry["_base_url_explicit"] = True
            if key == "provider_type":
                base = _provider_defaults(name, {"provider_type": value}, env)
                if not entry.get("_base_url_explicit"):
                    entry["base_url"] = base["base_url"]
        state = out["state"]
        if env.get("LLMSPELL_STATE_BACKEND"):
            b = env["LLMSPELL_STATE_BACKEND"].strip().lower()
            b = "postgres" if b == "postgresql" else b
            if b not in ("sqlite", "memory", "postgres"):
                raise ConfigError(f'environment: LLMSPELL_STATE_BACKEND="{b}" is not a state backend '
                                  "(use sqlite, memory or postgres)")
            state["backend"] = b
        if env.get("LLMSPELL_STATE_PATH"):
            state["path"] = os.path.abspath(os.path.expanduser(env["LLMSPELL_STATE_PATH"]))
        if not state.get("path"):
            state["path"] = str(default_state_db(env))
        for sec in ("rag", "sessions", "events", "hooks"):
            var = f"LLMSPELL_{sec.upper()}_ENABLED"
            if var in env and env[var] != "":
                out[sec]["enabled"] = _env_bool(var, env[var])
        if env.get("LLMSPELL_TOOLS_ALLOWED_PATHS"):
            paths = [os.path.abspath(os.path.expanduser(p))
                     for p in env["LLMSPELL_TOOLS_ALLOWED_PATHS"].split(os.pathsep) if p]
            out["tools"].setdefault("file_operations", {"enabled": True})["allowed_paths"] = paths


def _apply_traffic_env(cfg: LLMConfig, env: Mapping[str, str]) -> None:
    mode = (env.get("LLMSPELL_TRAFFIC") or "live").strip().lower()
    if mode not in TRAFFIC_MODES:
        raise ConfigError(f'environment: LLMSPELL_TRAFFIC="{mode}" is not a traffic mode '
                          "(use live, record, replay or fault)")
    cfg.traffic = mode
    if env.get("LLMSPELL_CASSETTE_DIR"):
        cfg.cassette_dir = Path(os.path.abspath(os.path.expanduser(env["LLMSPELL_CASSETTE_DIR"])))
    cfg.faults = tuple(f.strip() for f in (env.get("LLMSPELL_FAULTS") or "").split(",") if f.strip())


# --------------------------------------------------------------------------- helpers
def _env_name(name: str) -> str:
    return name.upper().replace("-", "_")


def _env_bool(var: str, value: str) -> bool:
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f'environment: {var}="{value}" is not a boolean (use 1, true, 0 or false)')


def _env_value(var: str, value: str, spec: _Key) -> Any:
    if spec.type == "int":
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f'environment: {var}="{value}" must be an integer (e.g. {var}=2)') from None
    if spec.type == "number":
        try:
            f = float(value)
        except ValueError:
            raise ConfigError(f'environment: {var}="{value}" must be a number (e.g. {var}=60)') from None
        return int(f) if f.is_integer() else f
    if spec.value_aliases:
        value = dict(spec.value_aliases).get(value.lower(), value)
    return value.lower() if spec.choices else value


def is_loopback(url: str | None) -> bool:
    """Whether a URL (or a bare host[:port]) names this machine: localhost, *.localhost, 127.0.0.0/8 or ::1."""
    if not url:
        return False
    try:
        host = urlsplit(url if "://" in url else "http://" + url).hostname or ""
    except ValueError:
        return False
    if host in ("localhost", "localhost.localdomain") or host.endswith(".localhost"):
        return True
    if not host or not (host[0].isdigit() or ":" in host):
        return False  # a DNS name: only localhost counts (and ipaddress costs ~15 ms to import)
    import ipaddress

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _provider_defaults(name: str, values: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """Fill a provider's defaults (§20.2): type, base URL (incl. base_url_env), key variable, limits."""
    preset = BUILTIN_PROVIDERS.get(name)
    ptype = values.get("provider_type") or (preset[0] if preset and name in BUILTIN_PROVIDER_TYPES else "openai")
    if preset is not None and values.get("provider_type") is None:
        ptype = preset[0]
    out: dict[str, Any] = {}
    for key, spec in _PROVIDER.items():
        assert isinstance(spec, _Key)
        out[key] = copy.deepcopy(values[key]) if key in values else copy.deepcopy(spec.default)
    out["provider_type"] = ptype
    base = values.get("base_url")
    explicit = base is not None
    env_var = values.get("base_url_env")
    if env_var and env.get(env_var):
        base, explicit = env[env_var], True
    if base is None and preset is not None:
        base = preset[1] if preset[0] == ptype else BUILTIN_PROVIDERS[ptype][1]
    elif base is None and ptype in ("anthropic", "ollama"):
        base = BUILTIN_PROVIDERS[ptype][1]  # a custom name of type openai has no sensible default
    out["base_url"] = base.rstrip("/") if isinstance(base, str) else base
    if explicit:
        out["_base_url_explicit"] = True
    if out.get("api_key_env") is None:
        out["api_key_env"] = preset[2] if preset is not None else None
    out.setdefault("name", None)
    if out["name"] is None:
        out["name"] = name
    return out


def _finalize_provider(entry: dict[str, Any]) -> dict[str, Any]:
    """Derive the keys that depend on the final base URL and drop internal markers."""
    entry.pop("_base_url_explicit", None)
    if entry.get("api_key_required") is None:
        entry["api_key_required"] = not (entry.get("provider_type") == "ollama" or is_loopback(entry.get("base_url")))
    return entry


def _unit_conversion(key: str, schema: _Schema) -> tuple[str, float] | None:
    """`x_minutes` -> (`x_seconds`, 60) / (`x_ms`, 60000); `x_seconds` -> (`x_ms`, 1000)."""
    factors = {"_minutes": 60.0, "_seconds": 1.0, "_ms": 0.001}
    for unit, f in factors.items():
        if key.endswith(unit):
            stem = key[: -len(unit)]
            for target_unit, tf in (("_seconds", 1.0), ("_ms", 0.001)):
                target = stem + target_unit
                if target != key and isinstance(schema.get(target), _Key):
                    return target, f / tf
            return None
    return None


def _dealias(schema: _Schema, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Rename alias keys to their canonical names (the canonical spelling wins within one table)."""
    alias_of = {a: k for k, spec in schema.items() if isinstance(spec, _Key) for a in spec.aliases}
    out = {k: v for k, v in raw.items() if k not in alias_of}
    for k, v in raw.items():
        if k in alias_of:
            out.setdefault(alias_of[k], v)
    return out


def _deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def _toml_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "table"
    return type(value).__name__


def _short(value: Any) -> str:
    text = toml_literal(value)
    return text if len(text) <= 40 else text[:37] + "..."


def toml_literal(value: Any) -> str:
    """A TOML rendering of a scalar or small array/table (messages and `config show`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {toml_literal(v)}" for k, v in value.items()) + " }"
    return _toml_string(str(value))


def _toml_string(s: str) -> str:
    out = s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")
    return f'"{out}"'


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_key(k: str) -> str:
    return k if _BARE_KEY.match(k) else _toml_string(k)


def to_toml(data: Mapping[str, Any], *, _prefix: str = "") -> str:
    """Render a nested dict as TOML (None values are left out), sections after plain keys."""
    lines: list[str] = []
    tables: list[tuple[str, Mapping[str, Any]]] = []
    for k, v in data.items():
        if v is None:
            continue
        if isinstance(v, dict) and v:
            tables.append((k, v))
        else:
            lines.append(f"{_toml_key(k)} = {toml_literal(_drop_none(v))}")
    out = "\n".join(lines)
    for k, v in tables:
        name = f"{_prefix}.{_toml_key(k)}" if _prefix else _toml_key(k)
        body = to_toml(v, _prefix=name)
        has_keys = any(x is not None and not (isinstance(x, dict) and x) for x in v.values())
        if has_keys:
            out += ("\n\n" if out else "") + f"[{name}]\n" + body
        elif body:
            out += ("\n\n" if out else "") + body
    return out


def _drop_none(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _drop_none(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [_drop_none(x) for x in v if x is not None]
    return v

