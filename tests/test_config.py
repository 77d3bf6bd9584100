"""Config loading (lua-api.md §20-21): discovery, layouts, defaults, aliases, env overrides, validation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from llmspell.config import ConfigError, LLMConfig, load_config, mask_secrets, normalize, to_toml


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_DATA_HOME": str(home / ".local" / "share"), **extra}


# ----------------------------------------------------------------------------- discovery
def test_no_file_gives_builtin_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = load_config(env=env_for(tmp_path))
    assert cfg.path is None
    assert cfg.warnings == []
    assert cfg.get("providers.default_provider") == "openai"
    assert cfg.get("runtime.default_engine") == "lua"
    assert cfg.get("engines.lua.max_memory_bytes") == 0
    assert cfg.get("kernel.ip") == "127.0.0.1"
    assert cfg.get("kernel.max_message_bytes") == 64 * 1024 * 1024
    assert cfg.get("kernel.debug.enabled") is True
    assert cfg.get("debug.level") == "info"
    assert cfg.get("state.backend") == "sqlite"
    assert cfg.get("state.max_value_bytes") == 10485760
    assert cfg.get("sessions.session_timeout_seconds") == 3600
    assert cfg.get("hooks.timeout_ms") == 5000
    assert cfg.get("events.buffer_size") == 1000
    assert cfg.get("workflows.step_timeout_ms") == 120000
    assert cfg.get("workflows.error_strategy") == "fail_fast"
    assert cfg.get("rag.enabled") is False
    assert cfg.get("rag.embedding.dimensions") == 384
    assert cfg.get("rag.vector_storage.hnsw.ef_construction") == 200
    assert cfg.get("runtime.security.allow_process_spawn") is False
    assert cfg.traffic == "live"


def test_default_state_path_uses_xdg_data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    env = env_for(tmp_path)
    cfg = load_config(env=env)
    assert cfg.get("state.path") == str(Path(env["XDG_DATA_HOME"]) / "llmspell" / "state.sqlite3")
    assert cfg.state_database_path().name == "state.sqlite3"


@pytest.mark.parametrize("rel", ["llmspell.toml", ".llmspell.toml", "config/llmspell.toml", ".config/llmspell.toml"])
def test_discovery_in_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rel: str) -> None:
    work = tmp_path / "work"
    f = write(work / rel, '[providers]\ndefault_provider = "anthropic"\n')
    monkeypatch.chdir(work)
    cfg = load_config(env=env_for(tmp_path))
    assert cfg.path == f
    assert cfg.get("providers.default_provider") == "anthropic"


def test_discovery_order_first_hit_wins_without_merging(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = env_for(tmp_path)
    work = tmp_path / "work"
    write(work / "llmspell.toml", "[rag]\nenabled = true\n")
    write(work / ".llmspell.toml", "[hooks]\nenabled = false\n")
    monkeypatch.chdir(work)
    cfg = load_config(env=env)
    assert cfg.path == work / "llmspell.toml"
    assert cfg.get("hooks.enabled") is True  # no merging with the second file


def test_discovery_home_then_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = env_for(tmp_path)
    work = tmp_path / "empty"
    work.mkdir()
    monkeypatch.chdir(work)
    xdg = write(Path(env["XDG_CONFIG_HOME"]) / "llmspell" / "config.toml", "[rag]\nenabled = true\n")
    assert load_config(env=env).path == xdg
    home_cfg = write(Path(env["HOME"]) / ".config" / "llmspell.toml", "[rag]\nenabled = true\n")
    assert load_config(env=env).path == home_cfg
    dot = write(Path(env["HOME"]) / ".llmspell.toml", "[rag]\nenabled = true\n")
    assert load_config(env=env).path == dot


def test_explicit_path_and_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    a = write(tmp_path / "a.toml", "[rag]\nenabled = true\n")
    b = write(tmp_path / "b.toml", "[hooks]\nenabled = false\n")
    env = env_for(tmp_path, LLMSPELL_CONFIG=str(b))
    assert load_config(env=env).path == b
    assert load_config(a, env=env).path == a  # -c beats LLMSPELL_CONFIG


def test_explicit_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found.*-c/--config"):
        load_config(tmp_path / "nope.toml", env=env_for(tmp_path))
    with pytest.raises(ConfigError, match="LLMSPELL_CONFIG"):
        load_config(env=env_for(tmp_path, LLMSPELL_CONFIG=str(tmp_path / "nope.toml")))
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path, env=env_for(tmp_path))


# ----------------------------------------------------------------------------- syntax and types
def test_invalid_toml_names_line_and_column(tmp_path: Path) -> None:
    f = write(tmp_path / "bad.toml", "[state]\nbackend = \n")
    with pytest.raises(ConfigError) as ei:
        load_config(f, env=env_for(tmp_path))
    msg = str(ei.value)
    assert str(f) in msg and "invalid TOML" in msg
    assert "line 2 column" in msg


def test_non_utf8_config(tmp_path: Path) -> None:
    f = tmp_path / "bin.toml"
    f.write_bytes(b"[state]\nbackend = \"\xff\"\n")
    with pytest.raises(ConfigError, match="UTF-8"):
        load_config(f, env=env_for(tmp_path))


@pytest.mark.parametrize(("text", "key", "expected"), [
    ('[state]\nmax_value_bytes = "big"\n', "state.max_value_bytes", "integer"),
    ("[rag]\nenabled = 1\n", "rag.enabled", "boolean"),
    ("[debug]\nmodule_filters = \"a.*\"\n", "debug.module_filters", "array of strings"),
    ("state = 3\n", "state", "table"),
])
def test_wrong_type_names_file_key_type_and_fix(tmp_path: Path, text: str, key: str, expected: str) -> None:
    f = write(tmp_path / "llmspell.toml", text)
    with pytest.raises(ConfigError) as ei:
        load_config(f, env=env_for(tmp_path))
    msg = str(ei.value)
    assert str(f) in msg and key in msg and expected in msg and "fix:" in msg


def test_bad_enum_value_lists_choices(tmp_path: Path) -> None:
    f = write(tmp_path / "c.toml", '[state]\nbackend = "mongo"\n')
    with pytest.raises(ConfigError, match=r'state.backend.*"sqlite", "memory", "postgres"'):
        load_config(f, env=env_for(tmp_path))
    f2 = write(tmp_path / "d.toml", '[runtime]\ndefault_engine = "python"\n')
    with pytest.raises(ConfigError, match="default_engine"):
        load_config(f2, env=env_for(tmp_path))


def test_negative_value_is_rejected(tmp_path: Path) -> None:
    f = write(tmp_path / "c.toml", "[events]\nbuffer_size = 0\n")
    with pytest.raises(ConfigError, match="events.buffer_size must be >= 1"):
        load_config(f, env=env_for(tmp_path))


def test_providers_as_a_provider_name_is_rejected(tmp_path: Path) -> None:
    f = write(tmp_path / "c.toml", "[providers.providers.providers]\nbase_url = 'http://x'\n")
    with pytest.raises(ConfigError, match="not allowed as a provider name"):
        load_config(f, env=env_for(tmp_path))


# ----------------------------------------------------------------------------- unknown keys
def test_unknown_keys_are_one_warning_line(tmp_path: Path) -> None:
    f = write(tmp_path / "c.toml", """
