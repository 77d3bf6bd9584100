"""The `[state]` settings: defined once in `llmspell.settings` (built by config), re-exported for the state package."""

from __future__ import annotations

from llmspell.settings import StateSettings, as_bool, state_db_file

__all__ = ["StateSettings", "as_bool", "state_db_file"]
