"""llmspell.agents."""
