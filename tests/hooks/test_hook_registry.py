"""HookRegistry and the Hook global: points, priorities, results, isolation, limits, composites, arun."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
from typing import Any

import pytest

from llmspell.hooks import (
    CONTINUE,
    CompositeHook,
    ConditionalHook,
    HookError,
    HookOutcome,
    HookRegistry,
    HookSettings,
    RetryingHook,
    build_registry,
    canonical,
    parse_result,
)


def test_point_names_match_case_insensitively_without_underscores() -> None:
    assert canonical("before_agent_execution") == "BeforeAgentExecution"
    assert canonical("BEFOREAGENTEXECUTION") == "BeforeAgentExecution"
    assert canonical("PreExecute") == "PreExecute" and canonical("nope") is None
    reg = HookRegistry()
    reg.register("before_tool_execution", lambda ctx: None)
    assert reg.active("BeforeToolExecution") and reg.active("beforetoolexecution")
    assert not reg.active("AfterToolExecution")
    with pytest.raises(HookError, match="unknown hook point"):
        reg.register("BeforeLunch", lambda ctx: None)
    with pytest.raises(HookError, match="unknown priority"):
        reg.register("PreExecute", lambda ctx: None, "urgent")


def test_priority_then_registration_order_and_first_non_continue_wins() -> None:
    reg = HookRegistry()
    calls: list[str] = []

    def mk(name: str, result: Any = None) -> Any:
        def fn(ctx: Any) -> Any:
            calls.append(name)
            return result
        return fn

    reg.register("PreExecute", mk("low"), "low")
    reg.register("PreExecute", mk("n1"))
    reg.register("PreExecute", mk("highest"), "highest")
    reg.register("PreExecute", mk("n2", "skip"))
    reg.register("PreExecute", mk("lowest"), "lowest")
    out = reg.run("PreExecute", {"code": "x"})
    assert calls == ["highest", "n1", "n2"] and out.action == "skip" and out.hook_id == "hook_4"


@pytest.mark.parametrize(("value", "action"), [
    (None, "continue"), ("continue", "continue"), (42, "continue"), ({"type": "whatever"}, "continue"),
    ("skip", "skip"), ("skipped", "skip"), ({"type": "skipped", "reason": "r"}, "skip"),
    ("go away", "cancel"), ({"type": "cancel", "reason": "no"}, "cancel"),
    ({"type": "modified", "data": {"a": 1}}, "modified"), ({"type": "replace", "data": {"a": 1}}, "modified"),
    ({"type": "redirect", "target": "other"}, "redirect"), ({"type": "retry", "delay_ms": 5, "max_attempts": 3}, "retry"),
    ({"type": "fork", "operations": []}, "continue"), ({"type": "cache", "key": "k"}, "continue"),
])
def test_result_forms(value: Any, action: str) -> None:
    out = parse_result(value)
    assert out.action == action
    if action == "cancel" and isinstance(value, str):
        assert out.reason == value
    if action == "retry":
        assert out.delay_ms == 5 and out.max_attempts == 3
    if action == "redirect":
        assert out.target == "other"
    if isinstance(value, dict) and value.get("type") == "replace":
        assert out.data == {"a": 1} and out.kind == "replace"


def test_raising_hook_is_isolated_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    reg = HookRegistry()
    reg.register("ToolError", lambda ctx: 1 / 0)
    reg.register("ToolError", lambda ctx: {"type": "retry", "max_attempts": 2})
    with caplog.at_level(logging.WARNING, logger="llmspell.hooks"):
        out = reg.run("ToolError", {"tool": "t", "error": "e"}, component=("tool", "t"))
    assert out.action == "retry" and "ZeroDivisionError" in caplog.text and reg.failures == 1


def test_circuit_breaker_disables_after_consecutive_failures() -> None:
    reg = HookRegistry(HookSettings(circuit_breaker_threshold=2))
    n = {"calls": 0}

    def bad(ctx: Any) -> None:
        n["calls"] += 1
        raise RuntimeError("x")

    e = reg.register("PreExecute", bad)
    for _ in range(5):
        assert reg.run("PreExecute", {}) is CONTINUE
    assert n["calls"] == 2 and e.disabled


def test_rate_limit_and_max_hooks() -> None:
    reg = HookRegistry(HookSettings(rate_limit_per_minute=3, max_hooks=1))
    n = {"calls": 0}
    reg.register("PreExecute", lambda ctx: n.__setitem__("calls", n["calls"] + 1))
    for _ in range(10):
        reg.run("PreExecute", {})
    assert n["calls"] == 3 and reg.rate_limited == 7
    with pytest.raises(HookError, match="max_hooks"):
        reg.register("PostExecute", lambda ctx: None)


def test_disabled_hooks_are_accepted_but_never_called(caplog: pytest.LogCaptureFixture) -> None:
    from llmspell.config import LLMConfig

    reg = build_registry(LLMConfig(data={"hooks": {"enabled": False}}, env={}))
    with caplog.at_level(logging.WARNING, logger="llmspell.hooks"):
        reg.register("PreExecute", lambda ctx: "cancel")
    assert "disabled" in caplog.text and not reg.active("PreExecute")
    assert reg.run("PreExecute", {}).action == "continue"


def test_unregister_and_list() -> None:
    reg = HookRegistry()
    a = reg.register("PreExecute", lambda ctx: None, tags=("t",), description="d")
    reg.register("PostExecute", lambda ctx: None, "high")
    assert [e.id for e in reg.list("pre_execute")] == [a.id]
    assert [e.id for e in reg.list(priority="high")] == ["hook_2"] and [e.id for e in reg.list(tag="t")] == [a.id]
    assert reg.list()[0].info()["description"] == "d"
    assert reg.unregister(a.id) and not reg.unregister(a.id) and not reg.active("PreExecute")


def test_python_hook_context_and_taps() -> None:
    reg = HookRegistry()
    seen: list[Any] = []
    reg.register("BeforeToolExecution", lambda ctx: seen.append(ctx) or {"type": "modified", "data": {"p": 2}})
    taps: list[tuple[str, str]] = []
    reg.add_tap(lambda point, data, out, comp: taps.append((point, out.action)))
    out = reg.run("BeforeToolExecution", {"tool": "calc", "parameters": {}}, component=("tool", "calc"))
    assert out.action == "modified" and out.data == {"p": 2}
    assert seen[0].point == "BeforeToolExecution" and seen[0].component == ("tool", "calc")
    assert taps == [("BeforeToolExecution", "modified")]


def test_composites_retry_and_conditional() -> None:
    cancel = lambda ctx: "stop"  # noqa: E731
    cont = lambda ctx: None  # noqa: E731
    skip = lambda ctx: "skip"  # noqa: E731
    assert CompositeHook("sequential", [cont, cancel, skip])(None).action == "cancel"
    assert CompositeHook("first_match", [cont, skip, cancel])(None).action == "skip"
    assert CompositeHook("parallel", [cont, skip, cancel])(None).action == "skip"
    assert CompositeHook("voting", [skip, skip, cancel])(None).action == "skip"
    assert CompositeHook("voting", [skip, cont, cancel], threshold=0.5)(None).action == "continue"
    assert CompositeHook("sequential", [lambda ctx: 1 / 0, cancel])(None).action == "cancel"
    with pytest.raises(ValueError):
        CompositeHook("random", [])
    attempts = {"n": 0}
    sleeps: list[float] = []

    def flaky(ctx: Any) -> Any:
        attempts["n"] += 1
        if attempts["n"] < 3:
            raise RuntimeError("flaky")
        return "skip"

    assert parse_result(RetryingHook(flaky, max_attempts=3, backoff_ms=10, sleep=sleeps.append)(None)).action == "skip"
    assert sleeps == [0.01, 0.02]
    def always(ctx: Any) -> None:
        attempts["n"] += 1
        raise RuntimeError("always")

    attempts["n"] = 0
    with pytest.raises(RuntimeError, match="always"):
        RetryingHook(always, max_attempts=2, backoff_ms=0, sleep=lambda s: None)(None)
    assert attempts["n"] == 2
    cond = ConditionalHook(lambda ctx: ctx["go"], skip)
    assert parse_result(cond({"go": True})).action == "skip" and parse_result(cond({"go": False})).action == "continue"
    reg = HookRegistry()
    reg.register("PreExecute", CompositeHook("sequential", [cont, cancel]))
    assert reg.run("PreExecute", {}).action == "cancel"


def test_async_python_hook_with_arun() -> None:
    reg = HookRegistry(HookSettings(timeout_ms=100))

    async def slow(ctx: Any) -> str:
        await asyncio.sleep(5)
        return "cancel"

    async def fast(ctx: Any) -> dict[str, Any]:
        return {"type": "skipped", "reason": "async"}

    reg.register("BeforeToolExecution", slow)
    reg.register("BeforeToolExecution", fast)
    out = asyncio.run(reg.arun("BeforeToolExecution", {}, component=("tool", "x")))
    assert out.action == "skip" and out.reason == "async" and reg.failures == 1


def run(rt: Any, code: str) -> str:
    rt.test_out.parts.clear()
    rt.run_string(code, "=(test)")
    return rt.test_out.text


def test_hook_global_register_list_unregister(lua_runtime: Any) -> None:
    out = run(lua_runtime, """
        local h = Hook.register("before_agent_execution", function(ctx) end, "high")
        print(tostring(h), h:id(), h:hook_point())
        local l = Hook.list(); print(#l, l[1].hook_point, l[1].priority, l[1].language, #l[1].tags)
        print(#Hook.list("BeforeAgentExecution"), #Hook.list({priority = "low"}))
        print(pcall(Hook.register, "Nope", function() end))
        print(pcall(Hook.register, "PreExecute", "notafunction"))
        print(h:unregister(), Hook.unregister(h), #Hook.list())
        h = nil; collectgarbage()
        local h2 = Hook.register("PreExecute", function() end)
        print(Hook.unregister(h2:id()))
    """)
    lines = out.splitlines()
    assert lines[0] == "HookHandle(hook_1, BeforeAgentExecution)\thook_1\tBeforeAgentExecution"
    assert lines[1] == "1\tBeforeAgentExecution\thigh\tlua\t0"
    assert lines[2] == "1\t0"
    assert lines[3].startswith("false\tHook.register: unknown hook point 'Nope'")
    assert lines[4].startswith("false\tHook.register: fn must be a function")
    assert lines[5] == "true\tfalse\t0"
    assert lines[6] == "true"


def test_lua_hook_results_and_ctx(lua_runtime: Any) -> None:
    run(lua_runtime, """
        Hook.register("BeforeToolExecution", function(ctx)
          LAST = ctx
          if ctx.data.tool == "a" then return {type = "modified", data = {parameters = {x = ctx.data.parameters.x + 1}}} end
          if ctx.data.tool == "b" then return "forbidden" end
          if ctx.data.tool == "c" then return {type = "redirect", target = "d"} end
          if ctx.data.tool == "e" then error("hook bug") end
        end)
    """)
    reg = lua_runtime.services.hooks
    out = reg.run("BeforeToolExecution", {"tool": "a", "parameters": {"x": 1}}, component=("tool", "a"))
    assert out.action == "modified" and out.data == {"parameters": {"x": 2}}
    assert reg.run("BeforeToolExecution", {"tool": "b"}, component=("tool", "b")).reason == "forbidden"
    assert reg.run("BeforeToolExecution", {"tool": "c"}, component=("tool", "c")).target == "d"
    assert reg.run("BeforeToolExecution", {"tool": "e"}, component=("tool", "e")) is CONTINUE
    assert reg.run("BeforeToolExecution", {"tool": "z"}, component=("tool", "z")) is CONTINUE
    ctx = run(lua_runtime, "print(LAST.point, LAST.component_id.type, LAST.component_id.name, LAST.language, "
                           "LAST.data.tool, type(LAST.metadata))")
    assert ctx.strip() == "BeforeToolExecution\ttool\tz\tlua\tz\ttable"


def test_looping_lua_hook_is_stopped_by_timeout(lua_runtime: Any, caplog: pytest.LogCaptureFixture) -> None:
    reg = lua_runtime.services.hooks
    reg.settings = dataclasses.replace(reg.settings, timeout_ms=100)  # settings are frozen
    run(lua_runtime, "Hook.register('PreExecute', function() while true do end end)\n"
                     "Hook.register('PreExecute', function() return 'skip' end)")
    with caplog.at_level(logging.WARNING, logger="llmspell.hooks"):
        out = reg.run("PreExecute", {"code": "1", "execution_count": 1}, component=("kernel", "shell"))
    assert out.action == "skip" and "timeout_ms" in caplog.text
    assert lua_runtime.interrupted is None
    assert run(lua_runtime, "print('still fine')").strip() == "still fine"


def test_arun_marshals_lua_hooks_to_the_lua_thread(lua_runtime: Any) -> None:
    run(lua_runtime, "Hook.register('AfterToolExecution', function(ctx) "
                     "return {type = 'modified', data = {output = ctx.data.output .. '!'}} end)")
    reg = lua_runtime.services.hooks
    from llmspell.runtime.io import get_io

    lua_thread = threading.current_thread()
    lua_runtime._lua_thread = lua_thread
    fut = get_io().submit(reg.arun("AfterToolExecution", {"output": "hi"}, component=("tool", "t")))
    out: HookOutcome = lua_runtime.block_on(fut, timeout=10)
    assert out.action == "modified" and out.data == {"output": "hi!"}


def test_hooks_never_crash_a_script(lua_runtime: Any) -> None:
    out = run(lua_runtime, """
        Hook.register("BeforeStateChange", function() error({code = 1}) end)
        Hook.register("AfterStateChange", function() return {type = "modified", data = function() end} end)
        State.save("g", "k", 1); print(State.load("g", "k"))
    """)
    assert out.strip() == "1"


def test_run_from_another_thread_while_idle(lua_runtime: Any) -> None:
    if not hasattr(lua_runtime, "exec_lock"):
        pytest.skip("ScriptRuntime has no exec_lock in this version")
    run(lua_runtime, "Hook.register('PreDebug', function() return 'skip' end)")
    reg = lua_runtime.services.hooks
    box: list[Any] = []
    t = threading.Thread(target=lambda: box.append(reg.run("PreDebug", {}, component=("kernel", "control"))))
    t.start()
    t.join(10)
    assert box and box[0].action == "skip"


def test_ctx_data_is_converted_on_access_and_seen_by_pairs(lua_runtime: Any) -> None:
    run(lua_runtime, "Hook.register('PreExecute', function(ctx) local c = {} "
                     "for k, v in pairs(ctx) do c[k] = v end DUMP = JSON.stringify(c) end)")
    lua_runtime.services.hooks.run("PreExecute", {"code": "x = 1", "execution_count": 3}, component=("kernel", "k"))
    import json

    ctx = json.loads(run(lua_runtime, "print(DUMP)"))
    assert ctx["data"] == {"code": "x = 1", "execution_count": 3} and ctx["component_id"] == {"type": "kernel", "name": "k"}


def test_python_only_chain_runs_on_any_thread_including_the_io_loop(lua_runtime: Any) -> None:
    reg = lua_runtime.services.hooks
    run(lua_runtime, "x = 1")  # the test thread is now the Lua thread
    reg.register("BeforeToolExecution", lambda ctx: "skip")
    from llmspell.runtime.io import get_io

    async def on_loop() -> HookOutcome:
        return reg.run("BeforeToolExecution", {"tool": "t"}, component=("tool", "t"))

    assert get_io().run(on_loop(), timeout=10).action == "skip"
