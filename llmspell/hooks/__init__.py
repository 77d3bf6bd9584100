"""Hooks: registration and isolated execution around agents, tools, workflows, state, sessions, kernel (§11).

`build_registry(config, services)` is the factory the composition root calls (`services.hooks`).
"""

from __future__ import annotations

from typing import Any

from llmspell.hooks.composite import CompositeHook, ConditionalHook, RetryingHook
from llmspell.hooks.outcome import CONTINUE, HookOutcome, parse_result
from llmspell.hooks.points import POINTS, PRIORITIES, canonical
from llmspell.hooks.registry import HookContext, HookEntry, HookError, HookRegistry, HookSettings
from llmspell.state.settings import as_bool, env_of

__all__ = ["CONTINUE", "POINTS", "PRIORITIES", "CompositeHook", "ConditionalHook", "HookContext", "HookEntry",
           "HookError", "HookOutcome", "HookRegistry", "HookSettings", "RetryingHook", "build_registry",
           "canonical", "parse_result"]


def settings_from(config: Any) -> HookSettings:
    sec = config.get("hooks") if config is not None else None
    sec = sec if isinstance(sec, dict) else {}
    env = env_of(config)
    enabled = as_bool(sec.get("enabled"), True)
    if env.get("LLMSPELL_HOOKS_ENABLED"):
        enabled = as_bool(env["LLMSPELL_HOOKS_ENABLED"], enabled)
    return HookSettings(
        enabled=enabled,
        timeout_ms=int(sec.get("timeout_ms", 5000) or 0),
        rate_limit_per_minute=int(sec.get("rate_limit_per_minute", 0) or 0),
        circuit_breaker_threshold=int(sec.get("circuit_breaker_threshold", 0) or 0),
        max_hooks=int(sec.get("max_hooks", 0) or 0),
    )


def build_registry(config: Any, services: Any = None) -> HookRegistry:
    """The `services.hooks` factory."""
    return HookRegistry(settings_from(config), services)
