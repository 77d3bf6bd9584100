"""Content checks of app.toml (`[[checks]]`, notes/checks-format.md): parsing, validation and evaluation.

Each check reads the run's stdout, a file of its output directory, or its metrics, and passes or
fails with a reason in words. A malformed check is a ManifestError naming the file and key
(`checks[2].pattern`), raised when the manifest is loaded, before anything runs.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

CHECK_TYPES = ("contains", "not_contains", "regex", "json_valid", "json_schema", "json_path", "word_count",
               "line_count", "metric", "similar", "judge")
_COMMON = {"name", "type", "on", "why"}
_KEYS: dict[str, set[str]] = {
    "contains": {"value", "values", "ignore_case"},
    "not_contains": {"value", "values", "ignore_case"},
    "regex": {"pattern", "min_matches", "max_matches"},
    "json_valid": set(),
    "json_schema": {"schema", "schema_file"},
    "json_path": {"path", "equals", "min", "max", "contains", "min_length"},
    "word_count": {"min", "max"},
    "line_count": {"min", "max"},
    "metric": {"metric", "min", "max", "equals"},
    "similar": {"reference", "reference_file", "threshold"},
    "judge": {"rubric", "min_score"},
}
#: Characters of the checked text quoted in a failure reason.
_QUOTE = 80
_PATH_STEP = re.compile(r"\.([A-Za-z_][\w-]*)|\[(\d+|\*)\]|\[\"([^\"]*)\"\]|\['([^']*)'\]")


class CheckError(ValueError):
    """A malformed check: `key` is the app.toml key (checks[i].field), `problem` says what is wrong."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


@dataclass(frozen=True)
class Check:
    """One validated content check of an app."""

    index: int
    name: str
    type: str
    on: str = "stdout"
    why: str = ""
    params: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def key(self) -> str:
        return f"checks[{self.index}]"


@dataclass
class CheckResult:
    """The outcome of one check on one run."""

    name: str
    type: str
    on: str
    passed: bool
    reason: str
    why: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "on": self.on, "passed": self.passed, "reason": self.reason,
                "why": self.why}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckResult:
        return cls(**{k: data[k] for k in ("name", "type", "on", "passed", "reason")}, why=data.get("why", ""))


# --------------------------------------------------------------------------------- parsing
def _number(key: str, value: Any, what: str = "a number") -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise CheckError(key, f"expected {what}, got {value!r}")
    return float(value)


