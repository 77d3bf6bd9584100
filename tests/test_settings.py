"""Typed settings built once by config (llmspell/settings.py): overrides, precedence, paths, frozenness."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from llmspell import settings as S
from llmspell.config import ConfigError, LLMConfig, Overrides, load_config, log_settings


def _load(tmp_path: Path, toml: str = "", env: dict[str, str] | None = None, **kw: object) -> LLMConfig:
    f = tmp_path / "llmspell.toml"
    f.write_text(toml)
    base = {"HOME": str(tmp_path / "home"), "XDG_DATA_HOME": str(tmp_path / "data")}
    return load_config(f, env={**base, **(env or {})}, **kw)  # type: ignore[arg-type]


def test_settings_are_frozen_and_built_once(tmp_path: Path) -> None:
    cfg = _load(tmp_path, "[hooks]\ntimeout_ms = 250\n")
    s = cfg.settings
    assert s is cfg.settings, "settings are parsed once, not per access"
    assert s.hooks.timeout_ms == 250
    for part in (s.state, s.sessions, s.hooks, s.events, s.workflows, s.rag, s.providers, s.traffic, s.paths, s.log):
        field = dataclasses.fields(part)[0].name
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(part, field, None)


def test_set_rebuilds_the_settings(tmp_path: Path) -> None:
    cfg = _load(tmp_path)
    assert cfg.settings.state.backend == "sqlite"
    cfg.set("state.backend", "memory")
    assert cfg.settings.state.backend == "memory" and cfg.settings.rag.database is None


def test_traffic_override_beats_the_environment(tmp_path: Path) -> None:
    env = {"LLMSPELL_TRAFFIC": "record", "LLMSPELL_CASSETTE_DIR": str(tmp_path / "env"), "LLMSPELL_FAULTS": "429, 500"}
    cfg = _load(tmp_path, env=env)
    assert (cfg.settings.traffic.mode, cfg.settings.traffic.cassette_dir) == ("record", tmp_path / "env")
    assert cfg.settings.traffic.faults == ("429", "500")
    cfg = _load(tmp_path, env=env, overrides=Overrides(traffic="Replay", cassette_dir=tmp_path / "cli"))
    assert (cfg.settings.traffic.mode, cfg.settings.traffic.cassette_dir) == ("replay", tmp_path / "cli")


def test_a_bad_traffic_override_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match='--traffic "offline" is not a traffic mode'):
        _load(tmp_path, overrides=Overrides(traffic="offline"))


def test_rag_precedence_file_then_app_default_then_env_then_flag(tmp_path: Path) -> None:
    off = "[rag]\nenabled = false\n"
    assert _load(tmp_path, off).settings.rag.enabled is False
    app = Overrides(defaults={"rag.enabled": True})
    assert _load(tmp_path, off, overrides=app).settings.rag.enabled is True
    assert _load(tmp_path, off, env={"LLMSPELL_RAG_ENABLED": "0"}, overrides=app).settings.rag.enabled is False
    flag = Overrides(rag_enabled=True, defaults={"rag.enabled": True})
    assert _load(tmp_path, off, env={"LLMSPELL_RAG_ENABLED": "0"}, overrides=flag).settings.rag.enabled is True


def test_a_mapping_of_dotted_keys_is_an_override(tmp_path: Path) -> None:
    cfg = _load(tmp_path, "[events]\nbuffer_size = 5\n", overrides={"events.buffer_size": 7, "hooks.enabled": False})
    assert cfg.settings.events.buffer_size == 7 and cfg.settings.hooks.enabled is False
    assert cfg.get("events.buffer_size") == 7, "the effective dict (Config global, config show) shows overrides too"


def test_flags_from_a_parsed_command_line() -> None:
    import argparse

    o = Overrides.from_args(argparse.Namespace(traffic="replay", rag=True, trace="debug"), cassette_dir="c")
    assert (o.traffic, o.rag_enabled, o.log, o.cassette_dir) == ("replay", True, "debug", "c")
    assert Overrides.from_args(argparse.Namespace()) == Overrides()


def test_log_settings() -> None:
    assert log_settings(None, {}).spec == "warn"
    assert log_settings(None, {"LLMSPELL_LOG": "info"}).spec == "info"
    assert log_settings("debug", {"LLMSPELL_LOG": "info"}).spec == "debug"
    assert log_settings(None, {"LLMSPELL_OTEL": "otlp"}).otel == "otlp"
    assert log_settings(None, {"LLMSPELL_OTEL": "yes"}).otel == "console"
    assert log_settings(None, {"LLMSPELL_OTEL": "off"}).otel is None


def test_paths_have_one_rule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no llmspell.toml to discover
    env = {"HOME": str(tmp_path / "h")}
    assert S.data_dir(env) == tmp_path / "h" / ".local" / "share" / "llmspell"
    assert S.config_dir(env) == tmp_path / "h" / ".config" / "llmspell"
    env = {**env, "XDG_DATA_HOME": str(tmp_path / "d"), "XDG_CONFIG_HOME": str(tmp_path / "c")}
    assert S.default_state_db(env) == tmp_path / "d" / "llmspell" / "state.sqlite3"
    assert S.repl_history_file(env) == tmp_path / "d" / "llmspell" / "repl_history"
    assert S.trust_store_file(env) == tmp_path / "c" / "llmspell" / "trusted-configs.json"
    cfg = load_config(None, env={**env, "LLMSPELL_CONFIG": ""})
    p = cfg.settings.paths
    assert p.state_db == cfg.state_database_path() == cfg.settings.state.path == S.default_state_db(env)
    assert cfg.settings.rag.database == p.state_db, "RAG's vectors live in the state database"


def test_kernel_files_share_the_runtime_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path))
    assert S.kernel_connection_file("ab") == tmp_path / "kernel-llmspell-ab.json"
    assert S.kernel_registry_file(7) == tmp_path / "llmspell-pid-7.json"
    assert S.kernel_log_file(Path("/x/kernel-llmspell-ab.json")) == tmp_path / "kernel-llmspell-ab.log"
    assert S.kernel_resume_file(7, "cd").name.startswith(S.KERNEL_RESUME_PREFIX)


@pytest.mark.parametrize("name", ["State.DB", "x.SQLite", "y.sqlite3"])
def test_rag_persistence_file_suffix_is_case_insensitive(tmp_path: Path, name: str) -> None:
    cfg = _load(tmp_path, f'[rag]\nenabled = true\npersistence_path = "{tmp_path / name}"\n')
    assert cfg.settings.rag.database == tmp_path / name


def test_raw_layouts_still_read(tmp_path: Path) -> None:
    """Hand-built configs (tests, benchmarks) in the nested layout give the same settings."""
    cfg = LLMConfig(data={"runtime": {"sessions": {"max_sessions": 3}, "state_persistence": {"enabled": False}}},
                    env={"LLMSPELL_HOOKS_ENABLED": "0"})
    assert cfg.settings.sessions.max_sessions == 3 and cfg.settings.state.backend == "memory"
    assert cfg.settings.hooks.enabled is False


def test_a_bad_workflow_retention_fails_at_load(tmp_path: Path) -> None:
    cfg = LLMConfig(data={"workflows": {"state_retention": "forever"}}, env={})
    with pytest.raises(ValueError, match="state_retention"):
        cfg.settings  # noqa: B018


def test_cli_flags_do_not_touch_the_process_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from llmspell.cli.main import main
    from llmspell.providers import traffic

    for var in ("LLMSPELL_TRAFFIC", "LLMSPELL_RAG_ENABLED", "LLMSPELL_CASSETTE_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.toml").write_text(f'[state]\npath = "{tmp_path / "s.sqlite3"}"\n')
    (tmp_path / "x.lua").write_text('print(RAG ~= nil)\n')
    before = dict(os.environ)
    with traffic.use("live"):
        assert main(["run", "-c", str(tmp_path / "c.toml"), "--rag", "--traffic", "replay", str(tmp_path / "x.lua")]) == 0
        assert traffic.installed().mode == "replay"
        assert traffic.installed().directory == str(tmp_path / "cassettes" / "default")
    assert capsys.readouterr().out.strip() == "true"
    assert dict(os.environ) == before


def test_kernel_daemon_gets_the_flags_as_its_environment() -> None:
    """`kernel start --daemon --traffic replay --rag`: the flags cross the process boundary as variables."""
    import argparse

    from llmspell.cli.kernel_cmd import daemon_env

    base = {"JPY_PARENT_PID": "1", "LLMSPELL_TRAFFIC": "live", "PATH": "/bin"}
    env = daemon_env(argparse.Namespace(traffic="replay", rag=True), base)
    assert env == {"LLMSPELL_TRAFFIC": "replay", "LLMSPELL_RAG_ENABLED": "1", "PATH": "/bin"}
    assert daemon_env(argparse.Namespace(), base) == {"LLMSPELL_TRAFFIC": "live", "PATH": "/bin"}


def test_runtime_and_kernel_settings(tmp_path: Path) -> None:
    cfg = _load(tmp_path, "[runtime]\nscript_timeout_seconds = 4\ninterrupt_grace_seconds = 1\n"
                          "[runtime.security]\nmax_execution_time_ms = 2500\n[engines.lua]\nmax_memory_bytes = 1000000\n"
                          '[kernel]\nip = "127.0.0.2"\ninterrupt_mode = "message"\n[kernel.debug]\nenabled = false\n')
    r, k = cfg.settings.runtime, cfg.settings.kernel
    assert (r.time_limit, r.interrupt_grace_seconds, r.max_memory_bytes) == (2.5, 1.0, 1000000)
    assert (k.ip, k.interrupt_mode, k.debug_enabled) == ("127.0.0.2", "message", False)
    assert _load(tmp_path).settings.runtime.time_limit is None
