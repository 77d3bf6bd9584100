"""Content checks of app.toml: every type passes and fails in words; malformed checks are ManifestErrors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.checks import Check, CheckResult, RunView, evaluate, parse_check
from harness.grader import GradeError, parse_score, prompt
from harness.judge import judge
from harness.manifest import AppManifest, ManifestError, load_manifest
from harness.result import RunResult

BASE = """
[app]
name = "demo"
layer = 1
agents = 1

[expect]
files = []
output = []

[budget]
runtime_seconds = 30
cost_usd = 0.5
"""

PLAN = "# Plan\n- a.txt -> docs/\n- b.py -> code/\n- c.csv -> data/\n"
DATA = {"items": [{"name": "a", "score": 4}, {"name": "b", "score": 5}], "title": "Weekly report", "n": 2}


@pytest.fixture
def view(tmp_path: Path) -> RunView:
    out = tmp_path / "out"
    out.mkdir()
    (out / "plan.md").write_text(PLAN)
    (out / "data.json").write_text(json.dumps(DATA))
    (out / "broken.json").write_text("{not json")
    return RunView(stdout="== summary ==\nfiles classified: 3 (3 by the model)\n", output_dir=out,
                   metrics={"classified_by_model": 3, "fallbacks": 0, "mode": "model"})


def _check(tmp_path: Path, raw: dict[str, Any], judge_model: str | None = None) -> Check:
    return parse_check(raw, 0, tmp_path, set(), judge_model)


def _run(tmp_path: Path, view: RunView, raw: dict[str, Any], grader: Any = None) -> CheckResult:
    return evaluate(_check(tmp_path, {"name": "c", **raw}), view, grader)


# ------------------------------------------------------------------------- pass and fail per type
CASES: list[tuple[dict[str, Any], dict[str, Any], str]] = [
    ({"type": "contains", "value": "files classified"}, {"type": "contains", "values": ["summary", "nowhere"]},
     "missing 'nowhere'"),
    ({"type": "contains", "value": "FILES CLASSIFIED", "ignore_case": True}, {"type": "contains", "value": "FILES"},
     "missing 'FILES'"),
    ({"type": "not_contains", "values": ["Category:", "Input:"]}, {"type": "not_contains", "value": "by the model"},
     "found 'by the model'"),
    ({"type": "regex", "on": "file:plan.md", "pattern": r"(?m)^- \S+ -> (docs|code|data)/$", "min_matches": 3},
     {"type": "regex", "on": "file:plan.md", "pattern": r"(?m)^- \S+ -> (docs|code|data)/$", "min_matches": 4},
     "3 match(es), need at least 4"),
    ({"type": "regex", "pattern": "summary", "max_matches": 1},
     {"type": "regex", "pattern": "s", "max_matches": 1}, "at most 1 allowed"),
    ({"type": "json_valid", "on": "file:data.json"}, {"type": "json_valid", "on": "file:broken.json"}, "not JSON"),
    ({"type": "json_schema", "on": "file:data.json",
      "schema": {"type": "object", "required": ["items"], "properties": {"items": {"type": "array", "minItems": 2}}}},
     {"type": "json_schema", "on": "file:data.json",
      "schema": {"type": "object", "properties": {"items": {"type": "array", "minItems": 3}}}},
     "1 schema error(s); at items:"),
    ({"type": "json_path", "on": "file:data.json", "path": "$.items[*].score", "min": 4},
     {"type": "json_path", "on": "file:data.json", "path": "$.items[*].score", "min": 5}, "$.items[*].score is 4, below"),
    ({"type": "json_path", "on": "file:data.json", "path": "$.items[1].name", "equals": "b"},
     {"type": "json_path", "on": "file:data.json", "path": "$.items[2].name", "equals": "b"}, "nothing at step '[2]'"),
    ({"type": "json_path", "on": "file:data.json", "path": "$.title", "contains": "report", "min_length": 5},
     {"type": "json_path", "on": "file:data.json", "path": "$.title", "min_length": 50}, "has length 13, below 50"),
    ({"type": "json_path", "on": "metrics", "path": "$.classified_by_model", "equals": 3},
     {"type": "json_path", "on": "metrics", "path": "$.absent", "equals": 3}, "nothing at step 'absent'"),
    ({"type": "word_count", "on": "file:plan.md", "min": 5, "max": 50},
     {"type": "word_count", "on": "file:plan.md", "min": 100}, "words, below the minimum 100"),
    ({"type": "line_count", "on": "file:plan.md", "min": 4}, {"type": "line_count", "on": "file:plan.md", "max": 2},
     "4 non-blank lines, above the maximum 2"),
    ({"type": "metric", "metric": "classified_by_model", "min": 3},
     {"type": "metric", "metric": "classified_by_model", "min": 6}, "classified_by_model = 3, below the minimum 6"),
    ({"type": "metric", "metric": "mode", "equals": "model"},
     {"type": "metric", "metric": "absent", "max": 1}, "metric 'absent' was not reported"),
]


@pytest.mark.parametrize(("good", "bad", "reason"), CASES, ids=[f"{c[0]['type']}-{i}" for i, c in enumerate(CASES)])
def test_each_type_passes_and_fails(tmp_path: Path, view: RunView, good: dict[str, Any], bad: dict[str, Any],
                                    reason: str) -> None:
    ok = _run(tmp_path, view, good)
    assert ok.passed, ok.reason
    failed = _run(tmp_path, view, bad)
    assert not failed.passed and reason in failed.reason, failed.reason


def test_missing_file_fails_every_reading_check(tmp_path: Path, view: RunView) -> None:
    r = _run(tmp_path, view, {"type": "not_contains", "on": "file:gone.md", "value": "x"})
    assert not r.passed and r.reason == "file 'gone.md' was not written"


def test_schema_file_and_reference_file_are_read_from_the_app_folder(tmp_path: Path, view: RunView) -> None:
    (tmp_path / "schema.json").write_text(json.dumps({"type": "object", "required": ["title"]}))
    assert _run(tmp_path, view, {"type": "json_schema", "on": "file:data.json", "schema_file": "schema.json"}).passed


def _fake_grader(score: int) -> Any:
    seen: list[tuple[str, str]] = []

    def grade(rubric: str, text: str) -> tuple[int, str]:
        seen.append((rubric, text))
        return score, "because"
    grade.seen = seen  # type: ignore[attr-defined]
    return grade


def test_judge_passes_and_fails_on_the_score(tmp_path: Path, view: RunView) -> None:
    raw = {"name": "c", "type": "judge", "rubric": "names a category per file", "min_score": 4}
    check = _check(tmp_path, raw, judge_model="openai/gpt-4o-mini")
    grader = _fake_grader(4)
    assert evaluate(check, view, grader).passed and grader.seen == [("names a category per file", view.stdout)]
    r = evaluate(check, view, _fake_grader(2))
    assert not r.passed and r.reason == "score 2 < 4: because"
    assert "no judge model" in evaluate(check, view, None).reason

    def broken(rubric: str, text: str) -> tuple[int, str]:
        raise GradeError("replay: no recorded response")
    assert evaluate(check, view, broken).reason == "the judge could not grade: replay: no recorded response"


def test_judge_prompt_and_score_parsing() -> None:
    p = prompt("answers the question", "Paris is the capital.\n\n")
    assert p.endswith("Rubric: answers the question\nText: Paris is the capital.\nScore:")
    assert parse_score(" 4 - it answers") == (4, "it answers")
    assert parse_score("5") == (5, "")
    with pytest.raises(GradeError, match="no score 1-5"):
        parse_score(" Rubric: the text is")
    with pytest.raises(GradeError):
        parse_score("")


def test_similar_uses_the_offline_embedder(tmp_path: Path, view: RunView) -> None:
    pytest.importorskip("onnxruntime")
    from llmspell.rag.embeddings import EmbeddingError, LocalEmbedder

    try:
        LocalEmbedder().embed(["probe"])
    except EmbeddingError as e:
        pytest.skip(f"the MiniLM model package is not installed here: {e}")
    near = {"type": "similar", "reference": "A summary that counts how many files the model classified.",
            "threshold": 0.3}
    far = {"type": "similar", "reference": "Chocolate cake recipe with three eggs and sugar.", "threshold": 0.6}
    ok = _run(tmp_path, view, near)
    assert ok.passed and ok.reason.startswith("cosine ")
    bad = _run(tmp_path, view, far)
    assert not bad.passed and "< threshold 0.6" in bad.reason


def test_similar_fails_when_the_embedder_is_missing(tmp_path: Path, view: RunView,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real = builtins.__import__

    def no_rag(name: str, *a: Any, **kw: Any) -> Any:
        if name == "llmspell.rag.embeddings":
            raise ImportError("No module named 'onnxruntime'")
        return real(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_rag)
    r = _run(tmp_path, view, {"type": "similar", "reference": "anything", "threshold": 0.0})
    assert not r.passed and "offline embedder is not importable" in r.reason and "onnxruntime" in r.reason


# ---------------------------------------------------------------------------- malformed checks
def _app(tmp_path: Path, checks: str, extra: str = "") -> Path:
    d = tmp_path / "demo"
    d.mkdir(exist_ok=True)
    (d / "app.toml").write_text(BASE + extra + checks)
    (d / "main.lua").write_text("print(1)\n")
    (d / "config.toml").write_text("")
    return d / "app.toml"


OK_CHECK = '[[checks]]\nname = "ok"\ntype = "contains"\nvalue = "x"\n'


@pytest.mark.parametrize(("checks", "message"), [
    ('[[checks]]\nname = "a"\ntype = "fuzzy"\n', "checks[0].type: unknown check type 'fuzzy'"),
    ('[[checks]]\ntype = "contains"\nvalue = "x"\n', "checks[0].name: required key is missing"),
    (OK_CHECK + '[[checks]]\nname = "b"\ntype = "regex"\npattern = "(unclosed"\n',
     "checks[1].pattern: invalid regular expression"),
    (OK_CHECK + OK_CHECK, "checks[1].name: 'ok' is used by another check"),
    ('[[checks]]\nname = "a"\ntype = "contains"\nvalue = "x"\npatern = "y"\n', "checks[0].patern: unknown key"),
    ('[[checks]]\nname = "a"\ntype = "contains"\n', "checks[0]: give exactly one of 'value'"),
    ('[[checks]]\nname = "a"\ntype = "regex"\npattern = "x"\nmin_matches = -1\n', "checks[0].min_matches"),
    ('[[checks]]\nname = "a"\ntype = "regex"\npattern = "x"\nmin_matches = 3\nmax_matches = 1\n',
     "checks[0].max_matches: 1 is below min_matches 3"),
    ('[[checks]]\nname = "a"\ntype = "json_schema"\nschema = { type = "objekt" }\n',
     "checks[0].schema: not a valid JSON Schema"),
    ('[[checks]]\nname = "a"\ntype = "json_schema"\nschema_file = "nope.json"\n', "checks[0].schema_file: cannot read"),
    ('[[checks]]\nname = "a"\ntype = "json_path"\npath = "items[0]"\nequals = 1\n',
     "checks[0].path: a JSON path starts with '$'"),
    ('[[checks]]\nname = "a"\ntype = "json_path"\npath = "$.a..b"\nequals = 1\n', "checks[0].path: cannot read"),
    ('[[checks]]\nname = "a"\ntype = "json_path"\npath = "$.a"\n', "checks[0]: a json_path check needs one of"),
    ('[[checks]]\nname = "a"\ntype = "word_count"\n', "checks[0]: a word_count check needs 'min', 'max'"),
    ('[[checks]]\nname = "a"\ntype = "line_count"\nmin = 5\nmax = 2\n', "checks[0].min: min 5 is above max 2"),
    ('[[checks]]\nname = "a"\ntype = "metric"\nmetric = "m"\n', "checks[0]: a metric check needs"),
    ('[[checks]]\nname = "a"\ntype = "metric"\nmetric = "m"\nmin = 1\non = "stdout"\n', "checks[0].on"),
    ('[[checks]]\nname = "a"\ntype = "contains"\nvalue = "x"\non = "file:../../etc/passwd"\n',
     "checks[0].on: '../../etc/passwd' must be a path relative"),
    ('[[checks]]\nname = "a"\ntype = "contains"\nvalue = "x"\non = "stderr"\n', "checks[0].on: expected"),
    ('[[checks]]\nname = "a"\ntype = "similar"\nreference = "x"\n', "checks[0].threshold: required key is missing"),
    ('[[checks]]\nname = "a"\ntype = "similar"\nreference = "x"\nthreshold = 1.5\n', "checks[0].threshold"),
    ('[[checks]]\nname = "a"\ntype = "similar"\nreference_file = "ref.txt"\nthreshold = 0.5\n',
     "checks[0].reference_file: cannot read"),
    ('[[checks]]\nname = "a"\ntype = "judge"\nrubric = "r"\n', "checks[0].type: a judge check needs a judge model"),
    ('[[checks]]\nname = "a"\ntype = "judge"\nrubric = "r"\nmin_score = 7\n', "checks[0].min_score"),
    ('checks = "all"\n', "checks: expected an array of tables"),
])
def test_malformed_checks_name_file_and_key(tmp_path: Path, checks: str, message: str) -> None:
    path = _app(tmp_path, checks)
    if not checks.startswith("[["):  # a top-level key must come before the first table
        path.write_text(checks + BASE)
    with pytest.raises(ManifestError) as ei:
        load_manifest(path)
    assert str(ei.value).startswith(f"{path}: ") and message in str(ei.value), str(ei.value)


def test_judge_model_from_app_toml_or_the_harness(tmp_path: Path) -> None:
    checks = '[[checks]]\nname = "a"\ntype = "judge"\nrubric = "r"\n'
    m = load_manifest(_app(tmp_path, checks, extra='[judge]\nmodel = "openai/gpt-4o-mini"\n'))
    assert m.judge_model == "openai/gpt-4o-mini" and m.checks[0].params["min_score"] == 3
    m2 = load_manifest(_app(tmp_path, checks), judge_model="anthropic/claude-3-5-haiku-latest")
    assert m2.judge_model == "anthropic/claude-3-5-haiku-latest"
    with pytest.raises(ManifestError, match="judge.temperature: unknown key"):
        load_manifest(_app(tmp_path, "", extra='[judge]\ntemperature = 0\n'))


def test_checks_join_the_verdict(tmp_path: Path, view: RunView) -> None:
    m = load_manifest(_app(tmp_path, OK_CHECK.replace('"x"', '"classified"')
                           + '[[checks]]\nname = "model did the work"\ntype = "metric"\nmetric = "fallbacks"\nmax = 0\n'))
    m = AppManifest(**{**m.__dict__, "agents": 1})
    run = RunResult(app="demo", repetition=1, status="ok", wall_s=1.0, output_dir=str(view.output_dir),
                    stdout=view.stdout, figures={"agents_created": 1, "metrics": {"fallbacks": 2},
                                                 "quality": {"exchanges": 2, "degenerate": 0}})
    v = judge(m, run)
    assert [c.passed for c in v.checks] == [True, False]
    assert v.failures == ["check 'model did the work' failed: fallbacks = 2, above the maximum 0"]
    assert not v.passed and v.to_dict()["checks"][1]["reason"] == "fallbacks = 2, above the maximum 0"


def test_the_cli_refuses_a_malformed_check_before_anything_runs(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    from harness.__main__ import main

    _app(tmp_path, '[[checks]]\nname = "a"\ntype = "regex"\npattern = "[z-a]"\n')
    assert main(["run", "demo", "--apps-dir", str(tmp_path), "--report-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "demo/app.toml: checks[0].pattern: invalid regular expression" in err
    assert not (tmp_path / "r").exists()  # nothing ran, no report
