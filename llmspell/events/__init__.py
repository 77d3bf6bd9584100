"""Events: the publish/subscribe bus of a runtime (lua-api.md §10, `[events]` §20.6).

`build_bus(config, services)` is the factory the composition root calls (`services.events`).
"""

from __future__ import annotations

from typing import Any

from llmspell.events.bus import Event, EventBus, EventError, EventSettings, Subscription
from llmspell.settings import settings_of

__all__ = ["Event", "EventBus", "EventError", "EventSettings", "Subscription", "build_bus", "settings_from"]


def settings_from(config: Any) -> EventSettings:
    """The `[events]` settings config parsed (`config.settings.events`)."""
    return settings_of(config).events


def build_bus(config: Any, services: Any = None) -> EventBus:
    """The `services.events` factory."""
    return EventBus(settings_from(config))
