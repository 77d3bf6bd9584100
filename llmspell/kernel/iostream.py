"""Lua stdout/stderr to iopub `stream` messages: sent as printed, coalesced only inside a burst.

A write after a quiet spell is published at once on the writing (Lua) thread. Writes that follow
within `interval` seconds are buffered and published together, either by the next write after the
interval or by a small flusher thread, so a tight print loop costs one message per interval, not
one per line. `flush()` is called before every reply and `idle`, so nothing is ever published
after the request's `idle`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

Publish = Callable[[str, str, "dict[str, Any]"], None]

#: Largest buffered text before a write publishes at once, whatever the interval.
MAX_BUFFERED_CHARS = 1 << 20


class OutputStreams:
    """The kernel's stdout/stderr sinks: ordered, coalesced, stamped with the current parent header."""

    def __init__(self, publish: Publish, interval: float = 0.005) -> None:
        self._publish = publish
        self.interval = interval
        self._parts: list[tuple[str, str]] = []
        self._size = 0
        self._last = 0.0
        self._cond = threading.Condition(threading.Lock())
        self._scheduled = False
        self._closed = False
        self.parent: dict[str, Any] = {}
        self.enabled = True
        self._thread = threading.Thread(target=self._run, name="llmspell-stream-flush", daemon=True)
        self._thread.start()

    def sink(self, name: str) -> _Sink:
        """An OutputSink (object with write(str)) for `stdout` or `stderr`."""
        return _Sink(self, name)

    def write(self, name: str, text: str) -> None:
        if not text or not self.enabled:
            return
        now = time.monotonic()
        with self._cond:
            self._parts.append((name, text))
            self._size += len(text)
            if now - self._last >= self.interval or self._size >= MAX_BUFFERED_CHARS:
                self._flush_locked(now)
            elif not self._scheduled:
                self._scheduled = True
                self._cond.notify()

    def flush(self) -> None:
        """Publish everything buffered now (before a reply, an input_request or idle)."""
        with self._cond:
            if self._parts:
                self._flush_locked(time.monotonic())

    def _flush_locked(self, now: float) -> None:
        parts, self._parts, self._size = self._parts, [], 0
        self._scheduled = False
        self._last = now
        name, chunks = parts[0][0], [parts[0][1]]
        for n, t in parts[1:]:
            if n == name:
                chunks.append(t)
            else:
                self._publish(name, "".join(chunks), self.parent)
                name, chunks = n, [t]
        self._publish(name, "".join(chunks), self.parent)

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                if not self._scheduled:
                    self._cond.wait()
                    continue
                delay = self._last + self.interval - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                if self._parts:
                    self._flush_locked(time.monotonic())
                self._scheduled = False

    def close(self) -> None:
        self.flush()
        with self._cond:
            self._closed = True
            self._cond.notify()


class _Sink:
    """One named stream as an OutputSink."""

    __slots__ = ("_streams", "_name")

    def __init__(self, streams: OutputStreams, name: str) -> None:
        self._streams = streams
        self._name = name

    def write(self, text: str) -> None:
        self._streams.write(self._name, text)
