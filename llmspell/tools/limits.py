"""Per-minute call limits for tools (`[tools] rate_limit_per_minute`, `[tools.<name>] rate_limit`)."""

from __future__ import annotations

import threading
import time
from collections import deque


class RateLimiter:
    """A sliding one-minute window per tool name; 0 means no limit."""

    def __init__(self, global_limit: int = 0) -> None:
        self.global_limit = global_limit
        self._calls: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, name: str, limit: int) -> bool:
        """Record a call; False when it would exceed `limit` (or the global limit) calls per minute."""
        limits = [n for n in (limit, self.global_limit) if n and n > 0]
        if not limits:
            return True
        now = time.monotonic()
        with self._lock:
            q = self._calls.setdefault(name, deque())
            while q and now - q[0] >= 60.0:
                q.popleft()
            if len(q) >= min(limits):
                return False
            q.append(now)
            return True
