"""The `State` global (lua-api.md §6) over `services.state`.

Scope `"session"` is isolated per session: while a session is current (Session.set_current),
its keys are stored as `session:<session_id>:<key>`, so one session never sees another's.
`State.save`/`delete` fire BeforeStateChange (its `modified` data.value replaces the value),
AfterStateChange and StateChange when hooks are registered for them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from llmspell.script.bridge import LuaApiError, check_type
from llmspell.script.protocols import StateService
from llmspell.state import StateError

if TYPE_CHECKING:
    from llmspell.script.engine import ScriptRuntime

_RESERVED = "_llmspell."


def install(rt: ScriptRuntime) -> None:
    b = rt.bridge
    services = rt.services
    T = b.table()

    def store(fname: str) -> StateService:
        s = services.state
        if s is None:
            raise LuaApiError(f"State.{fname}: state is not available in this runtime")
        return s

    def fail(fname: str, e: Exception) -> LuaApiError:
        return LuaApiError(f"State.{fname}: {e}")

    def scoped(fname: str, scope: Any, key: Any = "") -> tuple[str, str]:
        check_type(scope, "string", f"State.{fname}", "scope")
        if key is not None:
            check_type(key, "string", f"State.{fname}", "key")
        if scope.startswith(_RESERVED):
            raise LuaApiError(f"State.{fname}: scope '{scope}' is reserved for sessions and artifacts")
        if scope == "session":
            sid = getattr(services.sessions, "current", None) if services.sessions is not None else None
            if sid:
                k = key or ""
                return scope, f"{sid}:{k[1:] if k.startswith(':') else k}"
        return scope, key or ""

    def call(fname: str, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except StateError as e:
            raise fail(fname, e) from None

    def note_operation() -> None:
        sessions = services.sessions
        if sessions is not None and getattr(sessions, "current", None):
            sessions.note_operation()

    def fire(point: str, data: dict[str, Any]) -> Any:
        hooks = services.hooks
        if hooks is not None and hooks.active(point):
            return hooks.run(point, data, component=("state", data.get("scope", "")))
        return None

    def save(scope: Any, key: Any, value: Any = None) -> None:
        scope, key = scoped("save", scope, key)
        try:
            py = b.to_py(value) if value is not None else None
        except LuaApiError as e:
            raise LuaApiError(f"State.save: {e}") from None
        out = fire("BeforeStateChange", {"scope": scope, "key": key, "value": py})
        if out is not None and out.action != "continue":
            if out.action == "skip":
                return None
            if out.action == "cancel":
                raise LuaApiError(f"cancelled by hook: {out.reason}")
            if out.action == "modified" and out.data is not None and "value" in out.data:
                py = out.data["value"]
        s = store("save")
        call("save", s.save, scope, key, py)
        note_operation()
        after = {"scope": scope, "key": key, "value": py, "op": "save" if py is not None else "delete"}
        fire("AfterStateChange", after)
        fire("StateChange", after)
        return None

    def load(scope: Any, key: Any, default: Any = None) -> Any:
        scope, key = scoped("load", scope, key)
        v = call("load", store("load").load, scope, key, None)
        return default if v is None else v

    def delete(scope: Any, key: Any) -> bool:
        scope, key = scoped("delete", scope, key)
        out = fire("BeforeStateChange", {"scope": scope, "key": key})
        if out is not None and out.action == "cancel":
            raise LuaApiError(f"cancelled by hook: {out.reason}")
        if out is not None and out.action == "skip":
            return False
        existed = bool(call("delete", store("delete").delete, scope, key))
        if existed:
            after = {"scope": scope, "key": key, "op": "delete"}
            fire("AfterStateChange", after)
            fire("StateChange", after)
        return existed

    def exists(scope: Any, key: Any) -> bool:
        scope, key = scoped("exists", scope, key)
        return bool(call("exists", store("exists").exists, scope, key))

    def list_keys(scope: Any) -> Any:
        scope, prefix = scoped("list_keys", scope, "")
        keys = call("list_keys", store("list_keys").list_keys, scope)
        if prefix:
            keys = [k[len(prefix):] for k in keys if k.startswith(prefix)]
        elif scope == "session":
            keys = [k for k in keys if not _SESSION_KEY.match(k)]
        return b.array(keys)

    def clear(scope: Any) -> int:
        scope, prefix = scoped("clear", scope, "")
        s = store("clear")
        if prefix:
            keys = call("clear", s.list_keys, scope)
            return sum(1 for k in keys if k.startswith(prefix) and call("clear", s.delete, scope, k))
        return int(call("clear", s.clear, scope))

    def get(key: Any) -> Any:
        return load("global", key)

    def set_(key: Any, value: Any) -> None:
        return save("global", key, value)

    def workflow_get(execution_id: Any, step: Any) -> Any:
        check_type(execution_id, "string", "State.workflow_get", "execution_id")
        check_type(step, "string", "State.workflow_get", "step")
        return load("custom", f"workflow:{execution_id}:{step}")

    def workflow_list(execution_id: Any) -> Any:
        check_type(execution_id, "string", "State.workflow_list", "execution_id")
        prefix = f"workflow:{execution_id}:"
        names: set[str] = set()
        for k in call("workflow_list", store("workflow_list").list_keys, "custom"):
            if not k.startswith(prefix):
                continue
            rest = k[len(prefix):]
            if rest.startswith("step:") and rest.endswith(":output"):
                names.add(rest[5:-7])
            elif ":" not in rest:
                names.add(rest)
        return b.array(sorted(names))

    def owned(kind: str) -> tuple[Callable[[Any, Any], Any], Callable[[Any, Any, Any], None]]:
        """`State.<kind>_get/_set(owner, key[, value])`: keys scoped to one agent or tool."""

        def get(owner: Any, key: Any) -> Any:
            check_type(owner, "string", f"State.{kind}_get", kind)
            check_type(key, "string", f"State.{kind}_get", "key")
            return load(kind, f"{owner}:{key}")

        def set_(owner: Any, key: Any, value: Any) -> None:
            check_type(owner, "string", f"State.{kind}_set", kind)
            check_type(key, "string", f"State.{kind}_set", "key")
            return save(kind, f"{owner}:{key}", value)

        return get, set_

    agent_get, agent_set = owned("agent")
    tool_get, tool_set = owned("tool")

    def create_backup(incremental: Any = None) -> Any:
        return call("create_backup", store("create_backup").create_backup)

    def list_backups() -> Any:
        return b.array(call("list_backups", store("list_backups").list_backups))

    def restore_backup(bid: Any) -> Any:
        check_type(bid, "string", "State.restore_backup", "id")
        return call("restore_backup", store("restore_backup").restore_backup, bid)

    def validate_backup(bid: Any) -> Any:
        check_type(bid, "string", "State.validate_backup", "id")
        return call("validate_backup", store("validate_backup").validate_backup, bid)

    def cleanup_backups(dry_run: Any = None) -> Any:
        r = call("cleanup_backups", store("cleanup_backups").cleanup_backups, bool(dry_run))
        return {"deleted": b.array(r["deleted"]), "kept": r["kept"]}

    def get_storage_usage() -> Any:
        return call("get_storage_usage", store("get_storage_usage").storage_usage)

    def migrate(version: Any) -> Any:
        version = check_type(version, "integer", "State.migrate", "version")
        return call("migrate", store("migrate").migrate, version)

    def get_migration_status() -> Any:
        return call("get_migration_status", store("get_migration_status").migration_status)

    def get_schema_versions() -> Any:
        return b.array(call("get_schema_versions", store("get_schema_versions").schema_versions))

    b.set_functions(T, {
        "save": save, "load": load, "delete": delete, "exists": exists, "list_keys": list_keys, "clear": clear,
        "get": get, "set": set_, "workflow_get": workflow_get, "workflow_list": workflow_list,
        "agent_get": agent_get, "agent_set": agent_set, "tool_get": tool_get, "tool_set": tool_set,
        "create_backup": create_backup, "list_backups": list_backups, "restore_backup": restore_backup,
        "validate_backup": validate_backup, "cleanup_backups": cleanup_backups,
        "get_storage_usage": get_storage_usage, "migrate": migrate, "get_migration_status": get_migration_status,
        "get_schema_versions": get_schema_versions,
    }, "State")
    rt.G.State = T


_SESSION_KEY = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}:")
