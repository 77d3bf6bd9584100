"""llmspell: Lua scripts that orchestrate LLM agents."""

__version__ = "0.1.0"
