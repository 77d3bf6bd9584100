"""Typed, frozen settings per service and the one path function per file llmspell writes.

`llmspell.config` builds a `Settings` once per configuration (`LLMConfig.settings`) from its data
and the environment it captured; services take their part (`settings.state`, `.rag`, ...) instead
of re-reading raw sections or the environment. Nothing here reads `os.environ`: the environment
arrives as the mapping config captured. Builders accept the canonical layout `load_config` makes
and the raw layouts tests build by hand (`LLMConfig(data=...)`), nested layout included.
"""

from __future__ import annotations

import copy
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

# --------------------------------------------------------------------------- paths
APP_DIR = "llmspell"
STATE_FILE = "state.sqlite3"
RAG_FILE = "rag.sqlite3"
REPL_HISTORY_FILE = "repl_history"
TRUST_FILE = "trusted-configs.json"
KERNEL_FILE_PREFIX = "kernel-llmspell-"
KERNEL_REGISTRY_PREFIX = "llmspell-pid-"
KERNEL_RESUME_PREFIX = ".llmspell-resume-"
DB_SUFFIXES = (".db", ".sqlite", ".sqlite3")


def _home(env: Mapping[str, str]) -> str:
    return env.get("HOME") or os.path.expanduser("~")


def data_dir(env: Mapping[str, str]) -> Path:
    """Where llmspell keeps its data: $XDG_DATA_HOME/llmspell (default ~/.local/share/llmspell)."""
    base = env.get("XDG_DATA_HOME") or os.path.join(_home(env), ".local", "share")
    return Path(base) / APP_DIR


def config_dir(env: Mapping[str, str]) -> Path:
    """Where llmspell keeps user configuration: $XDG_CONFIG_HOME/llmspell (default ~/.config/llmspell)."""
    base = env.get("XDG_CONFIG_HOME") or os.path.join(_home(env), ".config")
    return Path(base) / APP_DIR


def default_state_db(env: Mapping[str, str]) -> Path:
    """The state database when `[state] path` is unset: <data dir>/state.sqlite3."""
    return data_dir(env) / STATE_FILE


def state_db_file(raw: str | os.PathLike[str] | None, env: Mapping[str, str]) -> Path:
    """The state database: a path ending in .db/.sqlite/.sqlite3 (any case) is the file, another is its folder."""
    if not raw:
        return default_state_db(env)
    p = Path(os.path.expanduser(str(raw)))
    return p if p.suffix.lower() in DB_SUFFIXES else p / STATE_FILE


def state_backup_dir(db: Path) -> Path:
    """Where `State.create_backup` writes copies of a state database: <its folder>/backups/<id>.sqlite3."""
    return db.parent / "backups"


def rag_files(persistence_path: str | None, state: StateSettings, env: Mapping[str, str]) -> tuple[Path | None, Path | None]:
    """The RAG database and its index folder: `[rag] persistence_path`, else the state database, else memory."""
    if persistence_path:
        d = Path(persistence_path).expanduser()
        if d.suffix.lower() in DB_SUFFIXES:
            return d, d.with_name(d.stem + ".rag-index")
        return d / RAG_FILE, d / "index"
    if state.backend == "memory":
        return None, None
    db = state.path if state.backend == "sqlite" and state.path is not None else data_dir(env) / RAG_FILE
    return db, db.with_name(db.stem + ".rag-index")


def repl_history_file(env: Mapping[str, str]) -> Path:
    """The REPL's history: <data dir>/repl_history."""
    return data_dir(env) / REPL_HISTORY_FILE


def trust_store_file(env: Mapping[str, str]) -> Path:
    """The hashes of trusted working-directory configs: <config dir>/trusted-configs.json."""
    return config_dir(env) / TRUST_FILE


def is_under(path: str, root: str) -> bool:
    """Whether the real path `path` is `root` or lies inside it (both real, as strings)."""
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def runtime_dir() -> Path:
    """The Jupyter runtime directory, where kernel files live (jupyter_core applies $JUPYTER_RUNTIME_DIR)."""
    try:
        from jupyter_core.paths import jupyter_runtime_dir

        return Path(jupyter_runtime_dir())
    except ImportError:  # pragma: no cover - jupyter_core comes with jupyter_client
        return Path.home() / ".local" / "share" / "jupyter" / "runtime"


