"""The Kernel class served from a thread of the test process (real sockets): failure paths of handlers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_client import BlockingKernelClient

from llmspell.config import load_config
from llmspell.kernel.kernel import Kernel
from tests.kernel.kernel_support import execute, kernel_in_thread, kernel_info_ok, request

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Kernel, BlockingKernelClient]]:
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("LLMSPELL_STATE_PATH", str(tmp_path / "state.sqlite3"))
    kernel = Kernel(tmp_path / "conn.json", config=load_config())
    with kernel_in_thread(kernel, tmp_path / "conn.json") as (kc, thread):
        yield kernel, kc
    assert not thread.is_alive()
    assert not (tmp_path / "conn.json").exists()  # written by the kernel, so removed by it


def test_a_failing_handler_still_answers_with_an_error_reply(served: Any) -> None:
    kernel, kc = served

    def broken(msg: Any, ch: Any) -> None:
        raise RuntimeError("handler bug")

    kernel.handlers.table["complete_request"] = broken
    kernel.handlers.table["execute_request"] = broken
    reply = request(kc, "complete_request", {"code": "pri", "cursor_pos": 3})
    assert reply["content"]["status"] == "error" and reply["content"]["evalue"] == "handler bug"
    reply, out = execute(kc, "return 1")
    assert reply["content"]["status"] == "error" and "execution_count" in reply["content"]
    assert [m["content"]["execution_state"] for m in out] == ["busy", "idle"]
    kernel_info_ok(kc)


def test_a_runtime_that_failed_to_start_is_reported_per_request(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import llmspell.bootstrap

    def fail(*a: Any, **k: Any) -> Any:
        raise RuntimeError("no runtime today")

    monkeypatch.setattr(llmspell.bootstrap, "create_runtime", fail)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    kernel = Kernel(tmp_path / "conn.json", config=load_config())
    with kernel_in_thread(kernel, tmp_path / "conn.json") as (kc, _):
        kernel_info_ok(kc)
        reply, _ = execute(kc, "return 1")
        assert reply["content"]["status"] == "error"
        assert "no runtime today" in reply["content"]["evalue"]
        assert request(kc, "is_complete_request", {"code": "x"})["content"]["status"] == "error"


def test_shutdown_request_stops_the_serving_thread_and_not_the_process(served: Any) -> None:
    kernel, kc = served
    reply = request(kc, "shutdown_request", {"restart": False}, channel="control")
    assert reply["content"] == {"status": "ok", "restart": False}
    assert kernel._stopped.wait(10)
    assert kernel._grace is not None
    kernel._grace.join(10)  # cancelled at the end of close(): it never ends the process
    assert not kernel._grace.is_alive() and kernel._grace.finished.is_set()
