"""The `Session` global (lua-api.md §8) over `services.sessions`; absent when sessions are disabled."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llmspell.script.bridge import LuaApiError, check_type, lua_type
from llmspell.script.globals.replay import options_from
from llmspell.sessions import SessionError, SessionPolicy
from llmspell.state import StateError

if TYPE_CHECKING:
    from llmspell.script.engine import ScriptRuntime


def install(rt: ScriptRuntime) -> bool | None:
    mgr = rt.services.sessions
    if mgr is None:
        return False
    b = rt.bridge
    rt.on_close(mgr.flush)
    T = b.table()

    def guarded(fn: Any) -> Any:
        def call(*args: Any) -> Any:
            try:
                return fn(*args)
            except SessionError as e:
                raise LuaApiError(str(e)) from None
            except StateError as e:
                raise LuaApiError(f"Session: {e}") from None
        return call

    def opts_of(fname: str, opts: Any) -> dict[str, Any]:
        if opts is None:
            return {}
        o = b.to_py(opts)
        if not isinstance(o, dict):
            raise LuaApiError(f"Session.{fname}: opts must be a table {{name?, description?, tags?, metadata?, "
                              "parent_id?}")
        return o

    def create_from(fname: str, o: dict[str, Any]) -> str:
        tags = o.get("tags") or []
        if isinstance(tags, str):
            tags = [tags]
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise LuaApiError(f"Session.{fname}: tags must be an array of strings")
        meta = o.get("metadata") or {}
        if not isinstance(meta, dict):
            raise LuaApiError(f"Session.{fname}: metadata must be a table")
        for k in ("name", "description", "parent_id"):
            if o.get(k) is not None and not isinstance(o[k], str):
                raise LuaApiError(f"Session.{fname}: {k} must be a string")
        pol = o.get("policies")
        policy = SessionPolicy.from_table(pol) if isinstance(pol, dict) else None
        return mgr.create(o.get("name") or "", o.get("description") or "", tags, meta, o.get("parent_id"), policy)

    def create(opts: Any = None) -> str:
        return create_from("create", opts_of("create", opts))

    # builder
    def bset(key: str) -> Any:
        def m(h: dict[str, Any], v: Any) -> None:
            if key == "metadata":
                v = b.to_py(v)
                if not isinstance(v, dict):
                    raise LuaApiError("SessionBuilder:metadata: expects a table")
            elif key == "tags":
                v = b.to_py(v)
                if not isinstance(v, list) or not all(isinstance(t, str) for t in v):
                    raise LuaApiError("SessionBuilder:tags: expects an array of strings")
                v = [*h.get("tags", []), *v]
            else:
                check_type(v, "string", f"SessionBuilder:{key}", key)
            h[key] = v
        return m

    def btag(h: dict[str, Any], v: Any) -> None:
        check_type(v, "string", "SessionBuilder:tag", "tag")
        h.setdefault("tags", []).append(v)

    Builder = b.klass("SessionBuilder", {
        "name": bset("name"), "description": bset("description"), "tags": bset("tags"), "tag": btag,
        "metadata": bset("metadata"), "parent": bset("parent_id"),
        "build": guarded(lambda h: create_from("builder", h)),
    }, tostring=lambda h: f"SessionBuilder({h.get('name', '')})",
        chain=("name", "description", "tags", "tag", "metadata", "parent"))

    def builder() -> Any:
        return Builder.new({})

    def get(sid: Any) -> Any:
        rec = mgr.get(sid)
        return None if rec is None else rec.public()

    def list_(query: Any = None) -> Any:
        q = opts_of("list", query)
        tags = q.get("tags")
        if isinstance(tags, str):
            tags = [tags]
        limit = q.get("limit")
        if limit is not None and not isinstance(limit, int):
            raise LuaApiError("Session.list: limit must be an integer")
        return b.array(r.public() for r in mgr.list(tags, q.get("status"), limit))

    def get_current() -> Any:
        return mgr.current

    def set_current(sid: Any = None) -> Any:
        return mgr.set_current(sid)

    def op(name: str) -> Any:
        def f(sid: Any, reason: Any = None) -> bool:
            if reason is not None and not isinstance(reason, str):
                reason = str(b.to_py(reason))
            mgr.transition(name, sid, reason if name == "fail" else None)
            return True
        return f

    def save(sid: Any) -> bool:
        return mgr.save(sid)

    def load(sid: Any) -> str:
        return mgr.load(sid)

    def delete(sid: Any) -> bool:
        return mgr.delete(sid)

    def can_replay(sid: Any) -> bool:
        return mgr.can_replay(sid)

    def list_replayable() -> Any:
        return b.array(mgr.list_replayable())

    def get_replay_metadata(sid: Any) -> Any:
        return mgr.replay_metadata(sid)

    def replay(sid: Any, cfg: Any = None) -> Any:
        opts = options_from(rt, cfg, "Session.replay")
        r = mgr.replay(sid, opts)
        r["differences"] = b.array(r["differences"])
        return r

    fns = {"create": create, "builder": builder, "get": get, "list": list_, "get_current": get_current,
           "set_current": set_current, "suspend": op("suspend"), "resume": op("resume"),
           "complete": op("complete"), "fail": op("fail"), "archive": op("archive"), "save": save, "load": load,
           "delete": delete, "can_replay": can_replay, "list_replayable": list_replayable,
           "get_replay_metadata": get_replay_metadata, "replay": replay}
    b.set_functions(T, {k: guarded(v) for k, v in fns.items()}, "Session")
    rt.G.Session = T
    return None


__all__ = ["install", "lua_type"]
