"""Judging one run against its app.toml: status, agents, files, output lines, budgets."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.manifest import AppManifest
from harness.result import RunResult


@dataclass
class Verdict:
    """The outcome of judging one run: passed, plus every failed check in words."""

    app: str
    repetition: int
    passed: bool
    failures: list[str] = field(default_factory=list)
    files_found: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"app": self.app, "repetition": self.repetition, "passed": self.passed,
                "failures": list(self.failures), "files_found": self.files_found}


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


def judge(manifest: AppManifest, run: RunResult, budget_factor: float = 1.0) -> Verdict:
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
    budget = manifest.runtime_seconds * budget_factor
    if run.wall_s > budget:
        scaled = f" ({manifest.runtime_seconds:g} s x {budget_factor:g})" if budget_factor != 1.0 else ""
        failures.append(f"runtime {run.wall_s:.1f} s is over the budget of {budget:g} s{scaled}")
    cost = float(run.figure("cost_usd", 0.0) or 0.0)
    if cost > manifest.cost_usd:
        failures.append(f"cost ${cost:.4f} is over the budget of ${manifest.cost_usd:.4f}")
    return Verdict(app=run.app, repetition=run.repetition, passed=not failures, failures=failures,
                   files_found=len(present))