def temp_dir() -> Path:
    """The temp directory llmspell writes scratch files under: Python's temp dir ($TMPDIR, else /tmp)."""
    return Path(tempfile.gettempdir())


def temp_dirs() -> tuple[str, ...]:
    """The system temp directories: /tmp and Python's temp dir ($TMPDIR), once each."""
    return tuple(dict.fromkeys(("/tmp", tempfile.gettempdir())))


def default_tool_roots(cwd: str | None = None) -> tuple[str, ...]:
    """The file tools' roots when `allowed_paths` is unset: the working directory at start plus the temp dirs."""
    return tuple(dict.fromkeys((cwd or os.getcwd(), *temp_dirs())))


def debug_cells_dir(pid: int) -> Path:
    """Where the Jupyter debugger writes cell sources: <temp dir>/llmspell-ipykernel_<pid>/.

    JupyterLab names a source "Cell [n]" only when its path contains "ipykernel_" (its notebook and
    console display registries test exactly that), so the folder name carries that marker.
    """
    return temp_dir() / f"llmspell-ipykernel_{pid}"


def scratch_dir(purpose: str) -> Path:
    """A new private folder for one job's transient files: <temp dir>/llmspell-<purpose>-XXXXXXXX (created 0700)."""
    return Path(tempfile.mkdtemp(prefix=f"llmspell-{purpose}-", dir=temp_dir()))


def kernel_connection_file(token: str) -> Path:
    """A new kernel's connection file: <runtime dir>/kernel-llmspell-<token>.json."""
    return runtime_dir() / f"{KERNEL_FILE_PREFIX}{token}.json"


def kernel_registry_file(pid: int) -> Path:
    """The record of a running kernel (`kernel status|stop|connect`): <runtime dir>/llmspell-pid-<pid>.json."""
    return runtime_dir() / f"{KERNEL_REGISTRY_PREFIX}{pid}.json"


def kernel_log_file(connection_file: Path) -> Path:
    """A daemon kernel's log: <runtime dir>/<connection file stem>.log."""
    return runtime_dir() / f"{connection_file.stem}.log"


def kernel_resume_file(pid: int, token: str) -> Path:
    """The hand-over file of a kernel replacing itself: <runtime dir>/.llmspell-resume-<pid>-<token>.json."""
    return runtime_dir() / f"{KERNEL_RESUME_PREFIX}{pid}-{token}.json"


@dataclass(frozen=True)
class Paths:
    """The per-user folders and files of one configuration (kernel files: the functions above)."""

    data_dir: Path
    config_dir: Path
    state_db: Path
    repl_history: Path
    trust_store: Path


# --------------------------------------------------------------------------- reading helpers
def _section(data: Mapping[str, Any], dotted: str) -> Mapping[str, Any]:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, Mapping):
            return {}
        node = node.get(part)
    return node if isinstance(node, Mapping) else {}


def _first(sections: tuple[Mapping[str, Any], ...], keys: tuple[str, ...], default: Any = None) -> Any:
    """The first key found; later sections (the nested layout) win over earlier ones (the canonical one)."""
    for sec in reversed(sections):
        for k in keys:
            if sec.get(k) is not None:
                return sec[k]
    return default


def as_bool(v: Any, default: bool) -> bool:
    """A config or environment value as a bool (`1/true/yes/on` for strings)."""
    if v is None:
        return default
    if isinstance(v, str):
        return v.strip().lower() in ("1", "true", "yes", "on")
    return bool(v)


def _env_flag(env: Mapping[str, str], var: str, current: bool) -> bool:
    raw = env.get(var)
    return as_bool(raw, current) if raw else current


def _globs(v: Any) -> tuple[str, ...]:
    if isinstance(v, str):
        return (v,)
    if isinstance(v, list | tuple):
        return tuple(str(x) for x in v)
    return ()


