"""llmspell.state."""
