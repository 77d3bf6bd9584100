"""Registry rules: key lookup order (§2.4), key-not-needed cases, base URL normalization, presets."""

from __future__ import annotations

import pytest

from llmspell.providers import traffic
from llmspell.providers.base import MissingKeyError
from llmspell.providers.registry import is_loopback, normalize_base_url
from tests.providers.conftest import make_registry


def test_key_lookup_order() -> None:
    data = {"providers": {"openai": {"api_key_env": "MY_OPENAI", "api_key": "from-file"}}}
    env = {"LLMSPELL_PROVIDER_OPENAI_API_KEY": "p1", "LLMSPELL_OPENAI_API_KEY": "p2", "MY_OPENAI": "p3",
           "OPENAI_API_KEY": "p4"}
    order = ["LLMSPELL_PROVIDER_OPENAI_API_KEY", "LLMSPELL_OPENAI_API_KEY", "MY_OPENAI", "OPENAI_API_KEY"]
    expected = ["p1", "p2", "p3", "p4"]
    for i in range(len(order)):
        reg = make_registry(data, env={k: env[k] for k in order[i:]})
        assert reg.find_key("openai", "explicit") == "explicit"
        assert reg.find_key("openai") == expected[i]
    assert make_registry(data, env={}).find_key("openai") == "from-file"
    assert make_registry({}, env={}).find_key("openai") is None


def test_dashes_in_provider_names_map_to_underscores() -> None:
    reg = make_registry({"providers": {"my-gw": {"base_url": "https://gw.test/v1"}}},
                        env={"LLMSPELL_PROVIDER_MY_GW_API_KEY": "k"})
    assert reg.find_key("my-gw") == "k"
    assert reg.key_variable("my-gw") == "LLMSPELL_PROVIDER_MY_GW_API_KEY"


@pytest.mark.parametrize(("data", "name", "needed"), [
    ({}, "ollama", False),
    ({"providers": {"local": {"base_url": "http://127.0.0.1:8080"}}}, "local", False),
    ({"providers": {"local": {"base_url": "http://localhost:8080/v1"}}}, "local", False),
    ({"providers": {"local": {"base_url": "http://[::1]:8080/v1"}}}, "local", False),
    ({"providers": {"gw": {"base_url": "https://gw.test/v1", "api_key_required": False}}}, "gw", False),
    ({"providers": {"gw": {"base_url": "https://gw.test/v1"}}}, "gw", True),
    ({}, "openai", True),
    ({}, "groq", True),
])
def test_key_needed(data: dict, name: str, needed: bool) -> None:
    reg = make_registry(data, env={})
    assert reg.key_needed(name) is needed
    if needed:
        with pytest.raises(MissingKeyError):
            reg.endpoint(name)
    else:
        assert reg.endpoint(name).api_key is None


def test_replay_needs_no_key(tmp_path: object) -> None:
    reg = make_registry({}, env={})
    with traffic.use("replay", str(tmp_path)):
        assert reg.key_needed("openai") is False and reg.is_available("openai")
    assert not reg.is_available("openai")


def test_base_url_normalization() -> None:
    assert normalize_base_url("openai", "http://127.0.0.1:8080") == "http://127.0.0.1:8080/v1"
    assert normalize_base_url("openai", "http://127.0.0.1:8080/") == "http://127.0.0.1:8080/v1"
    assert normalize_base_url("openai", "https://x.test/openai/v1/") == "https://x.test/openai/v1"
    assert normalize_base_url("anthropic", "https://api.anthropic.com/v1") == "https://api.anthropic.com"
    assert normalize_base_url("ollama", "localhost:11434") == "http://localhost:11434"
    assert is_loopback("http://127.5.0.1/") and not is_loopback("http://10.0.0.1/")


def test_presets_and_env_overrides() -> None:
    reg = make_registry({}, env={"LLMSPELL_PROVIDER_GROQ_MODEL": "llama3", "LLMSPELL_PROVIDER_GROQ_TIMEOUT": "9",
                                 "LLMSPELL_PROVIDER_GROQ_MAX_RETRIES": "5", "OLLAMA_HOST": "gpu.test:11434",
                                 "LLMSPELL_PROVIDER_NEWP_BASE_URL": "https://newp.test"})
    assert reg.base_url("groq") == "https://api.groq.com/openai/v1"
    assert reg.base_url("gemini") == "https://generativelanguage.googleapis.com/v1beta/openai"
    spec = reg.spec("groq")
    assert spec is not None and spec.default_model == "llama3" and spec.timeout_seconds == 9
    assert spec.max_retries == 5
    assert reg.base_url("ollama") == "http://gpu.test:11434"
    assert reg.has("newp") and reg.base_url("newp") == "https://newp.test/v1"
    assert reg.resolve(None, "groq") == ("groq", "llama3")


def test_nested_layout_and_aliases() -> None:
    reg = make_registry({"providers": {"default_provider": "local",
                                       "providers": {"local": {"api_base": "http://127.0.0.1:9000",
                                                               "type": "openai_compatible", "model": "m1",
                                                               "timeout": 5, "retry_attempts": 1}}}}, env={})
    spec = reg.spec("local")
    assert spec is not None and spec.kind == "openai" and spec.default_model == "m1"
    assert (spec.timeout_seconds, spec.max_retries) == (5.0, 1)
    assert reg.resolve("gpt-x", None) == ("local", "gpt-x")
    assert reg.resolve(None, None) == ("local", "m1")
