"""Hook combinators (Python side): composites (sequential, parallel, first match, voting), retry, conditional.

Each is a callable `hook(ctx) -> HookOutcome | None` usable with `HookRegistry.register`.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from llmspell.hooks.outcome import CONTINUE, HookOutcome, parse_result

log = logging.getLogger("llmspell.hooks")

HookFn = Callable[[Any], Any]
MODES = ("sequential", "parallel", "first_match", "voting")


@dataclass
class CompositeHook:
    """Several hooks behind one registration.

    sequential: run in order, stop at the first non-continue. parallel: run all concurrently and
    return the first non-continue in declaration order. first_match: the first hook whose result
    is not continue wins (the rest are not run). voting: the action most hooks chose wins when it
    reaches `threshold` (a fraction of the hooks); otherwise continue.
    """

    mode: str
    hooks: Sequence[HookFn]
    threshold: float = 0.5
    name: str = "composite"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown composite mode '{self.mode}' (use {', '.join(MODES)})")

    def _one(self, fn: HookFn, ctx: Any) -> HookOutcome:
        try:
            return parse_result(fn(ctx))
        except Exception as e:  # noqa: BLE001 - a failing member counts as continue
            log.warning("composite hook %s: member raised %s: %s; treated as continue", self.name, type(e).__name__, e)
            return CONTINUE

    def __call__(self, ctx: Any) -> HookOutcome:
        if self.mode in ("sequential", "first_match"):
            for fn in self.hooks:
                out = self._one(fn, ctx)
                if not out.is_continue:
                    return out
            return CONTINUE
        if self.mode == "parallel":
            with ThreadPoolExecutor(max_workers=max(1, len(self.hooks))) as pool:
                results = list(pool.map(lambda f: self._one(f, ctx), self.hooks))
            return next((r for r in results if not r.is_continue), CONTINUE)
        results = [self._one(fn, ctx) for fn in self.hooks]
        if not results:
            return CONTINUE
        votes = Counter(r.action for r in results)
        action, count = votes.most_common(1)[0]
        if action == "continue" or count / len(results) < self.threshold:
            return CONTINUE
        return next(r for r in results if r.action == action)


@dataclass
class RetryingHook:
    """Retry a hook that raises, with exponential backoff (`backoff_ms * 2**attempt`)."""

    hook: HookFn
    max_attempts: int = 3
    backoff_ms: float = 10.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    def __call__(self, ctx: Any) -> Any:
        last: Exception | None = None
        for attempt in range(max(1, self.max_attempts)):
            try:
                return self.hook(ctx)
            except Exception as e:  # noqa: BLE001 - retried, then re-raised
                last = e
                if attempt + 1 < self.max_attempts:
                    self.sleep(self.backoff_ms * (2 ** attempt) / 1000.0)
        assert last is not None
        raise last


@dataclass
class ConditionalHook:
    """Run `hook` only when `predicate(ctx)` is true; otherwise continue."""

    predicate: Callable[[Any], bool]
    hook: HookFn

    def __call__(self, ctx: Any) -> Any:
        try:
            ok = bool(self.predicate(ctx))
        except Exception as e:  # noqa: BLE001 - a failing predicate skips the hook
            log.warning("conditional hook predicate raised %s: %s; hook not run", type(e).__name__, e)
            return CONTINUE
        return self.hook(ctx) if ok else CONTINUE
