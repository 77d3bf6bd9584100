"""The `Provider` global (lua-api.md §3): list, get, getCapabilities, isAvailable; never shows keys."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llmspell.script.bridge import LuaApiError, type_name
from llmspell.script.checks import need_str

if TYPE_CHECKING:
    from llmspell.script.engine import ScriptRuntime


def install(rt: ScriptRuntime) -> None:
    b = rt.bridge
    P = b.table()

    def reg() -> Any:
        r = rt.services.providers
        if r is None:
            raise LuaApiError("Provider: the provider registry is not available in this runtime")
        return r

    def _name(fname: str, name: Any) -> str:
        return need_str(name, fname, "name", "'openai'")

    def list_(opts: Any = None) -> Any:
        if opts is not None and not b.is_table(opts):
            raise LuaApiError(f"Provider.list: opts must be a table like {{all = true}}, got {type_name(opts)}")
        o = b.to_py(opts) if opts is not None else {}
        everything = isinstance(o, dict) and o.get("all") is True
        r = reg()
        return [r.info(n) for n in (r.names() if everything else r.configured_names())]

    def get(name: Any = None) -> Any:
        return reg().info(_name("Provider.get", name))

    def capabilities(name: Any = None) -> Any:
        info = reg().info(_name("Provider.getCapabilities", name))
        return info["capabilities"] if info else None

    def available(name: Any = None) -> bool:
        return bool(reg().is_available(_name("Provider.isAvailable", name)))

    b.set_functions(P, {"list": list_, "get": get, "getCapabilities": capabilities, "get_capabilities": capabilities,
                        "isAvailable": available, "is_available": available}, "Provider")
    rt.G.Provider = P
