"""Hooks: registration and isolated execution around agents, tools, workflows, state, sessions, kernel (§11).

`build_registry(config, services)` is the factory the composition root calls (`services.hooks`).
"""

from __future__ import annotations

from typing import Any

from llmspell.hooks.composite import CompositeHook, ConditionalHook, RetryingHook
from llmspell.hooks.outcome import CONTINUE, HookOutcome, parse_result
from llmspell.hooks.points import POINTS, PRIORITIES, canonical
from llmspell.hooks.registry import HookContext, HookEntry, HookError, HookRegistry, HookSettings
from llmspell.settings import settings_of

__all__ = ["CONTINUE", "POINTS", "PRIORITIES", "CompositeHook", "ConditionalHook", "HookContext", "HookEntry",
           "HookError", "HookOutcome", "HookRegistry", "HookSettings", "RetryingHook", "build_registry",
           "canonical", "parse_result"]


def settings_from(config: Any) -> HookSettings:
    """The `[hooks]` settings config parsed (`config.settings.hooks`)."""
    return settings_of(config).hooks


def build_registry(config: Any, services: Any = None) -> HookRegistry:
    """The `services.hooks` factory."""
    return HookRegistry(settings_from(config), services)
