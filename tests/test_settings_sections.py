"""`[debug]`, `[tools]` and `[runtime.security]` as typed settings (llmspell/settings.py), and no raw reads left."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from llmspell import settings as S
from llmspell.config import LLMConfig, load_config
from llmspell.tools.registry import ToolRegistry

ROOT = Path(__file__).resolve().parents[1] / "llmspell"
SECTIONS = ("debug", "tools", "runtime", "state", "rag", "events", "sessions", "hooks", "kernel", "workflows",
            "providers", "engines")


def _load(tmp_path: Path, toml: str, env: dict[str, str] | None = None) -> LLMConfig:
    f = tmp_path / "llmspell.toml"
    f.write_text(toml)
    return load_config(f, env={"HOME": str(tmp_path / "home"), **(env or {})})


def test_debug_settings(tmp_path: Path) -> None:
    s = _load(tmp_path, '[debug]\nlevel = "WARNING"\nmodule_filters = ["app.*"]\ndefault_filter_enabled = false\n'
                        'output = "logs/debug.log"\n').settings.debug
    assert (s.enabled, s.level, s.module_filters, s.default_filter_enabled) == (True, "warn", ("app.*",), False)
    assert s.output == tmp_path / "logs" / "debug.log", "relative to the config file's folder"
    assert _load(tmp_path, '[debug]\noutput = "stderr"\n').settings.debug.output is None
    nested = S.Settings.build({"runtime": {"debug": False}}, {}).debug
    assert nested.enabled is False and nested.level == "info"


def test_the_debug_global_follows_its_settings(tmp_path: Path) -> None:
    from llmspell.bootstrap import create_runtime
    from llmspell.script.engine import BufferSink

    log = tmp_path / "debug.log"
    cfg = _load(tmp_path, f'[debug]\nlevel = "warn"\noutput = "{log}"\n',
                env={"LLMSPELL_STATE_BACKEND": "memory"})
    err = BufferSink()
    rt = create_runtime(cfg, stdout=BufferSink(), stderr=err)
    try:
        rt.run_string('Debug.info("quiet", "m"); Debug.warn("loud", "m")', "=t")
    finally:
        rt.close()
    text = log.read_text()
    assert "loud" in text and "quiet" not in text, "level from settings.debug, lines to settings.debug.output"


def test_tool_tables_are_read_only_and_match_spellings(tmp_path: Path) -> None:
    cfg = _load(tmp_path, "[tools]\nrate_limit_per_minute = 7\n[tools.file-operations]\nmax_file_size = 10\n"
                          '[tools.custom.my_tool]\ngreeting = "hi"\n')
    t = cfg.settings.tools
    assert t.enabled and t.rate_limit_per_minute == 7 and not t.roots_from_env
    assert t.tool("file_operations")["max_file_size"] == 10 and t.tool("my_tool")["greeting"] == "hi"
    assert dict(t.tool("nothing")) == {}
    with pytest.raises(TypeError):
        t.tool("file_operations")["max_file_size"] = 1  # type: ignore[index]
    reg = ToolRegistry(cfg)
    assert reg.section("file_operations")["max_file_size"] == 10 and reg.limiter is not None
    with pytest.raises(TypeError):
        reg.section("file_operations")["allowed_paths"] = ["/"]  # type: ignore[index]


def test_allowed_paths_from_the_environment_are_marked(tmp_path: Path) -> None:
    roots = os.pathsep.join([str(tmp_path / "a"), str(tmp_path / "b")])
    t = _load(tmp_path, '[tools.file_operations]\nallowed_paths = ["/etc"]\n',
              env={"LLMSPELL_TOOLS_ALLOWED_PATHS": roots}).settings.tools
    assert t.roots_from_env and t.allowed_paths == (str(tmp_path / "a"), str(tmp_path / "b"))
    raw = S.Settings.build({"tools": {"file_operations": {"allowed_paths": ["/x"]}}},
                           {"LLMSPELL_TOOLS_ALLOWED_PATHS": str(tmp_path)}).tools
    assert raw.allowed_paths == (str(tmp_path),), "raw layouts get the environment's roots too"


def test_security_settings_reach_tools_and_the_config_global(tmp_path: Path) -> None:
    cfg = _load(tmp_path, "[runtime.security]\nallow_network_access = false\nallow_process_spawn = true\n")
    sec = cfg.settings.security
    assert (sec.allow_file_access, sec.allow_network_access, sec.allow_process_spawn) == (True, False, True)
    reg = ToolRegistry(cfg)
    assert reg.context(reg.require("http_request")).security is sec
    assert ToolRegistry().security == S.SecuritySettings()


def test_debug_cells_dir_keeps_the_jupyterlab_marker() -> None:
    d = S.debug_cells_dir(1234)
    assert d.name == "llmspell-ipykernel_1234" and "ipykernel_" in str(d)
    assert str(d.parent) in S.temp_dirs()


def _raw_reads() -> list[str]:
    """Calls that read a config section raw: `x.get("debug.level")`, `x.section("tools")`, `cfg.get("tools")`..."""
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        if path.parent == ROOT and path.name in ("config.py", "settings.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args
                    and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                continue
            key, method = node.args[0].value, node.func.attr
            top = key.split(".", 1)[0]
            receiver = ast.unparse(node.func.value)
            dotted = "." in key and top in SECTIONS and method == "get"
            named = top in SECTIONS and (method in ("section", "tool", "enabled")
                                         or (method == "get" and receiver.rsplit(".", 1)[-1] in ("config", "cfg")))
            if dotted or named:
                found.append(f"{path.relative_to(ROOT.parent)}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_module_reads_raw_config_sections() -> None:
    assert _raw_reads() == [], "read the typed settings (settings_of(config).<part>) instead"


@pytest.mark.parametrize("src", ['cfg.get("debug.level")', 'self.config.section("tools")', 'config.get("runtime")'])
def test_the_walk_finds_every_form(tmp_path: Path, src: str, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "llmspell"
    pkg.mkdir()
    (pkg / "mod.py").write_text(f"def f(cfg, self, config):\n    return {src}\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["ROOT"]), "ROOT", pkg)
    assert len(_raw_reads()) == 1
