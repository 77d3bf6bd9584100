"""One retry policy (exponential backoff with jitter, Retry-After) for providers and the HTTP tools, and a
circuit breaker per endpoint."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from llmspell.providers.base import CircuitOpenError, ProviderError

T = TypeVar("T")

#: Patched by tests to keep backoff instant.
sleep: Callable[[float], Awaitable[None]] = asyncio.sleep


@dataclass
class RetryPolicy:
    """How many times and how long to wait (lua-api.md §2.7: from 0.5 s, Retry-After up to 60 s)."""

    max_retries: int = 2
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 60.0

    def delay(self, retry_index: int, retry_after: float | None = None) -> float:
        """Seconds before retry number `retry_index` (0-based); a server's Retry-After wins up to its cap."""
        if retry_after is not None and 0 <= retry_after <= self.max_retry_after:
            return retry_after
        backoff = min(self.base_delay * (2 ** retry_index), self.max_delay)
        return backoff * (1.0 - 0.25 * random.random())

    @staticmethod
    def retryable(error: BaseException) -> bool:
        return isinstance(error, ProviderError) and error.retryable


@dataclass
class CircuitBreaker:
    """Opens after `threshold` consecutive failed calls; half-opens (one trial) after `cooldown` s."""

    threshold: int = 5
    cooldown: float = 30.0
    failures: int = 0
    opened_at: float | None = None
    _trial: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        if time.monotonic() - self.opened_at >= self.cooldown:
            return "half-open"
        return "open"

    def before_call(self, endpoint: str, error_factory: Callable[[str], ProviderError]) -> None:
        """Raise CircuitOpenError while open; let one trial call through when half-open."""
        with self._lock:
            st = self.state
            if st == "closed":
                return
            if st == "half-open" and not self._trial:
                self._trial = True
                return
            left = max(0.0, self.cooldown - (time.monotonic() - (self.opened_at or 0.0)))
            raise error_factory(f"circuit open for {endpoint} after {self.failures} consecutive failures; "
                                f"next try in {left:.0f} s")

    def success(self) -> None:
        with self._lock:
            self.failures, self.opened_at, self._trial = 0, None, False

    def failure(self) -> None:
        with self._lock:
            self.failures += 1
            if self._trial or self.failures >= self.threshold:
                self.opened_at = time.monotonic()
            self._trial = False


class BreakerBoard:
    """One circuit breaker per endpoint URL."""

    def __init__(self, threshold: int = 5, cooldown: float = 30.0) -> None:
        self.threshold, self.cooldown = threshold, cooldown
        self._breakers: dict[str, CircuitBreaker] = {}
        self._lock = threading.Lock()

    def get(self, endpoint: str) -> CircuitBreaker:
        with self._lock:
            b = self._breakers.get(endpoint)
            if b is None:
                b = self._breakers[endpoint] = CircuitBreaker(self.threshold, self.cooldown)
            return b


async def with_retries(call: Callable[[], Awaitable[T]], policy: RetryPolicy, breaker: CircuitBreaker | None = None,
                       endpoint: str = "", provider: str = "", model: str = "") -> T:
    """Run `call` with retries for retryable provider errors; trips the breaker on transient failures."""
    attempt = 0
    while True:
        if breaker is not None:
            breaker.before_call(endpoint, lambda msg: CircuitOpenError(
                msg, provider=provider, model=model, hint="the endpoint keeps failing; check the server"))
        try:
            result = await call()
        except ProviderError as e:
            transient = e.retryable
            if breaker is not None:
                if transient:
                    breaker.failure()
                else:
                    breaker.success()  # the endpoint answered: it is alive
            e.attempts = attempt + 1
            if not transient or attempt >= policy.max_retries:
                raise
            await sleep(policy.delay(attempt, e.retry_after))
            attempt += 1
            continue
        if breaker is not None:
            breaker.success()
        return result
