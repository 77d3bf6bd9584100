"""The watchdog on an injected clock: soft interrupt at the deadline, hard stop after the grace period."""

from __future__ import annotations

import signal
import socket
import threading
from collections.abc import Iterator

import pytest

from llmspell.script.watchdog import StopKind, Watchdog


class Recorder:
    """Collects the watchdog's calls; `until` awaits one, since the watchdog's own thread may be the caller."""

    def __init__(self) -> None:
        self.soft: list[str] = []
        self.hard: list[tuple[StopKind, str]] = []
        self.soft_seen = threading.Event()
        self.hard_seen = threading.Event()
        self._changed = threading.Condition()

    def on_soft(self, reason: str) -> None:
        with self._changed:
            self.soft.append(reason)
            self._changed.notify_all()
        self.soft_seen.set()

    def on_hard(self, kind: StopKind, reason: str) -> None:
        with self._changed:
            self.hard.append((kind, reason))
            self._changed.notify_all()
        self.hard_seen.set()

    def until(self, soft: int = 0, hard: int = 0) -> None:
        """Wait (10 s at most) until at least `soft` soft and `hard` hard stops were recorded."""
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.soft) >= soft and len(self.hard) >= hard, 10)


@pytest.fixture
def clock() -> list[float]:
    return [100.0]


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


@pytest.fixture
def wd(clock: list[float], rec: Recorder) -> Iterator[Watchdog]:
    w = Watchdog(rec.on_soft, rec.on_hard, timeout=10, grace=5, clock=lambda: clock[0])
    yield w
    w.close()


def advance(w: Watchdog, clock: list[float], to: float) -> None:
    clock[0] = to
    w._tick()  # what the thread does when its wait ends; called here so nothing depends on timing


def test_timeout_then_grace_then_hard(wd: Watchdog, clock: list[float], rec: Recorder) -> None:
    wd.start_run()
    advance(wd, clock, 109.9)
    assert rec.soft == [] and rec.hard == []
    advance(wd, clock, 110.0)
    rec.until(soft=1)
    assert rec.soft == ["script timed out after 10 s"] and rec.hard == []
    advance(wd, clock, 114.9)
    assert rec.hard == []
    advance(wd, clock, 115.0)
    rec.until(hard=1)
    assert rec.hard == [(StopKind.TIMEOUT, "script timed out after 10 s")]
    assert StopKind.TIMEOUT.exit_code == 124 and StopKind.INTERRUPT.exit_code == 130


def test_a_run_that_stops_in_time_is_left_alone(wd: Watchdog, clock: list[float], rec: Recorder) -> None:
    wd.start_run()
    advance(wd, clock, 110.0)
    wd.end_run()
    advance(wd, clock, 1000.0)
    assert rec.hard == []


def test_interrupt_then_hard_and_repeat_escalates(wd: Watchdog, clock: list[float], rec: Recorder) -> None:
    wd.start_run()
    wd.interrupt("interrupted")
    assert rec.soft == ["interrupted"]
    advance(wd, clock, 104.9)
    assert rec.hard == []
    wd.interrupt("interrupted")  # a second Ctrl-C: at once (the woken thread may be the one to fire it)
    advance(wd, clock, 104.9)
    rec.until(hard=1)
    assert rec.hard == [(StopKind.INTERRUPT, "interrupted")]


def test_no_escalation_when_disabled(clock: list[float], rec: Recorder) -> None:
    w = Watchdog(rec.on_soft, rec.on_hard, grace=5, clock=lambda: clock[0], escalate_on_repeat=False)
    try:
        w.start_run()
        w.interrupt()
        w.interrupt()
        advance(w, clock, 104.0)
        assert rec.hard == []
        advance(w, clock, 105.0)
        rec.until(hard=1)
        assert rec.hard == [(StopKind.INTERRUPT, "interrupted")]
    finally:
        w.close()


def test_idle_interrupts_are_ignored(wd: Watchdog, clock: list[float], rec: Recorder) -> None:
    wd.interrupt()
    advance(wd, clock, 1000.0)
    assert rec.soft == [] and rec.hard == []


def test_sigint_bytes_on_the_wakeup_fd_interrupt_a_run(rec: Recorder) -> None:
    r, w = socket.socketpair()
    r.setblocking(False)
    wd = Watchdog(rec.on_soft, rec.on_hard, grace=600, signal_fd=r.fileno())
    try:
        w.send(bytes([signal.SIGINT]))  # before the run: not read (a kernel's main loop owns it then)
        wd.start_run()
        assert rec.soft_seen.wait(10)  # the thread reads it once the run started
        assert rec.soft == ["interrupted"]
        w.send(bytes([signal.SIGTERM, signal.SIGINT]))  # a second SIGINT: hard at once
        assert rec.hard_seen.wait(10)
        assert rec.hard == [(StopKind.INTERRUPT, "interrupted")]
    finally:
        wd.close()
        r.close()
        w.close()


def test_the_thread_fires_on_a_real_clock_with_small_timeouts(rec: Recorder) -> None:
    wd = Watchdog(rec.on_soft, rec.on_hard, timeout=0.05, grace=0.05)
    try:
        wd.start_run()
        assert rec.hard_seen.wait(10)
        assert rec.soft == ["script timed out after 0.05 s"]
        assert rec.hard == [(StopKind.TIMEOUT, "script timed out after 0.05 s")]
    finally:
        wd.close()


def count_pokes(wd: Watchdog) -> list[int]:
    """Record every wake-up of the watchdog's thread (one entry each)."""
    pokes: list[int] = []
    poke = wd._poke

    def counted() -> None:
        pokes.append(1)
        poke()

    wd._poke = counted  # type: ignore[method-assign]
    return pokes


def test_short_runs_do_not_wake_the_thread_once_it_watches(rec: Recorder) -> None:
    """A kernel answering many short cells keeps the watchdog thread asleep (off the GIL), while a
    SIGINT during a later run still reaches it."""
    r, w = socket.socketpair()
    r.setblocking(False)
    wd = Watchdog(rec.on_soft, rec.on_hard, grace=600, signal_fd=r.fileno())
    armed = threading.Event()
    arm = wd._arm

    def spy() -> tuple[list[int], float | None]:
        fds, wait = arm()
        if r.fileno() in fds:
            armed.set()
        return fds, wait

    wd._arm = spy  # type: ignore[method-assign]
    pokes = count_pokes(wd)
    try:
        wd._poke()  # the thread picks up the spy
        pokes.clear()
        wd.start_run()
        assert pokes == [1] and armed.wait(10), "the first run arms the thread's wait on the signal fd"
        wd.end_run()
        for _ in range(50):
            wd.start_run()
            wd.end_run()
        assert pokes == [1], "runs covered by the armed wait must not wake the thread"
        wd.start_run()
        w.send(bytes([signal.SIGINT]))
        assert rec.soft_seen.wait(10) and rec.soft == ["interrupted"]
    finally:
        wd.close()
        r.close()
        w.close()


def test_a_run_with_an_earlier_deadline_than_the_armed_wait_wakes_the_thread(
        clock: list[float], rec: Recorder) -> None:
    wd = Watchdog(rec.on_soft, rec.on_hard, timeout=10, grace=5, clock=lambda: clock[0])
    pokes = count_pokes(wd)
    try:
        with wd._lock:
            wd._armed_until = None  # the thread waits without a limit (nothing ran yet)
        wd.start_run()
        assert pokes == [1]
    finally:
        wd.close()
