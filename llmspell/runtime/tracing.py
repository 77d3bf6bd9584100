"""Tracing: log levels and directives, cheap spans with latency stats, optional OpenTelemetry export.

* `configure(spec)` sets stderr logging from `off|error|warn|info|debug|trace` or RUST_LOG-style
  directives (`info,llmspell.kernel=debug`).
* `span(name, **fields)` is a context manager and a decorator. When neither its logger
  (`llmspell.<first part of name>` at debug) nor stats collection nor OpenTelemetry wants it, it
  returns a shared no-op object (a dict lookup: well under a microsecond).
* `stats()` gives per-operation counts and p50/p95/p99 latencies; the kernel and the harness read it.
* `estimate_complexity(source)` guesses what a script builds (agents, workflow kinds, RAG) and its
  layer (1-6); `check_wall_time` warns when a run took more than twice its layer's expectation.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import math
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

TRACE = 5
OFF = logging.CRITICAL + 10
logging.addLevelName(TRACE, "TRACE")

LEVELS: dict[str, int] = {
    "off": OFF, "none": OFF, "error": logging.ERROR, "warn": logging.WARNING, "warning": logging.WARNING,
    "info": logging.INFO, "debug": logging.DEBUG, "trace": TRACE,
}
#: Level at which finished spans are logged.
SPAN_LEVEL = logging.DEBUG
#: Samples kept per operation for percentiles (the newest ones).
SAMPLES_PER_OPERATION = 10_000

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("llmspell.tracing")

_HANDLER_MARK = "_llmspell_handler"


class TracingConfigError(ValueError):
    """An unparsable --trace / LLMSPELL_LOG value."""


# --------------------------------------------------------------------------- levels and directives
@dataclass(frozen=True)
class LogSpec:
    """A parsed level spec: the default level and per-logger levels."""

    default: int
    directives: dict[str, int] = field(default_factory=dict)


def parse_spec(spec: str | None) -> LogSpec:
    """Parse `warn`, `info,llmspell.kernel=debug`, `llmspell.rag=trace` (default stays warn)."""
    default = logging.WARNING
    directives: dict[str, int] = {}
    for raw in (spec or "").split(","):
        part = raw.strip()
        if not part:
            continue
        if "=" in part:
            target, _, level = part.partition("=")
            target, level = target.strip(), level.strip().lower()
            if not target or level not in LEVELS:
                raise TracingConfigError(f"invalid log directive '{part}' (use target=level with level one of "
                                         "off, error, warn, info, debug, trace)")
            directives[target.replace("::", ".")] = LEVELS[level]
        elif part.lower() in LEVELS:
            default = LEVELS[part.lower()]
        elif re.fullmatch(r"[A-Za-z_]\w*(?:(?:\.|::)\w+)+", part):
            directives[part.replace("::", ".")] = TRACE  # a bare target means "everything from it"
        else:
            raise TracingConfigError(f"invalid log level '{part}' (use off, error, warn, info, debug, trace, "
                                     "or directives like 'info,llmspell.kernel=debug')")
    return LogSpec(default, directives)


class _Formatter(logging.Formatter):
    """`YYYY-mm-dd HH:MM:SS.mmm LEVEL [logger] message`."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.created))
        text = f"{stamp}.{int(record.msecs):03d} {record.levelname:<5} [{record.name}] {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        from llmspell.runtime.redact import scrub

        return scrub(text)  # keys (known values and key-shaped strings) never reach a log line


_configured: list[str] = []


def configure(spec: str | None = None, *, stream: Any = None) -> LogSpec:
    """Install the stderr handler and levels from a spec; raises TracingConfigError when it is invalid."""
    parsed = parse_spec(spec)
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, _HANDLER_MARK, False):
            root.removeHandler(h)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(_Formatter())
    setattr(handler, _HANDLER_MARK, True)
    root.addHandler(handler)
    # A bare level is llmspell's: third-party libraries (httpx, vcrpy, asyncio...) stay at warn unless a
    # directive names them (`debug,httpx=debug`), so --trace debug shows our spans, not their chatter.
    root.setLevel(max(parsed.default, logging.WARNING))
    for name in _configured:
        logging.getLogger(name).setLevel(logging.NOTSET)
    _configured.clear()
    logging.getLogger("llmspell").setLevel(parsed.default)
    _configured.append("llmspell")
    for name, level in parsed.directives.items():
        logging.getLogger(name).setLevel(level)
        _configured.append(name)
    # A logger given a lower level by a directive still reaches the root handler: propagation checks
    # handler levels only, so the root level can stay at the default.
    _invalidate()
    return parsed


