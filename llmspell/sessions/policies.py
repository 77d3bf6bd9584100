"""Session policies, enforced as hooks: token-bucket rate limit, session/idle timeouts, resource limits.

A policy is attached to a session (`Session.create{policies = {...}}` or `SessionManager.set_policy`).
While any session has one, a Python hook (priority highest) on the Before* points of agents, tools,
workflows and state checks the *current* session and cancels the operation when a limit is hit.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

#: Points the policy hook guards.
GUARDED_POINTS = ("BeforeAgentExecution", "BeforeToolExecution", "BeforeWorkflowStart", "BeforeStateChange")


@dataclass
class SessionPolicy:
    """Limits for one session; None means no limit."""

    rate_per_second: float | None = None
    burst: int = 10
    max_duration_seconds: float | None = None
    idle_timeout_seconds: float | None = None
    max_tokens: int | None = None
    max_cost_usd: float | None = None
    max_operations: int | None = None

    @classmethod
    def from_table(cls, d: dict[str, Any]) -> SessionPolicy:
        rl = d.get("rate_limit")
        rate = burst = None
        if isinstance(rl, dict):
            rate = rl.get("per_second") or rl.get("refill_per_second")
            if rl.get("per_minute"):
                rate = float(rl["per_minute"]) / 60.0
            burst = rl.get("burst") or rl.get("capacity")
        elif isinstance(rl, int | float):
            rate = float(rl)
        return cls(
            rate_per_second=float(rate) if rate else None, burst=int(burst or 10),
            max_duration_seconds=_num(d.get("max_duration_seconds") or d.get("session_timeout_seconds")),
            idle_timeout_seconds=_num(d.get("idle_timeout_seconds")),
            max_tokens=_int(d.get("max_tokens")), max_cost_usd=_num(d.get("max_cost_usd")),
            max_operations=_int(d.get("max_operations")),
        )

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _int(v: Any) -> int | None:
    return int(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


@dataclass
class TokenBucket:
    """Classic token bucket: `capacity` tokens, refilled at `rate` per second."""

    rate: float
    capacity: float
    tokens: float = -1.0
    stamp: float = field(default_factory=time.monotonic)

    def take(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        if self.tokens < 0:
            self.tokens = self.capacity
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


def violation(policy: SessionPolicy, rec: Any, bucket: TokenBucket | None, now: float) -> tuple[str, bool] | None:
    """The reason an operation must be refused, and whether the session itself has expired; None when allowed."""
    if policy.max_duration_seconds is not None and now - rec.created_at > policy.max_duration_seconds:
        return f"session {rec.id} exceeded its max duration ({policy.max_duration_seconds:g} s)", True
    if policy.idle_timeout_seconds is not None and now - rec.last_activity > policy.idle_timeout_seconds:
        return f"session {rec.id} was idle longer than {policy.idle_timeout_seconds:g} s", True
    if policy.max_operations is not None and rec.operation_count >= policy.max_operations:
        return f"session {rec.id} reached its operation limit ({policy.max_operations})", False
    if policy.max_tokens is not None and rec.tokens_used >= policy.max_tokens:
        return f"session {rec.id} reached its token limit ({policy.max_tokens})", False
    if policy.max_cost_usd is not None and rec.cost_usd >= policy.max_cost_usd:
        return f"session {rec.id} reached its cost limit (${policy.max_cost_usd:g})", False
    if bucket is not None and not bucket.take():
        return f"rate limit exceeded for session {rec.id} ({policy.rate_per_second:g}/s, burst {policy.burst})", False
    return None
