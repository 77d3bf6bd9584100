"""llmspell.script."""
