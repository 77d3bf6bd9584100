"""The `Event` global (lua-api.md §10) over `services.events`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llmspell.events import EventError
from llmspell.script.bridge import LuaApiError, check_type
from llmspell.script.protocols import EventService

if TYPE_CHECKING:
    from llmspell.script.engine import ScriptRuntime


def install(rt: ScriptRuntime) -> None:
    b = rt.bridge
    services = rt.services
    T = b.table()

    def bus(fname: str) -> EventService:
        if services.events is None:
            raise LuaApiError(f"Event.{fname}: events are not available in this runtime")
        return services.events

    def publish(event_type: Any, data: Any = None, opts: Any = None) -> bool:
        check_type(event_type, "string", "Event.publish", "event_type")
        if not event_type:
            raise LuaApiError("Event.publish: event_type must be a non-empty string (e.g. 'app.step.done')")
        py = b.to_py(data) if data is not None else {}
        o = b.to_py(opts) if opts is not None else {}
        if not isinstance(o, dict):
            raise LuaApiError("Event.publish: opts must be a table {correlation_id?, ttl_seconds?, language?}")
        ttl = o.get("ttl_seconds")
        if ttl is not None and not isinstance(ttl, int | float):
            raise LuaApiError("Event.publish: opts.ttl_seconds must be a number")
        corr = o.get("correlation_id")
        return bool(bus("publish").publish(event_type, py, correlation_id=str(corr) if corr else None,
                                           ttl_seconds=ttl, language=str(o.get("language") or "lua"),
                                           source="lua"))

    def subscribe(pattern: Any, opts: Any = None) -> str:
        check_type(pattern, "string", "Event.subscribe", "pattern")
        o = b.to_py(opts) if opts is not None else {}
        size = o.get("buffer_size") if isinstance(o, dict) else None
        if size is not None and not isinstance(size, int):
            raise LuaApiError("Event.subscribe: opts.buffer_size must be an integer > 0")
        try:
            return bus("subscribe").subscribe(pattern, buffer_size=size)
        except EventError as e:
            raise LuaApiError(f"Event.subscribe: {e}") from None

    def receive(sub_id: Any, timeout_ms: Any = None) -> Any:
        check_type(sub_id, "string", "Event.receive", "sub_id")
        if timeout_ms is None:
            timeout_ms = 5000
        check_type(timeout_ms, "number", "Event.receive", "timeout_ms")
        bb = bus("receive")
        try:
            ev = bb.receive(sub_id, max(0.0, float(timeout_ms)) / 1000.0, check=rt.check_interrupt)
        except EventError as e:
            raise LuaApiError(f"Event.receive: {e}") from None
        return None if ev is None else ev.as_dict(bb.id)

    def unsubscribe(sub_id: Any) -> bool:
        check_type(sub_id, "string", "Event.unsubscribe", "sub_id")
        return bool(bus("unsubscribe").unsubscribe(sub_id))

    def list_subscriptions() -> Any:
        return b.array(bus("list_subscriptions").list_subscriptions())

    def get_stats() -> Any:
        return bus("get_stats").stats()

    b.set_functions(T, {"publish": publish, "emit": publish, "subscribe": subscribe, "receive": receive,
                        "unsubscribe": unsubscribe, "list_subscriptions": list_subscriptions,
                        "get_stats": get_stats}, "Event")
    rt.G.Event = T
