"""Judging one run against its manifest."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.judge import judge
from harness.manifest import AppManifest
from harness.result import RunResult

GOOD = {"exchanges": 4, "degenerate": 0, "by_kind": {"ok": 4}, "traffic": {"HIT": 4}}


def _manifest(tmp_path: Path, **kw: object) -> AppManifest:
    base: dict[str, object] = dict(name="demo", directory=tmp_path, layer=1, agents=2, files=("plan.md", "out/*.txt"),
                                   output=("== summary ==", "files: 3"), runtime_seconds=10.0, cost_usd=0.01)
    base.update(kw)
    return AppManifest(**base)  # type: ignore[arg-type]


def _run(out: Path, **kw: object) -> RunResult:
    base: dict[str, object] = dict(app="demo", repetition=1, status="ok", wall_s=1.5, output_dir=str(out),
                                   stdout="hello\n== summary ==\nfiles: 3 written\n",
                                   figures={"agents_created": 2, "cost_usd": 0.001, "llm_calls": 4, "quality": GOOD})
    base.update(kw)
    return RunResult(**base)  # type: ignore[arg-type]


@pytest.fixture
def out(tmp_path: Path) -> Path:
    d = tmp_path / "out-dir"
    (d / "out").mkdir(parents=True)
    (d / "plan.md").write_text("# plan\n")
    (d / "out" / "a.txt").write_text("a")
    return d


def test_a_good_run_passes(tmp_path: Path, out: Path) -> None:
    v = judge(_manifest(tmp_path), _run(out))
    assert v.passed and v.failures == [] and v.files_found == 2


@pytest.mark.parametrize("change, expected", [
    ({"status": "error", "error_name": "LuaError", "error_value": "main.lua:3: boom"},
     "run did not succeed: error: LuaError: main.lua:3: boom"),
    ({"figures": {"agents_created": 3, "cost_usd": 0.0, "quality": GOOD}}, "3 agents created, app.toml declares 2"),
    ({"figures": {}}, "the kernel reported no figures"),
    ({"stdout": "== summary ==\n"}, "output has no line containing 'files: 3'"),
    ({"wall_s": 11.0}, "runtime 11.0 s is over the budget of 10 s"),
    ({"figures": {"agents_created": 2, "cost_usd": 0.5, "quality": GOOD}}, "cost $0.5000 is over the budget of $0.0100"),
    ({"figures": {"agents_created": 2}}, "the kernel reported no reply quality"),
    ({"figures": {"agents_created": 2, "quality": {"exchanges": 4, "degenerate": 1, "by_kind": {"echo": 1, "ok": 3}}}},
     "1 of 4 model replies are degenerate (25 %: 1 echo), over the 20 % limit"),
    ({"status": "timeout", "error_value": "over the runtime budget of 10 s; interrupted"}, "timeout: over the runtime"),
    ({"status": "kernel_died", "error_value": "the kernel process died during the run"}, "kernel_died"),
])
def test_each_check_fails_in_words(tmp_path: Path, out: Path, change: dict[str, object], expected: str) -> None:
    v = judge(_manifest(tmp_path), _run(out, **change))
    assert not v.passed
    assert any(expected in f for f in v.failures), v.failures


def test_missing_empty_and_unmatched_files(tmp_path: Path, out: Path) -> None:
    (out / "plan.md").write_text("")
    (out / "out" / "a.txt").unlink()
    v = judge(_manifest(tmp_path, files=("plan.md", "out/*.txt", "gone.md"), min_files=5), _run(out))
    assert "file 'plan.md' is empty" in v.failures
    assert any("no non-empty file matches 'out/*.txt'" in f for f in v.failures)
    assert any("file 'gone.md' was not written" in f for f in v.failures)
    assert "0 non-empty files written, expected at least 5" in v.failures


def test_cassette_miss_is_named(tmp_path: Path, out: Path) -> None:
    run = _run(out, status="error", error_name="LuaError",
               error_value="main.lua:9: replay: no recorded response for POST http://127.0.0.1:18080/v1/chat/completions "
                           "(model 'gemma-3-270m', user: \"hi\") in cassettes/demo/cassette.yaml (3 recorded)")
    assert run.cassette_miss
    v = judge(_manifest(tmp_path), run)
    assert v.failures[0] == "run did not succeed: a cassette miss"
    assert not _run(out, status="error", error_value="boom").cassette_miss


def test_round_trip_through_dict(out: Path) -> None:
    run = _run(out, log_path="x.log", rss_bytes=123)
    assert RunResult.from_dict(run.to_dict() | {"unknown": 1}) == run


def test_budget_factor_scales_the_runtime_budget(tmp_path: Path, out: Path) -> None:
    assert judge(_manifest(tmp_path), _run(out, wall_s=25.0), budget_factor=3.0).passed
    v = judge(_manifest(tmp_path), _run(out, wall_s=31.0), budget_factor=3.0)
    assert v.failures == ["runtime 31.0 s is over the budget of 30 s (10 s x 3)"]
