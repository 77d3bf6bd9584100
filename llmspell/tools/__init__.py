"""llmspell.tools."""
