"""`Metrics` global (lua-api.md §23): figures a script reports about its own run, for people and the harness."""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

from llmspell.script.bridge import LuaApiError, type_name
from llmspell.script.checks import need_number

if TYPE_CHECKING:
    from llmspell.script.engine import ScriptRuntime

#: A metric name: lower-case letters, digits, '_' and '.', at most MAX_NAME_LENGTH characters.
NAME_RE = re.compile(r"[a-z0-9_.]+")
MAX_NAME_LENGTH = 64
#: Distinct names one run may report.
MAX_METRICS = 256
#: Longest string value kept (a metric is a figure, not a document).
MAX_STRING_LENGTH = 1024


def check_name(fname: str, name: Any) -> str:
    """The metric name, or a LuaApiError saying what is wrong with it."""
    if not isinstance(name, str):
        raise LuaApiError(f"Metrics.{fname}: name must be a string like 'classified_by_model', got {type_name(name)}")
    if len(name) > MAX_NAME_LENGTH:
        raise LuaApiError(f"Metrics.{fname}: name '{name[:20]}…' is {len(name)} characters (at most {MAX_NAME_LENGTH})")
    if not NAME_RE.fullmatch(name):
        raise LuaApiError(f"Metrics.{fname}: name '{name}' may only use a-z, 0-9, '_' and '.'")
    return name


def _check_number(fname: str, what: str, value: Any) -> int | float:
    value = need_number(value, f"Metrics.{fname}", what)
    if isinstance(value, float) and not math.isfinite(value):
        raise LuaApiError(f"Metrics.{fname}: {what} must be a finite number, got {value}")
    return value


class MetricStore:
    """The metrics of one run: a name -> number/string/boolean map with the §23 limits."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values  # RunStats.metrics: reset with the run's other figures

    def _room_for(self, fname: str, name: str) -> None:
        if name not in self.values and len(self.values) >= MAX_METRICS:
            raise LuaApiError(f"Metrics.{fname}: at most {MAX_METRICS} metric names per run; '{name}' is one too many")

    def count(self, name: Any, n: Any = 1) -> int | float:
        name = check_name("count", name)
        n = _check_number("count", "n", 1 if n is None else n)
        current = self.values.get(name, 0)
        if isinstance(current, bool) or not isinstance(current, int | float):
            raise LuaApiError(f"Metrics.count: '{name}' holds a {type_name(current)}, not a counter")
        self._room_for("count", name)
        total = current + n
        if isinstance(total, float) and not math.isfinite(total):
            raise LuaApiError(f"Metrics.count: '{name}' would overflow")
        self.values[name] = total
        return total

    def set(self, name: Any, value: Any) -> None:
        name = check_name("set", name)
        if isinstance(value, str):
            if len(value) > MAX_STRING_LENGTH:
                raise LuaApiError(f"Metrics.set: the string for '{name}' has {len(value)} characters "
                                  f"(at most {MAX_STRING_LENGTH})")
        elif value is None:
            raise LuaApiError(f"Metrics.set: value for '{name}' must be a number, string or boolean, got nil")
        elif not isinstance(value, bool):
            _check_number("set", "value", value)
        self._room_for("set", name)
        self.values[name] = value

    def get(self, name: Any) -> Any:
        return self.values.get(check_name("get", name))


def install(rt: ScriptRuntime) -> None:
    """Create the Metrics table on the runtime; values live in the run's RunStats (reset per run)."""
    b = rt.bridge
    stats = rt.services.stats
    T = b.table()

    def store() -> MetricStore:
        return MetricStore(stats.metrics)

    def count(name: Any = None, n: Any = None) -> Any:
        return store().count(name, n)

    def set_(name: Any = None, value: Any = None) -> None:
        store().set(name, value)

    def get(name: Any = None) -> Any:
        return store().get(name)

    def all_() -> Any:
        return b.to_lua(dict(stats.metrics))

    b.set_functions(T, {"count": count, "set": set_, "get": get, "all": all_}, "Metrics")
    rt.G.Metrics = T
