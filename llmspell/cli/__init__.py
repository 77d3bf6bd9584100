"""llmspell.cli."""
