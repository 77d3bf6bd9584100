"""Tracing: level specs, spans (off and on), latency stats, OTel fallback, application detection."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator

import pytest

from llmspell.runtime import tracing


@pytest.fixture(autouse=True)
def _clean_tracing() -> Iterator[None]:
    tracing.reset()
    yield
    tracing.enable_stats(False)
    tracing.disable_otel()
    tracing.reset()
    tracing.configure("warn")


# ----------------------------------------------------------------------------- levels
@pytest.mark.parametrize(("spec", "default", "directives"), [
    ("", logging.WARNING, {}),
    ("off", tracing.OFF, {}),
    ("error", logging.ERROR, {}),
    ("WARN", logging.WARNING, {}),
    ("info", logging.INFO, {}),
    ("debug", logging.DEBUG, {}),
    ("trace", tracing.TRACE, {}),
    ("info,llmspell.kernel=debug", logging.INFO, {"llmspell.kernel": logging.DEBUG}),
    ("llmspell::rag=trace, error", logging.ERROR, {"llmspell.rag": tracing.TRACE}),
    ("llmspell.debug", logging.WARNING, {"llmspell.debug": tracing.TRACE}),
])
def test_parse_spec(spec: str, default: int, directives: dict[str, int]) -> None:
    parsed = tracing.parse_spec(spec)
    assert parsed.default == default and parsed.directives == directives


@pytest.mark.parametrize("spec", ["loud", "info,llmspell=shout", "=debug", "a b"])
def test_parse_spec_rejects_garbage(spec: str) -> None:
    with pytest.raises(tracing.TracingConfigError, match="invalid log"):
        tracing.parse_spec(spec)


def test_configure_sets_levels_and_writes_formatted_lines() -> None:
    stream = io.StringIO()
    tracing.configure("warn,llmspell.kernel=debug", stream=stream)
    logging.getLogger("llmspell.kernel.wire").debug("visible %d", 1)
    logging.getLogger("llmspell.rag").info("hidden")
    logging.getLogger("llmspell.rag").warning("warned")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} DEBUG \[llmspell\.kernel\.wire\] visible 1$", lines[0])
    assert lines[1].endswith("WARNING [llmspell.rag] warned")
    tracing.configure("error", stream=stream)  # directives of the previous call are gone
    assert not logging.getLogger("llmspell.kernel").isEnabledFor(logging.DEBUG)


def test_configure_off_silences_errors() -> None:
    stream = io.StringIO()
    tracing.configure("off", stream=stream)
    logging.getLogger("llmspell.x").error("nope")
    assert stream.getvalue() == ""


# ----------------------------------------------------------------------------- spans
def test_disabled_span_is_a_shared_noop() -> None:
    tracing.configure("warn")
    a = tracing.span("agent.execute", model="m")
    b = tracing.span("agent.execute")
    assert a is b and not isinstance(a, tracing.Span)
    with a:
        a.set(x=1)
    assert tracing.stats() == {}


def test_stats_collection_and_percentiles() -> None:
    tracing.enable_stats()
    for _ in range(3):
        with tracing.span("tool.invoke", tool="calc") as s:
            assert isinstance(s, tracing.Span) and tracing.current_span() is s
    for ms in range(1, 101):
        tracing.record("provider.call", float(ms))
    with pytest.raises(ValueError), tracing.span("tool.invoke"):
        raise ValueError("x")
    st = tracing.stats()
    assert st["tool.invoke"]["count"] == 4 and st["tool.invoke"]["errors"] == 1
    p = st["provider.call"]
    assert (p["count"], p["p50_ms"], p["p95_ms"], p["p99_ms"], p["max_ms"]) == (100, 50.0, 95.0, 99.0, 100.0)
    assert p["mean_ms"] == pytest.approx(50.5)
    tracing.reset()
    assert tracing.stats() == {}


def test_nesting_and_fields() -> None:
    tracing.enable_stats()
    with tracing.span("run", a=1) as outer:
        with tracing.span("agent.execute") as inner:
            assert isinstance(inner, tracing.Span) and inner.parent is outer
            inner.set(tokens=5)
            assert inner.fields == {"tokens": 5}
        assert tracing.current_span() is outer
    assert tracing.current_span() is None
    assert isinstance(outer, tracing.Span) and outer.duration_ms >= 0


def test_span_as_decorator_decides_per_call() -> None:
    calls: list[int] = []

    @tracing.span("workflow.step")
    def step(x: int) -> int:
        calls.append(x)
        return x * 2

    assert step(2) == 4 and tracing.stats() == {}
    tracing.enable_stats()
    assert step(3) == 6
    assert tracing.stats()["workflow.step"]["count"] == 1
    assert step.__name__ == "step" and calls == [2, 3]


def test_enabled_span_logs_at_debug() -> None:
    stream = io.StringIO()
    tracing.configure("warn,llmspell.agent=debug", stream=stream)
    with tracing.span("agent.execute", model="gpt"):
        pass
    with tracing.span("tool.invoke"):
        pass
    text = stream.getvalue()
    assert re.search(r"DEBUG \[llmspell\.agent\] span agent\.execute \d+\.\d{3} ms model='gpt'", text)
    assert "tool.invoke" not in text


def test_otel_export_skips_cleanly_when_not_installed(caplog: pytest.LogCaptureFixture) -> None:
    try:
        import opentelemetry.sdk  # noqa: F401
    except ImportError:
        assert tracing.enable_otel() is False
        with tracing.span("agent.execute"):
            pass
        return
    assert tracing.enable_otel() is True
    with tracing.span("run"), tracing.span("agent.execute", model="m"):
        pass
    tracing.disable_otel()


# ----------------------------------------------------------------------------- application detection
def test_estimate_simple_script() -> None:
    info = tracing.estimate_complexity('print("hello")\n-- Agent.builder() in a comment\n--[[ Agent.create{} ]]')
    assert info["agents"] == 0 and info["layer"] == 1 and info["group"] == "simple"
    assert info["expected_seconds"] == tracing.LAYER_EXPECTED_SECONDS[1]


def test_estimate_workflows_agents_and_rag() -> None:
    src = """
      local a = Agent.builder():name("a"):model("openai/gpt-4o-mini"):build()
      local b = Agent.builder():name("b"):build()
      local wf = Workflow.builder():name("w"):parallel():build()
      local c = Workflow.conditional{name = "c"}
      Tool.invoke("calculator", {input = "1+1"})
    """
    info = tracing.estimate_complexity(src)
    assert info["agents"] == 2 and info["workflows"] == 2
    assert info["workflow_kinds"] == ["conditional", "parallel"] and info["tool_calls"] == 1
    assert info["layer"] == 4
    many = "\n".join(f"local a{i} = Agent.builder():build()" for i in range(10)) + "\nRAG.search('q')\n"
    big = tracing.estimate_complexity(many)
    assert big["agents"] == 10 and big["rag"] and big["layer"] == 6 and big["group"] == "expert"
    rag_only = tracing.estimate_complexity("RAG.ingest{content='x'}")
    assert rag_only["layer"] == 5


def test_check_wall_time_warns_over_twice_the_expectation(caplog: pytest.LogCaptureFixture) -> None:
    info = tracing.estimate_complexity("print(1)")
    assert tracing.check_wall_time(info, 2 * info["expected_seconds"]) is None
    with caplog.at_level(logging.WARNING, logger="llmspell.tracing"):
        text = tracing.check_wall_time(info, 2 * info["expected_seconds"] + 1)
    assert text is not None and "more than twice" in text and "layer-1" in text
    assert any("more than twice" in r.getMessage() for r in caplog.records)


def test_run_span_tags_the_root_span() -> None:
    tracing.enable_stats()
    with tracing.run_span("local a = Agent.builder():build()", command="run") as info:
        root = tracing.current_span()
        assert isinstance(root, tracing.Span) and root.name == "run"
        assert root.fields["app.agents"] == 1 and root.fields["app.layer"] == info["layer"]
        assert root.fields["command"] == "run"
    assert info["wall_seconds"] >= 0
    assert tracing.stats()["run"]["count"] == 1


def test_bare_level_is_llmspells_third_party_loggers_stay_at_warn() -> None:
    import logging

    from llmspell.runtime import tracing

    try:
        tracing.configure("debug")
        assert logging.getLogger("llmspell.kernel").getEffectiveLevel() == logging.DEBUG
        assert logging.getLogger("httpx").getEffectiveLevel() == logging.WARNING
        assert logging.getLogger("vcr.stubs").getEffectiveLevel() == logging.WARNING
        tracing.configure("debug,httpx=debug")
        assert logging.getLogger("httpx").getEffectiveLevel() == logging.DEBUG
        tracing.configure("error")
        assert logging.getLogger("httpx").getEffectiveLevel() == logging.ERROR
    finally:
        tracing.configure("warn")
