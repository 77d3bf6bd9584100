"""The `Tool` global (lua-api.md §4): invoke/execute, list, get, exists, categories, discover, Tool.<name>."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from llmspell.script.bridge import LuaApiError, type_name
from llmspell.tools.base import ToolError
from llmspell.tools.invoke import ToolInvoker, shared_invoker
from llmspell.tools.registry import ToolRegistry

if TYPE_CHECKING:
    from llmspell.script.engine import ScriptRuntime

log = logging.getLogger("llmspell.tools")


def tool_service(rt: ScriptRuntime) -> tuple[ToolRegistry, ToolInvoker]:
    """The runtime's registry and invoker (built here when bootstrap did not provide a registry)."""
    services = rt.services
    reg = services.tools
    if not isinstance(reg, ToolRegistry):
        reg = ToolRegistry(rt.config, services)
        services.tools = reg
    return reg, shared_invoker(services)


def install(rt: ScriptRuntime) -> None:
    b = rt.bridge
    reg, inv = tool_service(rt)
    T = b.table()
    cache: dict[str, Any] = {}

    def _params(fname: str, params: Any) -> dict[str, Any]:
        if params is None:
            return {}
        if not b.is_table(params):
            raise LuaApiError(f"{fname}: params must be a table, got {type_name(params)} (e.g. {{operation = ...}})")
        try:
            value = b.to_py(params)
        except LuaApiError as e:
            raise LuaApiError(f"{fname}: params: {e} (parameters must be plain data)") from None
        if isinstance(value, list):
            raise LuaApiError(f"{fname}: params must be a table of named parameters, got an array")
        return value

    def call(fname: str, name: Any, params: Any) -> Any:
        if not isinstance(name, str):
            raise LuaApiError(f"{fname}: tool name must be a string, got {type_name(name)} (e.g. 'file_operations')")
        py = _params(fname, params)
        try:
            return inv.invoke(name, py, rt.block_on)
        except ToolError as e:
            raise LuaApiError(f"{fname}: {e}") from None

    def invoke(name: Any = None, params: Any = None) -> Any:
        return call("Tool.invoke", name, params)

    def execute(name: Any = None, params: Any = None) -> Any:
        return call("Tool.execute", name, params)

    def _discovery(point: str, data: dict[str, Any]) -> None:
        hooks = rt.services.hooks
        if hooks is not None and hooks.active(point):
            hooks.run(point, data, component=("tool", "registry"))

    def list_(*_a: Any) -> Any:
        _discovery("BeforeToolDiscovery", {"filter": {}})
        tools = reg.summaries()
        _discovery("AfterToolDiscovery", {"tools": [t["name"] for t in tools]})
        return tools

    def get(name: Any = None) -> Any:
        if not isinstance(name, str):
            return None
        spec = reg.resolve(name)
        if spec is None:
            return None
        return _tool_table(spec.name, with_schema_fn=False)

    def exists(name: Any = None) -> bool:
        return isinstance(name, str) and reg.exists(name)

    def categories(*_a: Any) -> Any:
        return reg.categories()

    def discover(filt: Any = None) -> Any:
        f = b.to_py(filt) if b.is_table(filt) else {}
        if not isinstance(f, dict):
            raise LuaApiError("Tool.discover: filter must be a table {category?, tag?}")
        _discovery("BeforeToolDiscovery", {"filter": f})
        cat = f.get("category")
        tag = f.get("tag")
        tools = reg.discover(cat if isinstance(cat, str) else None, tag if isinstance(tag, str) else None)
        _discovery("AfterToolDiscovery", {"tools": [t["name"] for t in tools]})
        return tools

    def _tool_table(name: str, with_schema_fn: bool) -> Any:
        key = name + ("#idx" if with_schema_fn else "")
        t = cache.get(key)
        if t is not None:
            return t
        spec = reg.require(name)
        info = reg.info(spec)
        t = b.to_lua(info)
        label = f"Tool.{name}"

        def run(self_: Any = None, params: Any = None) -> Any:
            is_self = b.is_table(self_) and self_["execute"] is not None and self_["schema"] is not None
            if params is None and b.is_table(self_) and not is_self:
                params = self_  # called with a dot: Tool.get(n).execute(params)
            return call(f"{label}:execute", name, params)

        t.execute = b.function(run, f"{label}:execute")
        if with_schema_fn:
            t.getSchema = b.function(lambda *_a: spec.schema(), f"{label}.getSchema")
        cache[key] = t
        return t

    def index(key: Any) -> Any:
        if not isinstance(key, str):
            return None
        spec = reg.resolve(key)
        if spec is None:
            return None
        return _tool_table(spec.name, with_schema_fn=True)

    b.set_functions(T, {"invoke": invoke, "execute": execute, "list": list_, "get": get, "exists": exists,
                        "categories": categories, "discover": discover}, "Tool")
    b.m.set_index(T, index, b.for_coroutines(index))
    rt.G.Tool = T