def _count(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise CheckError(key, f"expected a non-negative integer, got {value!r}")
    return value


def _string(key: str, value: Any, *, empty: bool = False) -> str:
    if not isinstance(value, str) or (not empty and not value.strip()):
        raise CheckError(key, f"expected a non-empty string, got {value!r}")
    return value


def _relative(key: str, rel: str, what: str) -> str:
    p = PurePosixPath(rel)
    if not rel or p.is_absolute() or ".." in p.parts or rel.startswith("~"):
        raise CheckError(key, f"'{rel}' must be a path relative to {what} (no leading '/', no '..')")
    return rel


def parse_json_path(key: str, path: str) -> list[str | int | None]:
    """`$.a.b[0].c` / `$.items[*].x` as steps (a key, an index, None for every element)."""
    if not path.startswith("$"):
        raise CheckError(key, f"a JSON path starts with '$', got '{path}'")
    steps: list[str | int | None] = []
    pos = 1
    while pos < len(path):
        m = _PATH_STEP.match(path, pos)
        if m is None:
            raise CheckError(key, f"cannot read '{path}' at character {pos + 1} (use $.a.b[0].c or $.items[*].x)")
        name, index, dq, sq = m.groups()
        if name is not None:
            steps.append(name)
        elif index is not None:
            steps.append(None if index == "*" else int(index))
        else:
            steps.append(dq if dq is not None else sq)
        pos = m.end()
    return steps


def _bounds(key: str, raw: dict[str, Any], names: tuple[str, ...]) -> dict[str, float]:
    out = {n: _number(f"{key}.{n}", raw[n]) for n in names if n in raw}
    if "min" in out and "max" in out and out["min"] > out["max"]:
        raise CheckError(f"{key}.min", f"min {out['min']:g} is above max {out['max']:g}")
    return out


def _values(key: str, raw: dict[str, Any]) -> list[str]:
    if ("value" in raw) == ("values" in raw):
        raise CheckError(key, "give exactly one of 'value' (a string) or 'values' (an array of strings)")
    if "value" in raw:
        return [_string(f"{key}.value", raw["value"])]
    vals = raw["values"]
    if not isinstance(vals, list) or not vals:
        raise CheckError(f"{key}.values", f"expected a non-empty array of strings, got {vals!r}")
    return [_string(f"{key}.values[{i}]", v) for i, v in enumerate(vals)]


def _schema(key: str, schema: Any) -> dict[str, Any]:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    if not isinstance(schema, dict):
        raise CheckError(key, f"a JSON Schema is an object (table), got {type(schema).__name__}")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as e:
        where = "/".join(str(p) for p in e.absolute_path)
        raise CheckError(key, f"not a valid JSON Schema (Draft 2020-12): {e.message}"
                              + (f" at {where}" if where else "")) from None
    return schema


def parse_check(raw: Any, index: int, app_dir: Path, names: set[str], judge_model: str | None) -> Check:
    """Validate one `[[checks]]` table; raise CheckError with the app.toml key of the problem."""
    key = f"checks[{index}]"
    if not isinstance(raw, dict):
        raise CheckError(key, f"expected a table, got {type(raw).__name__}")
    for req in ("name", "type"):
        if req not in raw:
            raise CheckError(f"{key}.{req}", "required key is missing")
    name = _string(f"{key}.name", raw["name"])
    if name in names:
        raise CheckError(f"{key}.name", f"'{name}' is used by another check of this app (names must be unique)")
    kind = raw["type"]
    if kind not in CHECK_TYPES:
        raise CheckError(f"{key}.type", f"unknown check type {kind!r} (one of {', '.join(CHECK_TYPES)})")
    allowed = _COMMON | _KEYS[kind]
    extra = sorted(set(raw) - allowed)
    if extra:
        raise CheckError(f"{key}.{extra[0]}", f"unknown key for a {kind} check (allowed: {', '.join(sorted(allowed))})")
    on = raw.get("on", "metrics" if kind == "metric" else "stdout")
    _string(f"{key}.on", on)
    if kind == "metric" and on != "metrics":
        raise CheckError(f"{key}.on", "a metric check reads the run's metrics; leave 'on' out")
    if on.startswith("file:"):
        _relative(f"{key}.on", on[5:], "the run's output directory")
    elif on not in ("stdout", "metrics"):
        raise CheckError(f"{key}.on", f"expected \"stdout\", \"metrics\" or \"file:<path>\", got {on!r}")
    why = _string(f"{key}.why", raw.get("why", ""), empty=True)
    p: dict[str, Any] = {}
    if kind in ("contains", "not_contains"):
        p["values"] = _values(key, raw)
        ic = raw.get("ignore_case", False)
        if not isinstance(ic, bool):
            raise CheckError(f"{key}.ignore_case", f"expected true or false, got {ic!r}")
        p["ignore_case"] = ic
    elif kind == "regex":
        if "pattern" not in raw:
            raise CheckError(f"{key}.pattern", "required key is missing")
        pattern = _string(f"{key}.pattern", raw["pattern"])
        try:
            p["pattern"] = re.compile(pattern)
        except re.error as e:
            raise CheckError(f"{key}.pattern", f"invalid regular expression: {e}") from None
        p["min_matches"] = _count(f"{key}.min_matches", raw.get("min_matches", 1))
        if "max_matches" in raw:
            p["max_matches"] = _count(f"{key}.max_matches", raw["max_matches"])
            if p["max_matches"] < p["min_matches"]:
                raise CheckError(f"{key}.max_matches", f"{p['max_matches']} is below min_matches {p['min_matches']}")
    elif kind == "json_schema":
        if ("schema" in raw) == ("schema_file" in raw):
            raise CheckError(key, "give exactly one of 'schema' (an inline table) or 'schema_file'")
        if "schema" in raw:
            p["schema"] = _schema(f"{key}.schema", raw["schema"])
        else:
            rel = _relative(f"{key}.schema_file", _string(f"{key}.schema_file", raw["schema_file"]), "the app folder")
            path = app_dir / rel
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except OSError as e:
                raise CheckError(f"{key}.schema_file", f"cannot read {path}: {e.strerror or e}") from None
            except ValueError as e:
                raise CheckError(f"{key}.schema_file", f"{path} is not JSON: {e}") from None
            p["schema"] = _schema(f"{key}.schema_file", data)
    elif kind == "json_path":
        if "path" not in raw:
            raise CheckError(f"{key}.path", "required key is missing")
        p["path"] = _string(f"{key}.path", raw["path"])
        p["steps"] = parse_json_path(f"{key}.path", p["path"])
        conds = [c for c in ("equals", "min", "max", "contains", "min_length") if c in raw]
        if not conds:
            raise CheckError(key, "a json_path check needs one of equals, min, max, contains, min_length")
        p.update(_bounds(key, raw, ("min", "max")))
        if "equals" in raw:
            p["equals"] = raw["equals"]
        if "contains" in raw:
            p["contains"] = raw["contains"]
        if "min_length" in raw:
            p["min_length"] = _count(f"{key}.min_length", raw["min_length"])
    elif kind in ("word_count", "line_count"):
        p.update(_bounds(key, raw, ("min", "max")))
        if not p:
            raise CheckError(key, f"a {kind} check needs 'min', 'max' or both")
    elif kind == "metric":
        if "metric" not in raw:
            raise CheckError(f"{key}.metric", "required key is missing")
        p["metric"] = _string(f"{key}.metric", raw["metric"])
        p.update(_bounds(key, raw, ("min", "max")))
        if "equals" in raw:
            p["equals"] = raw["equals"]
        if not any(c in raw for c in ("min", "max", "equals")):
            raise CheckError(key, "a metric check needs 'min', 'max' or 'equals'")
    elif kind == "similar":
        if ("reference" in raw) == ("reference_file" in raw):
            raise CheckError(key, "give exactly one of 'reference' (text) or 'reference_file'")
        if "reference" in raw:
            p["reference"] = _string(f"{key}.reference", raw["reference"])
        else:
            rel = _relative(f"{key}.reference_file", _string(f"{key}.reference_file", raw["reference_file"]),
                            "the app folder")
            try:
                p["reference"] = (app_dir / rel).read_text(encoding="utf-8")
            except OSError as e:
                raise CheckError(f"{key}.reference_file", f"cannot read {app_dir / rel}: {e.strerror or e}") from None
        if "threshold" not in raw:
            raise CheckError(f"{key}.threshold", "required key is missing (a cosine 0-1, e.g. 0.5)")
        t = _number(f"{key}.threshold", raw["threshold"], "a number 0-1")
        if not 0.0 <= t <= 1.0:
            raise CheckError(f"{key}.threshold", f"expected a number 0-1, got {t:g}")
        p["threshold"] = t
    elif kind == "judge":
        if "rubric" not in raw:
            raise CheckError(f"{key}.rubric", "required key is missing")
        p["rubric"] = _string(f"{key}.rubric", raw["rubric"])
        score = raw.get("min_score", 3)
        if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
            raise CheckError(f"{key}.min_score", f"expected an integer 1-5, got {score!r}")
        p["min_score"] = score
        if not judge_model:
            raise CheckError(f"{key}.type", "a judge check needs a judge model: [judge] model = \"openai/...\" "
                                            "in app.toml, or the harness option --apps-judge-model")
    return Check(index=index, name=name, type=kind, on=on, why=why, params=p)


def parse_checks(raw: Any, app_dir: Path, judge_model: str | None) -> tuple[Check, ...]:
    """The `checks` array of an app.toml, each validated (CheckError on the first problem)."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise CheckError("checks", "expected an array of tables ([[checks]])")
    names: set[str] = set()
    out = []
    for i, item in enumerate(raw):
        check = parse_check(item, i, app_dir, names, judge_model)
        names.add(check.name)
        out.append(check)
    return tuple(out)


# ------------------------------------------------------------------------------ evaluation
@dataclass
class RunView:
    """What checks read from one run: its stdout, output directory and metrics."""

    stdout: str
    output_dir: Path
    metrics: dict[str, Any]


#: Grades `text` against a rubric: returns (score 1-5, the judge's reason), or raises GradeError.
Grader = Callable[[str, str], tuple[int, str]]


def _quote(text: str) -> str:
    flat = " ".join(text.split())
    return f"'{flat[:_QUOTE]}{'…' if len(flat) > _QUOTE else ''}'"


def _source(check: Check, run: RunView) -> tuple[str | None, str]:
    """The text a check reads, or None and the reason it is missing."""
    if check.on == "stdout":
        return run.stdout, ""
    if check.on == "metrics":
        return json.dumps(run.metrics, sort_keys=True), ""
    rel = check.on[5:]
    path = run.output_dir / rel
    if not path.is_file():
        return None, f"file '{rel}' was not written"
    try:
        return path.read_text(encoding="utf-8", errors="replace"), ""
    except OSError as e:
        return None, f"cannot read '{rel}': {e.strerror or e}"


def _within(value: float, p: dict[str, Any]) -> str:
    """'' when value is within min/max, else the violated bound in words."""
    if "min" in p and value < p["min"]:
        return f"below the minimum {p['min']:g}"
    if "max" in p and value > p["max"]:
        return f"above the maximum {p['max']:g}"
    return ""


def walk_json_path(data: Any, steps: list[str | int | None]) -> list[Any] | str:
    """Every value the path selects, or the reason it selects nothing."""
    current = [data]
    for step in steps:
        nxt: list[Any] = []
        for v in current:
            if step is None:
                if isinstance(v, list):
                    nxt.extend(v)
            elif isinstance(step, int):
                if isinstance(v, list) and -len(v) <= step < len(v):
                    nxt.append(v[step])
            elif isinstance(v, dict) and step in v:
                nxt.append(v[step])
        if not nxt:
            return f"nothing at step {'[*]' if step is None else f'[{step}]' if isinstance(step, int) else step!r}"
        current = nxt
    return current


def _json_path(check: Check, text: str) -> tuple[bool, str]:
    p = check.params
    try:
        data = json.loads(text)
    except ValueError as e:
        return False, f"not JSON: {e}"
    found = walk_json_path(data, p["steps"])
    if isinstance(found, str):
        return False, f"{p['path']}: {found}"
    for v in found:
        if "equals" in p and v != p["equals"]:
            return False, f"{p['path']} is {json.dumps(v)[:_QUOTE]}, expected {json.dumps(p['equals'])}"
        if "min" in p or "max" in p:
            if isinstance(v, bool) or not isinstance(v, int | float):
                return False, f"{p['path']} is {json.dumps(v)[:_QUOTE]}, not a number"
            off = _within(float(v), p)
            if off:
                return False, f"{p['path']} is {v:g}, {off}"
        if "contains" in p and (not isinstance(v, str | list) or p["contains"] not in v):
            return False, f"{p['path']} ({json.dumps(v)[:_QUOTE]}) does not contain {json.dumps(p['contains'])}"
        if "min_length" in p and (not isinstance(v, str | list | dict) or len(v) < p["min_length"]):
            size = len(v) if isinstance(v, str | list | dict) else "no"
            return False, f"{p['path']} has length {size}, below {p['min_length']}"
    return True, f"{p['path']}: {len(found)} value(s) satisfy it"


def _similar(check: Check, text: str) -> tuple[bool, str]:
    try:
        from llmspell.rag.embeddings import EmbeddingError, LocalEmbedder
    except ImportError as e:
        return False, f"the offline embedder is not importable ({e}); a similar check cannot pass without it"
    try:
        vecs = _embedder(LocalEmbedder).embed([text, check.params["reference"]]).vectors
    except (EmbeddingError, OSError, ImportError, RuntimeError) as e:
        return False, f"the offline embedder failed: {e}"
    cos = float(vecs[0] @ vecs[1])
    t = check.params["threshold"]
    return cos >= t, f"cosine {cos:.3f} {'>=' if cos >= t else '<'} threshold {t:g}"


_EMBEDDERS: dict[type, Any] = {}


def _embedder(cls: type) -> Any:
    if cls not in _EMBEDDERS:
        _EMBEDDERS[cls] = cls()
    return _EMBEDDERS[cls]


def evaluate(check: Check, run: RunView, grader: Grader | None = None) -> CheckResult:
    """Run one check on one run; never raises for a bad run (the reason says what failed)."""
    ok, reason = _evaluate(check, run, grader)
    return CheckResult(name=check.name, type=check.type, on=check.on, passed=ok, reason=reason, why=check.why)


def _evaluate(check: Check, run: RunView, grader: Grader | None) -> tuple[bool, str]:
    p = check.params
    if check.type == "metric":
        name = p["metric"]
        if name not in run.metrics:
            return False, f"metric '{name}' was not reported (Metrics.count/set)"
        v = run.metrics[name]
        if "equals" in p and v != p["equals"]:
            return False, f"{name} = {v!r}, expected {p['equals']!r}"
        if "min" in p or "max" in p:
            if isinstance(v, bool) or not isinstance(v, int | float):
                return False, f"{name} = {v!r} is not a number"
            off = _within(float(v), p)
            if off:
                return False, f"{name} = {v:g}, {off}"
        return True, f"{name} = {v!r}"
    text, missing = _source(check, run)
    if text is None:
        return False, missing
    if check.type in ("contains", "not_contains"):
        hay = text.lower() if p["ignore_case"] else text
        hits = [v for v in p["values"] if (v.lower() if p["ignore_case"] else v) in hay]
        if check.type == "contains":
            absent = [v for v in p["values"] if v not in hits]
            return (not absent, f"missing {', '.join(repr(v) for v in absent)}" if absent
                    else f"all {len(hits)} value(s) found")
        return (not hits, f"found {', '.join(repr(v) for v in hits)}" if hits
                else f"none of {len(p['values'])} value(s) found")
    if check.type == "regex":
        n = len(p["pattern"].findall(text))
        lo, hi = p["min_matches"], p.get("max_matches")
        if n < lo:
            return False, f"{n} match(es), need at least {lo}" + ("" if n else f"; text starts {_quote(text)}")
        if hi is not None and n > hi:
            return False, f"{n} match(es), at most {hi} allowed"
        return True, f"{n} match(es)"
    if check.type == "json_valid":
        try:
            json.loads(text)
        except ValueError as e:
            return False, f"not JSON: {e}; text starts {_quote(text)}"
        return True, "valid JSON"
    if check.type == "json_schema":
        from jsonschema import Draft202012Validator

        try:
            data = json.loads(text)
        except ValueError as e:
            return False, f"not JSON: {e}"
        errors = sorted(Draft202012Validator(p["schema"]).iter_errors(data), key=lambda e: list(e.absolute_path))
        if errors:
            where = "/".join(str(x) for x in errors[0].absolute_path) or "(root)"
            return False, f"{len(errors)} schema error(s); at {where}: {errors[0].message[:160]}"
        return True, "valid against the schema"
    if check.type == "json_path":
        return _json_path(check, text)
    if check.type in ("word_count", "line_count"):
        n = len(text.split()) if check.type == "word_count" else sum(1 for ln in text.splitlines() if ln.strip())
        unit = "words" if check.type == "word_count" else "non-blank lines"
        off = _within(float(n), p)
        return (not off, f"{n} {unit}" + (f", {off}" if off else ""))
    if check.type == "similar":
        return _similar(check, text)
    if check.type == "judge":
        if grader is None:
            return False, "no judge model is configured for this run"
        from .grader import GradeError

        try:
            score, why = grader(p["rubric"], text)
        except GradeError as e:
            return False, f"the judge could not grade: {e}"
        ok = score >= p["min_score"]
        return ok, f"score {score} {'>=' if ok else '<'} {p['min_score']}" + (f": {why}" if why else "")
    return False, f"unknown check type {check.type}"  # parse_check admits none
