"""After a Lua "not enough memory" error the runtime runs a full collection, so the garbage goes at once."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

LIMIT = 24 * 2**20


@pytest.fixture
def rt() -> Iterator[Any]:
    from llmspell.bootstrap import create_runtime
    from llmspell.config import load_config
    from llmspell.script.engine import BufferSink

    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMSPELL_")}
    env["LLMSPELL_STATE_BACKEND"] = "memory"
    cfg = load_config(env=env)
    cfg.set("engines.lua.max_memory_bytes", LIMIT)  # set() re-parses the settings; data edits would not
    runtime = create_runtime(cfg, stdout=BufferSink(), stderr=BufferSink())
    yield runtime
    runtime.close()


@pytest.mark.parametrize("code", [
    "local t = {} for i = 1, 1e9 do t[i] = ('x'):rep(64) .. i end",  # the allocation fails in Lua code
    "local t = {} for i = 1, 1e9 do t[i] = JSON.stringify({i, 'pad pad pad pad'}) end",  # in Lua, fed by Python
])
def test_memory_error_frees_its_garbage_at_once(rt: Any, code: str) -> None:
    from llmspell.script.engine import ScriptError

    base = rt.lua.get_memory_used()
    with pytest.raises(ScriptError, match="not enough memory"):
        rt.run_string(code, "=oom")
    # without the collection ~LIMIT bytes of unreachable strings stayed until collectgarbage()
    assert rt.lua.get_memory_used() < base + LIMIT // 8
    assert rt.run_string("local t = {} for i = 1, 1e5 do t[i] = i end return #t", "=next").values == [100000]


def test_memory_error_caught_by_the_script_still_fails_cleanly_later(rt: Any) -> None:
    r = rt.run_string("""
      local ok, err = pcall(function() local t = {} for i = 1, 1e9 do t[i] = ('y'):rep(64) .. i end end)
      return ok, tostring(err)
    """, "=caught")
    assert r.values[0] is False and "not enough memory" in r.values[1]
    assert rt.run_string("return 1 + 1", "=next").values == [2]
