"""`Debug` global (lua-api.md §16): leveled diagnostics with module filters, capture, timers, dumps, stacks."""

from __future__ import annotations

import collections
import fnmatch
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from llmspell.runtime.files import open_private
from llmspell.runtime.redact import redact_value, scrub
from llmspell.script.bridge import ConversionError, LuaApiError, lua_file, lua_type
from llmspell.script.checks import need_str
from llmspell.script.globals.json import encode
from llmspell.settings import settings_of

if TYPE_CHECKING:
    from llmspell.script.engine import ScriptRuntime

LEVELS = {"trace": 0, "debug": 1, "info": 2, "warn": 3, "error": 4}
_ALIASES = {"warning": "warn"}
_COLORS = {"trace": "\x1b[90m", "debug": "\x1b[36m", "info": "\x1b[32m", "warn": "\x1b[33m", "error": "\x1b[31m"}
CAPTURE_LIMIT = 1000

_LUA_HELPERS = lua_file(__file__, "debug.lua")
_STACK_LUA = lua_file(__file__, "debug_stack.lua")


@dataclass
class _Rule:
    """One module filter: a pattern of a kind and whether it enables or disables."""

    pattern: str
    kind: str
    enabled: bool
    _rx: re.Pattern[str] | None = None

    def matches(self, module: str) -> bool:
        if self.kind == "exact":
            return module == self.pattern
        if self.kind == "wildcard":
            return fnmatch.fnmatchcase(module, self.pattern)
        assert self._rx is not None
        return self._rx.search(module) is not None

    @property
    def specificity(self) -> tuple[int, int]:
        if self.kind == "exact":
            return (3, len(self.pattern))
        if self.kind == "wildcard":
            return (2, len(self.pattern.replace("*", "").replace("?", "")))
        return (1, len(self.pattern))


@dataclass
class _TimerStat:
    """Accumulated figures of one timer name (for the reports)."""

    count: int = 0
    total_ms: float = 0.0
    min_ms: float = float("inf")
    max_ms: float = 0.0
    laps: dict[str, float] = field(default_factory=dict)

    def add(self, ms: float) -> None:
        self.count += 1
        self.total_ms += ms
        self.min_ms = min(self.min_ms, ms)
        self.max_ms = max(self.max_ms, ms)


@dataclass
class _Timer:
    """A running Debug timer."""

    name: str
    start: float
    last_lap: float
    stopped_ms: float | None = None


class DebugState:
    """Level, filters, captured entries and timer figures of one runtime's Debug global."""

    def __init__(self, rt: ScriptRuntime) -> None:
        s = settings_of(rt.config).debug
        self.rt = rt
        self.enabled = s.enabled
        self.level = LEVELS.get(s.level, LEVELS["info"])
        self.default_enabled = s.default_filter_enabled
        self.rules: list[_Rule] = [_Rule(p, "wildcard", True) for p in s.module_filters]
        self.captured: collections.deque[dict[str, Any]] = collections.deque(maxlen=CAPTURE_LIMIT)
        self.timers: dict[str, _TimerStat] = {}
        self.events: list[dict[str, Any]] = []
        self.output: str | None = str(s.output) if s.output is not None else None
        isatty = getattr(rt.stderr, "isatty", None)
        self.color = bool(isatty()) if callable(isatty) else False

    def module_enabled(self, module: str | None) -> bool:
        if module is None:
            return True
        hits = [r for r in self.rules if r.matches(module)]
        if not hits:
            return self.default_enabled
        return max(hits, key=lambda r: r.specificity).enabled

    def emit(self, level: str, msg: str, module: str | None, metadata: Any = None) -> None:
        if not self.enabled or LEVELS[level] < self.level or not self.module_enabled(module):
            return
        now = time.time()
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now)) + f".{int(now * 1000) % 1000:03d}"
        msg = scrub(msg)  # keys never reach a log line or the captured entries
        metadata = redact_value(metadata)[0] if metadata is not None else None
        entry: dict[str, Any] = {"timestamp": stamp, "level": level, "message": msg}
        if module is not None:
            entry["module"] = module
        if metadata is not None:
            entry["metadata"] = metadata
        self.captured.append(entry)
        label = level.upper()
        if self.color and self.output is None:
            label = f"{_COLORS[level]}{label}\x1b[0m"
        line = f"{stamp} {label} [{module or 'script'}] {msg}"
        if metadata is not None:
            line += " " + encode(metadata)
        line += "\n"
        if self.output is not None:
            try:
                with open_private(self.output, "a", encoding="utf-8", errors="surrogateescape") as f:
                    f.write(line)
                return
            except OSError:
                pass  # an unwritable debug file falls back to stderr
        self.rt.stderr.write(line)