# --------------------------------------------------------------------------- spans
class _OpStats:
    """Latency samples and counts of one operation."""

    __slots__ = ("count", "errors", "total_ns", "max_ns", "samples")

    def __init__(self) -> None:
        self.count = 0
        self.errors = 0
        self.total_ns = 0
        self.max_ns = 0
        self.samples: deque[int] = deque(maxlen=SAMPLES_PER_OPERATION)


_stats: dict[str, _OpStats] = {}
_stats_lock = threading.Lock()
_collect_stats = False
_otel_tracer: Any = None
_otel_provider: Any = None
_otel_atexit: list[bool] = []
_current: contextvars.ContextVar[Span | None] = contextvars.ContextVar("llmspell_span", default=None)


class _OffSpan:
    """The disabled span of one name: a no-op context manager; as a decorator it decides per call."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> _OffSpan:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def set(self, **fields: Any) -> None:
        """Ignored: the span is off."""

    def __call__(self, fn: F) -> F:
        return _decorate(self.name, fn)


class Span:
    """A live span: timed, nested under the current span, logged at debug and counted in the stats."""

    __slots__ = ("name", "fields", "parent", "start_ns", "duration_ns", "error", "_token", "_logger", "_otel")

    def __init__(self, name: str, fields: dict[str, Any], logger: logging.Logger) -> None:
        self.name = name
        self.fields = fields
        self.parent: Span | None = None
        self.start_ns = 0
        self.duration_ns = 0
        self.error: str | None = None
        self._token: contextvars.Token[Span | None] | None = None
        self._logger = logger
        self._otel: Any = None

    def set(self, **fields: Any) -> None:
        """Add or change fields (tags) of this span."""
        self.fields.update(fields)

    @property
    def duration_ms(self) -> float:
        return self.duration_ns / 1e6

    def __enter__(self) -> Span:
        self.parent = _current.get()
        self._token = _current.set(self)
        if _otel_tracer is not None:
            self._otel = _otel_start(self)
        self.start_ns = time.perf_counter_ns()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.duration_ns = time.perf_counter_ns() - self.start_ns
        if self._token is not None:
            _current.reset(self._token)
        if exc_type is not None:
            self.error = exc_type.__name__
        if _collect_stats:
            _record(self.name, self.duration_ns, self.error is not None)
        if self._logger.isEnabledFor(SPAN_LEVEL):
            extra = "".join(f" {k}={v!r}" for k, v in sorted(self.fields.items()))
            status = f" error={self.error}" if self.error else ""
            self._logger.log(SPAN_LEVEL, "span %s %.3f ms%s%s", self.name, self.duration_ms, extra, status)
        if self._otel is not None:
            _otel_end(self)

    def __call__(self, fn: F) -> F:
        return _decorate(self.name, fn)


_off_cache: dict[str, _OffSpan | logging.Logger] = {}


def _invalidate() -> None:
    _off_cache.clear()


def _entry(name: str) -> _OffSpan | logging.Logger:
    logger = logging.getLogger("llmspell." + name.split(".", 1)[0])
    on = _collect_stats or _otel_tracer is not None or logger.isEnabledFor(SPAN_LEVEL)
    value: _OffSpan | logging.Logger = logger if on else _OffSpan(name)
    _off_cache[name] = value
    return value


def span(name: str, /, **fields: Any) -> Span | _OffSpan:
    """A span for `name` (`with span("agent.execute", model=m): ...` or `@span("tool.invoke")`)."""
    e = _off_cache.get(name)
    if e is None:
        e = _entry(name)
    if e.__class__ is _OffSpan:
        return e  # type: ignore[return-value]
    return Span(name, fields, e)  # type: ignore[arg-type]


def _decorate(name: str, fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with span(name):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def current_span() -> Span | None:
    """The innermost live span of this thread/context, or None."""
    return _current.get()


def _record(name: str, ns: int, error: bool) -> None:
    st = _stats.get(name)
    if st is None:
        with _stats_lock:
            st = _stats.setdefault(name, _OpStats())
    st.count += 1
    st.total_ns += ns
    if ns > st.max_ns:
        st.max_ns = ns
    if error:
        st.errors += 1
    st.samples.append(ns)


def record(name: str, duration_ms: float, *, error: bool = False) -> None:
    """Add one measured operation to the stats (for code that times itself)."""
    _record(name, int(duration_ms * 1e6), error)


def enable_stats(on: bool = True) -> None:
    """Collect per-operation latency stats even when span logging is off (kernel, harness)."""
    global _collect_stats
    _collect_stats = on
    _invalidate()


def _percentile(sorted_ns: list[int], q: float) -> float:
    if not sorted_ns:
        return 0.0
    k = max(0, min(len(sorted_ns) - 1, math.ceil(q / 100.0 * len(sorted_ns)) - 1))
    return sorted_ns[k] / 1e6


def stats() -> dict[str, dict[str, float | int]]:
    """A snapshot: {operation: {count, errors, mean_ms, p50_ms, p95_ms, p99_ms, max_ms}}."""
    with _stats_lock:
        items = list(_stats.items())
    out: dict[str, dict[str, float | int]] = {}
    for name, st in items:
        samples = sorted(st.samples)
        out[name] = {
            "count": st.count, "errors": st.errors,
            "mean_ms": round(st.total_ns / st.count / 1e6, 6) if st.count else 0.0,
            "p50_ms": round(_percentile(samples, 50), 6), "p95_ms": round(_percentile(samples, 95), 6),
            "p99_ms": round(_percentile(samples, 99), 6), "max_ms": round(st.max_ns / 1e6, 6),
        }
    return out


def reset() -> None:
    """Forget all collected stats."""
    with _stats_lock:
        _stats.clear()


# --------------------------------------------------------------------------- OpenTelemetry (optional)
def enable_otel(exporter: str = "console", service_name: str = "llmspell") -> bool:
    """Export spans through OpenTelemetry (the `otel` extra); False when it is not installed."""
    global _otel_tracer, _otel_provider
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
    except ImportError:
        log.warning("OpenTelemetry export requested but opentelemetry-sdk is not installed "
                    "(pip install 'llmspell[otel]')")
        return False
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    if exporter == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:
            log.warning("OTLP export needs opentelemetry-exporter-otlp-proto-http; using the console exporter")
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter(out=sys.stderr)))
        else:
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    else:
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter(out=sys.stderr)))
    disable_otel()
    if _otel_provider is None and not _otel_atexit:
        import atexit

        atexit.register(disable_otel)  # flush pending spans when the process ends
        _otel_atexit.append(True)
    _otel_tracer = provider.get_tracer("llmspell")
    _otel_provider = provider
    _invalidate()
    return True


def disable_otel() -> None:
    """Stop exporting spans through OpenTelemetry, flushing what is pending."""
    global _otel_tracer, _otel_provider
    provider, _otel_tracer, _otel_provider = _otel_provider, None, None
    _invalidate()
    if provider is not None:
        try:
            provider.shutdown()
        except Exception:  # noqa: BLE001 - exporter problems must not break the program
            log.debug("OpenTelemetry shutdown failed", exc_info=True)


def _otel_start(s: Span) -> Any:
    from opentelemetry import trace

    parent = s.parent._otel if s.parent is not None else None
    ctx = trace.set_span_in_context(parent) if parent is not None else None
    attrs = {k: v if isinstance(v, str | bool | int | float) else repr(v) for k, v in s.fields.items()}
    return _otel_tracer.start_span(s.name, context=ctx, attributes=attrs)


def _otel_end(s: Span) -> None:
    for k, v in s.fields.items():
        s._otel.set_attribute(k, v if isinstance(v, str | bool | int | float) else repr(v))
    if s.error:
        s._otel.set_attribute("error", s.error)
    s._otel.end()


# --------------------------------------------------------------------------- application detection
#: Expected wall time per layer (seconds); a run slower than twice this is warned about.
LAYER_EXPECTED_SECONDS: dict[int, float] = {1: 10.0, 2: 30.0, 3: 60.0, 4: 120.0, 5: 180.0, 6: 300.0}

_COMMENT_BLOCK = re.compile(r"--\[(=*)\[.*?\]\1\]", re.S)
_COMMENT_LINE = re.compile(r"--[^\n]*")
_AGENT = re.compile(r"\bAgent\s*[.:]\s*(?:builder|create)\b")
_WORKFLOW_KIND = re.compile(r"(?:\bWorkflow\s*\.\s*|:\s*)(sequential|parallel|conditional|loop)\b")
_WORKFLOW = re.compile(r"\bWorkflow\s*[.:]\s*(?:builder|sequential|parallel|conditional|loop)\b")
_TOOL = re.compile(r"\bTool\s*[.:]\s*(?:invoke|execute)\b|\bTool\.\w+\s*\(")
_RAG = re.compile(r"\bRAG\s*[.:]\s*\w+")
_STATE = re.compile(r"\b(?:State|Session|Artifact)\s*[.:]\s*\w+")
_HOOKS = re.compile(r"\b(?:Hook|Event)\s*[.:]\s*\w+")


def estimate_complexity(source: str) -> dict[str, Any]:
    """Guess from a script's source what it builds and its layer (1 simple .. 6 expert)."""
    code = _COMMENT_LINE.sub("", _COMMENT_BLOCK.sub("", source))
    agents = len(_AGENT.findall(code))
    kinds = sorted(set(_WORKFLOW_KIND.findall(code)))
    workflows = len(_WORKFLOW.findall(code))
    tools = len(_TOOL.findall(code))
    rag = bool(_RAG.search(code))
    state = bool(_STATE.search(code))
    hooks = bool(_HOOKS.search(code))
    if agents >= 9 or (rag and agents >= 5) or (len(kinds) >= 3 and agents >= 5):
        layer = 6
    elif rag or agents >= 7 or (len(kinds) >= 2 and agents >= 4):
        layer = 5
    elif agents >= 5 or any(k in kinds for k in ("parallel", "conditional", "loop")) or (state and workflows):
        layer = 4
    elif workflows or agents >= 3 or hooks:
        layer = 3
    elif agents >= 2 or tools or state:
        layer = 2
    else:
        layer = 1
    group = "simple" if agents <= 4 else ("complex" if agents <= 8 else "expert")
    return {"agents": agents, "workflows": workflows, "workflow_kinds": kinds, "tool_calls": tools,
            "rag": rag, "state": state, "hooks": hooks, "layer": layer, "group": group,
            "expected_seconds": LAYER_EXPECTED_SECONDS[layer]}


