"""The kernel's execution state (ExecState): IDLE -> PENDING -> RUNNING -> IDLE, one transition per call."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llmspell.config import load_config
from llmspell.kernel.kernel import ExecState, Kernel
from tests.kernel.kernel_support import execute

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Kernel, Any, list[str]]]:
    from jupyter_client import BlockingKernelClient

    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("LLMSPELL_STATE_PATH", str(tmp_path / "state.sqlite3"))
    kernel = Kernel(tmp_path / "conn.json", config=load_config())
    calls: list[str] = []
    for name in ("start_execute_request", "begin_execute", "end_execute", "end_execute_request"):
        original = getattr(kernel, name)

        def traced(*a: Any, _name: str = name, _original: Any = original) -> Any:
            calls.append(_name)
            return _original(*a)

        setattr(kernel, name, traced)
    kernel.start()
    kernel.runtime.G["exec_state_now"] = lambda: kernel.exec_state.value
    thread = threading.Thread(target=kernel.serve_forever, daemon=True)
    thread.start()
    kc = BlockingKernelClient(connection_file=str(tmp_path / "conn.json"))
    kc.load_connection_file()
    kc.start_channels()
    kc.wait_for_ready(timeout=30)
    yield kernel, kc, calls
    kc.stop_channels()
    kernel.request_stop()
    kernel.after_request()
    thread.join(10)


def test_a_cell_runs_in_running_and_each_transition_happens_once(served: Any) -> None:
    kernel, kc, calls = served
    assert kernel.exec_state is ExecState.IDLE
    calls.clear()
    reply, out = execute(kc, "exec_state_now()")
    assert reply["content"]["status"] == "ok"
    results = [m["content"]["data"]["text/plain"] for m in out if m["msg_type"] == "execute_result"]
    assert results == ["running"]
    assert calls == ["start_execute_request", "begin_execute", "end_execute", "end_execute_request"]
    assert kernel.exec_state is ExecState.IDLE


def test_a_cell_that_never_runs_goes_from_pending_back_to_idle(served: Any) -> None:
    kernel, kc, calls = served
    calls.clear()
    reply, _ = execute(kc, "?print")
    assert reply["content"]["status"] == "ok" and reply["content"]["payload"][0]["source"] == "page"
    assert calls == ["start_execute_request", "end_execute_request"]
    assert kernel.exec_state is ExecState.IDLE


def test_an_interrupt_while_idle_is_ignored(served: Any) -> None:
    kernel, kc, _calls = served
    execute(kc, "x = 1")
    kernel.interrupt()
    reply, out = execute(kc, "x + 1")
    assert reply["content"]["status"] == "ok"
    assert [m["content"]["data"]["text/plain"] for m in out if m["msg_type"] == "execute_result"] == ["2"]