# --------------------------------------------------------------------------- per service
@dataclass(frozen=True)
class StateSettings:
    """`[state]` (§20.4) with LLMSPELL_STATE_BACKEND / LLMSPELL_STATE_PATH applied."""

    backend: str = "sqlite"
    path: Path | None = None
    url: str | None = None
    max_value_bytes: int = 10 * 1024 * 1024
    max_key_bytes: int = 4096
    backup_keep: int = 5
    busy_timeout_ms: int = 10_000

    @classmethod
    def from_config(cls, config: Any) -> StateSettings:
        """The state settings of a config (its `settings.state`)."""
        return settings_of(config).state

    @classmethod
    def build(cls, data: Mapping[str, Any], env: Mapping[str, str]) -> StateSettings:
        """The state part, parsed from the config data (either layout) and the captured environment."""
        secs = (_section(data, "state"), _section(data, "runtime.state_persistence"))
        enabled = as_bool(_first(secs, ("enabled",)), True)
        persist = as_bool(_first(secs, ("persistence_enabled",)), True)
        backend = str(env.get("LLMSPELL_STATE_BACKEND") or _first(secs, ("backend", "backend_type", "storage_backend"),
                                                                    "sqlite")).strip().lower()
        if backend == "postgresql":
            backend = "postgres"
        if not enabled or not persist:
            backend = "memory"
        raw_path = env.get("LLMSPELL_STATE_PATH") or _first(
            secs, ("path", "database_path", "persistence_path", "schema_directory"))
        url = _first(secs, ("url",))
        url_env = _first(secs, ("connection_string_env",))
        if url_env and env.get(str(url_env)):
            url = env[str(url_env)]
        return cls(
            backend=backend, path=state_db_file(raw_path, env), url=str(url) if url else None,
            max_value_bytes=int(_first(secs, ("max_value_bytes", "max_state_size_bytes"), 10 * 1024 * 1024)),
            max_key_bytes=int(_first(secs, ("max_key_bytes",), 4096)),
            backup_keep=int(_first(secs, ("backup_keep",), 5)),
            busy_timeout_ms=int(_first(secs, ("busy_timeout_ms",), 10_000)),
        )


@dataclass(frozen=True)
class SessionSettings:
    """`[sessions]` (§20.5) with LLMSPELL_SESSIONS_ENABLED applied."""

    enabled: bool = True
    max_sessions: int = 1000
    max_artifacts_per_session: int = 1000
    artifact_compression_threshold: int = 10240
    max_artifact_bytes: int = 100 * 1024 * 1024
    session_timeout_seconds: float = 3600.0
    storage_backend: str | None = None
    max_timeline_entries: int = 10_000
    #: The roots `Artifact.store_file` may read (`[tools.file_operations] allowed_paths`, LLMSPELL_TOOLS_ALLOWED_PATHS).
    artifact_source_roots: tuple[str, ...] | None = None

    @classmethod
    def build(cls, data: Mapping[str, Any], env: Mapping[str, str], tools: ToolsSettings) -> SessionSettings:
        """The session part, parsed from the config data (either layout) and the captured environment;
        `Artifact.store_file` reads from the file tools' roots (`tools`)."""
        secs = (_section(data, "sessions"), _section(data, "runtime.sessions"))
        enabled = _env_flag(env, "LLMSPELL_SESSIONS_ENABLED", as_bool(_first(secs, ("enabled",)), True))
        timeout = _first(secs, ("session_timeout_seconds",))
        if timeout is None:
            minutes = _first(secs, ("session_timeout_minutes",))
            timeout = float(minutes) * 60.0 if minutes is not None else 3600.0
        backend = _first(secs, ("storage_backend",))
        roots = tools.allowed_paths
        return cls(
            enabled=enabled,
            max_sessions=int(_first(secs, ("max_sessions",), 1000)),
            max_artifacts_per_session=int(_first(secs, ("max_artifacts_per_session",), 1000)),
            artifact_compression_threshold=int(_first(secs, ("artifact_compression_threshold",), 10240)),
            max_artifact_bytes=int(_first(secs, ("max_artifact_bytes", "max_artifact_size_bytes"), 100 * 1024 * 1024)),
            session_timeout_seconds=float(timeout),
            storage_backend=str(backend).lower() if backend else None,
            artifact_source_roots=tuple(str(p) for p in roots) if roots else None,
        )


