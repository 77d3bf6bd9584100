"""Judging one run against its app.toml: status, agents, files, output lines, content checks, reply quality, budgets.

A run passes when every declaration holds, every content check passes, and at most 20 % of its
model replies are degenerate (targets.md "Applications"). In replay the runtime budget is judged on
the recorded latency of the exchanges (what the run would take live), when the cassette has it.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmspell.providers.quality import DEGENERATE_LIMIT, Quality

from .checks import CheckResult, Grader, RunView, evaluate
from .manifest import AppManifest
from .result import RunResult


@dataclass
class Timing:
    """Wall time of a run and, on replay, the recorded latency it stands for."""

    wall_s: float
    basis: str = "wall time"
    judged_s: float = 0.0
    replay_latency_s: float = 0.0
    recorded_latency_s: float | None = None
    exchanges: int = 0
    missing_recorded: int = 0
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"wall_s": self.wall_s, "basis": self.basis, "judged_s": round(self.judged_s, 3),
                "replay_latency_s": round(self.replay_latency_s, 3),
                "recorded_latency_s": None if self.recorded_latency_s is None else round(self.recorded_latency_s, 3),
                "exchanges": self.exchanges, "missing_recorded": self.missing_recorded, "note": self.note}


@dataclass
class Verdict:
    """The outcome of judging one run: passed, plus every failed check in words."""

    app: str
    repetition: int
    passed: bool
    failures: list[str] = field(default_factory=list)
    files_found: int = 0
    checks: list[CheckResult] = field(default_factory=list)
    quality: dict[str, Any] = field(default_factory=dict)
    timing: dict[str, Any] = field(default_factory=dict)

    @property
    def checks_passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {"app": self.app, "repetition": self.repetition, "passed": self.passed,
                "failures": list(self.failures), "files_found": self.files_found,
                "checks": [c.to_dict() for c in self.checks], "quality": dict(self.quality),
                "timing": dict(self.timing)}

    @classmethod
    def from_dict(cls, v: dict[str, Any]) -> Verdict:
        return cls(app=v["app"], repetition=v["repetition"], passed=v["passed"], failures=list(v["failures"]),
                   files_found=v.get("files_found", 0),
                   checks=[CheckResult.from_dict(c) for c in v.get("checks", [])],
                   quality=dict(v.get("quality") or {}), timing=dict(v.get("timing") or {}))


def _non_empty_files(root: Path) -> list[str]:
    if not root.is_dir():
        return []
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and p.stat().st_size > 0)


def file_failures(manifest: AppManifest, out_dir: Path, present: list[str] | None = None) -> list[str]:
    """What is wrong with the files a run left in `out_dir` (declared files, globs, minimum count)."""
    present = _non_empty_files(out_dir) if present is None else present
    problems: list[str] = []
    for pattern in manifest.files:
        if any(ch in pattern for ch in "*?["):
            if not fnmatch.filter(present, pattern):
                problems.append(f"no non-empty file matches '{pattern}' in {out_dir}")
            continue
        target = out_dir / pattern
        if not target.is_file():
            problems.append(f"file '{pattern}' was not written in {out_dir}")
        elif target.stat().st_size == 0:
            problems.append(f"file '{pattern}' is empty")
    if manifest.min_files and len(present) < manifest.min_files:
        problems.append(f"{len(present)} non-empty files written, expected at least {manifest.min_files}")
    return problems


def output_failures(manifest: AppManifest, stdout: str) -> list[str]:
    """The declared output lines that the run did not print."""
    lines = stdout.splitlines()
    return [f"output has no line containing '{want}'" for want in manifest.output
            if not any(want in line for line in lines)]


def timing(run: RunResult) -> Timing:
    """The run's timing; on replay, the wall time with replayed latencies swapped for the recorded ones."""
    t = Timing(wall_s=run.wall_s, judged_s=run.wall_s)
    hits = [ex for ex in run.figure("exchanges", []) or [] if ex.get("traffic") == "HIT"]
    if run.traffic != "replay" or not hits:
        return t
    t.exchanges = len(hits)
    t.replay_latency_s = sum(float(ex.get("latency_ms") or 0.0) for ex in hits) / 1000.0
    recorded = [ex.get("recorded_latency_ms") for ex in hits]
    t.missing_recorded = sum(1 for r in recorded if r is None)
    if t.missing_recorded:
        t.basis = "replay wall time"
        t.note = (f"recorded latency: not in cassette for {t.missing_recorded} of {len(hits)} exchanges "
                  "(re-record to judge the budget on it)")
        return t
    t.recorded_latency_s = sum(float(r or 0.0) for r in recorded) / 1000.0
    sources = sorted({str(ex.get("recorded_latency_source") or "") for ex in hits})
    t.basis = "recorded latency" + ("" if sources == ["cassette"] else f" ({', '.join(sources)})")
    t.judged_s = max(0.0, run.wall_s - t.replay_latency_s) + t.recorded_latency_s
    return t


