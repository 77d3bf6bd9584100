"""One tool call, end to end: config gates, hooks, validation, execution, events, stats, result shape.

The pipeline is one coroutine. From the Lua thread a sync tool drives it without an event loop
(it never suspends: hooks are the sync ones), an I/O tool runs it on the IO loop via `block_on`;
workflow steps await it on the IO loop (`ainvoke`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llmspell.runtime.io import run_inline
from llmspell.tools.base import Param, ToolError, ToolOutput, ToolParamError, ToolSpec, type_label
from llmspell.tools.registry import ToolRegistry
from llmspell.tools.shaping import shape_result

if TYPE_CHECKING:
    from llmspell.script.services import Services

log = logging.getLogger("llmspell.tools")

HookFn = Callable[[str, dict[str, Any]], Awaitable[Any]]
SleepFn = Callable[[float], Awaitable[None]]


class HookCancelled(ToolError):
    """A hook returned cancel: the operation raises `cancelled by hook: <reason>`."""


@dataclass(slots=True, frozen=True)
class _Outcome:
    action: str = "continue"
    data: Any = None
    reason: str | None = None
    delay_ms: int = 0
    max_attempts: int = 1


_CONTINUE = _Outcome()


def _outcome(o: Any) -> _Outcome:
    if o is None or getattr(o, "is_continue", False):
        return _CONTINUE
    return _Outcome(str(getattr(o, "action", "continue") or "continue"), getattr(o, "data", None),
                    getattr(o, "reason", None), int(getattr(o, "delay_ms", 0) or 0),
                    int(getattr(o, "max_attempts", 1) or 1))


def coerce_params(spec: ToolSpec, params: dict[str, Any]) -> dict[str, Any]:
    """Apply aliases, check required parameters, types and allowed values (raises ToolParamError)."""
    out = dict(params)
    for p in spec.params:
        if out.get(p.name) is None:
            for a in p.aliases:
                if out.get(a) is not None:
                    out[p.name] = out[a]
                    break
        value = out.get(p.name)
        if value is None:
            if p.required:
                raise ToolParamError(
                    f"{spec.name}: missing required parameter '{p.name}' ({'a value' if p.type == 'any' else p.type}"
                    + (f"; one of: {', '.join(p.choices)}" if p.choices else "") + ")")
            continue
        out[p.name] = _check_type(spec, p, value)
    return out


def _check_type(spec: ToolSpec, p: Param, value: Any) -> Any:
    t = p.type
    bad = False
    if t == "string":
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            bad = True
        elif not isinstance(value, str):
            value = str(value)
    elif t == "number":
        value = _numeric(value)
        bad = isinstance(value, bool) or not isinstance(value, int | float)
    elif t == "integer":
        value = _numeric(value)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        bad = isinstance(value, bool) or not isinstance(value, int)
    elif t == "boolean":
        if isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        bad = not isinstance(value, bool)
    elif t == "array":
        if isinstance(value, dict) and not value:
            value = []
        bad = not isinstance(value, list)
    elif t == "object":
        bad = not isinstance(value, dict)
    if bad:
        raise ToolParamError(
            f"{spec.name}: parameter '{p.name}' must be {'an' if t[0] in 'aeiou' else 'a'} {t}, "
            f"got {type_label(value)}")
    if p.choices and isinstance(value, str) and value.lower() not in p.choices:
        raise ToolParamError(
            f"{spec.name}: invalid {p.name} '{value}' (allowed: {', '.join(p.choices)})")
    return value


def _numeric(value: Any) -> Any:
    """Numeric strings become numbers (as Lua coerces them; models often send "3")."""
    if isinstance(value, str):
        try:
            f = float(value.strip())
        except ValueError:
            return value
        return int(f) if f.is_integer() and "." not in value and "e" not in value.lower() else f
    return value


class ToolInvoker:
    """Runs tool calls for the Tool global and for workflow steps."""

    def __init__(self, registry: ToolRegistry, services: Services | None) -> None:
        self.registry = registry
        self.services = services

    # -------------------------------------------------------------- entry points
    def invoke(self, name: str, params: dict[str, Any], block_on: Callable[[Any], Any]) -> dict[str, Any]:
        """From the Lua thread: sync tools inline, I/O tools on the IO loop through `block_on`."""
        spec = self.registry.require(name)
        tool = self.registry.instance(spec)
        if tool.is_async or tool.blocking:
            return block_on(self._pipeline(spec, params, self._ahook, _asleep, self._arun))
        return run_inline(self._pipeline(spec, params, self._shook, self._ssleep, self._srun), "the sync tool pipeline")

    def runs_inline(self, name: str) -> bool:
        """True for tools that run without I/O (their whole call can run on the Lua thread)."""
        spec = self.registry.resolve(name)
        if spec is None:
            return False
        tool = self.registry.instance(spec)
        return not (tool.is_async or tool.blocking)

    def invoke_inline(self, name: str, params: dict[str, Any]) -> dict[str, Any]:
        """A sync tool's whole call on the current (Lua) thread, hooks included, no event loop."""
        spec = self.registry.require(name)
        return run_inline(self._pipeline(spec, params, self._shook, self._ssleep, self._srun), "the sync tool pipeline")

    async def ainvoke(self, name: str, params: dict[str, Any]) -> dict[str, Any]:
        """From a coroutine on the IO loop (workflow steps)."""
        spec = self.registry.require(name)
        return await self._pipeline(spec, params, self._ahook, _asleep, self._arun)

    # -------------------------------------------------------------- hook and run flavours
    async def _shook(self, point: str, data: dict[str, Any]) -> Any:
        hooks = self.services.hooks if self.services is not None else None
        if hooks is None or not hooks.active(point):
            return None
        return hooks.run(point, data, component=("tool", data.get("tool", "")))

    async def _ahook(self, point: str, data: dict[str, Any]) -> Any:
        hooks = self.services.hooks if self.services is not None else None
        if hooks is None or not hooks.active(point):
            return None
        return await hooks.arun(point, data, component=("tool", data.get("tool", "")))

    async def _ssleep(self, seconds: float) -> None:
        time.sleep(seconds)

    async def _srun(self, spec: ToolSpec, params: dict[str, Any]) -> ToolOutput:
        return self.registry.instance(spec).run(params, self.registry.context(spec))

    async def _arun(self, spec: ToolSpec, params: dict[str, Any]) -> ToolOutput:
        return await self.registry.instance(spec).arun(params, self.registry.context(spec))

    # -------------------------------------------------------------- the pipeline
    def _publish(self, event: str, data: dict[str, Any]) -> None:
        events = self.services.events if self.services is not None else None
        if events is not None:
            try:
                events.publish(event, data)
            except Exception:  # noqa: BLE001 - events never fail a tool call
                log.debug("event publish failed", exc_info=True)

    async def _pipeline(self, spec: ToolSpec, params: dict[str, Any], hook: HookFn, sleep: SleepFn,
                        run: Callable[[ToolSpec, dict[str, Any]], Awaitable[ToolOutput]]) -> dict[str, Any]:
        name = spec.name
        reason = self.registry.disabled_reason(spec)
        if reason is not None:
            raise ToolError(reason)
        limit = int(self.registry.section(name).get("rate_limit", 0) or 0)
        if not self.registry.limiter.check(name, limit):
            raise ToolError(f"tool '{name}' is over its rate limit (calls per minute); slow down or raise rate_limit")
        o = _outcome(await hook("ToolValidation", {"tool": name, "parameters": params}))
        params = self._apply(o, params)
        params = coerce_params(spec, params)
        o = _outcome(await hook("BeforeToolExecution", {"tool": name, "parameters": params}))
        if o.action in ("skip", "skipped"):
            return {"success": False, "skipped": True, "text": "", "metadata": {"tool": name, "skipped": True}}
        params = self._apply(o, params)
        operation = params.get("operation") if isinstance(params.get("operation"), str) else None
        stats = getattr(self.services, "stats", None)
        if stats is not None:
            stats.count("tool_calls")
        started = {"tool": name} if operation is None else {"tool": name, "operation": operation}
        self._publish("tool.execution.started", started)
        attempts = 0
        t0 = time.perf_counter()
        while True:
            attempts += 1
            try:
                out = await run(spec, params)
                break
            except ToolError as e:
                err = str(e)
            except (OSError, ValueError) as e:
                err = f"{name}: {e}"
            o = _outcome(await hook("ToolError", {"tool": name, "error": err}))
            if o.action == "retry" and attempts < max(1, o.max_attempts):
                await sleep(o.delay_ms / 1000.0)
                continue
            ms = int((time.perf_counter() - t0) * 1000)
            self._publish("tool.execution.failed", {**started, "duration_ms": ms, "error": err})
            raise ToolError(err)
        ms = int((time.perf_counter() - t0) * 1000)
        result = shape_result(name, out, ms, operation)
        o = _outcome(await hook("AfterToolExecution", {"tool": name, "parameters": params, "output": result}))
        if o.action in ("modified", "replace") and isinstance(o.data, dict) and isinstance(o.data.get("output"), dict):
            result = o.data["output"]
        self._publish("tool.execution.completed", {**started, "duration_ms": ms})
        return result

    @staticmethod
    def _apply(o: _Outcome, params: dict[str, Any]) -> dict[str, Any]:
        if o.action in ("skip", "skipped", "continue", "retry", "redirect"):
            return params
        if o.action in ("modified", "replace"):
            if isinstance(o.data, dict) and isinstance(o.data.get("parameters"), dict):
                return o.data["parameters"]
            return params
        raise HookCancelled(f"cancelled by hook: {o.reason or o.action}")


async def _asleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


def shared_invoker(services: Services | None) -> ToolInvoker:
    """The runtime's one ToolInvoker (`services.tool_invoker`), made on first use over `services.tools`."""
    inv = services.tool_invoker if services is not None else None
    if isinstance(inv, ToolInvoker):
        return inv
    reg = services.tools if services is not None and isinstance(services.tools, ToolRegistry) else ToolRegistry(
        getattr(services, "config", None), services)
    inv = ToolInvoker(reg, services)
    if services is not None:
        services.tool_invoker = inv
    return inv
