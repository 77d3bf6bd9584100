"""HookOutcome (§11.3): what a hook chain tells the operation it surrounds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ACTIONS = ("continue", "skip", "cancel", "modified", "redirect", "retry")


@dataclass(frozen=True)
class HookOutcome:
    """The result of running the hooks of one point.

    `action` is continue | skip | cancel | modified | redirect | retry. `kind` keeps the type the
    hook returned (e.g. "replace", "fork", "cache") for logs and replay; `extra` holds any other
    fields of that result (fork operations, cache key).
    """

    action: str = "continue"
    data: dict[str, Any] | None = None
    reason: str = ""
    target: str | None = None
    delay_ms: int = 0
    max_attempts: int = 1
    kind: str = "continue"
    hook_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_continue(self) -> bool:
        return self.action == "continue"


CONTINUE = HookOutcome()


def _int(v: Any, default: int) -> int:
    try:
        return int(v)
    except (TypeError, ValueError):
        return default


def parse_result(value: Any) -> HookOutcome:
    """Turn a hook's return value (Python data: None, str, dict, HookOutcome) into a HookOutcome."""
    if value is None:
        return CONTINUE
    if isinstance(value, HookOutcome):
        return value
    if isinstance(value, str):
        s = value.strip().lower()
        if s in ("", "continue"):
            return CONTINUE
        if s in ("skip", "skipped"):
            return HookOutcome("skip", reason="skipped by hook", kind="skipped")
        return HookOutcome("cancel", reason=value, kind="cancel")
    if not isinstance(value, dict):
        return CONTINUE
    t = value.get("type")
    if not isinstance(t, str):
        return CONTINUE
    t = t.strip().lower()
    reason = value.get("reason")
    reason = str(reason) if reason is not None else ""
    if t in ("skip", "skipped"):
        return HookOutcome("skip", reason=reason or "skipped by hook", kind="skipped")
    if t == "cancel":
        return HookOutcome("cancel", reason=reason or "cancelled", kind="cancel")
    if t in ("modified", "modify", "replace"):
        data = value.get("data")
        return HookOutcome("modified", data=data if isinstance(data, dict) else {}, kind=t)
    if t == "redirect":
        target = value.get("target")
        if not isinstance(target, str) or not target:
            return CONTINUE
        return HookOutcome("redirect", target=target, reason=reason, kind="redirect")
    if t == "retry":
        return HookOutcome("retry", delay_ms=max(0, _int(value.get("delay_ms"), 0)),
                           max_attempts=max(1, _int(value.get("max_attempts"), 1)), reason=reason, kind="retry")
    if t in ("fork", "cache"):
        extra = {k: v for k, v in value.items() if k != "type"}
        return HookOutcome("continue", kind=t, extra=extra)
    return CONTINUE