def quality_failures(q: Quality) -> list[str]:
    """The 20 % rule of targets.md, in words."""
    if q.acceptable:
        return []
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(q.by_kind.items()) if k != "ok")
    return [f"{q.degenerate} of {q.exchanges} model replies are degenerate ({100 * q.degenerate_share:.0f} %: "
            f"{kinds}), over the {100 * DEGENERATE_LIMIT:.0f} % limit"]


def judge(manifest: AppManifest, run: RunResult, budget_factor: float = 1.0, grader: Grader | None = None) -> Verdict:
    """Check one run against every declaration of its manifest (runtime budget scaled by `budget_factor`)."""
    failures: list[str] = []
    if run.status != "ok":
        what = "a cassette miss" if run.cassette_miss else run.error
        failures.append(f"run did not succeed: {what}")
    out_dir = Path(run.output_dir)
    present = _non_empty_files(out_dir)
    if run.status == "ok":
        if "agents_created" not in run.figures:
            failures.append("the kernel reported no figures (execute_reply metadata 'llmspell' is missing)")
        elif int(run.figure("agents_created")) != manifest.agents:
            failures.append(f"{run.figure('agents_created')} agents created, app.toml declares {manifest.agents}")
        failures += file_failures(manifest, out_dir, present)
        failures += output_failures(manifest, run.stdout)
    view = RunView(stdout=run.stdout, output_dir=out_dir, metrics=dict(run.figure("metrics", {}) or {}))
    results: list[CheckResult] = []
    for check in manifest.checks:
        if check.type == "judge" and run.status != "ok":
            results.append(CheckResult(check.name, check.type, check.on, False,
                                       "not graded: the run did not succeed", check.why))
            continue
        results.append(evaluate(check, view, grader))
    failures += [f"check '{c.name}' failed: {c.reason}" for c in results if not c.passed]
    q = Quality.from_dict(run.figure("quality", None))
    if "quality" not in run.figures and run.status == "ok":
        failures.append("the kernel reported no reply quality (execute_reply metadata 'llmspell.quality')")
    failures += quality_failures(q)
    t = timing(run)
    budget = manifest.runtime_seconds * budget_factor
    if t.judged_s > budget:
        scaled = f" ({manifest.runtime_seconds:g} s x {budget_factor:g})" if budget_factor != 1.0 else ""
        what = "runtime" if t.basis == "wall time" else f"runtime on {t.basis}"
        failures.append(f"{what} {t.judged_s:.1f} s is over the budget of {budget:g} s{scaled}")
    cost = float(run.figure("cost_usd", 0.0) or 0.0)
    if cost > manifest.cost_usd:
        failures.append(f"cost ${cost:.4f} is over the budget of ${manifest.cost_usd:.4f}")
    return Verdict(app=run.app, repetition=run.repetition, passed=not failures, failures=failures,
                   files_found=len(present), checks=results,
                   quality={**q.to_dict(), "degenerate_limit": DEGENERATE_LIMIT}, timing=t.to_dict())
