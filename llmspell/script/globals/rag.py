"""The `RAG` global (lua-api.md §7): present only when RAG is enabled; calls the runtime's RAG service.

This module only converts values and shapes results; the work is in `services.rag` (layer 3),
which it reaches through the Services container and never imports.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from llmspell.script.bridge import LuaApiError

if TYPE_CHECKING:
    from llmspell.script.engine import ScriptRuntime


def install(rt: ScriptRuntime) -> bool:
    """Install `RAG` when the runtime has a RAG service; False (global absent) otherwise."""
    svc = rt.services.rag
    if svc is None:
        return False
    b = rt.bridge
    svc.check = rt.check_interrupt
    svc.runner = rt.block_on  # remote embeddings wait interruptibly on the IO loop, serving callbacks

    def call(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any) -> Any:
            try:
                return fn(*args)
            except LuaApiError:
                raise
            except Exception as e:
                if getattr(e, "is_rag_error", False):
                    raise LuaApiError(f"RAG.{name}: {e}") from None
                raise

        return run

    def ingest(docs: Any = None, opts: Any = None) -> Any:
        return svc.ingest(_py(b, docs, "ingest", "docs"), _opts(b, opts, "ingest"))

    def search(query: Any = None, opts: Any = None) -> Any:
        hits = svc.search(query if not isinstance(query, str) else b.to_py(query), _opts(b, opts, "search"))
        items = [b.to_lua(h) for h in hits]
        t = b.table()
        for i, item in enumerate(items, 1):
            t[i] = item
        t["success"] = True
        t["total"] = len(items)
        t["results"] = b.array(items)
        return t

    def get_stats(name: Any = None, scope_id: Any = None) -> Any:
        return svc.get_stats(b.to_py(name), b.to_py(scope_id))

    def configure(opts: Any = None) -> Any:
        return svc.configure(_opts(b, opts, "configure", required=True))

    def save() -> Any:
        return svc.save()

    def delete(target: Any = None, opts: Any = None) -> Any:
        return svc.delete(_py(b, target, "delete", "ids_or_filter"), _opts(b, opts, "delete"))

    def list_collections() -> Any:
        return b.array(b.to_lua(c) for c in svc.list_collections())

    def delete_collection(name: Any = None) -> Any:
        return svc.delete_collection(b.to_py(name))

    def cleanup_scope(scope: Any = None, scope_id: Any = None) -> Any:
        return svc.cleanup_scope(b.to_py(scope), b.to_py(scope_id))

    def list_providers() -> Any:
        return b.array(svc.list_providers())

    def create_session_collection(session_id: Any = None, ttl_seconds: Any = None) -> Any:
        return svc.create_session_collection(b.to_py(session_id), b.to_py(ttl_seconds))

    def configure_session(opts: Any = None) -> Any:
        return svc.configure_session(_opts(b, opts, "configure_session", required=True))

    fns: dict[str, Callable[..., Any]] = {
        "ingest": ingest, "search": search, "get_stats": get_stats, "configure": configure, "save": save,
        "delete": delete, "list_collections": list_collections, "delete_collection": delete_collection,
        "cleanup_scope": cleanup_scope, "list_providers": list_providers,
        "create_session_collection": create_session_collection, "configure_session": configure_session,
    }
    T = b.table()
    b.set_functions(T, {name: call(name, fn) for name, fn in fns.items()}, "RAG")
    rt.G.RAG = T
    rt.on_close(svc.close)
    return True


def _py(b: Any, value: Any, fname: str, argname: str) -> Any:
    if value is None:
        raise LuaApiError(f"RAG.{fname}: {argname} is required")
    return b.to_py(value)


def _opts(b: Any, value: Any, fname: str, *, required: bool = False) -> dict[str, Any]:
    if value is None:
        if required:
            raise LuaApiError(f"RAG.{fname}: opts must be a table")
        return {}
    if not b.is_table(value):
        raise LuaApiError(f"RAG.{fname}: opts must be a table, got {type(value).__name__}")
    out = b.to_py(value)
    if isinstance(out, list):  # an empty table comes back as {} (a dict); a list here is misuse
        raise LuaApiError(f"RAG.{fname}: opts must be a table of named options, not an array")
    return out
