"""llmspell.rag."""
