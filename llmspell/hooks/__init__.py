"""llmspell.hooks."""
