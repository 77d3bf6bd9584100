"""llmspell.debug."""
