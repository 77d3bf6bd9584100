"""Output coalescing: order kept across stdout/stderr, first write immediate, bursts batched, flush."""

from __future__ import annotations

import threading

from llmspell.kernel.iostream import OutputStreams


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict]] = []
        self.event = threading.Event()

    def __call__(self, name: str, text: str, parent: dict) -> None:
        self.sent.append((name, text, parent))
        self.event.set()


def test_first_write_after_quiet_is_published_at_once() -> None:
    rec = Recorder()
    s = OutputStreams(rec, interval=60.0)
    s.parent = {"msg_id": "p1"}
    s.write("stdout", "hello\n")
    assert rec.sent == [("stdout", "hello\n", {"msg_id": "p1"})]
    s.close()


def test_a_burst_is_coalesced_and_flush_publishes_the_rest_in_order() -> None:
    rec = Recorder()
    s = OutputStreams(rec, interval=60.0)
    for i in range(100):
        s.write("stdout", f"{i}\n")
    s.write("stderr", "e1\n")
    s.write("stderr", "e2\n")
    s.write("stdout", "last\n")
    s.flush()
    names = [n for n, _, _ in rec.sent]
    assert names == ["stdout", "stdout", "stderr", "stdout"]
    assert "".join(t for n, t, _ in rec.sent if n == "stdout") == "".join(f"{i}\n" for i in range(100)) + "last\n"
    assert rec.sent[2][1] == "e1\ne2\n"
    s.close()


def test_the_flusher_thread_publishes_a_pending_burst_without_another_write() -> None:
    rec = Recorder()
    s = OutputStreams(rec, interval=0.01)
    s.write("stdout", "a")
    rec.event.clear()
    s.write("stdout", "b")  # within the interval: buffered, then published by the flusher
    assert rec.event.wait(5.0)
    assert "".join(t for _, t, _ in rec.sent) == "ab"
    s.close()


def test_disabled_streams_publish_nothing() -> None:
    rec = Recorder()
    s = OutputStreams(rec)
    s.enabled = False
    s.write("stdout", "quiet")
    s.flush()
    assert rec.sent == []
    s.close()