[runtime]
name = "x"
[state]
cache_size_mb = 5
[[hooks.pre_response]]
fn = "x"
[rag]
provider = "openai"
[bogus]
a = 1
""")
    cfg = load_config(f, env=env_for(tmp_path))
    assert len(cfg.warnings) == 1
    line = cfg.warnings[0]
    assert line.startswith(f"config {f}: ignored unknown keys: ")
    for k in ("runtime.name", "state.cache_size_mb", "hooks.pre_response (use Hook.register)",
              "rag.provider (use [rag.embedding])", "bogus"):
        assert k in line


# ----------------------------------------------------------------------------- layouts and aliases
def test_nested_layout_is_read_and_wins(tmp_path: Path) -> None:
    f = write(tmp_path / "c.toml", """
[providers]
default_provider = "local"
[providers.local]
base_url = "http://127.0.0.1:8080/v1"
timeout_seconds = 5
[providers.providers.local]
timeout_seconds = 9
[providers.providers.other]
base_url = "http://localhost:1/v1"
[state]
backend = "sqlite"
max_value_bytes = 100
[runtime.state_persistence]
backend_type = "memory"
[runtime.sessions]
max_sessions = 7
[runtime.debug]
level = "debug"
""")
    cfg = load_config(f, env=env_for(tmp_path))
    assert cfg.warnings == []
    assert cfg.get("providers.local.timeout_seconds") == 9
    assert cfg.get("providers.local.base_url") == "http://127.0.0.1:8080/v1"
    assert cfg.get("providers.other.base_url") == "http://localhost:1/v1"
    assert "providers" not in cfg.section("providers")
    assert cfg.get("state.backend") == "memory"  # nested alias beats the canonical key
    assert cfg.get("state.max_value_bytes") == 100
    assert cfg.get("sessions.max_sessions") == 7
    assert cfg.get("debug.level") == "debug"
    assert "state_persistence" not in cfg.section("runtime")


def test_runtime_debug_bool_is_shorthand(tmp_path: Path) -> None:
    f = write(tmp_path / "c.toml", "[runtime]\ndebug = false\n")
    cfg = load_config(f, env=env_for(tmp_path))
    assert cfg.get("debug.enabled") is False and cfg.warnings == []


def test_aliases_units_and_value_aliases(tmp_path: Path) -> None:
    f = write(tmp_path / "c.toml", """
