"""HookRegistry: registration, priority order and isolated execution of hooks (§11, `[hooks]` §20.6).

`active(point)` is one dict lookup, so operations with no hooks pay nothing. `run` executes a
point's chain on the Lua thread; `arun` is its coroutine twin for the IO loop and marshals each
Lua hook to the Lua thread. A hook that raises, times out or is rate limited counts as continue;
after `circuit_breaker_threshold` consecutive failures it is disabled for the run.
"""

from __future__ import annotations

import asyncio
import builtins
import inspect
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from llmspell.hooks.luadispatch import LuaDispatch
from llmspell.hooks.outcome import CONTINUE, HookOutcome, parse_result
from llmspell.hooks.points import NEVER_FIRED, POINTS, PRIORITIES, canonical, normalize
from llmspell.runtime.errors import ServiceError
from llmspell.settings import HookSettings

log = logging.getLogger("llmspell.hooks")

class HookError(ServiceError):
    """Misuse of the registry (unknown point or priority, too many hooks)."""


@dataclass(frozen=True)
class HookContext:
    """What a Python hook receives (the Lua `ctx` table has the same fields)."""

    point: str
    data: dict[str, Any]
    component: tuple[str, str]
    correlation_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    language: str = "python"


@dataclass(eq=False)
class HookEntry:
    """One registered hook."""

    id: str
    point: str
    fn: Any
    priority: str
    language: str
    seq: int
    name: str = ""
    description: str | None = None
    tags: tuple[str, ...] = ()
    version: str = "1.0.0"
    failures: int = 0
    disabled: bool = False
    _window: int = 0
    _window_calls: int = 0

    def info(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "name": self.name or self.id, "hook_point": self.point,
                               "priority": self.priority, "language": self.language, "version": self.version,
                               "tags": list(self.tags), "enabled": not self.disabled}
        if self.description:
            out["description"] = self.description
        return out


