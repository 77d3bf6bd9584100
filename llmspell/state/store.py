"""StateStore: the scoped key/value API every package uses (`services.state`), over one backend.

Storage key `<scope>:<key>`, one leading `:` of the key ignored (§6). Values are JSON data
(orjson, so ints stay ints), redacted of secrets and size-checked before they are written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import orjson

from llmspell.runtime.redact import redact_json
from llmspell.state.backend import Backend, StateError
from llmspell.state.migrations import LATEST

log = logging.getLogger("llmspell.state")

#: Scopes whose names start with this hold sessions and artifacts; scripts cannot touch them.
RESERVED_PREFIX = "_llmspell."


class StateValueError(StateError):
    """A value that cannot be stored (not JSON-serializable, too large) or a bad key."""


class _Unavailable:
    """Stands in for a backend that failed to open: every use raises the original reason."""

    name = "unavailable"
    path: str | None = None

    def __init__(self, error: StateError) -> None:
        self.error = error

    def __getattr__(self, item: str) -> Any:
        raise StateError(str(self.error))


class StateStore:
    """Scoped, persistent key/value store; sync and thread-safe."""

    def __init__(self, backend: Backend | Callable[[], Backend], *, max_value_bytes: int = 10 * 1024 * 1024,
                 max_key_bytes: int = 4096, backup_keep: int = 5, services: Any = None) -> None:
        self._backend: Any = None
        self._factory: Callable[[], Backend] | None = None
        if callable(backend) and not hasattr(backend, "get"):
            self._factory = backend
        else:
            self._backend = backend
        self.max_value_bytes = max_value_bytes
        self.max_key_bytes = max_key_bytes
        self.backup_keep = backup_keep
        self._services = services

    # ------------------------------------------------------------------ backend
    @property
    def backend(self) -> Any:
        """The open backend; raises the opening error (with its fix) when it could not be opened."""
        b = self._backend
        if b is None:
            b = self.open()
        if isinstance(b, _Unavailable):
            raise StateError(str(b.error))
        return b

    def open(self) -> Any:
        """Open the backend now (start-up); a failure is remembered and raised on each use."""
        if self._backend is None and self._factory is not None:
            try:
                self._backend = self._factory()
            except StateError as e:
                self._backend = _Unavailable(e)
        return self._backend

    @property
    def open_error(self) -> str | None:
        b = self._backend
        return str(b.error) if isinstance(b, _Unavailable) else None

    @property
    def backend_name(self) -> str:
        b = self._backend
        return getattr(b, "name", "unavailable") if b is not None else "unopened"

    # ------------------------------------------------------------------ keys and values
    def storage_key(self, scope: str, key: str) -> str:
        """`<scope>:<key>` with one leading `:` of the key dropped; validates both parts."""
        if not isinstance(scope, str) or not scope:
            raise StateValueError("scope must be a non-empty string (e.g. 'global')")
        if not isinstance(key, str):
            raise StateValueError("key must be a string")
        if key.startswith(":"):
            key = key[1:]
        full = f"{scope}:{key}"
        if len(full.encode("utf-8", "surrogateescape")) > self.max_key_bytes:
            raise StateValueError(f"key '{full[:60]}...' is {len(full.encode('utf-8', 'surrogateescape'))} bytes, "
                                  f"larger than the {self.max_key_bytes}-byte limit (use a shorter key)")
        return full

    def encode(self, full_key: str, value: Any) -> bytes:
        """Serialize, redact secrets (in the JSON text: string contents only) and size-check a value."""
        try:
            data = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
        except TypeError as e:
            msg = str(e)
            if "Recursion" in msg or "recursion" in msg:
                msg = "cycle detected or nesting too deep"
            raise StateValueError(f"value for '{full_key}' cannot be serialized: {msg}") from None
        data, n = redact_json(data)
        if n:
            log.warning("State key '%s': %d secret-looking value(s) replaced by [REDACTED] before persisting",
                        full_key, n)
        if len(data) > self.max_value_bytes:
            raise StateValueError(f"value for '{full_key}' is {len(data)} bytes, larger than max_value_bytes "
                                  f"({self.max_value_bytes}); store it as an artifact or raise [state] max_value_bytes")
        return data

    @staticmethod
    def decode(data: bytes) -> Any:
        return orjson.loads(data)

    # ------------------------------------------------------------------ the interface
    def save(self, scope: str, key: str, value: Any) -> None:
        """Store a value (None deletes); durable when it returns."""
        full = self.storage_key(scope, key)
        if value is None:
            self._delete(full, scope, key)
            return
        data = self.encode(full, value)
        self.backend.put(full, data)
        self._changed(scope, key, "save")

    def load(self, scope: str, key: str, default: Any = None) -> Any:
        raw = self.backend.get(self.storage_key(scope, key))
        return default if raw is None else orjson.loads(raw)

    def delete(self, scope: str, key: str) -> bool:
        return self._delete(self.storage_key(scope, key), scope, key)

    def _delete(self, full: str, scope: str, key: str) -> bool:
        existed = self.backend.delete(full)
        if existed:
            self._changed(scope, key, "delete")
        return existed

    def exists(self, scope: str, key: str) -> bool:
        return bool(self.backend.exists(self.storage_key(scope, key)))

    def list_keys(self, scope: str) -> list[str]:
        prefix = self.storage_key(scope, "")
        n = len(prefix)
        return sorted(k[n:] for k in self.backend.keys(prefix))

    def clear(self, scope: str) -> int:
        return int(self.backend.clear(self.storage_key(scope, "")))

    def scopes(self, include_reserved: bool = False) -> list[str]:
        """Every scope that holds at least one key."""
        seen = sorted({k.split(":", 1)[0] for k in self.backend.keys("")})
        return [s for s in seen if include_reserved or not s.startswith(RESERVED_PREFIX)]

    def export(self, include_reserved: bool = False) -> dict[str, Any]:
        """Every entry as `{"<scope>:<key>": value}` (reserved scopes only when asked)."""
        out: dict[str, Any] = {}
        for k, v in self.backend.items(""):
            if not include_reserved and k.startswith(RESERVED_PREFIX):
                continue
            try:
                out[k] = orjson.loads(v)
            except orjson.JSONDecodeError:
                continue
        return out

    def import_entries(self, entries: dict[str, Any]) -> int:
        """Write `{"<scope>:<key>": value}` entries in one transaction; returns the count."""
        items = []
        for full, value in entries.items():
            if ":" not in full:
                raise StateValueError(f"entry key '{full}' has no scope (expected '<scope>:<key>')")
            scope, key = full.split(":", 1)
            k = self.storage_key(scope, key)
            items.append((k, self.encode(k, value)))
        self.backend.put_many(items)
        return len(items)

    def _changed(self, scope: str, key: str, op: str) -> None:
        bus = getattr(self._services, "events", None) if self._services is not None else None
        if bus is not None and getattr(bus, "emit_state_events", False) and not scope.startswith(RESERVED_PREFIX):
            bus.publish("state.changed", {"scope": scope, "key": key[1:] if key.startswith(":") else key, "op": op})

    # ------------------------------------------------------------------ backups and schema
    def _require(self, op: str) -> Any:
        b = self.backend
        if not hasattr(b, op):
            raise StateError(f"{op.replace('_', ' ')} is not supported by the {b.name} state backend "
                             "(backups need [state] backend = \"sqlite\"; for PostgreSQL use pg_dump)")
        return getattr(b, op)

    def create_backup(self) -> dict[str, Any]:
        return self._require("create_backup")()

    def list_backups(self) -> list[dict[str, Any]]:
        b = self.backend
        return b.list_backups() if hasattr(b, "list_backups") else []

    def restore_backup(self, bid: str) -> dict[str, Any]:
        return self._require("restore_backup")(bid)

    def validate_backup(self, bid: str) -> dict[str, Any]:
        return self._require("validate_backup")(bid)

    def cleanup_backups(self, dry_run: bool = False) -> dict[str, Any]:
        backups = self.list_backups()
        keep = max(0, self.backup_keep)
        doomed = [b["id"] for b in backups[keep:]]
        if not dry_run:
            for bid in doomed:
                self._require("delete_backup")(bid)
        return {"deleted": doomed, "kept": len(backups) - len(doomed), "dry_run": bool(dry_run)}

    def storage_usage(self) -> dict[str, Any]:
        return self.backend.usage()

    def migration_status(self) -> dict[str, int]:
        b = self.backend
        current = b.schema_version() if hasattr(b, "schema_version") else LATEST
        return {"current": current, "latest": LATEST}

    def schema_versions(self) -> list[dict[str, Any]]:
        b = self.backend
        return b.schema_versions() if hasattr(b, "schema_versions") else []

    def migrate(self, version: int) -> dict[str, Any]:
        b = self.backend
        if not hasattr(b, "migrate"):
            return {"success": True, "from": LATEST, "to": LATEST}
        frm, to = b.migrate(int(version))
        return {"success": True, "from": frm, "to": to}

    def close(self) -> None:
        b = self._backend
        if b is not None and not isinstance(b, _Unavailable):
            b.close()