[providers.anthropic]
type = "openai_compatible"
api_base = "http://127.0.0.1:8080/v1"
model = "local"
timeout = 30
retry_attempts = 4
[state]
storage_backend = "postgresql"
url = "postgresql://localhost/llmspell"
max_state_size_bytes = 2048
[sessions]
session_timeout_minutes = 2
[workflows]
timeout_seconds = 30
error_handling = "graceful"
[rag]
collection = "docs"
""")
    cfg = load_config(f, env=env_for(tmp_path))
    assert cfg.warnings == []
    p = cfg.provider("anthropic")
    assert p is not None
    assert p["provider_type"] == "openai"
    assert p["base_url"] == "http://127.0.0.1:8080/v1"
    assert p["default_model"] == "local"
    assert p["timeout_seconds"] == 30 and p["max_retries"] == 4
    assert p["api_key_required"] is False  # loopback
    assert cfg.get("state.backend") == "postgres"
    assert cfg.get("state.max_value_bytes") == 2048
    assert cfg.get("sessions.session_timeout_seconds") == 120
    assert cfg.get("workflows.timeout_ms") == 30000
    assert cfg.get("workflows.error_strategy") == "continue"
    assert cfg.get("rag.default_collection") == "docs"


def test_relative_paths_resolve_against_config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfgdir = tmp_path / "conf"
    f = write(cfgdir / "llmspell.toml", """
