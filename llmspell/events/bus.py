"""EventBus: publish/subscribe with glob patterns, correlation ids and bounded queues (§10, §20.6).

Publishing is the hot path (>= 90,000 events/s with 10 subscribers): an event is one small
slotted object, the set of matching subscriptions is cached per event type, each subscription
queue is a `deque(maxlen=buffer_size)` that drops the OLDEST event when full (counted in
`dropped`), and a waiting receiver is woken only when one is actually waiting.
"""

from __future__ import annotations

import fnmatch
import itertools
import logging
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from llmspell.runtime.errors import ServiceError
from llmspell.runtime.files import open_private
from llmspell.settings import EventSettings

log = logging.getLogger("llmspell.events")


class EventError(ServiceError):
    """Misuse of the bus (unknown subscription, bad pattern, bad buffer size)."""


class Event:
    """One published event; rendered as the §10.2 table only when a subscriber receives it."""

    __slots__ = ("event_type", "data", "timestamp", "sequence", "correlation_id", "language", "ttl", "source")

    def __init__(self, event_type: str, data: Any, timestamp: float, sequence: int, correlation_id: str | None,
                 language: str, ttl: float | None, source: str) -> None:
        self.event_type = event_type
        self.data = data
        self.timestamp = timestamp
        self.sequence = sequence
        self.correlation_id = correlation_id
        self.language = language
        self.ttl = ttl
        self.source = source

    def expired(self, now: float) -> bool:
        return self.ttl is not None and now > self.timestamp + self.ttl

    def as_dict(self, bus_id: str = "") -> dict[str, Any]:
        """The §10.2 event table as Python data."""
        out: dict[str, Any] = {
            "id": f"evt-{bus_id}-{self.sequence}",
            "event_type": self.event_type,
            "topic": self.event_type,
            "data": self.data if self.data is not None else {},
            "timestamp": rfc3339(self.timestamp),
            "sequence": self.sequence,
            "correlation_id": self.correlation_id,
            "language": self.language,
            "metadata": {"source": self.source},
            "target_language": "Lua",
            "serialization_version": "1.0",
        }
        if self.ttl is not None:
            out["ttl"] = int(self.ttl) if float(self.ttl).is_integer() else self.ttl
        return out