def check_wall_time(info: dict[str, Any], wall_seconds: float, *, warn: bool = True) -> str | None:
    """The warning text (logged too) when a run took more than twice its layer's expected time."""
    expected = float(info.get("expected_seconds") or LAYER_EXPECTED_SECONDS.get(int(info.get("layer", 1)), 10.0))
    if wall_seconds <= 2 * expected:
        return None
    text = (f"run took {wall_seconds:.1f} s, more than twice the {expected:g} s expected for a layer-"
            f"{info.get('layer')} script ({info.get('agents', 0)} agents, workflows: "
            f"{', '.join(info.get('workflow_kinds') or []) or 'none'}, rag: {'yes' if info.get('rag') else 'no'})")
    if warn:
        log.warning("%s", text)
    return text


@contextmanager
def run_span(source: str, **fields: Any) -> Iterator[dict[str, Any]]:
    """Root span of one script run: tagged with its estimated complexity, wall time checked after."""
    info = estimate_complexity(source)
    t0 = time.perf_counter()
    tags = {f"app.{k}": v for k, v in info.items() if k != "workflow_kinds"}
    tags["app.workflow_kinds"] = ",".join(info["workflow_kinds"])
    with span("run", **fields, **tags):
        try:
            yield info
        finally:
            info["wall_seconds"] = time.perf_counter() - t0
            check_wall_time(info, info["wall_seconds"])
