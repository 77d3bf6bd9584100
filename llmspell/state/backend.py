"""The storage contract every State backend implements: a thread-safe map of str keys to bytes."""

from __future__ import annotations

from typing import Any, Protocol

from llmspell.runtime.errors import ServiceError


class StateError(ServiceError):
    """A storage failure (cannot open, corrupt file, value too large): the message says why and the fix."""


class Backend(Protocol):
    """Byte-valued key/value storage shared by State, sessions and artifacts.

    Keys are `<scope>:<key>` strings; prefix queries serve `list_keys` / `clear`. Every method is
    thread-safe (called from the Lua thread and the IO loop thread) and each write is one
    transaction, durable once it returns.
    """

    name: str
    path: str | None

    def get(self, key: str) -> bytes | None: ...

    def put(self, key: str, value: bytes) -> None: ...

    def put_many(self, items: list[tuple[str, bytes]], delete: list[str] | None = None) -> None: ...

    def delete(self, key: str) -> bool: ...

    def exists(self, key: str) -> bool: ...

    def keys(self, prefix: str) -> list[str]: ...

    def items(self, prefix: str) -> list[tuple[str, bytes]]: ...

    def clear(self, prefix: str) -> int: ...

    def usage(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


def prefix_end(prefix: str) -> str:
    """The smallest string greater than every string starting with `prefix` (for range scans)."""
    return prefix + "\U0010ffff"
