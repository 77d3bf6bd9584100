"""The `[sessions]` settings: defined once in `llmspell.settings` (built by config), re-exported for sessions."""

from __future__ import annotations

from llmspell.settings import SessionSettings

__all__ = ["SessionSettings"]
