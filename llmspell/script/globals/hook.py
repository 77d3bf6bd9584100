"""The `Hook` global (lua-api.md §11) over `services.hooks`; attaches the runtime for Lua hook calls."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from llmspell.hooks import HookError
from llmspell.script.bridge import LuaApiError, lua_type
from llmspell.script.protocols import HookService

if TYPE_CHECKING:
    from llmspell.script.engine import ScriptRuntime

log = logging.getLogger("llmspell.hooks")


def install(rt: ScriptRuntime) -> None:
    b = rt.bridge
    services = rt.services
    reg = services.hooks
    if reg is not None:
        reg.attach(rt)
        rt.on_close(lambda: _shutdown(rt))
    T = b.table()

    def registry(fname: str) -> HookService:
        if services.hooks is None:
            raise LuaApiError(f"Hook.{fname}: hooks are not available in this runtime")
        return services.hooks

    def handle_id(fname: str, h: Any) -> str:
        if isinstance(h, str):
            return h
        entry = Handle.handle_of(h)
        if entry is None:
            raise LuaApiError(f"Hook.{fname}: expected a HookHandle (from Hook.register) or a hook id string")
        return str(entry.id)

    def h_id(entry: Any) -> str:
        return str(entry.id)

    def h_point(entry: Any) -> str:
        return str(entry.point)

    def h_unregister(entry: Any) -> bool:
        return bool(registry("unregister").unregister(entry.id))

    Handle = b.klass("HookHandle", {"id": h_id, "hook_point": h_point, "unregister": h_unregister},
                     tostring=lambda e: f"HookHandle({e.id}, {e.point})")

    def register(point: Any, fn: Any = None, priority: Any = None) -> Any:
        if not isinstance(point, str):
            raise LuaApiError("Hook.register: point must be a string (e.g. 'BeforeAgentExecution')")
        if lua_type(fn) != "function":
            raise LuaApiError("Hook.register: fn must be a function(ctx) returning nil, a string or a result table")
        if priority is not None and not isinstance(priority, str):
            raise LuaApiError("Hook.register: priority must be 'highest', 'high', 'normal', 'low' or 'lowest'")
        try:
            entry = registry("register").register(point, fn, priority or "normal", language="lua")
        except HookError as e:
            raise LuaApiError(f"Hook.register: {e}") from None
        return Handle.new(entry)

    def unregister(h: Any) -> bool:
        return bool(registry("unregister").unregister(handle_id("unregister", h)))

    def list_(flt: Any = None) -> Any:
        kw: dict[str, Any] = {}
        if isinstance(flt, str):
            kw["point"] = flt
        elif flt is not None:
            f = b.to_py(flt)
            if not isinstance(f, dict):
                raise LuaApiError("Hook.list: filter must be a point name or {hook_point?, language?, priority?, tag?}")
            kw = {"point": f.get("hook_point"), "language": f.get("language"), "priority": f.get("priority"),
                  "tag": f.get("tag")}
        try:
            entries = registry("list").list(**kw)
        except HookError as e:
            raise LuaApiError(f"Hook.list: {e}") from None
        return b.array(e.info() for e in entries)

    b.set_functions(T, {"register": register, "unregister": unregister, "list": list_}, "Hook")
    rt.G.Hook = T


def _shutdown(rt: ScriptRuntime) -> None:
    """Fire SystemShutdown at runtime close (only where Lua may run: the Lua thread)."""
    reg = rt.services.hooks
    if reg is None:
        return
    try:
        if reg.active("SystemShutdown") and rt.on_lua_thread():
            reg.run("SystemShutdown", {}, component=("system", "runtime"))
    finally:
        reg.close()