[state]
path = "data/state.db"
[debug]
output = "logs/debug.log"
[events.export]
file = "events.jsonl"
[tools.file_operations]
allowed_paths = ["out", "/abs"]
[rag]
persistence_path = "vectors"
""")
    monkeypatch.chdir(tmp_path)
    cfg = load_config(f, env=env_for(tmp_path))
    assert cfg.get("state.path") == str(cfgdir / "data" / "state.db")
    assert cfg.state_database_path() == cfgdir / "data" / "state.db"
    assert cfg.get("debug.output") == str(cfgdir / "logs" / "debug.log")
    assert cfg.get("events.export.file") == str(cfgdir / "events.jsonl")
    assert cfg.get("rag.persistence_path") == str(cfgdir / "vectors")
    assert cfg.tool("file_operations")["allowed_paths"] == [str(cfgdir / "out"), "/abs"]


def test_state_dir_path_gets_default_file_name(tmp_path: Path) -> None:
    f = write(tmp_path / "c.toml", '[state]\npath = "statedir"\n')
    cfg = load_config(f, env=env_for(tmp_path))
    assert cfg.state_database_path() == tmp_path / "statedir" / "state.sqlite3"


def test_inline_tables_equal_sections(tmp_path: Path) -> None:
    a = write(tmp_path / "a.toml", "[tools]\nfile_operations = { enabled = false, max_file_size = 10 }\n")
    b = write(tmp_path / "b.toml", "[tools.file_operations]\nenabled = false\nmax_file_size = 10\n")
    ca, cb = load_config(a, env=env_for(tmp_path)), load_config(b, env=env_for(tmp_path))
    assert ca.section("tools") == cb.section("tools")
    assert ca.tool("file-operations")["enabled"] is False


def test_tools_custom_sections(tmp_path: Path) -> None:
    f = write(tmp_path / "c.toml", "[tools.custom.web_search]\nrate_limit = 5\n")
    cfg = load_config(f, env=env_for(tmp_path))
    assert cfg.tool("web_search") == {"rate_limit": 5, "enabled": True}


def test_provider_defaults_and_builtins(tmp_path: Path) -> None:
    f = write(tmp_path / "c.toml", "[providers.openai]\nmax_tokens = 100\n[providers.ollama]\n")
    cfg = load_config(f, env=env_for(tmp_path))
    o = cfg.provider("openai")
    assert o is not None
    assert o["base_url"] == "https://api.openai.com/v1" and o["api_key_env"] == "OPENAI_API_KEY"
    assert o["max_concurrent_requests"] == 8 and o["max_retries"] == 2 and o["timeout_seconds"] == 120
    assert o["api_key_required"] is True and o["max_tokens"] == 100
    assert cfg.provider("ollama")["api_key_required"] is False  # type: ignore[index]
    groq = cfg.provider("groq")
    assert groq is not None and groq["base_url"] == "https://api.groq.com/openai/v1"
    assert groq["api_key_env"] == "GROQ_API_KEY"
    assert cfg.provider("nobody") is None
    assert cfg.provider_names() == ["ollama", "openai"]


def test_provider_without_base_url_is_a_warning(tmp_path: Path) -> None:
    f = write(tmp_path / "c.toml", "[providers.mine]\ndefault_model = 'm'\n[providers.env]\nbase_url_env = 'MY_URL'\n")
    cfg = load_config(f, env=env_for(tmp_path))
    text = "\n".join(cfg.warnings)
    assert "provider mine has no base_url" in text
    assert "base_url_env MY_URL is not set" in text
    cfg2 = load_config(f, env=env_for(tmp_path, MY_URL="http://127.0.0.1:9/v1"))
    assert cfg2.provider("env")["base_url"] == "http://127.0.0.1:9/v1"  # type: ignore[index]


def test_wrong_typed_provider_key_is_a_warning_not_an_error(tmp_path: Path) -> None:
    f = write(tmp_path / "c.toml", '[providers.openai]\ntimeout_seconds = "slow"\nmax_retries = 1\n')
    cfg = load_config(f, env=env_for(tmp_path))
    p = cfg.provider("openai")
    assert p is not None and p["max_retries"] == 1 and p["timeout_seconds"] == 120
    assert "providers.openai.timeout_seconds must be a number" in p["config_error"]
    assert any("providers.openai.timeout_seconds" in w for w in cfg.warnings)


def test_postgres_without_dsn_is_a_warning(tmp_path: Path) -> None:
    f = write(tmp_path / "c.toml", '[state]\nbackend = "postgres"\nconnection_string_env = "PG_DSN"\n')
    cfg = load_config(f, env=env_for(tmp_path))
    assert any("PG_DSN is not set" in w for w in cfg.warnings)
    assert not load_config(f, env=env_for(tmp_path, PG_DSN="postgresql://x/y")).warnings


def test_plaintext_api_key_warns(tmp_path: Path) -> None:
    f = write(tmp_path / "c.toml", "[providers.openai]\napi_key = 'sk-live'\n")
    cfg = load_config(f, env=env_for(tmp_path))
    assert any("plaintext" in w for w in cfg.warnings)


# ----------------------------------------------------------------------------- environment (§21)
def test_env_provider_overrides_create_providers(tmp_path: Path) -> None:
    env = env_for(tmp_path, LLMSPELL_PROVIDER_MY_LOCAL_BASE_URL="http://127.0.0.1:8080/v1/",
                  LLMSPELL_PROVIDER_MY_LOCAL_MODEL="gemma", LLMSPELL_PROVIDER_MY_LOCAL_FORCE_MODEL="local",
                  LLMSPELL_PROVIDER_MY_LOCAL_TIMEOUT="7", LLMSPELL_PROVIDER_MY_LOCAL_MAX_RETRIES="0",
                  LLMSPELL_PROVIDER_MY_LOCAL_API_KEY="sk-x")
    cfg = load_config(env=env)
    p = cfg.provider("my_local")
    assert p is not None
    assert p["base_url"] == "http://127.0.0.1:8080/v1"
    assert p["default_model"] == "gemma" and p["force_model"] == "local"
    assert p["timeout_seconds"] == 7 and p["max_retries"] == 0
    assert p["api_key"] is None  # keys are read from the environment at use, never copied
    assert p["api_key_required"] is False


def test_env_provider_override_matches_dashed_name(tmp_path: Path) -> None:
    f = write(tmp_path / "c.toml", "[providers.my-srv]\nbase_url = 'http://a/v1'\n")
    cfg = load_config(f, env=env_for(tmp_path, LLMSPELL_PROVIDER_MY_SRV_BASE_URL="http://b/v1"))
    assert cfg.provider("my-srv")["base_url"] == "http://b/v1"  # type: ignore[index]
    assert "my_srv" not in cfg.provider_names()


def test_env_type_override_changes_default_base(tmp_path: Path) -> None:
    cfg = load_config(env=env_for(tmp_path, LLMSPELL_PROVIDER_X_TYPE="ollama"))
    p = cfg.provider("x")
    assert p is not None and p["provider_type"] == "ollama" and p["base_url"] == "http://localhost:11434"
    # provider entries never fail loading: a bad value is a warning and an error at use
    bad = load_config(env=env_for(tmp_path, LLMSPELL_PROVIDER_Y_TYPE="grpc", LLMSPELL_PROVIDER_Y_MAX_RETRIES="many"))
    y = bad.provider("y")
    assert y is not None and "LLMSPELL_PROVIDER_Y_TYPE" in y["config_error"] and "must be an integer" in y["config_error"]
    assert any("LLMSPELL_PROVIDER_Y_TYPE" in w for w in bad.warnings)


def test_standard_base_url_vars_lose_to_llmspell_vars(tmp_path: Path) -> None:
    f = write(tmp_path / "c.toml", "[providers.openai]\nbase_url = 'http://file/v1'\n")
    cfg = load_config(f, env=env_for(tmp_path, OPENAI_BASE_URL="http://std/v1", OLLAMA_HOST="127.0.0.1:1234",
                                     ANTHROPIC_BASE_URL="http://anth"))
    assert cfg.provider("openai")["base_url"] == "http://std/v1"  # type: ignore[index]
    assert cfg.provider("ollama")["base_url"] == "http://127.0.0.1:1234"  # type: ignore[index]
    assert cfg.provider("anthropic")["base_url"] == "http://anth"  # type: ignore[index]
    cfg2 = load_config(f, env=env_for(tmp_path, OPENAI_BASE_URL="http://std/v1",
                                      LLMSPELL_PROVIDER_OPENAI_BASE_URL="http://mine/v1"))
    assert cfg2.provider("openai")["base_url"] == "http://mine/v1"  # type: ignore[index]


def test_env_state_enabled_paths_traffic(tmp_path: Path) -> None:
    f = write(tmp_path / "c.toml", "[rag]\nenabled = false\n[hooks]\nenabled = true\n")
    env = env_for(tmp_path, LLMSPELL_STATE_BACKEND="memory", LLMSPELL_STATE_PATH=str(tmp_path / "s.db"),
                  LLMSPELL_RAG_ENABLED="1", LLMSPELL_HOOKS_ENABLED="false", LLMSPELL_SESSIONS_ENABLED="0",
                  LLMSPELL_EVENTS_ENABLED="true",
                  LLMSPELL_TOOLS_ALLOWED_PATHS=os.pathsep.join([str(tmp_path / "a"), str(tmp_path / "b")]),
                  LLMSPELL_TRAFFIC="replay", LLMSPELL_CASSETTE_DIR=str(tmp_path / "cas"))
    cfg = load_config(f, env=env)
    assert cfg.get("state.backend") == "memory" and cfg.get("state.path") == str(tmp_path / "s.db")
    assert cfg.enabled("rag") and not cfg.enabled("hooks") and not cfg.enabled("sessions") and cfg.enabled("events")
    assert cfg.allowed_paths() == [tmp_path / "a", tmp_path / "b"]
    assert cfg.traffic == "replay" and cfg.cassette_dir == tmp_path / "cas"


@pytest.mark.parametrize(("var", "value"), [("LLMSPELL_RAG_ENABLED", "maybe"), ("LLMSPELL_TRAFFIC", "offline"),
                                            ("LLMSPELL_STATE_BACKEND", "redis")])
def test_bad_env_values(tmp_path: Path, var: str, value: str) -> None:
    with pytest.raises(ConfigError, match=var):
        load_config(env=env_for(tmp_path, **{var: value}))


# ----------------------------------------------------------------------------- accessors
def test_file_access_sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = load_config(env=env_for(tmp_path))
    assert cfg.file_access_allowed(tmp_path / "x.txt")
    assert cfg.file_access_allowed("relative/file")
    assert not cfg.file_access_allowed("/etc/passwd")
    assert not cfg.file_access_allowed(os.path.join(tmp_path, *[".."] * 12, "etc", "passwd"))
    f = write(tmp_path / "c.toml", "[runtime.security]\nallow_file_access = false\n")
    assert not load_config(f, env=env_for(tmp_path)).file_access_allowed(tmp_path / "x")


def test_masking_and_get_semantics() -> None:
    data = {"providers": {"openai": {"api_key": "sk-1", "api_key_env": "OPENAI_API_KEY", "max_tokens": 5,
                                     "headers": {"Authorization": "Bearer x", "X-Trace": "1"}}},
            "state": {"url": "postgres://u:pw@host/db"}, "tools": {"web_search": {"serpapi_token": "t"}}}
    m = mask_secrets(data)
    assert m["providers"]["openai"]["api_key"] == "***"
    assert m["providers"]["openai"]["api_key_env"] == "OPENAI_API_KEY"
    assert m["providers"]["openai"]["max_tokens"] == 5
    assert m["providers"]["openai"]["headers"] == {"Authorization": "***", "X-Trace": "1"}
    assert m["state"]["url"] == "postgres://u:***@host/db"
    assert m["tools"]["web_search"]["serpapi_token"] == "***"
    cfg = LLMConfig(data={"a": {"b": None, "c": 0}})
    assert cfg.get("a.b", "dflt") == "dflt" and cfg.get("a.c", 9) == 0 and cfg.get("a.x.y") is None
    assert cfg.section("a.c") == {} and cfg.section("zz") == {}
    cfg.set("n.m", 3)
    assert cfg.get("n.m") == 3


def test_to_toml_round_trips_the_effective_config(tmp_path: Path) -> None:
    import tomllib

    cfg = normalize({"providers": {"local": {"base_url": "http://127.0.0.1:1/v1", "headers": {"a b": "c"}}}},
                    env=env_for(tmp_path))
    text = to_toml(cfg.data)
    again = normalize(tomllib.loads(text), path=tmp_path / "x.toml", env=env_for(tmp_path))
    assert again.warnings == []
    assert again.provider("local") == cfg.provider("local")
    assert again.get("rag") == cfg.get("rag")


def test_starter_file_validates_clean(tmp_path: Path) -> None:
    from llmspell.cli.config_cmd import STARTER

    f = write(tmp_path / "llmspell.toml", STARTER)
    cfg = load_config(f, env=env_for(tmp_path))
    assert cfg.warnings == []