class HookRegistry:
    """All hooks of one runtime (`services.hooks`)."""

    def __init__(self, settings: HookSettings | None = None, services: Any = None) -> None:
        self.settings = settings or HookSettings()
        self.enabled = self.settings.enabled
        self._services = services
        self._by_point: dict[str, tuple[HookEntry, ...]] = {}
        self._active: set[str] = set()
        self._by_id: dict[str, HookEntry] = {}
        self._seq = itertools.count(1)
        self._lock = threading.RLock()
        self._warned_disabled = False
        self._rt: Any = None
        self._lua: LuaDispatch | None = None
        self._lua_points: frozenset[str] = frozenset()
        self._pushed: dict[str, tuple[HookEntry, ...]] = {}
        self._fast: dict[str, tuple[int, tuple[HookEntry, ...]]] = {}
        # point name as fired -> (Lua index, chain) of chains `run` may fire in one call straight away:
        # every hook an enabled Lua hook, no rate limit or circuit breaker, no taps. Emptied on any change.
        self._ready: dict[str, tuple[int, tuple[HookEntry, ...]]] = {}
        self._bus: Any = None
        self._taps: list[Callable[[str, dict[str, Any], HookOutcome, tuple[str, str]], None]] = []
        self.rate_limited = 0
        self.failures = 0
        # watchdog for Lua hooks running longer than timeout_ms: a call into Lua is stuck when the
        # generation has not moved for timeout_ms while depth > 0
        self._depth = 0
        self._gen = 0
        self._timeout_reason: str | None = None
        self._watchdog: threading.Thread | None = None
        self._closed = False

    # ------------------------------------------------------------------ wiring
    def attach(self, rt: Any) -> None:
        """Give the registry the ScriptRuntime whose Lua thread runs Lua hooks."""
        self._rt = rt
        self._lua = LuaDispatch(rt)
        self._pushed, self._fast, self._ready = {}, {}, {}

    @property
    def runtime(self) -> Any:
        return self._rt

    def add_tap(self, fn: Callable[[str, dict[str, Any], HookOutcome, tuple[str, str]], None]) -> None:
        """Call `fn(point, data, outcome, component)` after each chain that ran hooks (session recording)."""
        self._taps = [*self._taps, fn]
        self._ready = {}

    def remove_tap(self, fn: Callable[..., None]) -> None:
        self._taps = [t for t in self._taps if t is not fn]
        self._ready = {}

    # ------------------------------------------------------------------ registration
    def register(self, point: str, fn: Any, priority: str = "normal", *, language: str = "python",
                 name: str = "", description: str | None = None, tags: tuple[str, ...] = (),
                 version: str = "1.0.0") -> HookEntry:
        """Add a hook; raises HookError for an unknown point or priority, or past `max_hooks`."""
        canon = canonical(point) if isinstance(point, str) else None
        if canon is None:
            raise HookError(f"unknown hook point '{point}' (valid: {', '.join(POINTS)})")
        prio = (priority or "normal").lower() if isinstance(priority, str) else priority
        if prio not in PRIORITIES:
            raise HookError(f"unknown priority '{priority}' (use highest, high, normal, low or lowest)")
        if not self.enabled and not self._warned_disabled:
            self._warned_disabled = True
            log.warning("hooks are disabled ([hooks] enabled = false): registered hooks will never be called")
        with self._lock:
            if self.settings.max_hooks > 0 and len(self._by_id) >= self.settings.max_hooks:
                raise HookError(f"too many hooks: [hooks] max_hooks = {self.settings.max_hooks} "
                                "(unregister some or raise the limit)")
            seq = next(self._seq)
            entry = HookEntry(id=f"hook_{seq}", point=canon, fn=fn, priority=prio, language=language, seq=seq,
                              name=name, description=description, tags=tuple(tags), version=version)
            self._by_id[entry.id] = entry
            self._rebuild(canon)
        if canon in NEVER_FIRED:
            log.info("hook point %s is never fired in this version", canon)
        return entry

    def unregister(self, hook_id: str) -> bool:
        with self._lock:
            entry = self._by_id.pop(hook_id, None)
            if entry is None:
                return False
            self._rebuild(entry.point)
            return True

    def _rebuild(self, point: str) -> None:
        chain = tuple(sorted((e for e in self._by_id.values() if e.point == point),
                             key=lambda e: (PRIORITIES[e.priority], e.seq)))
        by_point = dict(self._by_point)
        active = set(self._active)
        norm = normalize(point)
        if chain:
            by_point[point] = by_point[norm] = chain
            active.update((point, norm))
        else:
            by_point.pop(point, None)
            by_point.pop(norm, None)
            active.difference_update((point, norm))
        lua_points = set(self._lua_points)
        if any(e.language == "lua" for e in chain):
            lua_points.update((point, norm))
        else:
            lua_points.difference_update((point, norm))
        self._by_point, self._active, self._lua_points = by_point, active, frozenset(lua_points)
        self._ready = {}

    def get(self, hook_id: str) -> HookEntry | None:
        return self._by_id.get(hook_id)

    def list(self, point: str | None = None, *, language: str | None = None, priority: str | None = None,
             tag: str | None = None) -> list[HookEntry]:
        canon = canonical(point) if point else None
        if point and canon is None:
            raise HookError(f"unknown hook point '{point}'")
        out = sorted(self._by_id.values(), key=lambda e: e.seq)
        return [e for e in out if (canon is None or e.point == canon)
                and (language is None or e.language == language)
                and (priority is None or e.priority == priority.lower())
                and (tag is None or tag in e.tags)]

    def clear(self) -> None:
        with self._lock:
            self._by_id.clear()
            self._by_point, self._active, self._lua_points = {}, set(), frozenset()
            self._ready = {}

    # ------------------------------------------------------------------ firing
    def active(self, point: str) -> bool:
        """Whether running `point` would call any hook (O(1))."""
        return self.enabled and point in self._active

    def _chain(self, point: str) -> tuple[HookEntry, ...] | None:
        chain = self._by_point.get(point)
        if chain is None and point not in POINTS:
            chain = self._by_point.get(normalize(point))
        return chain

    def _admit(self, e: HookEntry) -> bool:
        if e.disabled:
            return False
        limit = self.settings.rate_limit_per_minute
        if limit > 0:
            minute = int(time.monotonic() // 60)
            if e._window != minute:
                e._window, e._window_calls = minute, 0
            if e._window_calls >= limit:
                self.rate_limited += 1
                return False
            e._window_calls += 1
        return True

    def _correlation(self) -> str | None:
        bus = self._bus
        if bus is None:
            bus = self._bus = getattr(self._services, "events", None) if self._services is not None else None
            if bus is None:
                return None
        return bus.current_correlation_id  # type: ignore[no-any-return]

    def run(self, point: str, data: dict[str, Any], *, component: tuple[str, str] = ("system", "runtime"),
            metadata: dict[str, Any] | None = None) -> HookOutcome:
        """Run the chain of `point` on the Lua thread; the first non-continue outcome ends it."""
        ready = self._ready.get(point)
        st = self.settings
        if ready is not None and self.enabled and self._by_point.get(point) is ready[1] \
                and st.rate_limit_per_minute <= 0 and st.circuit_breaker_threshold <= 0 and self._rt.on_lua_thread():
            # the hot path: one call into Lua runs the chain (what _run_chain does, without its checks)
            lua = self._lua
            assert lua is not None
            r = self._cross(lua.fire, lua.hold((data, component, self._correlation())), ready[0])
            return CONTINUE if r is None else self._resume(ready[1], ready[0], *r)
        if not self.enabled:
            return CONTINUE
        chain = self._chain(point)
        if not chain:
            return CONTINUE
        rt = self._rt
        if rt is not None and point in self._lua_points and not rt.on_lua_thread():
            return self._run_elsewhere(rt, point, data, component, metadata)
        result = self._run_chain(chain, data, component, metadata)
        f = self._fast.get(chain[0].point)
        if f is not None and f[1] is chain and rt is not None and not self._taps and self._plain():
            self._ready[point] = f
        return result

    def _run_elsewhere(self, rt: Any, point: str, data: dict[str, Any], component: tuple[str, str],
                       metadata: dict[str, Any] | None) -> HookOutcome:
        """`run` from a thread other than the Lua thread (e.g. the kernel's control thread).

        When no chunk is running (the runtime's exec_lock is free) the chain runs here; otherwise it
        is queued for the Lua thread and waited for at most timeout_ms (then: continue, with a warning).
        """
        from llmspell.runtime.io import get_io

        if get_io().in_loop_thread():
            raise RuntimeError("HookRegistry.run called on the IO loop; use `await hooks.arun(...)`")
        lock = getattr(rt, "exec_lock", None)
        if lock is not None and lock.acquire(blocking=False):
            try:
                chain = self._chain(point)
                return self._run_chain(chain, data, component, metadata) if chain else CONTINUE
            finally:
                lock.release()
        fut = rt.call_on_lua_thread(self.run, point, data, component=component, metadata=metadata)
        timeout = self.settings.timeout_ms / 1000.0 if self.settings.timeout_ms > 0 else None
        try:
            return fut.result(timeout)
        except TimeoutError:
            fut.cancel()
            log.warning("hooks of %s not run: the Lua thread stayed busy for %s ms", point, self.settings.timeout_ms)
            return CONTINUE

    def _run_chain(self, chain: tuple[HookEntry, ...], data: dict[str, Any], component: tuple[str, str],
                   metadata: dict[str, Any] | None) -> HookOutcome:
        canon = chain[0].point
        f = self._fast.get(canon)
        if f is not None and f[1] is chain and self._plain():
            # every hook is an enabled Lua hook: one call into Lua runs the whole chain
            lua = self._lua
            assert lua is not None
            r = self._cross(lua.fire, lua.hold((data, component, self._correlation())), f[0])
            result = CONTINUE if r is None else self._resume(chain, f[0], *r)
        else:
            result = self._run_mixed(chain, canon, data, component, metadata)
        if self._taps:
            self._tap(canon, data, result, component)
        return result

    def _plain(self) -> bool:
        """No per-hook bookkeeping is configured (rate limit, circuit breaker), so chains run in one call."""
        st = self.settings
        return st.rate_limit_per_minute <= 0 and st.circuit_breaker_threshold <= 0

    def _run_mixed(self, chain: tuple[HookEntry, ...], canon: str, data: dict[str, Any],
                   component: tuple[str, str], metadata: dict[str, Any] | None) -> HookOutcome:
        """The general path: Python hooks, disabled or rate-limited entries, a chain not yet pushed to Lua."""
        py_ctx: builtins.list[HookContext] = []
        i, n = 0, len(chain)
        while i < n:
            e = chain[i]
            if e.language == "lua":
                j = _lua_run_end(chain, i)
                outcome = self._lua_span(chain, i, j, canon, data, component)
                i = j
            else:
                i += 1
                if not self._admit(e):
                    continue
                outcome = self._call(e, canon, data, component, metadata, py_ctx)
            if outcome.action != "continue":
                return outcome
        return CONTINUE

    async def arun(self, point: str, data: dict[str, Any], *, component: tuple[str, str] = ("system", "runtime"),
                   metadata: dict[str, Any] | None = None) -> HookOutcome:
        """`run` for coroutines on the IO loop: each run of consecutive Lua hooks goes to the Lua thread in one hop."""
        if not self.enabled:
            return CONTINUE
        chain = self._chain(point)
        if not chain:
            return CONTINUE
        canon = chain[0].point
        result = CONTINUE
        rt = self._rt
        py_ctx: builtins.list[HookContext] = []
        i, n = 0, len(chain)
        while i < n:
            e = chain[i]
            if e.language == "lua" and rt is not None:
                # consecutive Lua hooks run in one hop to the Lua thread (a hop costs two thread switches)
                j = _lua_run_end(chain, i)
                outcome = await rt.call_lua_async(self._lua_span, chain, i, j, canon, data, component)
                i = j
                if outcome.action != "continue":
                    result = outcome
                    break
                continue
            i += 1
            if not self._admit(e):
                continue
            if inspect.iscoroutinefunction(e.fn) or inspect.iscoroutinefunction(type(e.fn).__call__):
                outcome = await self._acall_py(e, canon, data, component, metadata)
            else:
                outcome = self._call(e, canon, data, component, metadata, py_ctx)
            if outcome.action != "continue":
                result = outcome
                break
        if self._taps:
            self._tap(canon, data, result, component)
        return result

    def _tap(self, point: str, data: dict[str, Any], outcome: HookOutcome, component: tuple[str, str]) -> None:
        for tap in self._taps:
            try:
                tap(point, data, outcome, component)
            except Exception:  # noqa: BLE001 - recording never breaks an operation
                log.warning("hook tap failed", exc_info=True)

    def _call(self, e: HookEntry, point: str, data: dict[str, Any], component: tuple[str, str],
              metadata: dict[str, Any] | None, py_ctx: builtins.list[HookContext]) -> HookOutcome:
        """One Python hook; its HookContext is built once per chain (kept in `py_ctx`)."""
        t0 = time.monotonic()
        try:
            if not py_ctx:
                py_ctx.append(HookContext(point, data, component, self._correlation(), dict(metadata or {})))
            outcome = parse_result(e.fn(py_ctx[0]))
        except Exception as exc:  # noqa: BLE001 - hook failures are isolated (§11.3)
            return self._failed(e, f"raised {type(exc).__name__}: {exc}")
        elapsed_ms = (time.monotonic() - t0) * 1000.0
        if elapsed_ms > self.settings.timeout_ms > 0:
            return self._failed(e, f"ran {elapsed_ms:.0f} ms, longer than timeout_ms ({self.settings.timeout_ms})")
        e.failures = 0
        return _stamp(outcome, e)

    async def _acall_py(self, e: HookEntry, point: str, data: dict[str, Any], component: tuple[str, str],
                        metadata: dict[str, Any] | None) -> HookOutcome:
        ctx = HookContext(point, data, component, self._correlation(), dict(metadata or {}))
        timeout = self.settings.timeout_ms / 1000.0 if self.settings.timeout_ms > 0 else None
        try:
            outcome = parse_result(await asyncio.wait_for(e.fn(ctx), timeout))
        except TimeoutError:
            return self._failed(e, f"ran longer than timeout_ms ({self.settings.timeout_ms})")
        except Exception as exc:  # noqa: BLE001 - hook failures are isolated (§11.3)
            return self._failed(e, f"raised {type(exc).__name__}: {exc}")
        e.failures = 0
        return _stamp(outcome, e)

    def _failed(self, e: HookEntry, why: str) -> HookOutcome:
        e.failures += 1
        self.failures += 1
        log.warning("hook %s (%s) %s; treated as continue", e.id, e.point, why)
        threshold = self.settings.circuit_breaker_threshold
        if threshold > 0 and e.failures >= threshold and not e.disabled:
            e.disabled = True
            self._fast.pop(e.point, None)
            self._ready = {}
            log.warning("hook %s (%s) disabled for this run after %d consecutive failures (circuit breaker)",
                        e.id, e.point, e.failures)
        return CONTINUE

    # ------------------------------------------------------------------ Lua hooks
    def _push(self, chain: tuple[HookEntry, ...], canon: str) -> int:
        """Give Lua the chain's functions (Python hooks as false placeholders); mark it fast when it can be."""
        lua = self._lua
        assert lua is not None
        if self._pushed.get(canon) is chain:
            return lua.index(canon)
        i = lua.set_chain(canon, [e.fn if e.language == "lua" else False for e in chain])
        self._pushed[canon] = chain
        if all(e.language == "lua" and not e.disabled for e in chain):
            self._fast[canon] = (i, chain)
        else:
            self._fast.pop(canon, None)
        self._ready = {}
        return i

    def _lua_span(self, chain: tuple[HookEntry, ...], lo: int, hi: int, canon: str, data: dict[str, Any],
                  component: tuple[str, str]) -> HookOutcome:
        """Run the Lua hooks chain[lo:hi] on the Lua thread (one call, or one per hook when limits apply)."""
        lua = self._lua
        assert lua is not None
        if self._by_point.get(canon) is not chain:  # re-registered meanwhile: run what is registered now
            current = self._by_point.get(canon)
            return self._run_mixed(current, canon, data, component, None) if current else CONTINUE
        pidx = self._push(chain, canon)
        per_hook = not self._plain() or any(e.disabled for e in chain[lo:hi])
        item = (data, component, self._correlation())
        i = lo
        while i < hi:
            if per_hook:
                if not self._admit(chain[i]):
                    i += 1
                    continue
                last = i + 1
            else:
                last = hi
            r = self._cross(lua.fire_range, lua.hold(item), pidx, i + 1, last)
            if r is None:
                for e in chain[i:last]:
                    e.failures = 0
                i = last
                continue
            outcome = self._resume(chain, pidx, r[0], r[1], r[2], last)
            if outcome.action != "continue":
                return outcome
            i = last
        return CONTINUE

    def _resume(self, chain: tuple[HookEntry, ...], pidx: int, j: int, ok: bool, val: Any,
                last: int | None = None) -> HookOutcome:
        """Handle Lua hook j (1-based) that raised or returned `val`, then run the chain on up to `last`."""
        lua = self._lua
        assert lua is not None
        end = len(chain) if last is None else last
        while True:
            if j <= 0:  # the error handler itself failed: no hook to blame, the rest of the chain is skipped
                return self._lua_result(None, ok, val)
            outcome = self._lua_result(chain[j - 1], ok, val)
            if outcome.action != "continue" or j >= end:
                return outcome
            r = self._cross(lua.fire_range, 0, pidx, j + 1, end)
            if r is None:
                return CONTINUE
            j, ok, val = r

    def _cross(self, fn: Any, *args: Any) -> Any:
        """Call into Lua under the hook watchdog: a call stuck for timeout_ms is interrupted."""
        if self.settings.timeout_ms <= 0:
            return fn(*args)
        if self._watchdog is None:
            self._start_watchdog()
        self._depth += 1
        self._gen += 1
        try:
            r = fn(*args)
        finally:
            self._depth -= 1
            self._gen += 1
        if r is None and self._timeout_reason is not None:
            self._clear_stray()
        return r

    def _clear_stray(self) -> bool:
        """Clear the interrupt the watchdog raised (a stuck hook, or one that returned just then); whether it had."""
        stray = self._timeout_reason
        if stray is not None and self._rt is not None and self._rt.interrupted == stray:
            self._rt.clear_interrupt()
            self._timeout_reason = None
            return True
        return False

    def _lua_result(self, e: HookEntry | None, ok: bool, val: Any) -> HookOutcome:
        """The outcome of Lua hook `e` that returned `val` (ok) or raised `val` (None: a hook not known)."""
        rt = self._rt
        if not ok:
            if self._clear_stray():
                why = f"ran longer than timeout_ms ({self.settings.timeout_ms}) and was stopped"
            elif rt.interrupted is not None:
                from llmspell.script.bridge import Interrupted

                raise Interrupted(rt.interrupted)
            else:
                from llmspell.script.bridge import strip_traceback

                why = f"raised: {strip_traceback(str(val))}"
            if e is None:
                self.failures += 1
                log.warning("a Lua hook %s; treated as continue", why)
                return CONTINUE
            return self._failed(e, why)
        assert e is not None
        self._clear_stray()
        try:
            outcome = self._parse_lua(val)
        except Exception as exc:  # noqa: BLE001 - an unconvertible result is a hook failure
            return self._failed(e, f"returned an unusable result: {exc}")
        e.failures = 0
        return _stamp(outcome, e)

    def _parse_lua(self, raw: Any) -> HookOutcome:
        if isinstance(raw, tuple):
            raw = raw[0] if raw else None
        if raw is None or isinstance(raw, str | bool | int | float):
            return parse_result(raw if isinstance(raw, str) else None)
        from llmspell.script.bridge import lua_type

        if lua_type(raw) != "table":
            return CONTINUE
        t = raw["type"]
        if not isinstance(t, str):
            return CONTINUE
        d: dict[str, Any] = {"type": t}
        for k in ("reason", "target", "delay_ms", "max_attempts", "key", "ttl_seconds"):
            v = raw[k]
            if v is not None:
                d[k] = v
        if raw["data"] is not None:
            d["data"] = self._rt.bridge.to_py(raw["data"])
        if raw["operations"] is not None:
            d["operations"] = self._rt.bridge.to_py(raw["operations"])
        return parse_result(d)

    def _start_watchdog(self) -> None:
        t = threading.Thread(target=self._watch, name="llmspell-hook-watchdog", daemon=True)
        self._watchdog = t
        t.start()

    def _watch(self) -> None:
        now = time.monotonic()
        idle_since = since = now
        seen = -1
        while not self._closed:
            time.sleep(0.01)
            now = time.monotonic()
            if self._depth > 0:
                idle_since = now
                gen = self._gen
                if gen != seen:
                    seen, since = gen, now
                elif (now - since) * 1000.0 >= self.settings.timeout_ms > 0 and self._rt is not None \
                        and self._rt.interrupted is None:
                    reason = f"hook timed out after {self.settings.timeout_ms} ms"
                    self._timeout_reason = reason
                    since = now
                    self._rt.interrupt(reason)
            elif now - idle_since > 5.0:
                self._watchdog = None
                if self._depth == 0 or self._watchdog is not None:
                    return
                self._watchdog = threading.current_thread()
                idle_since = now
        self._watchdog = None

    def close(self) -> None:
        self._closed = True


def _lua_run_end(chain: tuple[HookEntry, ...], i: int) -> int:
    """The end of the run of consecutive Lua hooks that starts at chain[i]."""
    n = len(chain)
    while i < n and chain[i].language == "lua":
        i += 1
    return i


def _stamp(outcome: HookOutcome, e: HookEntry) -> HookOutcome:
    if outcome.action == "continue" and outcome.kind == "continue":
        return outcome
    if outcome.hook_id is None:
        from dataclasses import replace

        return replace(outcome, hook_id=e.id)
    return outcome
