"""llmspell.providers."""
