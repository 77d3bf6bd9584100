"""LuaDispatch: lazily loaded ctx fields, their lifetime, and which hook a failure is blamed on."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import pytest

from llmspell.hooks import CONTINUE


def run(rt: Any, code: str) -> str:
    rt.test_out.parts.clear()
    rt.run_string(code, "=(test)")
    return rt.test_out.text


def fire(rt: Any, point: str, data: dict[str, Any], name: str = "t") -> Any:
    return rt.services.hooks.run(point, data, component=("tool", name))


def test_a_kept_ctx_still_reads_its_data_after_many_calls_and_a_collection(lua_runtime: Any) -> None:
    run(lua_runtime, "KEPT = {} Hook.register('BeforeToolExecution', function(ctx) "
                     "if ctx.component_id.name == 'keep' then KEPT[#KEPT + 1] = ctx end end)")
    fire(lua_runtime, "BeforeToolExecution", {"tool": "keep", "n": 1}, name="keep")
    for i in range(5000):
        fire(lua_runtime, "BeforeToolExecution", {"tool": "other", "n": i})
    out = run(lua_runtime, "collectgarbage() collectgarbage() print(KEPT[1].data.n, KEPT[1].data.tool, "
                           "KEPT[1].point, KEPT[1].language)")
    assert out.strip() == "1\tkeep\tBeforeToolExecution\tlua"


def test_the_data_of_collected_ctx_tables_is_dropped(lua_runtime: Any) -> None:
    run(lua_runtime, "Hook.register('PreExecute', function(ctx) end)")
    for i in range(3000):
        fire(lua_runtime, "PreExecute", {"i": i})
    lua_runtime.run_string("collectgarbage() collectgarbage()", "=(gc)")
    for i in range(2100):  # past two drains
        fire(lua_runtime, "PreExecute", {"i": i})
    assert lua_runtime.services.hooks._lua.held < 2500


def test_a_raising_hook_is_blamed_and_the_rest_of_the_chain_runs(lua_runtime: Any,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    run(lua_runtime, """
        SEEN = {}
        Hook.register('ToolValidation', function(ctx) SEEN[#SEEN + 1] = 'a' end)
        Hook.register('ToolValidation', function(ctx) SEEN[#SEEN + 1] = 'b'; error('broken b') end)
        Hook.register('ToolValidation', function(ctx) SEEN[#SEEN + 1] = 'c'; return 'skip' end)
    """)
    with caplog.at_level(logging.WARNING, logger="llmspell.hooks"):
        out = fire(lua_runtime, "ToolValidation", {"tool": "t"})
    assert out.action == "skip" and out.hook_id == "hook_3"
    assert "hook_2 (ToolValidation) raised: " in caplog.text and "broken b" in caplog.text
    assert run(lua_runtime, "print(table.concat(SEEN, ','))").strip() == "a,b,c"


def test_a_failure_inside_a_nested_chain_is_blamed_on_its_own_hook(lua_runtime: Any,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    run(lua_runtime, """
        Hook.register('BeforeStateChange', function(ctx) error('inner') end)
        Hook.register('ToolValidation', function(ctx) State.save('global', 'k', 1) end)
        Hook.register('ToolValidation', function(ctx) error('outer') end)
        Hook.register('ToolValidation', function(ctx) return {type = 'modified', data = {parameters = {x = 1}}} end)
    """)
    with caplog.at_level(logging.WARNING, logger="llmspell.hooks"):
        out = fire(lua_runtime, "ToolValidation", {"tool": "t"})
    assert out.action == "modified" and out.hook_id == "hook_4"
    assert "hook_1 (BeforeStateChange) raised: " in caplog.text and "hook_3 (ToolValidation) raised: " in caplog.text
    assert run(lua_runtime, "print(State.load('global', 'k'))").strip() == "1"


def test_a_continue_result_resumes_the_chain_on_the_same_ctx(lua_runtime: Any) -> None:
    run(lua_runtime, """
        Hook.register('AfterToolExecution', function(ctx) ctx.mark = 1; return 'continue' end)
        Hook.register('AfterToolExecution', function(ctx) MARK = ctx.mark end)
    """)
    assert fire(lua_runtime, "AfterToolExecution", {"tool": "t"}) is CONTINUE
    assert run(lua_runtime, "print(MARK)").strip() == "1"


def test_an_interrupt_inside_a_hook_stops_the_script(lua_runtime: Any) -> None:
    from llmspell.script.bridge import Interrupted

    lua_runtime.G.STOP = lambda: lua_runtime.interrupt("stop requested")
    run(lua_runtime, "Hook.register('PreExecute', function(ctx) STOP() while true do end end)")
    with pytest.raises(Interrupted):
        fire(lua_runtime, "PreExecute", {})
    lua_runtime.clear_interrupt()
    assert run(lua_runtime, "print('ok')").strip() == "ok"


def test_a_failing_lua_hook_is_disabled_by_the_circuit_breaker(lua_runtime: Any) -> None:
    reg = lua_runtime.services.hooks
    reg.settings = dataclasses.replace(reg.settings, circuit_breaker_threshold=2)  # settings are frozen
    run(lua_runtime, "CALLS = 0 Hook.register('PreExecute', function() CALLS = CALLS + 1; error('always') end)"
                     " Hook.register('PreExecute', function() AFTER = (AFTER or 0) + 1 end)")
    for _ in range(5):
        assert fire(lua_runtime, "PreExecute", {}) is CONTINUE
    assert run(lua_runtime, "print(CALLS, AFTER)").strip() == "2\t5"
    assert [e.disabled for e in reg.list("PreExecute")] == [True, False]


def test_the_rate_limit_applies_to_each_lua_hook(lua_runtime: Any) -> None:
    reg = lua_runtime.services.hooks
    reg.settings = dataclasses.replace(reg.settings, rate_limit_per_minute=3)
    run(lua_runtime, "N = 0 Hook.register('PostExecute', function() N = N + 1 end)")
    for _ in range(5):
        fire(lua_runtime, "PostExecute", {})
    assert run(lua_runtime, "print(N)").strip() == "3" and reg.rate_limited == 2


def test_python_and_lua_hooks_interleave_in_priority_order(lua_runtime: Any) -> None:
    reg = lua_runtime.services.hooks
    order: list[str] = []
    lua_runtime.G.NOTE = order.append
    run(lua_runtime, "Hook.register('AfterAgentExecution', function() NOTE('lua-high') end, 'high')"
                     " Hook.register('AfterAgentExecution', function() NOTE('lua-low') end, 'low')")
    reg.register("AfterAgentExecution", lambda ctx: order.append("py-normal"))
    reg.register("AfterAgentExecution", lambda ctx: order.append("py-highest"), "highest")
    assert fire(lua_runtime, "AfterAgentExecution", {"agent": "a"}) is CONTINUE
    assert order == ["py-highest", "lua-high", "py-normal", "lua-low"]


def test_a_hook_that_overflows_the_stack_is_blamed_quickly(lua_runtime: Any, caplog: pytest.LogCaptureFixture) -> None:
    import time

    run(lua_runtime, "local function f(n) return f(n + 1) + 1 end "
                     "Hook.register('PreExecute', function() return f(1) end) "
                     "Hook.register('PreExecute', function() return 'skip' end)")
    t0 = time.perf_counter()
    with caplog.at_level(logging.WARNING, logger="llmspell.hooks"):
        for _ in range(2):
            out = fire(lua_runtime, "PreExecute", {})
            assert out.action == "skip" and out.hook_id == "hook_2"
    assert time.perf_counter() - t0 < 3.0
    assert caplog.text.count("hook_1 (PreExecute) raised: ") == 2 and "stack overflow" in caplog.text


def test_ctx_tables_a_script_keeps_do_not_force_a_collection_on_every_drain(lua_runtime: Any,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import llmspell.hooks.luadispatch as ld

    monkeypatch.setattr(ld, "_HARD_CAP", 2000)
    lua = lua_runtime.services.hooks._lua
    lua._cap = 2000
    run(lua_runtime, "KEEP = {} Hook.register('PreExecute', function(ctx) KEEP[#KEEP + 1] = ctx end)")
    for i in range(6000):
        fire(lua_runtime, "PreExecute", {"i": i})
    assert lua.held >= 6000 and lua._cap >= 4000
    assert run(lua_runtime, "print(KEEP[1].data.i, KEEP[6000].data.i)").strip() == "0\t5999"


def test_a_hook_registered_by_a_running_hook_is_seen_from_the_next_firing(lua_runtime: Any) -> None:
    """The ready-chain shortcut of `run` never fires a chain that registration has replaced."""
    run(lua_runtime, """
      N, M = 0, 0
      Hook.register('PostExecute', function()
        N = N + 1
        if N == 3 then Hook.register('PostExecute', function() M = M + 1 end) end
      end)
    """)
    for _ in range(6):
        fire(lua_runtime, "PostExecute", {})
    assert run(lua_runtime, "print(N, M)").strip() == "6\t3"


def test_limits_set_after_chains_ran_fast_still_apply(lua_runtime: Any) -> None:
    reg = lua_runtime.services.hooks
    run(lua_runtime, "N = 0 Hook.register('PostExecute', function() N = N + 1 end)")
    for _ in range(3):
        fire(lua_runtime, "PostExecute", {})
    reg.settings = dataclasses.replace(reg.settings, rate_limit_per_minute=2)
    for _ in range(5):
        fire(lua_runtime, "PostExecute", {})
    assert run(lua_runtime, "print(N)").strip() == "5" and reg.rate_limited == 3  # 3 + 2 admitted


def test_pairs_over_a_ctx_loads_every_field_and_lets_its_data_go_at_once(lua_runtime: Any) -> None:
    run(lua_runtime, "KEPT = {} Hook.register('PreExecute', function(ctx) "
                     "local n = 0 for _ in pairs(ctx) do n = n + 1 end KEPT[#KEPT + 1] = ctx end)")
    lua = lua_runtime.services.hooks._lua
    for i in range(1100):  # past one drain
        fire(lua_runtime, "PreExecute", {"i": i})
    assert lua.held < 100  # the kept tables no longer need their tickets
    out = run(lua_runtime, "print(KEPT[1].data.i, KEPT[1100].data.i, KEPT[5].component_id.type)")
    assert out.strip() == "0\t1099\ttool"