@dataclass(frozen=True)
class HookSettings:
    """`[hooks]` (§20.6) with LLMSPELL_HOOKS_ENABLED applied."""

    enabled: bool = True
    timeout_ms: int = 5000
    rate_limit_per_minute: int = 0
    circuit_breaker_threshold: int = 0
    max_hooks: int = 0

    @classmethod
    def build(cls, data: Mapping[str, Any], env: Mapping[str, str]) -> HookSettings:
        """The hook part, parsed from the config data (either layout) and the captured environment."""
        sec = _section(data, "hooks")
        return cls(
            enabled=_env_flag(env, "LLMSPELL_HOOKS_ENABLED", as_bool(sec.get("enabled"), True)),
            timeout_ms=int(sec.get("timeout_ms", 5000) or 0),
            rate_limit_per_minute=int(sec.get("rate_limit_per_minute", 0) or 0),
            circuit_breaker_threshold=int(sec.get("circuit_breaker_threshold", 0) or 0),
            max_hooks=int(sec.get("max_hooks", 0) or 0),
        )


@dataclass(frozen=True)
class EventSettings:
    """`[events]` (§20.6) with LLMSPELL_EVENTS_ENABLED applied."""

    enabled: bool = True
    buffer_size: int = 1000
    emit_timing_events: bool = True
    emit_state_events: bool = True
    emit_debug_events: bool = True
    max_events_per_second: int = 0
    include_types: tuple[str, ...] = ()
    exclude_types: tuple[str, ...] = ()
    export_stdout: bool = False
    export_file: str | None = None
    pretty_json: bool = False

    @classmethod
    def build(cls, data: Mapping[str, Any], env: Mapping[str, str]) -> EventSettings:
        """The event part, parsed from the config data (either layout) and the captured environment."""
        sec = _section(data, "events")
        filt, export = _section(data, "events.filtering"), _section(data, "events.export")
        return cls(
            enabled=_env_flag(env, "LLMSPELL_EVENTS_ENABLED", as_bool(sec.get("enabled"), True)),
            buffer_size=int(sec.get("buffer_size", 1000)),
            emit_timing_events=as_bool(sec.get("emit_timing_events"), True),
            emit_state_events=as_bool(sec.get("emit_state_events"), True),
            emit_debug_events=as_bool(sec.get("emit_debug_events"), True),
            max_events_per_second=int(sec.get("max_events_per_second", 0) or 0),
            include_types=_globs(filt.get("include_types")),
            exclude_types=_globs(filt.get("exclude_types")),
            export_stdout=as_bool(export.get("stdout"), False),
            export_file=str(export["file"]) if export.get("file") else None,
            pretty_json=as_bool(export.get("pretty_json"), False),
        )


@dataclass(frozen=True)
class WorkflowSettings:
    """`[workflows]` (§20.6)."""

    step_timeout_ms: int = 120000
    timeout_ms: int = 0
    max_concurrent: int = 8
    retry_attempts: int = 3
    error_strategy: str = "fail_fast"
    max_loop_iterations: int = 10000
    #: "session": the §5.9 State keys live as long as the runtime (one `llmspell run`, one kernel), and
    #: only the last `state_max_executions` finished executions keep theirs; "persist": kept forever.
    state_retention: str = "session"
    state_max_executions: int = 32

    @classmethod
    def from_config(cls, config: Any) -> WorkflowSettings:
        """The workflow settings of a config (its `settings.workflows`; defaults without a config)."""
        return settings_of(config).workflows if config is not None else cls()

    @classmethod
    def build(cls, data: Mapping[str, Any], env: Mapping[str, str]) -> WorkflowSettings:
        """The workflow part, parsed from the config data (either layout) and the captured environment."""
        sec = _section(data, "workflows")

        def val(key: str, default: Any) -> Any:
            v = sec.get(key)
            return default if v is None else v

        timeout = int(val("timeout_ms", 0) or 0)
        if not timeout and val("timeout_seconds", None):
            timeout = int(float(val("timeout_seconds", 0)) * 1000)
        strategy = str(val("error_strategy", val("error_handling", "fail_fast")))
        strategy = {"graceful": "continue"}.get(strategy, strategy)
        retention = str(val("state_retention", "session"))
        if retention not in ("session", "persist"):
            raise ValueError(f"[workflows] state_retention must be 'session' or 'persist', got {retention!r}")
        return cls(int(val("step_timeout_ms", 120000)), timeout, int(val("max_concurrent", 8)),
                   int(val("retry_attempts", 3)), strategy, int(val("max_loop_iterations", 10000)), retention,
                   max(1, int(val("state_max_executions", 32))))


