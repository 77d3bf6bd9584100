"""A watchdog for runs an interrupt cannot stop: one long C call, a finalizer, a stuck Python call.

The soft path is the Lua count hook (`ScriptRuntime.interrupt`): it stops ordinary Lua code at
once. Lua runs without the GIL, so this thread keeps running while the Lua thread sits in one C
function (an exponential `string.find`, a `__gc` finalizer, where hooks do not fire). When the
deadline passes it interrupts softly; if the run is still going `grace` seconds later, it calls
`on_hard(kind, reason)`, which ends the run the hard way (the CLI exits 124 or 130, the kernel
answers the cell and restarts its process in place). It also reads the signal wake-up fd, so
Ctrl-C (or a kernel's SIGINT) is seen even when the Python signal handler cannot run.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import os
import select
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("llmspell.script")


class StopKind(enum.Enum):
    """Why a run is being stopped (the CLI maps it to its exit code)."""

    TIMEOUT = "timeout"
    INTERRUPT = "interrupt"

    @property
    def exit_code(self) -> int:
        """124 for a timeout (as GNU timeout), 130 for an interrupt (128 + SIGINT)."""
        return 124 if self is StopKind.TIMEOUT else 130


@dataclass
class _Pending:
    kind: StopKind
    reason: str
    hard_at: float


class Watchdog:
    """Soft interrupt at the deadline, `on_hard` after the grace period, for one run at a time."""

    def __init__(self, interrupt: Callable[[str], None], on_hard: Callable[[StopKind, str], None], *,
                 timeout: float | None = None, grace: float = 5.0,
                 clock: Callable[[], float] = time.monotonic, signal_fd: int | None = None,
                 escalate_on_repeat: bool = True) -> None:
        self._interrupt = interrupt
        self._on_hard = on_hard
        self.timeout = timeout if timeout and timeout > 0 else None
        self.grace = max(0.0, grace)
        self._clock = clock
        #: Read only while a run is going (a kernel's main loop reads the same fd between requests).
        self._signal_fd = signal_fd
        self._escalate = escalate_on_repeat
        self._lock = threading.Lock()
        self._run_id = 0
        self._running = False
        self._deadline: float | None = None
        self._pending: _Pending | None = None
        #: What the thread's current select waits for: the signal fd, and until when (None: no limit).
        self._armed_signal = False
        self._armed_until: float | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="llmspell-watchdog", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------ run control
    def start_run(self) -> None:
        """A run begins: the timeout (if any) counts from now.

        The thread is woken only when its current wait does not already cover this run (it does not
        watch the signal fd, or would wake after the new deadline): a kernel answering many short
        cells then never wakes it, which keeps it off the GIL on the request path.
        """
        with self._lock:
            self._run_id += 1
            self._running = True
            self._pending = None
            self._deadline = None if self.timeout is None else self._clock() + self.timeout
            stale = ((self._signal_fd is not None and not self._armed_signal)
                     or (self._deadline is not None
                         and (self._armed_until is None or self._armed_until > self._deadline)))
        if stale:
            self._poke()

    def end_run(self) -> None:
        """The run ended (normally or by the soft interrupt): nothing more happens to it.

        No wake-up: a thread still waiting for this run finds nothing running when it wakes (and
        then stops watching the signal fd), and its wait stays armed for the next run.
        """
        with self._lock:
            self._running = False
            self._deadline = None
            self._pending = None

    def interrupt(self, reason: str = "interrupted", kind: StopKind = StopKind.INTERRUPT) -> None:
        """Interrupt the run now; a second interrupt while one is pending ends it the hard way at once."""
        with self._lock:
            if not self._running:
                return
            now = self._clock()
            if self._pending is not None and kind is StopKind.INTERRUPT and self._escalate:
                self._pending.hard_at = now
            elif self._pending is None:
                self._pending = _Pending(kind, reason, now + self.grace)
        self._interrupt(reason)
        self._poke()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._running = False
        self._poke()
        self._thread.join(1.0)
        for s in (self._wake_r, self._wake_w):
            s.close()

    @property
    def running(self) -> bool:
        return self._running

    # --------------------------------------------------------------- thread
    def _poke(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    def _arm(self) -> tuple[list[int], float | None]:
        """The fds and timeout of the next wait, recorded so start_run knows whether it covers a run."""
        with self._lock:
            fds: list[int] = [self._wake_r.fileno()]
            signal_fd = self._signal_fd if self._running else None
            self._armed_signal = signal_fd is not None
            if signal_fd is not None:
                fds.append(signal_fd)
            wait: float | None = None
            if self._running:
                if self._pending is not None:
                    wait = max(0.0, self._pending.hard_at - self._clock())
                elif self._deadline is not None:
                    wait = max(0.0, self._deadline - self._clock())
            self._armed_until = None if wait is None else self._clock() + wait
            return fds, wait

    def _loop(self) -> None:
        while True:
            if self._closed:
                return
            fds, wait = self._arm()
            try:
                ready, _, _ = select.select(fds, [], [], wait)
            except (OSError, ValueError):
                return
            if self._closed:
                return
            if self._wake_r.fileno() in ready:
                with contextlib.suppress(OSError):
                    while self._wake_r.recv(4096):
                        pass
            if self._signal_fd is not None and self._signal_fd in ready and self._running:
                self._read_signals()
            self._tick()

    def _read_signals(self) -> None:
        try:
            data = os.read(self._signal_fd, 512) if self._signal_fd is not None else b""
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._signal_fd = None
            return
        for _ in range(data.count(signal.SIGINT.value)):
            self.interrupt("interrupted", StopKind.INTERRUPT)

    def _tick(self) -> None:
        fire: tuple[StopKind, str] | None = None
        soft: str | None = None
        with self._lock:
            if not self._running:
                return
            now = self._clock()
            if self._pending is None and self._deadline is not None and now >= self._deadline:
                reason = f"script timed out after {self.timeout:g} s"
                self._pending = _Pending(StopKind.TIMEOUT, reason, now + self.grace)
                soft = reason
            elif self._pending is not None and now >= self._pending.hard_at:
                fire = (self._pending.kind, self._pending.reason)
                self._running = False
        if soft is not None:
            self._interrupt(soft)
        if fire is not None:
            log.info("the run did not stop within %g s of '%s': ending it the hard way", self.grace, fire[1])
            self._on_hard(*fire)
