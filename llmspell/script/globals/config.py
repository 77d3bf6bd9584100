"""`Config` global (lua-api.md §13): a read-only view of the effective configuration, secrets masked."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llmspell.config import mask_secrets
from llmspell.script.bridge import LuaApiError, type_name
from llmspell.script.checks import need_str
from llmspell.settings import settings_of

if TYPE_CHECKING:
    from llmspell.script.engine import ScriptRuntime


def install(rt: ScriptRuntime) -> None:
    """Create the Config table; every call returns a fresh copy, so scripts cannot change the config."""
    b = rt.bridge
    cfg = rt.config
    masked: dict[str, Any] = mask_secrets(cfg.data) if hasattr(cfg, "data") else {}

    def lookup(path: str | None) -> Any:
        node: Any = masked
        if not path:
            return node
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node

    def get(path: Any = None) -> Any:
        if path is not None and not isinstance(path, str):
            raise LuaApiError(f"Config.get: path must be a dotted string like 'providers.openai', got {type_name(path)}")
        return lookup(path)

    def get_section(name: Any = None) -> Any:
        if not isinstance(name, str):
            raise LuaApiError(f"Config.getSection: name must be a string like 'rag', got {type_name(name)}")
        value = lookup(name)
        return value if isinstance(value, dict) else {}

    def get_provider(name: Any = None) -> Any:
        if not isinstance(name, str):
            raise LuaApiError(f"Config.getProvider: name must be a string like 'openai', got {type_name(name)}")
        entry = cfg.provider(name) if hasattr(cfg, "provider") else None
        return mask_secrets(entry) if entry is not None else None

    def list_providers() -> list[str]:
        return list(cfg.provider_names()) if hasattr(cfg, "provider_names") else []

    def file_allowed(path: Any = None) -> bool:
        return bool(cfg.file_access_allowed(need_str(path, "Config.isFileAccessAllowed", "path")))

    def config_path() -> str | None:
        return str(cfg.path) if getattr(cfg, "path", None) is not None else None

    funcs = {
        "get": get,
        "getSection": get_section,
        "getProvider": get_provider,
        "listProviders": list_providers,
        "getDefaultEngine": lambda: "lua",
        "getTools": lambda: lookup("tools"),
        "getSecurity": lambda: lookup("runtime.security"),
        "isFileAccessAllowed": file_allowed,
        "isNetworkAccessAllowed": lambda: settings_of(cfg).security.allow_network_access,
        "path": config_path,
    }
    aliases = {"get_section": "getSection", "get_provider": "getProvider", "list_providers": "listProviders",
               "get_default_engine": "getDefaultEngine", "get_tools": "getTools", "get_security": "getSecurity",
               "is_file_access_allowed": "isFileAccessAllowed",
               "is_network_access_allowed": "isNetworkAccessAllowed", "get_path": "path", "getPath": "path"}
    for alias, target in aliases.items():
        funcs[alias] = funcs[target]
    T = b.table()
    b.set_functions(T, funcs, "Config")
    rt.G.Config = T
