"""llmspell.runtime."""
