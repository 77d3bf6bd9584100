"""Replaying a recorded session timeline (§8 Session.replay, §18) and comparing JSON values.

Each recorded hook entry is run again through the hooks registered now and its action compared
with the recorded one; each recorded event is published again (metadata source "replay").
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("llmspell.sessions")

MODES = ("exact", "modified", "simulate", "debug")


@dataclass
class ReplayOptions:
    """`cfg` of Session.replay; `start_from`/`end_at` are 1-based timeline positions (inclusive)."""

    start_from: int = 1
    end_at: int | None = None
    hook_filter: frozenset[str] | None = None
    max_duration_seconds: float | None = None
    include_failed: bool = True
    progress: Callable[[dict[str, Any]], None] | None = None
    mode: str = "exact"
    modifications: list[dict[str, Any]] = field(default_factory=list)


def _failed(entry: dict[str, Any]) -> bool:
    name = str(entry.get("name", ""))
    return name.endswith((".failed", "Error")) or entry.get("action") == "cancel"


def _apply_mods(data: Any, mods: list[dict[str, Any]]) -> Any:
    """Set `value` at each enabled modification's dotted `path` (relative to the entry's data)."""
    import copy

    out = copy.deepcopy(data)
    for m in mods:
        if not m.get("enabled", True) or not isinstance(out, dict):
            continue
        parts = str(m.get("path", "")).split(".")
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {}) if isinstance(node, dict) else node
        if isinstance(node, dict) and parts[-1]:
            node[parts[-1]] = m.get("value")
    return out


def replay_timeline(entries: list[dict[str, Any]], opts: ReplayOptions, *, hooks: Any, events: Any) -> dict[str, Any]:
    """Re-run `entries`; returns {success, steps_replayed, failures, duration_ms, differences}."""
    t0 = time.monotonic()
    start = max(1, opts.start_from)
    end = len(entries) if opts.end_at is None else min(len(entries), opts.end_at)
    chosen = [e for e in entries[start - 1 : end]
              if (opts.include_failed or not _failed(e))
              and (opts.hook_filter is None or e["kind"] != "hook" or e["name"] in opts.hook_filter)]
    replayed = failures = 0
    differences: list[dict[str, Any]] = []
    stopped = None
    for i, e in enumerate(chosen, 1):
        if opts.max_duration_seconds is not None and time.monotonic() - t0 > opts.max_duration_seconds:
            stopped = f"stopped after max_duration_seconds ({opts.max_duration_seconds:g})"
            break
        data = _apply_mods(e.get("data") or {}, opts.modifications) if opts.modifications else (e.get("data") or {})
        try:
            if e["kind"] == "hook":
                if opts.mode != "simulate" and hooks is not None:
                    comp = e.get("component") or ["system", "replay"]
                    out = hooks.run(e["name"], data, component=(str(comp[0]), str(comp[1])))
                    if out.action != e.get("action", "continue"):
                        differences.append({"step": e.get("seq", i), "kind": "hook", "name": e["name"],
                                            "path": f"timeline[{e.get('seq', i)}].action",
                                            "expected": e.get("action"), "actual": out.action,
                                            "description": f"{e['name']}: recorded {e.get('action')}, "
                                                           f"replayed {out.action}"})
            elif e["kind"] == "event" and opts.mode != "simulate" and events is not None:
                events.publish(e["name"], data, correlation_id=e.get("correlation_id"), source="replay")
            replayed += 1
        except Exception as exc:  # noqa: BLE001 - a failing step is counted, the replay goes on
            failures += 1
            differences.append({"step": e.get("seq", i), "kind": e["kind"], "name": e["name"],
                                "path": f"timeline[{e.get('seq', i)}]", "description": f"failed: {exc}"})
            log.warning("replay step %s (%s) failed: %s", e.get("seq", i), e["name"], exc)
        if opts.progress is not None:
            opts.progress({"step": i, "total": len(chosen), "kind": e["kind"], "name": e["name"]})
    result: dict[str, Any] = {"success": failures == 0 and stopped is None, "steps_replayed": replayed,
                              "failures": failures, "duration_ms": int((time.monotonic() - t0) * 1000),
                              "differences": differences, "total_steps": len(chosen)}
    if stopped:
        result["error"] = stopped
    return result


def compare_json(a: Any, b: Any) -> dict[str, Any]:
    """Structural diff: {identical, similarity_score (0-1), summary, differences = [{path, description}]}."""
    diffs: list[dict[str, str]] = []
    total = _walk(a, b, "$", diffs)
    score = 1.0 if total == 0 else max(0.0, 1.0 - len(diffs) / total)
    identical = not diffs
    summary = "identical" if identical else f"{len(diffs)} difference(s) in {total} compared value(s)"
    return {"identical": identical, "similarity_score": float(score), "summary": summary, "differences": diffs}


def _walk(a: Any, b: Any, path: str, diffs: list[dict[str, str]]) -> int:
    if isinstance(a, dict) and isinstance(b, dict):
        n = 0
        for k in sorted(set(a) | set(b), key=str):
            p = f"{path}.{k}"
            if k not in a:
                diffs.append({"path": p, "description": "added"})
                n += 1
            elif k not in b:
                diffs.append({"path": p, "description": "removed"})
                n += 1
            else:
                n += _walk(a[k], b[k], p, diffs)
        return max(n, 1)
    if isinstance(a, list) and isinstance(b, list):
        n = 0
        for i in range(max(len(a), len(b))):
            p = f"{path}[{i + 1}]"
            if i >= len(a):
                diffs.append({"path": p, "description": "added"})
                n += 1
            elif i >= len(b):
                diffs.append({"path": p, "description": "removed"})
                n += 1
            else:
                n += _walk(a[i], b[i], p, diffs)
        return max(n, 1)
    same = type(a) is type(b) and a == b
    if not same and isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool) \
            and not isinstance(b, bool):
        same = a == b
    if not same:
        diffs.append({"path": path, "description": f"changed from {a!r} to {b!r}"})
    return 1
