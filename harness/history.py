"""Run history and regressions: every harness run appends a summary to reports/history.jsonl; the report
compares it with the previous run of the same traffic mode and with a committed baseline (--apps-compare).

A summary holds per app: runs passed, mean cost and tokens, degenerate share, and which checks
passed in every run. A regression is a check that passed before and fails now, a lower pass rate,
or a rise in cost, tokens or degenerate share beyond small tolerances.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HISTORY_FILE = "history.jsonl"
#: Relative rise in cost or tokens that counts as a regression (noise below it is ignored).
RISE_TOLERANCE = 0.10
#: Absolute rise in degenerate share that counts as a regression.
SHARE_TOLERANCE = 0.02


@dataclass
class Regression:
    """One thing that got worse, against which reference."""

    app: str
    what: str
    before: Any
    after: Any
    against: str

    @property
    def message(self) -> str:
        return f"{self.app}: {self.what}: {self.before} -> {self.after} (vs {self.against})"

    def to_dict(self) -> dict[str, Any]:
        return {"app": self.app, "what": self.what, "before": self.before, "after": self.after,
                "against": self.against, "message": self.message}


def summary(results: dict[str, Any]) -> dict[str, Any]:
    """The history record of one harness run, from its results.json data."""
    apps: dict[str, Any] = {}
    for row in results.get("apps", []):
        q = row.get("quality") or {}
        apps[row["app"]] = {
            "passed": row["passed"], "total": row["total"],
            "mean_cost_usd": round(float(row.get("mean_cost_usd", 0.0)), 8),
            "mean_tokens": round(float(row.get("mean_input_tokens", 0.0)) + float(row.get("mean_output_tokens", 0.0)), 1),
            "degenerate_share": q.get("degenerate_share", 0.0),
            "checks": {c["name"]: c["passed_runs"] == c["runs"] for c in row.get("checks", [])},
        }
    return {"generated_at": results.get("generated_at"), "traffic": results.get("traffic"),
            "profile": results.get("profile"), "repetitions": results.get("repetitions"),
            "passed": results.get("passed"), "apps": apps}


def as_summary(data: dict[str, Any]) -> dict[str, Any]:
    """A baseline file may hold a history record or a whole results.json; either becomes a record."""
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    apps = data.get("apps")
    if isinstance(apps, list):
        return summary(data)
    if isinstance(apps, dict):
        return data
    raise ValueError("expected a harness history record or results.json (no 'apps')")


def load_baseline(path: Path) -> dict[str, Any]:
    """Read a baseline file; ValueError naming the file when it cannot be used."""
    try:
        return as_summary(json.loads(path.read_text(encoding="utf-8")))
    except OSError as e:
        raise ValueError(f"{path}: cannot read the baseline: {e.strerror or e}") from None
    except ValueError as e:
        raise ValueError(f"{path}: not a usable baseline: {e}") from None


def previous_run(history: Path, traffic: str) -> dict[str, Any] | None:
    """The last record of this traffic mode in the history file (None when there is none)."""
    if not history.is_file():
        return None
    last = None
    for line in history.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue  # a torn line from an interrupted write loses only itself
        if isinstance(rec, dict) and rec.get("traffic") == traffic and isinstance(rec.get("apps"), dict):
            last = rec
    return last


def append(history: Path, record: dict[str, Any]) -> None:
    """Add one record to the history file (one JSON object per line)."""
    history.parent.mkdir(parents=True, exist_ok=True)
    with history.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")


def _rose(before: float, after: float, tolerance: float = RISE_TOLERANCE) -> bool:
    if before <= 0:
        return after > 1e-9  # from nothing to something
    return after > before * (1 + tolerance)


def compare(current: dict[str, Any], reference: dict[str, Any] | None, against: str) -> list[Regression]:
    """What got worse in `current` compared with `reference` (apps present in both)."""
    if not reference:
        return []
    out: list[Regression] = []
    for app, now in sorted(current.get("apps", {}).items()):
        before = reference.get("apps", {}).get(app)
        if not before:
            continue
        for name, ok in sorted(now.get("checks", {}).items()):
            if before.get("checks", {}).get(name) is True and not ok:
                out.append(Regression(app, f"check '{name}' newly fails", "passed", "failed", against))
        rate_b = before["passed"] / before["total"] if before.get("total") else 0.0
        rate_a = now["passed"] / now["total"] if now.get("total") else 0.0
        if rate_a < rate_b - 1e-9:
            out.append(Regression(app, "pass rate fell", f"{before['passed']}/{before['total']}",
                                  f"{now['passed']}/{now['total']}", against))
        if _rose(float(before.get("mean_cost_usd", 0.0)), float(now.get("mean_cost_usd", 0.0))):
            out.append(Regression(app, "cost rose", f"${before['mean_cost_usd']:.5f}", f"${now['mean_cost_usd']:.5f}",
                                  against))
        if _rose(float(before.get("mean_tokens", 0.0)), float(now.get("mean_tokens", 0.0))):
            out.append(Regression(app, "tokens rose", f"{before['mean_tokens']:.0f}", f"{now['mean_tokens']:.0f}",
                                  against))
        share_b, share_a = float(before.get("degenerate_share", 0.0)), float(now.get("degenerate_share", 0.0))
        if share_a > share_b + SHARE_TOLERANCE:
            out.append(Regression(app, "degenerate share rose", f"{100 * share_b:.0f} %", f"{100 * share_a:.0f} %",
                                  against))
    return out