@dataclass(frozen=True)
class EmbeddingSettings:
    """`[rag.embedding]`: which embedder, its model, dimensions and batch size (None: the provider's default)."""

    provider: str = "local"
    model: str | None = None
    dimensions: int | None = None
    batch_size: int = 32


@dataclass(frozen=True)
class RagSettings:
    """`[rag]` (§20.7) with `--rag` / LLMSPELL_RAG_ENABLED applied, and where its files go."""

    enabled: bool = False
    default_collection: str = "default"
    chunk_size: int = 256
    chunk_overlap: int = 32
    chunking_strategy: str | None = None
    search_limit: int = 10
    search_threshold: float | None = None
    max_vectors: int = 0
    vector_backend: str = "auto"
    ann_threshold: int = 20000
    hnsw_m: int = 16
    hnsw_ef_construction: int = 200
    hnsw_ef_search: int = 64
    embedding: EmbeddingSettings = field(default_factory=EmbeddingSettings)
    #: The vectors' SQLite file and index folder (both None: memory).
    database: Path | None = None
    index_dir: Path | None = None

    @classmethod
    def build(cls, data: Mapping[str, Any], env: Mapping[str, str], state: StateSettings) -> RagSettings:
        """The rag part, parsed from the config data (either layout) and the captured environment."""
        sec = _section(data, "rag")
        chunking, vs, emb = _section(data, "rag.chunking"), _section(data, "rag.vector_storage"), _section(data, "rag.embedding")
        hnsw = _section(data, "rag.vector_storage.hnsw")
        enabled_raw = sec.get("enabled")
        enabled = bool(enabled_raw) if enabled_raw is not None else as_bool(env.get("LLMSPELL_RAG_ENABLED"), False)
        size = int(sec.get("chunk_size", 256) or 256)
        overlap = int(sec["chunk_overlap"]) if sec.get("chunk_overlap") is not None else 32
        if size == 256 and chunking.get("chunk_size") is not None:
            size = int(chunking["chunk_size"])
        if overlap == 32 and chunking.get("overlap") is not None:
            overlap = int(chunking["overlap"])
        threshold = sec.get("search_threshold")
        persistence = sec.get("persistence_path") or vs.get("persistence_path")
        db, index_dir = rag_files(str(persistence) if persistence else None, state, env)
        dims = emb.get("dimensions")
        return cls(
            enabled=enabled, default_collection=str(sec.get("default_collection") or "default"), chunk_size=size,
            chunk_overlap=overlap, chunking_strategy=str(chunking["strategy"]) if chunking.get("strategy") else None,
            search_limit=int(sec.get("search_limit") or 10),
            search_threshold=None if threshold is None else float(threshold), max_vectors=int(sec.get("max_vectors") or 0),
            vector_backend=str(vs.get("backend") or "auto"), ann_threshold=int(vs.get("ann_threshold", 20000)),
            hnsw_m=int(hnsw.get("m", 16)), hnsw_ef_construction=int(hnsw.get("ef_construction", 200)),
            hnsw_ef_search=int(hnsw.get("ef_search", 64)),
            embedding=EmbeddingSettings(provider=str(emb.get("provider") or "local"),
                                        model=str(emb["model"]) if emb.get("model") else None,
                                        dimensions=int(dims) if dims is not None else None,
                                        batch_size=int(emb.get("batch_size") or 32)),
            database=db, index_dir=index_dir)


