"""Fixtures for the debugger tests: a runtime, a coordinator with an event queue, a script runner."""

from __future__ import annotations

import os
import queue
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llmspell.debug.coordinator import DebugCoordinator
from tests.debug.debug_support import SCRIPT, Session


@pytest.fixture
def session(tmp_path: Path, lua_runtime: Any) -> Iterator[Session]:
    path = tmp_path / "multi.lua"
    path.write_text(SCRIPT, encoding="utf-8")
    events: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
    dbg = DebugCoordinator(lua_runtime, lambda n, b: events.put((n, b)))
    dbg.attach()
    s = Session(lua_runtime, dbg, events, os.fspath(path))
    yield s
    dbg.detach()
    if s.thread is not None:
        s.thread.join(5)
