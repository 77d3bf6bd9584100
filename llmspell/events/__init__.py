"""Events: the publish/subscribe bus of a runtime (lua-api.md §10, `[events]` §20.6).

`build_bus(config, services)` is the factory the composition root calls (`services.events`).
"""

from __future__ import annotations

from typing import Any

from llmspell.events.bus import Event, EventBus, EventError, EventSettings, Subscription
from llmspell.state.settings import as_bool, env_of

__all__ = ["Event", "EventBus", "EventError", "EventSettings", "Subscription", "build_bus", "settings_from"]


def _globs(v: Any) -> tuple[str, ...]:
    if isinstance(v, str):
        return (v,)
    if isinstance(v, list | tuple):
        return tuple(str(x) for x in v)
    return ()


def settings_from(config: Any) -> EventSettings:
    sec = config.get("events") if config is not None else None
    sec = sec if isinstance(sec, dict) else {}
    env = env_of(config)
    enabled = as_bool(sec.get("enabled"), True)
    if env.get("LLMSPELL_EVENTS_ENABLED"):
        enabled = as_bool(env["LLMSPELL_EVENTS_ENABLED"], enabled)
    filt: dict[str, Any] = sec["filtering"] if isinstance(sec.get("filtering"), dict) else {}
    export: dict[str, Any] = sec["export"] if isinstance(sec.get("export"), dict) else {}
    return EventSettings(
        enabled=enabled,
        buffer_size=int(sec.get("buffer_size", 1000)),
        emit_timing_events=as_bool(sec.get("emit_timing_events"), True),
        emit_state_events=as_bool(sec.get("emit_state_events"), True),
        emit_debug_events=as_bool(sec.get("emit_debug_events"), True),
        max_events_per_second=int(sec.get("max_events_per_second", 0) or 0),
        include_types=_globs(filt.get("include_types")),
        exclude_types=_globs(filt.get("exclude_types")),
        export_stdout=as_bool(export.get("stdout"), False),
        export_file=str(export["file"]) if export.get("file") else None,
        pretty_json=as_bool(export.get("pretty_json"), False),
    )


def build_bus(config: Any, services: Any = None) -> EventBus:
    """The `services.events` factory."""
    return EventBus(settings_from(config))