@dataclass(frozen=True)
class TrafficSettings:
    """How provider HTTP traffic runs: mode (live, record, replay, fault), cassette folder, fault schedule."""

    mode: str = "live"
    cassette_dir: Path | None = None
    faults: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProviderSettings:
    """`[providers]` (§20.2): defaults, the provider tables, and the environment keys are read from at use."""

    default_provider: str = "openai"
    default_model: str | None = None
    #: `[providers.<name>]` tables as config normalized them (read-only).
    entries: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: MappingProxyType({}))
    #: The environment config captured: API keys and §21 variables are looked up here when used, never copied.
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    #: The trusted-config store (`llmspell config trust`).
    trust_store: Path | None = None

    @classmethod
    def build(cls, data: Mapping[str, Any], env: Mapping[str, str]) -> ProviderSettings:
        """The provider part, parsed from the config data (either layout) and the captured environment."""
        sec = _section(data, "providers")
        model = sec.get("default_model")
        return cls(default_provider=str(sec.get("default_provider") or "openai"),
                   default_model=str(model) if model else None,
                   entries=MappingProxyType({k: v for k, v in sec.items() if isinstance(v, Mapping)}),
                   env=MappingProxyType(dict(env)), trust_store=trust_store_file(env))


@dataclass(frozen=True)
class RuntimeSettings:
    """`[runtime]` and `[engines.lua]` limits a script run applies (CLI and kernel alike)."""

    script_timeout_seconds: float = 0.0
    max_execution_time_ms: float = 0.0
    interrupt_grace_seconds: float = 5.0
    allow_binary_chunks: bool = False
    max_memory_bytes: int = 0

    @property
    def time_limit(self) -> float | None:
        """Seconds a run (a kernel cell) may take: the smaller of the two limits set, None when neither is."""
        limits = [x for x in (self.script_timeout_seconds, self.max_execution_time_ms / 1000.0) if x > 0]
        return min(limits) if limits else None

    @classmethod
    def build(cls, data: Mapping[str, Any], env: Mapping[str, str]) -> RuntimeSettings:
        """The runtime part, parsed from the config data (either layout) and the captured environment."""
        rt, sec = _section(data, "runtime"), _section(data, "runtime.security")
        return cls(script_timeout_seconds=float(rt.get("script_timeout_seconds", 0) or 0),
                   max_execution_time_ms=float(sec.get("max_execution_time_ms", 0) or 0),
                   interrupt_grace_seconds=float(rt.get("interrupt_grace_seconds", 5) or 0),
                   allow_binary_chunks=bool(rt.get("allow_binary_chunks", False)),
                   max_memory_bytes=int(_section(data, "engines.lua").get("max_memory_bytes", 0) or 0))


@dataclass(frozen=True)
class KernelSettings:
    """`[kernel]` (§20.8): bind address, idle timeout, message cap, interrupt mode, debugger."""

    ip: str = "127.0.0.1"
    idle_timeout_seconds: float = 0.0
    max_message_bytes: int = 64 * 1024 * 1024
    interrupt_mode: str = "signal"
    debug_enabled: bool = True

    @classmethod
    def build(cls, data: Mapping[str, Any], env: Mapping[str, str]) -> KernelSettings:
        """The kernel part, parsed from the config data (either layout) and the captured environment."""
        sec = _section(data, "kernel")
        return cls(ip=str(sec.get("ip") or "127.0.0.1"), idle_timeout_seconds=float(sec.get("idle_timeout_seconds", 0) or 0),
                   max_message_bytes=int(sec.get("max_message_bytes", 64 * 1024 * 1024) or 0),
                   interrupt_mode=str(sec.get("interrupt_mode") or "signal"),
                   debug_enabled=bool(_section(data, "kernel.debug").get("enabled", True)))


@dataclass(frozen=True)
class LogSettings:
    """Logging: the level/directive spec (`--trace`, LLMSPELL_LOG; default warn) and OTel export (LLMSPELL_OTEL)."""

    spec: str = "warn"
    otel: str | None = None  # "console" | "otlp" | None

    @classmethod
    def build(cls, env: Mapping[str, str], spec: str | None = None) -> LogSettings:
        """The log settings: `spec` (`--trace`), else LLMSPELL_LOG, else warn; LLMSPELL_OTEL for export."""
        otel = (env.get("LLMSPELL_OTEL") or "").strip().lower()
        mode = None if not otel or otel in ("0", "false", "off") else ("otlp" if otel == "otlp" else "console")
        return cls(spec=spec or env.get("LLMSPELL_LOG") or "warn", otel=mode)


