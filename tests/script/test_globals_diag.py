"""Logger (§14), Debug (§16), Streaming (§17) and Config (§13) globals."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llmspell.script.engine import ScriptError

LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} (\w+)\s+\[([\w.]+)\] (.*)$")


def run(rt: Any, code: str) -> str:
    rt.run_string(code, "=(test)")
    return rt.test_out.text


def err_lines(rt: Any) -> list[tuple[str, str, str]]:
    out = []
    for line in rt.test_err.text.splitlines():
        m = LINE.match(line)
        assert m, line
        out.append((m.group(1), m.group(2), m.group(3)))
    return out


@pytest.fixture(autouse=True)
def _restore_script_log_levels() -> Iterator[None]:
    names = ["llmspell.script", "llmspell.script.app", "llmspell"]
    before = {n: logging.getLogger(n).level for n in names}
    logging.getLogger("llmspell").setLevel(logging.WARNING)
    logging.getLogger("llmspell.script").setLevel(logging.NOTSET)
    logging.getLogger("llmspell.script.app").setLevel(logging.NOTSET)
    yield
    for n, lvl in before.items():
        logging.getLogger(n).setLevel(lvl)


# ----------------------------------------------------------------------------- Logger
def test_logger_levels_and_fields(lua_runtime: Any) -> None:
    run(lua_runtime, """
      Logger.info("hidden by default")
      Logger.warn("shown", {b = 2, a = "x", t = {1, 2}})
      Logger.error("bad")
      Logger.setLevel("debug")
      Logger.debug("now shown")
      Logger.trace("still hidden")
      print(Logger.getLevel())
    """)
    assert lua_runtime.test_out.text == "debug\n"
    assert err_lines(lua_runtime) == [
        ("WARN", "llmspell.script", 'shown a="x" b=2 t=[1,2]'),
        ("ERROR", "llmspell.script", "bad"),
        ("DEBUG", "llmspell.script", "now shown"),
    ]


def test_logger_child_and_call_styles(lua_runtime: Any) -> None:
    run(lua_runtime, """
      local log = Logger.child("app")
      log:warn("colon", {n = 1})
      log.warn("dot")
      Logger:warn("global colon")
      Logger.log("error", "via log")
      print(log.name)
    """)
    assert lua_runtime.test_out.text == "llmspell.script.app\n"
    assert err_lines(lua_runtime) == [
        ("WARN", "llmspell.script.app", "colon n=1"),
        ("WARN", "llmspell.script.app", "dot"),
        ("WARN", "llmspell.script", "global colon"),
        ("ERROR", "llmspell.script", "via log"),
    ]


def test_logger_misuse_raises(lua_runtime: Any) -> None:
    with pytest.raises(ScriptError, match=r"Logger.log: unknown level 'loud'"):
        run(lua_runtime, "Logger.log('loud', 'x')")
    with pytest.raises(ScriptError, match=r"Logger.setLevel: unknown level"):
        run(lua_runtime, "Logger.setLevel('chatty')")
    with pytest.raises(ScriptError, match=r"Logger.warn: cannot convert function to JSON"):
        run(lua_runtime, "Logger.warn('x', {f = print})")


def test_logger_respects_trace_configuration(lua_runtime: Any) -> None:
    from llmspell.runtime import tracing

    try:
        tracing.configure("error,llmspell.script=info")
        run(lua_runtime, "Logger.info('yes') Logger.debug('no')")
        assert [e[2] for e in err_lines(lua_runtime)] == ["yes"]
    finally:
        tracing.configure("warn")


# ----------------------------------------------------------------------------- Debug
def test_debug_levels_modules_and_capture(lua_runtime: Any) -> None:
    run(lua_runtime, """
      Debug.info("hello", "app")
      Debug.debug("hidden")
      Debug.log("bogus", "ignored")
      Debug.setLevel("debug")
      Debug.debug("shown", "app.sub")
      Debug.logWithData("warn", "with data", {k = 1}, "m")
      print(Debug.getLevel(), Debug.isEnabled(), #Debug.getCapturedEntries(), Debug.getCapturedEntries(1)[1].message)
      local e = Debug.getCapturedEntries()[3]
      print(e.level, e.module, e.metadata.k, type(e.timestamp))
      Debug.clearCaptured() print(#Debug.getCapturedEntries())
      Debug.setEnabled(false) Debug.error("off") print(#Debug.getCapturedEntries())
    """)
    assert lua_runtime.test_out.text.splitlines() == ["debug\ttrue\t3\twith data", "warn\tm\t1\tstring", "0", "0"]
    assert err_lines(lua_runtime) == [("INFO", "app", "hello"), ("DEBUG", "app.sub", "shown"),
                                      ("WARN", "m", 'with data {"k":1}')]


def test_debug_filters_most_specific_rule_wins(lua_runtime: Any) -> None:
    run(lua_runtime, """
      Debug.addModuleFilter("app.*", false)
      Debug.addModuleFilter("app.keep", true)
      Debug.addAdvancedFilter("^db%.", "regex", false)
      Debug.addAdvancedFilter("^db\\\\.", "regex", false)
      Debug.info("a", "app.x") Debug.info("b", "app.keep") Debug.info("c", "other") Debug.info("d", "db.q")
      local s = Debug.getFilterSummary()
      print(s.default_enabled, s.total_rules, s.rules[1].pattern, s.rules[1].kind, s.rules[2].kind)
      Debug.setDefaultFilterEnabled(false) Debug.info("e", "other") Debug.info("f")
      print(Debug.removeModuleFilter("app.keep"), Debug.removeModuleFilter("nope"))
      Debug.clearModuleFilters() print(Debug.getFilterSummary().total_rules)
    """)
    assert lua_runtime.test_out.text.splitlines() == ["true\t4\tapp.*\twildcard\texact", "true\tfalse", "0"]
    assert [m for _, _, m in err_lines(lua_runtime)] == ["b", "c", "f"]
    with pytest.raises(ScriptError, match="unknown kind 'glob'"):
        run(lua_runtime, "Debug.addAdvancedFilter('x', 'glob', true)")
    # enabled may be left out (as with addModuleFilter: the rule enables); misuse is a Lua error, not an internal one
    run(lua_runtime, "Debug.addAdvancedFilter('^z', 'regex') Debug.setDefaultFilterEnabled(false) Debug.info('g', 'zz')")
    assert [m for _, _, m in err_lines(lua_runtime)][-1] == "g"
    with pytest.raises(ScriptError, match="Debug.addAdvancedFilter: pattern must be a string, got integer"):
        run(lua_runtime, "Debug.addAdvancedFilter(5, 'exact')")


def test_debug_config_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from llmspell.bootstrap import create_runtime
    from llmspell.config import load_config
    from llmspell.script.engine import BufferSink

    cfgfile = tmp_path / "c.toml"
    cfgfile.write_text('[debug]\nlevel = "warn"\noutput = "debug.log"\nmodule_filters = ["x.*"]\n'
                       'default_filter_enabled = false\n')
    monkeypatch.setenv("LLMSPELL_STATE_BACKEND", "memory")
    err = BufferSink()
    rt = create_runtime(load_config(cfgfile), stdout=BufferSink(), stderr=err)
    try:
        rt.run_string("Debug.info('no') Debug.warn('yes', 'x.y') Debug.warn('filtered', 'z')", "=(t)")
    finally:
        rt.close()
    assert err.text == ""
    text = (tmp_path / "debug.log").read_text()
    assert "yes" in text and "no" not in text.replace("[x.y]", "") and "filtered" not in text


def test_debug_timers_and_reports(lua_runtime: Any) -> None:
    run(lua_runtime, """
      local t = Debug.timer("work")
      local lap = t:lap("phase1")
      local ms = t:stop()
      print(math.type(lap), math.type(ms), t:elapsed() == ms, t:stop() == ms, tostring(t), t.name)
      print(pcall(function() return t.stop() end))
      print(pcall(function() return t.nope end))
      Debug.recordEvent("work", "marker", {n = 1})
      local r = Debug.performanceReport()
      print(r:find("work", 1, true) ~= nil, r:find("phase1", 1, true) ~= nil)
      local j = JSON.parse(Debug.jsonReport())
      print(j.timers.work.count, type(j.timers.work.laps.phase1), j.events[1].name, j.events[1].timer_id)
      print(Debug.flameGraph():match("^work;phase1 %d+") ~= nil)
    """)
    lines = lua_runtime.test_out.text.splitlines()
    assert lines[0] == "float\tfloat\ttrue\ttrue\tDebugTimer(work)\twork"
    assert lines[1] == "false\tDebugTimer:stop must be called with ':'"
    assert "unknown field 'nope' on DebugTimer" in lines[2]
    assert lines[3:] == ["true\ttrue", "1\tnumber\tmarker\twork", "true"]


def test_debug_dump(lua_runtime: Any) -> None:
    run(lua_runtime, """
      print(Debug.dump({b = {1, 2, {x = "y"}}, a = 1.0, ["k k"] = true}, "v"))
      print(Debug.dumpCompact({1, 2, a = "x"}))
      local cyc = {} cyc.self = cyc print((Debug.dumpCompact(cyc):gsub("0x%x+", "ADDR")))
      print(Debug.dumpWithOptions({a = {b = {c = 1}}}, {max_depth = 1, indent = 0}))
      print(Debug.dumpWithOptions({1, 2, 3}, {max_items = 2, indent = 0}))
      print(Debug.dumpVerbose(5))
      print(Debug.dump("s\\n"), Debug.dump(nil))
    """)
    text = lua_runtime.test_out.text
    expected = ('v = {\n  a = 1.0,\n  b = {\n    1,\n    2,\n    {\n      x = "y",\n    },\n  },\n  ["k k"] = true,\n}\n'
                '{ 1, 2, a = "x" }\n{ self = <cycle: table: ADDR> }\n{ a = {...} }\n{ 1, 2, ... (1 more) }\n'
                '5 --[[integer]]\n"s\\n"\tnil\n')
    assert text == expected


def test_debug_stack_and_memory(lua_runtime: Any, tmp_path: Path) -> None:
    script = tmp_path / "s.lua"
    script.write_text("local function inner()\n  local fr = Debug.stackTraceJson()\n  print(Debug.stackTrace())\n"
                      "  return fr\nend\nlocal fr = inner()\nprint(fr[1].line, fr[1].name, fr[2].line, #fr)\n"
                      "collectgarbage() collectgarbage('collect') collectgarbage('count')\n"
                      "local m = Debug.memoryStats()\n"
                      "print(math.type(m.used_bytes), m.used_bytes > 0, m.resident_bytes > 0, m.collections)\n"
                      "print(type(Debug.memorySnapshot().timestamp))\n")
    lua_runtime.run_file(str(script))
    lines = lua_runtime.test_out.text.splitlines()
    assert lines[0] == "stack traceback:"
    assert lines[1].endswith(":3: in local 'inner'") and lines[2].endswith(":6: in main chunk")
    assert len(lines) == 6 and "<python>" not in lua_runtime.test_out.text
    assert lines[3] == "2\tinner\t6\t2"
    assert lines[4] == "integer\ttrue\ttrue\t2"
    assert lines[5] == "number"


# ----------------------------------------------------------------------------- Streaming
def test_streaming(lua_runtime: Any) -> None:
    run(lua_runtime, """
      local s = Streaming.create(function() for i = 1, 3 do Streaming.yield(i * 10) end end)
      print(s:next(), s:isDone(), JSON.stringify(s:collect()), s:isDone(), s:next(), tostring(s))
      local e = Streaming.create(function() coroutine.yield("a") end)
      print(JSON.stringify(e:collect()), JSON.stringify(e:collect()))
      print(pcall(function() return s.next() end))
      print(pcall(function() return s.foo end))
      print(pcall(Streaming.create, 5))
      local bad = Streaming.create(function() Streaming.yield(1) error("boom") end)
      print(bad:next(), select(2, pcall(bad.next, bad)), bad:isDone())
    """)
    lines = lua_runtime.test_out.text.splitlines()
    assert lines[0] == "10\tfalse\t[20,30]\ttrue\tnil\tStream(done)"
    assert lines[1] == '["a"]\t[]'
    assert lines[2] == "false\tStream:next must be called with ':'"
    assert "unknown field 'foo' on Stream" in lines[3]
    assert "Streaming.create: expected a function, got number" in lines[4]
    assert lines[5].startswith("1\t") and "boom" in lines[5] and lines[5].endswith("true")


# ----------------------------------------------------------------------------- Config
def _runtime_with(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, toml: str, **env: str) -> Any:
    from llmspell.bootstrap import create_runtime
    from llmspell.config import load_config
    from llmspell.script.engine import BufferSink

    cfgfile = tmp_path / "llmspell.toml"
    cfgfile.write_text(toml)
    monkeypatch.setenv("LLMSPELL_STATE_BACKEND", "memory")
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    rt = create_runtime(load_config(cfgfile), stdout=BufferSink(), stderr=BufferSink())
    rt.cfgfile = cfgfile
    return rt


def test_config_global(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    rt = _runtime_with(tmp_path, monkeypatch, """
[providers.local]
base_url = "http://127.0.0.1:8080/v1"
api_key = "sk-secret"
default_model = "gemma"
headers = { "X-Auth-Token" = "tok" }
[tools.web_search]
api_token = "t"
""")
    try:
        rt.run_string("""
          print(Config.get("providers.local.default_model"), Config.get("providers.local.api_key"))
          print(Config.get("providers.local.headers")["X-Auth-Token"], Config.get("tools.web_search.api_token"))
          print(Config.get("nope"), Config.get("providers.nope.x"), type(Config.get()))
          print(Config.getProvider("local").api_key, Config.get_provider("openai").base_url, Config.getProvider("zz"))
          print(JSON.stringify(Config.listProviders()), Config.getDefaultEngine(), Config.path() == CFG)
          print(Config.getSection("rag").enabled, JSON.stringify(Config.getSection("zzz")), Config.getTools().enabled)
          print(Config.getSecurity().allow_process_spawn, Config.isNetworkAccessAllowed())
          print(Config.isFileAccessAllowed("x.txt"), Config.isFileAccessAllowed("/etc/passwd"))
          local t = Config.get("providers") t["local"] = nil print(Config.get("providers.local") ~= nil)
        """.replace("CFG", repr(str(rt.cfgfile))), "=(t)")
        lines = rt.stdout.text.splitlines()
    finally:
        rt.close()
    assert lines == ["gemma\t***", "***\t***", "nil\tnil\ttable", "***\thttps://api.openai.com/v1\tnil",
                     '["local"]\tlua\ttrue', 'false\t{}\ttrue', "false\ttrue", "true\tfalse", "true"]


def test_config_misuse(lua_runtime: Any) -> None:
    with pytest.raises(ScriptError, match="Config.get: path must be a dotted string"):
        run(lua_runtime, "Config.get(5)")
    assert run(lua_runtime, "print(Config.path(), Config:getDefaultEngine())") == "nil\tlua\n"
