"""llmspell.workflows."""
