"""llmspell.repl."""
