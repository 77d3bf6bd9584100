"""The `Artifact` global (lua-api.md §9) over `services.artifacts`; absent when sessions are disabled."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llmspell.script.bridge import LuaApiError, check_type, lua_bytes
from llmspell.sessions import SessionError

if TYPE_CHECKING:
    from llmspell.script.engine import ScriptRuntime


def install(rt: ScriptRuntime) -> bool | None:
    store = rt.services.artifacts
    if store is None or rt.services.sessions is None:
        return False
    b = rt.bridge
    T = b.table()

    def guarded(fn: Any) -> Any:
        def call(*args: Any) -> Any:
            try:
                return fn(*args)
            except SessionError as e:
                msg = str(e)
                raise LuaApiError(msg if msg.startswith(("Artifact.", "Invalid session ID")) else f"Artifact: {msg}") \
                    from None
        return call

    def meta_of(fname: str, metadata: Any) -> dict[str, Any]:
        if metadata is None:
            return {}
        m = b.to_py(metadata)
        if not isinstance(m, dict):
            raise LuaApiError(f"Artifact.{fname}: metadata must be a table")
        return m

    def ident(fname: str, v: Any) -> Any:
        if isinstance(v, str):
            return v
        py = b.to_py(v) if v is not None else None
        if not isinstance(py, dict):
            raise LuaApiError(f"Artifact.{fname}: id must be an id table from Artifact.store or a content hash")
        return py

    def store_(session_id: Any, type_: Any, name: Any, content: Any, metadata: Any = None) -> Any:
        check_type(type_, "string", "Artifact.store", "type")
        check_type(name, "string", "Artifact.store", "name")
        if isinstance(content, int | float) and not isinstance(content, bool):
            content = str(content)
        check_type(content, "string", "Artifact.store", "content")
        return store.store(session_id, type_, name, lua_bytes(content), meta_of("store", metadata)).as_dict()

    def store_file(session_id: Any, path: Any, type_: Any = None, metadata: Any = None) -> Any:
        check_type(path, "string", "Artifact.store_file", "path")
        if type_ is None:
            type_ = "user_input"
        check_type(type_, "string", "Artifact.store_file", "type")
        return store.store_file(session_id, path, type_, meta_of("store_file", metadata)).as_dict()

    def get(session_id: Any, id_: Any) -> Any:
        r = store.get(session_id, ident("get", id_))
        if r is None:
            return None
        return {"content": r["content"], "metadata": r["metadata"]}

    def list_(session_id: Any = "") -> Any:
        return b.array(store.list(session_id))

    def delete(session_id: Any, id_: Any) -> bool:
        return store.delete(session_id, ident("delete", id_))

    def query(q: Any = None) -> Any:
        qq = b.to_py(q) if q is not None else {}
        if not isinstance(qq, dict):
            raise LuaApiError("Artifact.query: expects a table {session_id?, type?, name_pattern?, tags?, ...}")
        return b.array(store.query(qq))

    fns = {"store": store_, "store_file": store_file, "get": get, "list": list_, "delete": delete, "query": query}
    b.set_functions(T, {k: guarded(v) for k, v in fns.items()}, "Artifact")
    rt.G.Artifact = T
    return None
