"""History, regressions, Wilson intervals and replay budgets on recorded latency."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness import history
from harness.gates import Rate, wilson
from harness.judge import judge, timing
from harness.manifest import AppManifest
from harness.result import RunResult


def _record(passed: int = 3, cost: float = 0.001, tokens: float = 1000.0, share: float = 0.0,
            checks: dict[str, bool] | None = None) -> dict[str, Any]:
    return {"traffic": "replay", "generated_at": "t", "apps": {"demo": {
        "passed": passed, "total": 3, "mean_cost_usd": cost, "mean_tokens": tokens, "degenerate_share": share,
        "checks": checks if checks is not None else {"labels": True, "tip": True}}}}


def test_regressions_name_what_got_worse() -> None:
    before = _record()
    now = _record(passed=2, cost=0.002, tokens=1500.0, share=0.3, checks={"labels": False, "tip": True, "new": False})
    found = {r.what: r for r in history.compare(now, before, "previous run")}
    assert set(found) == {"check 'labels' newly fails", "pass rate fell", "cost rose", "tokens rose",
                          "degenerate share rose"}
    assert found["pass rate fell"].message == "demo: pass rate fell: 3/3 -> 2/3 (vs previous run)"
    assert found["degenerate share rose"].after == "30 %"


def test_small_changes_and_unknown_apps_are_not_regressions() -> None:
    before = _record()
    assert history.compare(_record(cost=0.00105, tokens=1050.0, share=0.01), before, "b") == []
    assert history.compare(_record(), {"apps": {}}, "b") == []
    assert history.compare(_record(), None, "b") == []
    assert [r.what for r in history.compare(_record(cost=0.001), _record(cost=0.0), "b")] == ["cost rose"]


def test_history_file_appends_and_finds_the_previous_run_of_the_same_mode(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    assert history.previous_run(path, "replay") is None
    history.append(path, _record(passed=1))
    history.append(path, {**_record(passed=2), "traffic": "live"})
    with path.open("a") as f:
        f.write('{"torn": \n')  # an interrupted write loses only itself
    assert history.previous_run(path, "replay")["apps"]["demo"]["passed"] == 1  # type: ignore[index]
    assert history.previous_run(path, "live")["apps"]["demo"]["passed"] == 2  # type: ignore[index]


def test_baseline_from_results_json_or_a_record(tmp_path: Path) -> None:
    results = {"traffic": "replay", "apps": [{"app": "demo", "passed": 1, "total": 1, "mean_cost_usd": 0.1,
                                              "mean_input_tokens": 10, "mean_output_tokens": 5,
                                              "quality": {"degenerate_share": 0.1},
                                              "checks": [{"name": "c", "runs": 1, "passed_runs": 1}]}]}
    (tmp_path / "results.json").write_text(json.dumps(results))
    base = history.load_baseline(tmp_path / "results.json")
    assert base["apps"]["demo"] == {"passed": 1, "total": 1, "mean_cost_usd": 0.1, "mean_tokens": 15.0,
                                    "degenerate_share": 0.1, "checks": {"c": True}}
    (tmp_path / "rec.json").write_text(json.dumps(_record()))
    assert history.load_baseline(tmp_path / "rec.json")["apps"]["demo"]["passed"] == 3
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="bad.json: not a usable baseline"):
        history.load_baseline(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="cannot read the baseline"):
        history.load_baseline(tmp_path / "missing.json")


@pytest.mark.parametrize(("passed", "total", "lo", "hi"), [
    (10, 10, 0.7225, 1.0), (0, 10, 0.0, 0.2775), (5, 10, 0.2366, 0.7634), (1, 1, 0.2065, 1.0), (0, 0, 0.0, 1.0)])
def test_wilson_interval(passed: int, total: int, lo: float, hi: float) -> None:
    a, b = wilson(passed, total)
    assert (round(a, 4), round(b, 4)) == (lo, hi)
    if total:
        assert Rate(passed, total).to_dict()["wilson95"] == [lo, hi]


def _run(exchanges: list[dict[str, Any]], wall: float = 2.0, traffic: str = "replay") -> RunResult:
    return RunResult(app="demo", repetition=1, status="ok", wall_s=wall, output_dir="/nonexistent", traffic=traffic,
                     figures={"agents_created": 1, "exchanges": exchanges,
                              "quality": {"exchanges": len(exchanges), "degenerate": 0}})


def _hit(latency: float, recorded: float | None, source: str = "cassette") -> dict[str, Any]:
    return {"traffic": "HIT", "latency_ms": latency, "recorded_latency_ms": recorded,
            "recorded_latency_source": source if recorded is not None else ""}


def test_replay_budget_is_judged_on_recorded_latency() -> None:
    m = AppManifest(name="demo", directory=Path("/nonexistent"), layer=1, agents=1, files=(), output=(),
                    runtime_seconds=10.0, cost_usd=1.0)
    fast = _run([_hit(100, 3000), _hit(100, 4000)])
    t = timing(fast)
    assert (t.basis, t.recorded_latency_s, t.replay_latency_s) == ("recorded latency", 7.0, 0.2)
    assert t.judged_s == pytest.approx(2.0 - 0.2 + 7.0)
    assert judge(m, fast).passed
    slow = _run([_hit(100, 6000), _hit(100, 6000)])
    v = judge(m, slow)
    assert v.failures == ["runtime on recorded latency 13.8 s is over the budget of 10 s"]
    assert v.timing["recorded_latency_s"] == 12.0


def test_missing_recorded_latency_is_said_not_faked() -> None:
    run = _run([_hit(100, 3000), _hit(100, None)])
    t = timing(run)
    assert t.basis == "replay wall time" and t.recorded_latency_s is None and t.judged_s == 2.0
    assert t.note == ("recorded latency: not in cassette for 1 of 2 exchanges "
                      "(re-record to judge the budget on it)")
    assert timing(_run([_hit(100, 812, "server header openai-processing-ms")])).basis == \
        "recorded latency (server header openai-processing-ms)"
    assert timing(_run([_hit(100, 3000)], traffic="live")).basis == "wall time"