def _level(name: Any) -> str | None:
    if not isinstance(name, str):
        return None
    key = _ALIASES.get(name.lower(), name.lower())
    return key if key in LEVELS else None


def _text(rt: ScriptRuntime, v: Any) -> str:
    return v if isinstance(v, str) else rt.display(v)


def install(rt: ScriptRuntime) -> None:
    """Create the Debug table and the DebugTimer object kind on the runtime."""
    b = rt.bridge
    st = DebugState(rt)
    rt.services.debug = st
    helpers = b.lua.execute(_LUA_HELPERS, b.m.mark_array, b.m.key_less)
    T = b.table()

    def module_arg(m: Any) -> str | None:
        return None if m is None else _text(rt, m)

    funcs: dict[str, Any] = {}
    for lvl in LEVELS:
        def one(msg: Any = None, module: Any = None, _lvl: str = lvl) -> None:
            st.emit(_lvl, _text(rt, msg), module_arg(module))
        funcs[lvl] = one
    funcs["warning"] = funcs["warn"]

    def log_(level: Any = None, msg: Any = None, module: Any = None) -> None:
        lvl = _level(level)
        if lvl is not None:  # an unknown level is ignored (§16)
            st.emit(lvl, _text(rt, msg), module_arg(module))

    def log_with_data(level: Any = None, msg: Any = None, data: Any = None, module: Any = None) -> None:
        lvl = _level(level)
        if lvl is None:
            return
        try:
            meta = b.to_py(data) if data is not None else None
        except ConversionError as e:
            raise LuaApiError(f"Debug.logWithData: {e.message}") from None
        st.emit(lvl, _text(rt, msg), module_arg(module), meta)

    def set_level(level: Any = None) -> None:
        lvl = _level(level)
        if lvl is None:
            raise LuaApiError(f"Debug.setLevel: unknown level '{level}' (use trace, debug, info, warn or error)")
        st.level = LEVELS[lvl]

    def get_level() -> str:
        return next(k for k, v in LEVELS.items() if v == st.level)

    def set_enabled(flag: Any = None) -> None:
        st.enabled = bool(flag)

    def add_filter(pattern: Any = None, enabled: Any = True) -> None:
        pattern = need_str(pattern, "Debug.addModuleFilter", "pattern")
        kind = "wildcard" if any(c in pattern for c in "*?[") else "exact"
        add_rule(pattern, kind, enabled)

    def add_rule(pattern: Any = None, kind: Any = None, enabled: Any = True) -> None:
        pattern = need_str(pattern, "Debug.addAdvancedFilter", "pattern")
        if kind not in ("exact", "wildcard", "regex"):
            raise LuaApiError(f"Debug.addAdvancedFilter: unknown kind '{kind}' (use exact, wildcard or regex)")
        rule = _Rule(pattern, kind, enabled is not False and enabled is not None)
        if kind == "regex":
            try:
                rule._rx = re.compile(pattern)
            except re.error as e:
                raise LuaApiError(f"Debug.addAdvancedFilter: invalid regex '{pattern}': {e}") from None
        st.rules = [r for r in st.rules if not (r.pattern == pattern and r.kind == kind)]
        st.rules.append(rule)

    def remove_filter(pattern: Any = None) -> bool:
        before = len(st.rules)
        st.rules = [r for r in st.rules if r.pattern != pattern]
        return len(st.rules) != before

    def clear_filters() -> None:
        st.rules = []

    def set_default(flag: Any = None) -> None:
        st.default_enabled = bool(flag)

    def summary() -> dict[str, Any]:
        return {"default_enabled": st.default_enabled, "total_rules": len(st.rules),
                "rules": [{"pattern": r.pattern, "kind": r.kind, "enabled": r.enabled} for r in st.rules]}

    def captured(limit: Any = None) -> list[dict[str, Any]]:
        entries = list(st.captured)
        if isinstance(limit, int | float) and not isinstance(limit, bool) and limit >= 0:
            entries = entries[len(entries) - int(limit):] if limit else []
        return entries

    def clear_captured() -> None:
        st.captured.clear()

    # ---------------------------------------------------------------- timers
    def t_stop(t: _Timer) -> float:
        if t.stopped_ms is None:
            t.stopped_ms = (time.perf_counter() - t.start) * 1000.0
            st.timers.setdefault(t.name, _TimerStat()).add(t.stopped_ms)
        return t.stopped_ms

    def t_lap(t: _Timer, name: Any = None) -> float:
        now = time.perf_counter()
        ms = (now - t.last_lap) * 1000.0
        t.last_lap = now
        lap = _text(rt, name) if name is not None else f"lap{len(st.timers.get(t.name, _TimerStat()).laps) + 1}"
        stat = st.timers.setdefault(t.name, _TimerStat())
        stat.laps[lap] = stat.laps.get(lap, 0.0) + ms
        return ms

    def t_elapsed(t: _Timer) -> float:
        if t.stopped_ms is not None:
            return t.stopped_ms
        return (time.perf_counter() - t.start) * 1000.0

    def t_fields(t: _Timer, key: str) -> tuple[bool, Any]:
        if key == "name":
            return True, t.name
        return False, None

    timer_cls = b.klass("DebugTimer", {"stop": t_stop, "lap": t_lap, "elapsed": t_elapsed},
                        fields=t_fields, tostring=lambda t: f"DebugTimer({t.name})")

    def timer(name: Any = None) -> Any:
        now = time.perf_counter()
        return timer_cls.new(_Timer(_text(rt, name) if name is not None else "timer", now, now))

    # ---------------------------------------------------------------- dumps and stacks
    def dump_with(v: Any, opts: Any = None, label: Any = None) -> str:
        o = b.to_py(opts) if opts is not None and lua_type(opts) == "table" else {}
        o = o if isinstance(o, dict) else {}
        text = helpers.dump(v, int(o.get("max_depth", 5)), int(o.get("indent", 2)),
                            int(o.get("max_items", 100)), bool(o.get("show_types", False)))
        return f"{_text(rt, label)} = {text}" if label is not None else str(text)

    def dump(v: Any = None, label: Any = None) -> str:
        return dump_with(v, None, label)

    def dump_compact(v: Any = None, label: Any = None) -> str:
        text = helpers.dump(v, 5, 0, 100, False)
        return f"{_text(rt, label)} = {text}" if label is not None else str(text)

    def dump_verbose(v: Any = None, label: Any = None) -> str:
        text = helpers.dump(v, 20, 2, 1000, True)
        return f"{_text(rt, label)} = {text}" if label is not None else str(text)

    def memory_stats() -> dict[str, int]:
        used, collections = helpers.heap()
        try:
            import psutil

            rss = int(psutil.Process().memory_info().rss)
        except Exception:  # noqa: BLE001 - psutil missing or refused: report 0
            rss = 0
        return {"used_bytes": int(used), "allocated_bytes": int(used), "resident_bytes": rss,
                "collections": int(collections)}

    def snapshot() -> dict[str, Any]:
        return {**memory_stats(), "timestamp": time.time()}

    def record_event(a: Any = None, b_: Any = None, c: Any = None) -> None:
        # recordEvent(timer_id?, name, meta?): with two string args the first is the timer id
        if isinstance(a, str) and isinstance(b_, str):
            timer_id, name, meta = a, b_, c
        else:
            timer_id, name, meta = None, a, b_
        try:
            data = b.to_py(meta) if meta is not None else None
        except ConversionError as e:
            raise LuaApiError(f"Debug.recordEvent: {e.message}") from None
        st.events.append({"timer_id": timer_id, "name": _text(rt, name), "metadata": data, "timestamp": time.time()})

    def report_data() -> dict[str, Any]:
        timers = {n: {"count": s.count, "total_ms": round(s.total_ms, 3),
                      "mean_ms": round(s.total_ms / s.count, 3) if s.count else 0.0,
                      "min_ms": round(s.min_ms, 3) if s.count else 0.0, "max_ms": round(s.max_ms, 3),
                      "laps": {k: round(v, 3) for k, v in sorted(s.laps.items())}}
                  for n, s in sorted(st.timers.items())}
        return {"timers": timers, "events": list(st.events), "memory": memory_stats()}

    def performance_report() -> str:
        data = report_data()
        lines = ["Performance report", f"{'timer':<30} {'count':>6} {'total ms':>10} {'mean ms':>10} {'min ms':>10} {'max ms':>10}"]
        for name, t in data["timers"].items():
            lines.append(f"{name:<30} {t['count']:>6} {t['total_ms']:>10.3f} {t['mean_ms']:>10.3f} "
                         f"{t['min_ms']:>10.3f} {t['max_ms']:>10.3f}")
            for lap, ms in t["laps"].items():
                lines.append(f"  {lap:<28} {'':>6} {ms:>10.3f}")
        for ev in data["events"]:
            lines.append(f"event {ev['name']}" + (f" (timer {ev['timer_id']})" if ev["timer_id"] else ""))
        m = data["memory"]
        lines.append(f"memory: lua heap {m['used_bytes']} bytes, rss {m['resident_bytes']} bytes")
        return "\n".join(lines)

    def flame_graph() -> str:
        lines = []
        for name, s in sorted(st.timers.items()):
            lap_total = sum(s.laps.values())
            for lap, ms in sorted(s.laps.items()):
                lines.append(f"{name};{lap} {round(ms * 1000)}")
            self_ms = max(0.0, s.total_ms - lap_total)
            if self_ms > 0 or not s.laps:
                lines.append(f"{name} {round(self_ms * 1000)}")
        return "\n".join(lines)

    funcs.update({
        "log": log_, "logWithData": log_with_data,
        "setLevel": set_level, "getLevel": get_level, "setEnabled": set_enabled, "isEnabled": lambda: st.enabled,
        "addModuleFilter": add_filter, "removeModuleFilter": remove_filter, "clearModuleFilters": clear_filters,
        "setDefaultFilterEnabled": set_default, "addAdvancedFilter": add_rule, "getFilterSummary": summary,
        "getCapturedEntries": captured, "clearCaptured": clear_captured,
        "timer": timer,
        "dump": dump, "dumpCompact": dump_compact, "dumpVerbose": dump_verbose, "dumpWithOptions": dump_with,
        "memoryStats": memory_stats, "memorySnapshot": snapshot, "recordEvent": record_event,
        "performanceReport": performance_report, "jsonReport": lambda: encode(report_data(), 2),
        "flameGraph": flame_graph,
    })
    b.set_functions(T, funcs, "Debug")
    # Stack functions are plain Lua so that the stack they see is the script's own.
    stack = b.lua.execute(_STACK_LUA)
    T.stackTrace, T.stackTraceJson = stack(helpers.frames, T)
    rt.G.Debug = T
