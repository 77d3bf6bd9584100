"""Fixtures for provider tests: a registry on fake endpoints, live traffic, instant backoff."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from llmspell.config import LLMConfig
from llmspell.providers import retry, traffic
from llmspell.providers.registry import ProviderRegistry, registry_from_config

OPENAI = "https://api.openai.test/v1"
ANTHROPIC = "https://api.anthropic.test"
OLLAMA = "http://ollama.test:11434"

ENV = {
    "OPENAI_API_KEY": "sk-test-openai",
    "ANTHROPIC_API_KEY": "sk-ant-test",
    "LLMSPELL_PROVIDER_OPENAI_BASE_URL": OPENAI,
    "LLMSPELL_PROVIDER_ANTHROPIC_BASE_URL": ANTHROPIC,
    "LLMSPELL_PROVIDER_OLLAMA_BASE_URL": OLLAMA,
}


@pytest.fixture(autouse=True)
def _live_traffic() -> Iterator[None]:
    """Provider unit tests talk to respx mocks through the live transport."""
    with traffic.use("live"):
        yield


@pytest.fixture
def delays(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record retry backoff delays instead of sleeping."""
    seen: list[float] = []

    async def fake_sleep(s: float) -> None:
        seen.append(s)

    monkeypatch.setattr(retry, "sleep", fake_sleep)
    return seen


def make_registry(data: dict[str, Any] | None = None, env: dict[str, str] | None = None) -> ProviderRegistry:
    return registry_from_config(LLMConfig(data=data or {}, env=dict(ENV if env is None else env)))


@pytest.fixture
def reg() -> ProviderRegistry:
    return make_registry()