@dataclass(frozen=True)
class DebugSettings:
    """`[debug]` (§20.9; nested layout `[runtime.debug]`): the Debug global's switch, level, filters, output file."""

    enabled: bool = True
    level: str = "info"
    module_filters: tuple[str, ...] = ()
    default_filter_enabled: bool = True
    #: The file debug lines are appended to; None: the script's stderr ("stderr", "stdout" or unset).
    output: Path | None = None

    @classmethod
    def build(cls, data: Mapping[str, Any], env: Mapping[str, str]) -> DebugSettings:
        """The debug part, parsed from the config data (either layout)."""
        nested = _section(data, "runtime").get("debug")
        secs = (_section(data, "debug"),
                {"enabled": nested} if isinstance(nested, bool) else _section(data, "runtime.debug"))
        level = str(_first(secs, ("level",), "info")).strip().lower()
        output = _first(secs, ("output",))
        return cls(enabled=as_bool(_first(secs, ("enabled",)), True), level={"warning": "warn"}.get(level, level),
                   module_filters=_globs(_first(secs, ("module_filters",))),
                   default_filter_enabled=as_bool(_first(secs, ("default_filter_enabled",)), True),
                   output=None if not output or output in ("stderr", "stdout") else Path(str(output)))


@dataclass(frozen=True)
class SecuritySettings:
    """`[runtime.security]` switches the tools obey: file access, network access, process spawning."""

    allow_file_access: bool = True
    allow_network_access: bool = True
    allow_process_spawn: bool = False

    @classmethod
    def build(cls, data: Mapping[str, Any], env: Mapping[str, str]) -> SecuritySettings:
        """The security part, parsed from the config data."""
        sec = _section(data, "runtime.security")
        return cls(allow_file_access=as_bool(sec.get("allow_file_access"), True),
                   allow_network_access=as_bool(sec.get("allow_network_access"), True),
                   allow_process_spawn=as_bool(sec.get("allow_process_spawn"), False))


def _tool_key(name: str) -> str:
    return name.replace("-", "_").lower()


@dataclass(frozen=True)
class ToolsSettings:
    """`[tools]` (§19): the switch, the rate limit, and each `[tools.<name>]` table (keys are the tool's own)."""

    enabled: bool = True
    rate_limit_per_minute: int = 0
    #: `[tools.<name>]` and `[tools.custom.<name>]` tables under the names the file uses (read-only copies);
    #: the tool registry merges them by resolved tool name.
    sections: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: MappingProxyType({}))
    #: True when the file tools' roots come from LLMSPELL_TOOLS_ALLOWED_PATHS (the user's choice, never gated).
    roots_from_env: bool = False

    def tool(self, name: str) -> Mapping[str, Any]:
        """The `[tools.<name>]` table, `-` and `_` (and case) matching as equal; empty when absent."""
        hit = self.sections.get(name)
        if hit is not None:
            return hit
        want = _tool_key(name)
        for k, v in self.sections.items():
            if _tool_key(k) == want:
                return v
        return MappingProxyType({})

    @property
    def allowed_paths(self) -> tuple[str, ...] | None:
        """`[tools.file_operations] allowed_paths` (or the environment's list); None: the default roots."""
        roots = self.tool("file_operations").get("allowed_paths")
        return tuple(str(r) for r in roots) if roots else None

    @classmethod
    def build(cls, data: Mapping[str, Any], env: Mapping[str, str]) -> ToolsSettings:
        """The tools part, parsed from the config data (either layout) and the captured environment."""
        sec = _section(data, "tools")
        tables: dict[str, dict[str, Any]] = {}
        custom = sec.get("custom")
        for name, entry in [*(custom.items() if isinstance(custom, Mapping) else ()), *sec.items()]:
            if name != "custom" and isinstance(entry, Mapping):
                tables.setdefault(str(name), {}).update(copy.deepcopy(dict(entry)))
        from_env = bool(env.get("LLMSPELL_TOOLS_ALLOWED_PATHS"))
        if from_env:
            roots = [os.path.abspath(os.path.expanduser(p)) for p in env["LLMSPELL_TOOLS_ALLOWED_PATHS"].split(os.pathsep)
                     if p]
            key = next((k for k in tables if _tool_key(k) == "file_operations"), "file_operations")
            tables.setdefault(key, {"enabled": True})["allowed_paths"] = roots
        return cls(enabled=as_bool(sec.get("enabled"), True),
                   rate_limit_per_minute=int(sec.get("rate_limit_per_minute", 0) or 0),
                   sections=MappingProxyType({k: MappingProxyType(v) for k, v in tables.items()}),
                   roots_from_env=from_env)


