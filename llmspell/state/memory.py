"""The `memory` backend: a locked dict that keeps nothing after the runtime ends (§6)."""

from __future__ import annotations

import threading
from typing import Any


class MemoryBackend:
    """In-process storage; also what `[state] enabled = false` selects."""

    name = "memory"
    path: str | None = None

    def __init__(self) -> None:
        self._data: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        return self._data.get(key)

    def put(self, key: str, value: bytes) -> None:
        with self._lock:
            self._data[key] = value

    def put_many(self, items: list[tuple[str, bytes]], delete: list[str] | None = None) -> None:
        with self._lock:
            for k in delete or ():
                self._data.pop(k, None)
            self._data.update(items)

    def delete(self, key: str) -> bool:
        with self._lock:
            return self._data.pop(key, None) is not None

    def exists(self, key: str) -> bool:
        return key in self._data

    def keys(self, prefix: str) -> list[str]:
        with self._lock:
            return sorted(k for k in self._data if k.startswith(prefix))

    def items(self, prefix: str) -> list[tuple[str, bytes]]:
        with self._lock:
            return sorted((k, v) for k, v in self._data.items() if k.startswith(prefix))

    def clear(self, prefix: str) -> int:
        with self._lock:
            doomed = [k for k in self._data if k.startswith(prefix)]
            for k in doomed:
                del self._data[k]
            return len(doomed)

    def usage(self) -> dict[str, Any]:
        with self._lock:
            return {"keys": len(self._data),
                    "total_bytes": sum(len(k) + len(v) for k, v in self._data.items()),
                    "backend": self.name}

    def close(self) -> None:
        """Nothing to release."""
