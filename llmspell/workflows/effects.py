"""Side effects of a workflow run: State writes (§5.9), events (§10.3), hooks (§11.2), stats."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from llmspell.runtime.io import get_io

if TYPE_CHECKING:
    from llmspell.script.protocols import HookService
    from llmspell.script.services import Services

log = logging.getLogger("llmspell.workflows")

STATE_SCOPE = "custom"


@dataclass(frozen=True)
class HookResult:
    """A hook outcome reduced to what the engine needs."""

    action: str = "continue"
    data: Any = None
    reason: str | None = None

    @property
    def skip(self) -> bool:
        return self.action in ("skip", "skipped")

    @property
    def modified(self) -> bool:
        return self.action in ("modified", "replace")

    @property
    def cancel(self) -> bool:
        return self.action not in ("continue", "skip", "skipped", "modified", "replace", "retry", "redirect")


_CONTINUE = HookResult()


@dataclass
class Effects:
    """Thin, failure-proof access to the state, event, hook and stats services."""

    services: Services | None
    _warned: set[str] = field(default_factory=set)

    # ------------------------------------------------------------------ state
    def save(self, key: str, value: Any, errors: list[str]) -> None:
        """Best-effort State write; a backend error is logged once per message and listed in errors."""
        state = getattr(self.services, "state", None)
        if state is None:
            return
        try:
            state.save(STATE_SCOPE, key, value)
        except Exception as e:  # noqa: BLE001 - §5.9: writes never fail a step
            msg = f"State write of '{key}' failed: {e}"
            generic = f"{type(e).__name__}: {e}"
            if generic not in self._warned:
                self._warned.add(generic)
                log.warning("workflow %s", msg)
            errors.append(msg)

    def load(self, key: str) -> Any:
        state = getattr(self.services, "state", None)
        if state is None:
            return None
        try:
            return state.load(STATE_SCOPE, key)
        except Exception:  # noqa: BLE001 - reads of outputs are lookups that may miss
            log.debug("state load failed", exc_info=True)
            return None

    def list_keys(self) -> list[str]:
        state = getattr(self.services, "state", None)
        if state is None:
            return []
        try:
            return list(state.list_keys(STATE_SCOPE))
        except Exception:  # noqa: BLE001
            log.debug("state list_keys failed", exc_info=True)
            return []

    def delete(self, key: str) -> bool:
        state = getattr(self.services, "state", None)
        if state is None:
            return False
        try:
            return bool(state.delete(STATE_SCOPE, key))
        except Exception:  # noqa: BLE001
            log.debug("state delete failed", exc_info=True)
            return False

    # ------------------------------------------------------------------ events
    def publish(self, event: str, data: dict[str, Any]) -> None:
        events = getattr(self.services, "events", None)
        if events is None:
            return
        try:
            events.publish(event, {k: v for k, v in data.items() if v is not None})
        except Exception:  # noqa: BLE001 - events never fail a workflow
            log.debug("event publish failed", exc_info=True)

    # ------------------------------------------------------------------ hooks
    def _hooks(self) -> HookService | None:
        return self.services.hooks if self.services is not None else None

    def hooks_active(self, point: str) -> bool:
        hooks = self._hooks()
        if hooks is None:
            return False
        try:
            return bool(hooks.active(point))
        except Exception:  # noqa: BLE001
            return False

    async def hook(self, point: str, data: dict[str, Any], name: str) -> HookResult:
        """Fire a hook point from the IO loop (or in place, from the Lua thread); continue when none are registered."""
        hooks = self._hooks()
        if hooks is None or not self.hooks_active(point):
            return _CONTINUE
        if not get_io().in_loop_thread():
            return self.hook_sync(point, data, name)  # Engine.execute_here: the start/finish on the Lua thread
        return _result(await hooks.arun(point, data, component=("workflow", name)))

    def hook_sync(self, point: str, data: dict[str, Any], name: str) -> HookResult:
        """Fire a hook point on the Lua thread (hooks run directly there)."""
        hooks = self._hooks()
        if hooks is None or not self.hooks_active(point):
            return _CONTINUE
        return _result(hooks.run(point, data, component=("workflow", name)))

    # ------------------------------------------------------------------ stats
    def count(self, name: str) -> None:
        stats = getattr(self.services, "stats", None)
        if stats is not None:
            stats.count(name)


def _result(o: Any) -> HookResult:
    if o is None or getattr(o, "is_continue", False):
        return _CONTINUE
    return HookResult(str(getattr(o, "action", "continue") or "continue"), getattr(o, "data", None),
                      getattr(o, "reason", None))
