"""The §5.8 result table of one execution, as Python data."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llmspell.workflows.engine import Engine, Run


def _text(run: Run) -> str:
    wf = run.wf
    if wf.type == "parallel":
        return str(run.extra.get("_parallel_text", ""))
    if wf.type == "loop":
        if not run.iterations:
            return ""
        for it in reversed(run.iterations):
            if not it["success"]:
                continue  # the last *completed* iteration
            outs = it["outputs"]
            for step in reversed(wf.steps):
                if step.name in outs:
                    return str(outs[step.name])
        return ""
    for rec in reversed(run.records):
        if rec.get("success") and not rec.get("skipped"):
            return str(rec.get("output", ""))
    return ""


def build_result(engine: Engine, run: Run) -> dict[str, Any]:
    """Assemble the result: success, text, error, outputs, steps, iterations, metadata.extra."""
    wf = run.wf
    ms = int((time.perf_counter() - run.started) * 1000)
    executed = [r for r in run.records if not r.get("skipped")]
    failed = sum(1 for r in executed if not r.get("success"))
    succeeded = sum(1 for r in executed if r.get("success"))
    total = len(run.records) + max(run.skipped - sum(1 for r in run.records if r.get("skipped")), 0)
    success = not run.failed
    kind = wf.type.capitalize()
    status = "completed successfully" if success else "failed"
    summary = (f"{kind} workflow '{wf.name}' {status}. {len(executed)} steps executed. "
               f"Duration: {ms / 1000:.1f}s")
    extra: dict[str, Any] = {
        "workflow_type": wf.type, "workflow_name": wf.name, "workflow_instance_id": wf.id,
        "execution_id": run.execution_id, "workflow_id": run.execution_id, "total_steps": total,
        "successful_steps": succeeded, "failed_steps": failed, "skipped_steps": total - len(executed),
        "success_rate": (100.0 * succeeded / len(executed)) if executed else (100.0 if success else 0.0),
        "summary": summary,
    }
    extra.update({k: v for k, v in run.extra.items() if not k.startswith("_")})
    if run.state_errors:
        extra["state_errors"] = list(run.state_errors)
    metadata = {"execution_time_ms": ms, "extra": extra}
    result: dict[str, Any] = {
        "success": success, "text": _text(run), "outputs": dict(run.outputs), "steps": list(run.records),
        "execution_id": run.execution_id, "media": [], "tool_calls": [], "metadata": metadata,
        "_metadata": metadata,
    }
    if not success:
        result["error"] = run.error or "workflow failed"
    if wf.type == "loop":
        result["iterations"] = list(run.iterations)
    return result