def rfc3339(ts: float) -> str:
    """UTC RFC 3339 with milliseconds."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int((ts % 1) * 1000):03d}Z"


def compile_glob(pattern: str) -> re.Pattern[str]:
    """`*` any run, `?` one character; the whole event type must match."""
    return re.compile(fnmatch.translate(pattern), re.S)


@dataclass(eq=False)
class Subscription:
    """A bounded queue of events whose type matches `pattern`."""

    id: str
    pattern: str
    buffer_size: int
    language: str = "lua"
    queue: deque[Event] = field(default_factory=deque)
    dropped: int = 0
    waiting: bool = False
    signal: threading.Event = field(default_factory=threading.Event)
    regex: re.Pattern[str] | None = None

    def __post_init__(self) -> None:
        self.queue = deque(maxlen=self.buffer_size)
        self.regex = compile_glob(self.pattern)


class EventBus:
    """The process-local event bus of one runtime (`services.events`)."""

    def __init__(self, settings: EventSettings | None = None) -> None:
        self.settings = s = settings or EventSettings()
        if s.buffer_size <= 0:
            raise EventError(f"[events] buffer_size must be > 0 (got {s.buffer_size})")
        self.enabled = s.enabled
        self.emit_state_events = s.enabled and s.emit_state_events
        self.emit_timing_events = s.enabled and s.emit_timing_events
        self.emit_debug_events = s.enabled and s.emit_debug_events
        self.id = uuid.uuid4().hex[:8]
        self._subs: dict[str, Subscription] = {}
        self._route: dict[str, tuple[Subscription, ...]] = {}
        self._allowed: dict[str, bool] = {}
        self._lock = threading.Lock()
        self._seq = itertools.count(1)
        self._sub_ids = itertools.count(1)
        self.processed = 0
        self.rate_limit_violations = 0
        self._window = 0
        self._window_count = 0
        self._root: str | None = None
        self._taps: list[Callable[[Event], None]] = []
        self._include = tuple(compile_glob(p) for p in s.include_types)
        self._exclude = tuple(compile_glob(p) for p in s.exclude_types)
        self._export_file: Any = None
        self._exporting = s.export_stdout or bool(s.export_file)

    # ------------------------------------------------------------------ correlation
    def new_root_context(self) -> str:
        """Open a root correlation id (one per run / execute_request); later events carry it."""
        self._root = str(uuid.uuid4())
        return self._root

    @property
    def current_correlation_id(self) -> str | None:
        return self._root

    # ------------------------------------------------------------------ publish
    def publish(self, event_type: str, data: dict[str, Any] | None = None, *, correlation_id: str | None = None,
                ttl_seconds: float | None = None, language: str = "python", source: str = "runtime") -> bool:
        """Deliver an event to every matching subscription; False when events are disabled (thread-safe)."""
        if not self.enabled:
            return False
        allowed = self._allowed.get(event_type)
        if allowed is None:
            allowed = self._filter(event_type)
        if not allowed:
            return True
        now = time.time()
        if self.settings.max_events_per_second > 0 and not self._admit(now):
            return True
        ev = Event(event_type, data, now, next(self._seq), correlation_id or self._root, language,
                   ttl_seconds, source)
        subs = self._route.get(event_type)
        if subs is None:
            subs = self._routes_for(event_type)
        for sub in subs:
            q = sub.queue
            if len(q) == sub.buffer_size:
                sub.dropped += 1
            q.append(ev)
            if sub.waiting:
                sub.signal.set()
        self.processed += 1
        if self._taps:
            for tap in self._taps:
                try:
                    tap(ev)
                except Exception:  # noqa: BLE001 - a tap never breaks publishing
                    log.warning("event tap failed", exc_info=True)
        if self._exporting:
            self._export(ev)
        return True

    def _filter(self, event_type: str) -> bool:
        ok = True
        if self._include and not any(r.match(event_type) for r in self._include):
            ok = False
        if ok and self._exclude and any(r.match(event_type) for r in self._exclude):
            ok = False
        if len(self._allowed) > 10_000:
            self._allowed.clear()
        self._allowed[event_type] = ok
        return ok

    def _admit(self, now: float) -> bool:
        second = int(now)
        with self._lock:
            if second != self._window:
                self._window, self._window_count = second, 0
            if self._window_count >= self.settings.max_events_per_second:
                self.rate_limit_violations += 1
                return False
            self._window_count += 1
            return True

    def _routes_for(self, event_type: str) -> tuple[Subscription, ...]:
        with self._lock:
            subs = tuple(s for s in self._subs.values() if s.regex is not None and s.regex.match(event_type))
            if len(self._route) > 10_000:
                self._route.clear()
            self._route[event_type] = subs
        return subs

    def _export(self, ev: Event) -> None:
        s = self.settings
        opt = orjson.OPT_SORT_KEYS | (orjson.OPT_INDENT_2 if s.pretty_json else 0)
        try:
            line = orjson.dumps(ev.as_dict(self.id), option=opt, default=str).decode() + "\n"
        except TypeError:
            return
        with self._lock:
            if s.export_stdout:
                import sys

                sys.stdout.write(line)
                sys.stdout.flush()
            if s.export_file:
                try:
                    if self._export_file is None:
                        self._export_file = open_private(s.export_file, "a", encoding="utf-8")
                    self._export_file.write(line)
                    self._export_file.flush()
                except OSError as e:
                    log.warning("event export to %s failed: %s", s.export_file, e)

    # ------------------------------------------------------------------ subscribe
    def subscribe(self, pattern: str, *, buffer_size: int | None = None, language: str = "lua") -> str:
        """A new subscription id for events whose type matches the glob `pattern`."""
        if not isinstance(pattern, str) or not pattern:
            raise EventError("pattern must be a non-empty string (e.g. 'agent.*' or '*')")
        size = self.settings.buffer_size if buffer_size is None else int(buffer_size)
        if size <= 0:
            raise EventError(f"buffer_size must be > 0 (got {size})")
        sid = f"sub_{self.id}_{next(self._sub_ids)}"
        with self._lock:
            self._subs[sid] = Subscription(sid, pattern, size, language)
            self._route.clear()
        return sid

    def unsubscribe(self, sub_id: str) -> bool:
        with self._lock:
            sub = self._subs.pop(sub_id, None)
            self._route.clear()
        if sub is not None:
            sub.signal.set()
        return sub is not None

    def get_subscription(self, sub_id: str) -> Subscription:
        sub = self._subs.get(sub_id)
        if sub is None:
            raise EventError(f"unknown subscription id '{sub_id}' (use the id Event.subscribe returned)")
        return sub

    def poll(self, sub_id: str) -> Event | None:
        """The oldest pending event, or None (never waits)."""
        sub = self.get_subscription(sub_id)
        now = time.time()
        while True:
            try:
                ev = sub.queue.popleft()
            except IndexError:
                return None
            if not ev.expired(now):
                return ev

    def receive(self, sub_id: str, timeout: float | None, *, check: Callable[[], None] | None = None,
                slice_s: float = 0.02) -> Event | None:
        """Wait up to `timeout` seconds for an event; `check` runs between waits (raise to stop: interrupts)."""
        ev = self.poll(sub_id)
        if ev is not None or (timeout is not None and timeout <= 0):
            return ev
        sub = self.get_subscription(sub_id)
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                sub.signal.clear()
                sub.waiting = True
                ev = self.poll(sub_id)
                if ev is not None:
                    return ev
                if check is not None:
                    check()
                left = slice_s if deadline is None else min(slice_s, deadline - time.monotonic())
                if left <= 0:
                    return None
                sub.signal.wait(left)
                if sub_id not in self._subs:
                    return None
        finally:
            sub.waiting = False

    # ------------------------------------------------------------------ introspection
    def list_subscriptions(self) -> list[dict[str, Any]]:
        return [{"id": s.id, "pattern": s.pattern, "language": s.language, "pending": len(s.queue)}
                for s in list(self._subs.values())]

    def stats(self) -> dict[str, Any]:
        subs = list(self._subs.values())
        by_lang: dict[str, int] = {}
        for s in subs:
            by_lang[s.language] = by_lang.get(s.language, 0) + 1
        return {
            "event_bus_stats": {"events_processed": self.processed,
                                "rate_limit_violations": self.rate_limit_violations,
                                "buffer_size": self.settings.buffer_size,
                                "dropped": sum(s.dropped for s in subs)},
            "bridge_stats": {"active_subscriptions": len(subs),
                             "subscriptions_by_language": {"lua": by_lang.get("lua", 0), **by_lang}},
        }

    # ------------------------------------------------------------------ taps (session recording)
    def add_tap(self, fn: Callable[[Event], None]) -> None:
        """Call `fn(event)` for every delivered event (used to record session timelines)."""
        self._taps = [*self._taps, fn]

    def remove_tap(self, fn: Callable[[Event], None]) -> None:
        self._taps = [t for t in self._taps if t is not fn]

    def close(self) -> None:
        with self._lock:
            if self._export_file is not None:
                self._export_file.close()
                self._export_file = None
            subs = list(self._subs.values())
            self._subs.clear()
            self._route.clear()
        for s in subs:
            s.signal.set()
