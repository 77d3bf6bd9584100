"""llmspell.kernel."""
