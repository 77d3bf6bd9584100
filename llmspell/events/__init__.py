"""llmspell.events."""
