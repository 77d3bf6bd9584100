"""results.json and the self-contained index.html."""

from __future__ import annotations

import json
import re
from pathlib import Path

from harness.gates import evaluate, outcome, success_rates
from harness.judge import judge
from harness.manifest import AppManifest
from harness.report import Entry, Suite, write_reports
from harness.result import RunResult


def _suite(tmp_path: Path) -> Suite:
    entries = []
    for name, agents, ok in (("alpha", 3, True), ("beta", 9, False)):
        m = AppManifest(name=name, directory=tmp_path, layer=1 if agents < 5 else 6, agents=agents, files=(),
                        output=("done",), runtime_seconds=30, cost_usd=0.1, title=name.title())
        for rep in (1, 2):
            run = RunResult(app=name, repetition=rep, status="ok" if ok else "error", wall_s=1.25 * rep,
                            output_dir=str(tmp_path / "runs" / name), log_path=str(tmp_path / "logs" / f"{name}-r{rep}.log"),
                            stdout="done\n", error_value="" if ok else "boom <b>",
                            figures={"agents_created": agents, "input_tokens": 100, "output_tokens": 20,
                                     "cost_usd": 0.002, "llm_calls": 5, "tool_calls": 2,
                                     "metrics": {"classified_by_model": 6},
                                     "quality": {"exchanges": 5, "degenerate": 1, "by_kind": {"ok": 4, "cut": 1},
                                                 "traffic": {"HIT": 5}}},
                            rss_bytes=(80 + rep) * 2**20)
            entries.append(Entry(m, run, judge(m, run)))
    outcomes = [outcome(e.manifest, e.verdict.passed, e.run.wall_s, 0.002) for e in entries]
    return Suite(traffic="replay", repeat=2, entries=entries, rates=success_rates(outcomes),
                 gates=evaluate(outcomes, "replay"))


def test_results_json(tmp_path: Path) -> None:
    json_path, _ = write_reports(_suite(tmp_path), tmp_path)
    data = json.loads(json_path.read_text())
    assert data["passed"] is False and (data["runs_passed"], data["runs_total"]) == (2, 4)
    assert data["rates"]["by_group"]["simple"] == {"passed": 2, "total": 2, "rate": 1.0, "wilson95": [0.3424, 1.0]}
    assert data["rates"]["by_group"]["expert"]["rate"] == 0.0
    alpha = next(a for a in data["apps"] if a["app"] == "alpha")
    assert alpha["median_wall_s"] == 1.875 and alpha["mean_llm_calls"] == 5 and len(alpha["runs"]) == 2
    assert any(not g["passed"] for g in data["gates"])


def test_index_html_is_self_contained(tmp_path: Path) -> None:
    _, html_path = write_reports(_suite(tmp_path), tmp_path)
    page = html_path.read_text()
    assert page.count("<svg") >= 4
    assert "href='logs/alpha-r1.log'" in page and "href='logs/beta-r2.log'" in page
    assert not re.search(r"""(src|href)=['"]?(https?:)?//""", page), "no external resources"
    assert "<script" not in page
    assert "boom &lt;b&gt;" in page and "boom <b>" not in page
    assert "success rate, expert apps" in page and "FAILED" in page


def test_markdown_summary(tmp_path: Path) -> None:
    write_reports(_suite(tmp_path), tmp_path)
    md = (tmp_path / "summary.md").read_text()
    assert "2/4 runs passed" in md and "| alpha | 1 | 3 | 2/2 | 100 % [34-100 %] (N=2) | 0/0 | 2/10 (20 %) 2 cut |" in md and "| expert | 0 | 2 | 0.0 % |" in md


def test_results_json_quality_checks_and_rates(tmp_path: Path) -> None:
    json_path, html_path = write_reports(_suite(tmp_path), tmp_path)
    data = json.loads(json_path.read_text())
    alpha = next(a for a in data["apps"] if a["app"] == "alpha")
    assert alpha["quality"] == {"exchanges": 10, "degenerate": 2, "degenerate_share": 0.2, "by_kind": {"cut": 2, "ok": 8},
                                "traffic": {"HIT": 10}, "degenerate_limit": 0.2, "acceptable": True}
    assert alpha["rate"] == {"passed": 2, "total": 2, "rate": 1.0, "wilson95": [0.3424, 1.0]}
    assert alpha["checks"] == [] and alpha["runs"][0]["quality"]["degenerate"] == 1
    assert data["quality"]["exchanges"] == 20 and data["history"] == {"compared_with": {}, "regressions": []}
    page = html_path.read_text()
    assert "Content checks" in page and "no content checks declared" in page
    assert "Reply quality, metrics and traffic" in page and "2/10 (20 %) 2 cut" in page
    assert "classified_by_model=6" in page and alpha["metrics"] == {"classified_by_model": 6}
