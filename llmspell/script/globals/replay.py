"""The `Replay` global (lua-api.md §18): modes, configs, modifications, schedules and the JSON comparator."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from llmspell.hooks import canonical
from llmspell.script.bridge import LuaApiError, check_type, lua_type
from llmspell.sessions.replay import ReplayOptions, compare_json

if TYPE_CHECKING:
    from llmspell.script.engine import ScriptRuntime

_MODES = ("exact", "modified", "simulate", "debug")
_CRON_FIELD = re.compile(r"^[\d*/,\-A-Za-z?LW#]+$")


@dataclass
class _Config:
    mode: str = "exact"
    timeout_seconds: int = 300
    modifications: list[dict[str, Any]] = field(default_factory=list)


def options_from(rt: ScriptRuntime, cfg: Any, fname: str) -> ReplayOptions:
    """ReplayOptions from a Session.replay cfg table (or a ReplayConfig object)."""
    b = rt.bridge
    opts = ReplayOptions()
    if cfg is None:
        return opts
    handle = _CONFIG_CLASSES.get(id(rt))
    if handle is not None:
        h = handle.handle_of(cfg)
        if h is not None:
            opts.mode, opts.modifications = h.mode, list(h.modifications)
            opts.max_duration_seconds = float(h.timeout_seconds)
            return opts
    if lua_type(cfg) != "table":
        raise LuaApiError(f"{fname}: cfg must be a table {{start_from?, end_at?, hook_filter?, ...}}")
    cb = cfg["progress_callback"]
    if cb is not None and lua_type(cb) != "function":
        raise LuaApiError(f"{fname}: progress_callback must be a function")
    raw = {k: cfg[k] for k in ("start_from", "end_at", "hook_filter", "max_duration_seconds", "include_failed",
                               "mode", "modifications")}
    c = {k: b.to_py(v) for k, v in raw.items() if v is not None}
    if "start_from" in c:
        opts.start_from = check_type(c["start_from"], "integer", fname, "start_from")
    if "end_at" in c:
        opts.end_at = check_type(c["end_at"], "integer", fname, "end_at")
    if "hook_filter" in c:
        hf = c["hook_filter"]
        names = [hf] if isinstance(hf, str) else hf
        if not isinstance(names, list):
            raise LuaApiError(f"{fname}: hook_filter must be a point name or an array of them")
        points = set()
        for n in names:
            p = canonical(str(n))
            if p is None:
                raise LuaApiError(f"{fname}: unknown hook point '{n}' in hook_filter")
            points.add(p)
        opts.hook_filter = frozenset(points)
    if "max_duration_seconds" in c:
        opts.max_duration_seconds = float(check_type(c["max_duration_seconds"], "number", fname,
                                                     "max_duration_seconds"))
    if "include_failed" in c:
        opts.include_failed = bool(c["include_failed"])
    if "mode" in c:
        if c["mode"] not in _MODES:
            raise LuaApiError(f"{fname}: unknown mode '{c['mode']}' (use {', '.join(_MODES)})")
        opts.mode = c["mode"]
    if isinstance(c.get("modifications"), list):
        opts.modifications = [m for m in c["modifications"] if isinstance(m, dict)]
    if cb is not None:
        opts.progress = lambda info: cb(b.to_lua(info))
    return opts


_CONFIG_CLASSES: dict[int, Any] = {}


def install(rt: ScriptRuntime) -> None:
    b = rt.bridge
    T = b.table()
    T.modes = b.to_lua({m: m for m in _MODES})

    def modification(path: Any, value: Any, enabled: Any = None) -> dict[str, Any]:
        check_type(path, "string", "Replay.create_modification", "path")
        return {"path": path, "value": b.to_py(value), "enabled": True if enabled is None else bool(enabled)}

    def c_add(h: _Config, path: Any, value: Any, enabled: Any = None) -> None:
        h.modifications.append(modification(path, value, enabled))

    Config = b.klass("ReplayConfig", {
        "get_mode": lambda h: h.mode,
        "should_compare_results": lambda h: h.mode != "simulate",
        "get_timeout_seconds": lambda h: h.timeout_seconds,
        "should_stop_on_error": lambda h: h.mode == "debug",
        "get_modifications": lambda h: b.array(h.modifications),
        "add_modification": c_add,
    }, tostring=lambda h: f"ReplayConfig({h.mode})", chain=("add_modification",))
    _CONFIG_CLASSES[id(rt)] = Config
    rt.on_close(lambda: _CONFIG_CLASSES.pop(id(rt), None))

    def create_config(mode: Any = None) -> Any:
        m = "exact" if mode is None else mode
        if m not in _MODES:
            raise LuaApiError(f"Replay.create_config: unknown mode '{m}' (use Replay.modes.exact, .modified, "
                              ".simulate or .debug)")
        return Config.new(_Config(mode=m))

    def once(delay: Any) -> dict[str, Any]:
        check_type(delay, "number", "Replay.schedules.once", "delay_s")
        return {"type": "once", "delay_seconds": delay, "description": f"once after {delay:g} s"}

    def interval(initial: Any, every: Any, max_runs: Any = None) -> dict[str, Any]:
        check_type(initial, "number", "Replay.schedules.interval", "initial_s")
        check_type(every, "number", "Replay.schedules.interval", "interval_s")
        if every <= 0:
            raise LuaApiError("Replay.schedules.interval: interval_s must be > 0")
        d: dict[str, Any] = {"type": "interval", "initial_delay_seconds": initial, "interval_seconds": every}
        desc = f"every {every:g} s after {initial:g} s"
        if max_runs is not None:
            d["max_executions"] = check_type(max_runs, "integer", "Replay.schedules.interval", "max")
            desc += f", at most {max_runs} times"
        d["description"] = desc
        return d

    def cron(expr: Any) -> dict[str, Any]:
        check_type(expr, "string", "Replay.schedules.cron", "expr")
        fields = expr.split()
        if len(fields) not in (5, 6) or not all(_CRON_FIELD.match(f) for f in fields):
            raise LuaApiError(f"Replay.schedules.cron: invalid cron expression '{expr}' (5 fields: min hour dom "
                              "month dow)")
        return {"type": "cron", "expression": expr, "description": f"cron '{expr}'"}

    T.schedules = b.table()
    b.set_functions(T.schedules, {"once": once, "interval": interval, "cron": cron}, "Replay.schedules")

    def c_compare(_h: Any, a: Any, b_: Any) -> Any:
        r = compare_json(b.to_py(a), b.to_py(b_))
        r["differences"] = b.array(r["differences"])
        return r

    Comparator = b.klass("Comparator", {"compare_json": c_compare}, tostring=lambda h: "Comparator()")

    b.set_functions(T, {"create_config": create_config, "create_modification": modification,
                        "create_comparator": lambda: Comparator.new({})}, "Replay")
    rt.G.Replay = T
