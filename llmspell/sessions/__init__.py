"""llmspell.sessions."""