@dataclass(frozen=True)
class Settings:
    """Every service's settings, built once from one configuration."""

    paths: Paths
    state: StateSettings
    sessions: SessionSettings
    hooks: HookSettings
    events: EventSettings
    workflows: WorkflowSettings
    rag: RagSettings
    providers: ProviderSettings
    traffic: TrafficSettings
    log: LogSettings
    runtime: RuntimeSettings = field(default_factory=RuntimeSettings)
    kernel: KernelSettings = field(default_factory=KernelSettings)
    debug: DebugSettings = field(default_factory=DebugSettings)
    security: SecuritySettings = field(default_factory=SecuritySettings)
    tools: ToolsSettings = field(default_factory=ToolsSettings)

    @classmethod
    def build(cls, data: Mapping[str, Any], env: Mapping[str, str], *, traffic: TrafficSettings | None = None,
              log: LogSettings | None = None) -> Settings:
        """Parse every section once (`data`: the canonical or a raw layout; `env`: the captured environment)."""
        state = StateSettings.build(data, env)
        tools = ToolsSettings.build(data, env)
        d = data_dir(env)
        paths = Paths(data_dir=d, config_dir=config_dir(env), state_db=state.path or default_state_db(env),
                      repl_history=repl_history_file(env), trust_store=trust_store_file(env))
        return cls(paths=paths, state=state, sessions=SessionSettings.build(data, env, tools),
                   hooks=HookSettings.build(data, env), events=EventSettings.build(data, env),
                   workflows=WorkflowSettings.build(data, env), rag=RagSettings.build(data, env, state),
                   providers=ProviderSettings.build(data, env), traffic=traffic or TrafficSettings(),
                   log=log or LogSettings.build(env), runtime=RuntimeSettings.build(data, env),
                   kernel=KernelSettings.build(data, env), debug=DebugSettings.build(data, env),
                   security=SecuritySettings.build(data, env), tools=tools)


def sqlite_files(db: Path) -> tuple[Path, ...]:
    """A SQLite database and the companions SQLite writes beside it (-wal, -shm, -journal)."""
    return (db, *(db.with_name(db.name + s) for s in ("-wal", "-shm", "-journal")))


def _entries(folder: Path) -> tuple[Path, ...]:
    """What a folder llmspell writes into already holds (a link planted there must resolve inside too)."""
    try:
        return tuple(sorted(folder.iterdir())) if folder.is_dir() else ()
    except OSError:
        return ()


def written_by_key(s: Settings) -> dict[str, tuple[Path, ...]]:
    """The files and folders llmspell writes whose place a config key chooses, by that key (dotted).

    What the working-directory trust check vets (config.py): the state database, the RAG database
    and index folder, the event export file, the Debug global's output file.
    """
    out: dict[str, tuple[Path, ...]] = {}
    if s.state.backend == "sqlite" and s.state.path is not None:
        backups = state_backup_dir(s.state.path)
        out["state.path"] = (*sqlite_files(s.state.path), backups, *_entries(backups))
    rag = (*(sqlite_files(s.rag.database) if s.rag.database is not None else ()),
           *((s.rag.index_dir, *_entries(s.rag.index_dir)) if s.rag.index_dir is not None else ()))
    if rag:
        out["rag.persistence_path"] = out["rag.vector_storage.persistence_path"] = rag
    if s.events.export_file:
        out["events.export.file"] = (Path(s.events.export_file),)
    if s.debug.output is not None:
        out["debug.output"] = (s.debug.output,)
    return out


def settings_of(config: Any) -> Settings:
    """`config.settings` (an LLMConfig); a plain mapping is read as a raw layout without environment."""
    s = getattr(config, "settings", None)
    if isinstance(s, Settings):
        return s
    return Settings.build(config if isinstance(config, Mapping) else {}, {})
