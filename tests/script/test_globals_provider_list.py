"""Provider.list (lua-api.md §3, issue 21.3): configured providers only; {all = true} adds built-ins and presets."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ALL = "anthropic,deepseek,gemini,groq,mistral,ollama,openai,openrouter,together"


@pytest.fixture
def make_rt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Any]]:
    """A runtime from config TOML text and extra environment variables (the suite clears keys first)."""
    from llmspell.bootstrap import create_runtime
    from llmspell.config import load_config
    from llmspell.script.engine import BufferSink

    monkeypatch.setenv("LLMSPELL_STATE_PATH", str(tmp_path / "state.sqlite3"))
    made: list[Any] = []

    def make(toml: str = "", **env: str) -> Any:
        cfg = tmp_path / f"c{len(made)}.toml"
        cfg.write_text(toml)
        rt = create_runtime(load_config(cfg, env={**os.environ, **env}), stdout=BufferSink(), stderr=BufferSink())
        made.append(rt)
        return rt

    yield make
    for rt in made:
        rt.close()


def names(rt: Any, call: str = "Provider.list()") -> str:
    code = f"local t = {{}} for i, p in ipairs({call}) do t[i] = p.name end return table.concat(t, ',')"
    return str(rt.run_string(code, "=t").values[0])


def test_nothing_configured_lists_nothing(make_rt: Callable[..., Any]) -> None:
    rt = make_rt()
    assert names(rt) == ""
    assert rt.run_string("return #Provider.list()", "=t").values[0] == 0
    # scripts written for the reference concatenate the names: that must not crash
    assert rt.run_string("return 'providers: ' .. table.concat(Provider.list(), ', ')", "=t").values[0] == \
        "providers: "


def test_all_adds_builtins_and_presets(make_rt: Callable[..., Any]) -> None:
    rt = make_rt()
    assert names(rt, "Provider.list({all = true})") == ALL
    assert names(rt, "Provider.list({all = false})") == ""


def test_key_set_or_named_in_config_counts_as_configured(make_rt: Callable[..., Any]) -> None:
    rt = make_rt('[providers.local]\nbase_url = "http://127.0.0.1:9"\n[providers.mistral]\ndefault_model = "m"\n',
                 GROQ_API_KEY="gsk-test", LLMSPELL_PROVIDER_DEEPSEEK_BASE_URL="http://127.0.0.1:9/v1")
    assert names(rt) == "deepseek,groq,local,mistral"
    assert names(rt, "Provider.list({all = true})") == ALL.replace("groq,", "groq,local,")
    rt2 = make_rt(OPENAI_API_KEY="sk-test")
    listed = rt2.run_string("local l = Provider.list() return l[1].name, l[1].has_key, l[1].api_key", "=t").values
    assert list(listed) == ["openai", True, None]  # the key itself is never included


def test_bad_opts_raise(make_rt: Callable[..., Any]) -> None:
    from llmspell.script.engine import ScriptError

    rt = make_rt()
    with pytest.raises(ScriptError, match="Provider.list: opts must be a table"):
        rt.run_string("return Provider.list('all')", "=t")
