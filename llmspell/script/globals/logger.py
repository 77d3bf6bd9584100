"""`Logger` global (lua-api.md §14): leveled, structured script logging to the runtime's stderr sink."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from llmspell.runtime.redact import scrub
from llmspell.script.bridge import ConversionError, LuaApiError, lua_type, type_name
from llmspell.script.globals.json import encode

if TYPE_CHECKING:
    from llmspell.script.engine import ScriptRuntime

ROOT = "llmspell.script"
TRACE = 5
LEVELS: dict[str, int] = {"trace": TRACE, "debug": logging.DEBUG, "info": logging.INFO,
                          "warn": logging.WARNING, "error": logging.ERROR}
_ALIASES = {"warning": "warn", "err": "error", "critical": "error", "fatal": "error"}
_NAMES = {v: k for k, v in LEVELS.items()}
_LABELS = {"trace": "TRACE", "debug": "DEBUG", "info": "INFO", "warn": "WARN", "error": "ERROR"}

logging.addLevelName(TRACE, "TRACE")


def level_number(name: Any, fname: str) -> int:
    """The logging level for a §14 level name; unknown names raise the §1.7 misuse error."""
    key = str(name).lower() if isinstance(name, str) else None
    key = _ALIASES.get(key or "", key)
    if key not in LEVELS:
        raise LuaApiError(f"{fname}: unknown level '{name}' (use trace, debug, info, warn or error)")
    return LEVELS[key]


def level_name(number: int) -> str:
    """The §14 name of a logging level (nearest known level at or below it)."""
    best = "trace"
    for n, name in sorted(_NAMES.items()):
        if number >= n:
            best = name
    return best if number > 0 else "trace"


def format_line(level: str, logger_name: str, msg: str, fields: dict[str, Any] | None) -> str:
    """`YYYY-mm-dd HH:MM:SS.mmm LEVEL [name] message k=v ...` with fields sorted, values JSON-encoded."""
    now = time.time()
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now)) + f".{int(now * 1000) % 1000:03d}"
    line = f"{stamp} {_LABELS[level]:<5} [{logger_name}] {msg}"
    if fields:
        line += " " + " ".join(f"{k}={encode(fields[k])}" for k in sorted(fields))
    return scrub(line) + "\n"  # keys (known values and key-shaped strings) never reach a log line


def install(rt: ScriptRuntime) -> None:
    """Create the Logger table (and its child-logger factory) on the runtime."""
    b = rt.bridge

    def make(name: str, label: str) -> Any:
        pylog = logging.getLogger(name)
        T = b.table()

        def emit(level: str, msg: Any, fields: Any, fname: str) -> None:
            number = LEVELS[level]
            if not pylog.isEnabledFor(number):
                return
            text = msg if isinstance(msg, str) else rt.display(msg)
            data: dict[str, Any] | None = None
            if fields is not None:
                if lua_type(fields) != "table":
                    raise LuaApiError(f"{fname}: fields must be a table, got {type_name(fields)}")
                try:
                    conv = b.to_py(fields)
                except ConversionError as e:
                    raise LuaApiError(f"{fname}: {e.message}") from None
                data = conv if isinstance(conv, dict) else {str(i): v for i, v in enumerate(conv, 1)}
            rt.stderr.write(format_line(level, name, text, data))

        funcs: dict[str, Any] = {}
        for lvl in LEVELS:
            def one(msg: Any = None, fields: Any = None, _lvl: str = lvl) -> None:
                emit(_lvl, msg, fields, f"{label}.{_lvl}")
            funcs[lvl] = one
        funcs["warning"] = funcs["warn"]

        def log_(level: Any = None, msg: Any = None, fields: Any = None) -> None:
            number = level_number(level, f"{label}.log")
            emit(_NAMES[number], msg, fields, f"{label}.log")

        def set_level(level: Any = None) -> None:
            pylog.setLevel(level_number(level, f"{label}.setLevel"))

        def get_level() -> str:
            return level_name(pylog.getEffectiveLevel())

        def child(sub: Any = None) -> Any:
            if not isinstance(sub, str) or not sub:
                raise LuaApiError(f"{label}.child: name must be a non-empty string, got {type_name(sub)}")
            return make(f"{name}.{sub}", f"{label}.child")

        funcs.update({"log": log_, "setLevel": set_level, "getLevel": get_level, "child": child,
                      "set_level": set_level, "get_level": get_level})
        b.set_functions(T, funcs, label)
        T.name = name
        return T

    rt.G.Logger = make(ROOT, "Logger")
