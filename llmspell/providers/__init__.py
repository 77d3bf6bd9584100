"""LLM providers: wire-format adapters (OpenAI, Anthropic, Ollama), registry, retries, cost, traffic modes."""

from llmspell.providers.base import (
    ChatMessage,
    ChatRequest,
    ChatResponse,
    ProviderError,
    Usage,
)

__all__ = ["ChatMessage", "ChatRequest", "ChatResponse", "ProviderError", "Usage"]
