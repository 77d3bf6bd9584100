"""The four workflow kinds (§5.6): sequential, parallel, conditional and loop bodies."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from llmspell.workflows.model import Branch, Step, StepFailed, WorkflowConfigError
from llmspell.workflows.resolve import Scope

if TYPE_CHECKING:
    from llmspell.workflows.engine import Engine, Run


async def run_body(engine: Engine, run: Run) -> None:
    """Run the workflow's steps according to its type."""
    kind = run.wf.type
    if kind == "parallel":
        await _parallel(engine, run)
    elif kind == "conditional":
        await _conditional(engine, run)
    elif kind == "loop":
        await _loop(engine, run)
    else:
        await run_steps(engine, run, run.wf.steps, _scope(run))


def _scope(run: Run, outputs: dict[str, str] | None = None, loop: dict[str, Any] | None = None) -> Scope:
    return Scope(run.inp, run.outputs if outputs is None else outputs, run.wf.shared_data, loop or {})


def _fail_fast(run: Run) -> bool:
    return run.wf.error_strategy != "continue"


async def run_steps(engine: Engine, run: Run, steps: list[Step], scope: Scope, branch: str | None = None,
                    iteration: int | None = None) -> bool:
    """Run steps in order; False when a failure stopped them (fail_fast / retry).

    Consecutive steps that need no I/O (Lua functions, sync tools) run as one span on the Lua thread.
    """
    ok = True
    i, n = 0, len(steps)
    while i < n:
        j = i
        while j < n and engine.runs_here(steps[j]):
            j += 1
        if j > i:
            span_ok, stopped = await engine.run_span(run, steps, i, j, scope, branch, iteration)
            ok = ok and span_ok
            if stopped:
                return False
            i = j
            continue
        step = steps[i]
        outcome = await engine.run_step(run, step, scope, len(run.records) + 1, branch, iteration,
                                        transition_into(engine, steps, i))
        step_ok, stopped = settle(run, steps, i, outcome)
        ok = ok and step_ok
        if stopped:
            return False
        i += 1
    return ok


def transition_into(engine: Engine, steps: list[Step], i: int) -> tuple[str, str] | None:
    """(previous step, this step) when WorkflowStageTransition hooks will want it, else None."""
    if i > 0 and engine.fx.hooks_active("WorkflowStageTransition"):
        return steps[i - 1].name, steps[i].name
    return None


def settle(run: Run, steps: list[Step], i: int, outcome: Any) -> tuple[bool, bool]:
    """After steps[i] ran: (it counts as succeeded, the steps stop here)."""
    step = steps[i]
    if outcome.success or step.continue_on_error:
        return True, False
    run.fail(step.name, outcome.error or "step failed")
    if _fail_fast(run):
        run.skipped += len(steps) - i - 1
        return False, True
    return False, False


# ---------------------------------------------------------------------------- parallel
async def _parallel(engine: Engine, run: Run) -> None:
    wf = run.wf
    limit = max(1, wf.max_concurrency)
    sem = asyncio.Semaphore(limit)
    last: dict[int, str] = {}
    results: dict[int, bool] = {}

    async def branch_task(i: int, b: Branch) -> bool:
        async with sem:
            scope = _scope(run, outputs={})
            ok = await run_steps(engine, run, b.steps, scope, branch=b.label)
            outs = [scope.outputs[s.name] for s in b.steps if s.name in scope.outputs]
            if outs:
                last[i] = outs[-1]
            results[i] = ok
            return ok

    tasks = [asyncio.create_task(branch_task(i, b)) for i, b in enumerate(wf.branches)]
    stopped = False
    pending: set[asyncio.Task[bool]] = set(tasks)
    try:
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                if t.cancelled():
                    continue
                exc = t.exception()
                if exc is not None:
                    raise exc
                if not t.result() and _fail_fast(run) and pending:
                    stopped = True
            if stopped:
                break
    finally:
        for t in pending:
            t.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
    failed = sum(1 for ok in results.values() if not ok)
    succeeded = sum(1 for ok in results.values() if ok)
    run.extra.update(total_branches=len(wf.branches), successful_branches=succeeded,
                     failed_branches=failed + (len(wf.branches) - len(results) if stopped else 0),
                     stopped_early=stopped, max_concurrency=limit, fail_fast=_fail_fast(run))
    run.extra["_parallel_text"] = "\n\n".join(last[i] for i in sorted(last))


# ---------------------------------------------------------------------------- conditional
async def _conditional(engine: Engine, run: Run) -> None:
    wf = run.wf
    scope = _scope(run)
    run.extra.update(total_branches=len(wf.branches), matched_branches=0, executed_branches=0,
                     selected_branch=None, execute_all_matching=False, short_circuit_evaluation=True)
    if wf.steps:
        ok = await run_steps(engine, run, wf.steps, scope)
        if not ok and _fail_fast(run):
            return

    for b in wf.branches:
        if not b.steps:
            continue
        try:
            matched = await engine.check(run, b.condition, scope)
        except StepFailed as e:
            run.fail(None, str(e))
            return
        if not matched:
            continue
        run.extra.update(matched_branches=1, executed_branches=1, selected_branch=b.label)
        await run_steps(engine, run, b.steps, scope, branch=b.label)
        return


# ---------------------------------------------------------------------------- loop
def _values(run: Run, cap: int) -> tuple[Iterator[Any] | None, int | None]:
    """The iterator values and the natural length (None for while loops)."""
    spec = run.wf.loop
    if spec.iterator == "collection":
        return iter(spec.collection), len(spec.collection)
    if spec.iterator == "range":
        start, end, step = spec.start, spec.end, spec.step
        n = max(0, -(-(end - start) // step)) if step > 0 else max(0, -(-(start - end) // -step))
        n = int(n)

        def gen() -> Iterator[Any]:
            v = start
            for _ in range(n):
                yield v
                v += step

        return gen(), n
    return None, None


async def _loop(engine: Engine, run: Run) -> None:

    wf = run.wf
    spec = wf.loop
    cap = engine.settings.max_loop_iterations
    values, natural = _values(run, cap)
    if spec.max_iterations is not None:
        max_iter = spec.max_iterations
    else:
        max_iter = natural if natural is not None else 100
    limit = min(max_iter, natural) if natural is not None else max_iter
    if limit > cap:
        raise WorkflowConfigError(
            f"workflow '{wf.name}': loop of {limit} iterations exceeds the hard cap of {cap} "
            "([workflows] max_loop_iterations)")
    extra: dict[str, Any] = {"iterator_type": spec.iterator, "max_iterations": max_iter,
                             "continue_on_error": not _fail_fast(run)}
    if spec.iterator == "collection":
        extra["collection_size"] = len(spec.collection)
    elif spec.iterator == "range":
        extra.update(range_start=spec.start, range_end=spec.end, range_step=spec.step)
    else:
        extra["condition"] = spec.while_cond.describe() if spec.while_cond else None
    run.extra.update(extra, total_iterations=0, completed_iterations=0, break_reason="completed")
    reason = "completed"
    counter = itertools.count(1)
    try:
        while True:
            i = next(counter)
            run.check_deadline()
            if values is not None:
                try:
                    value = next(values)
                except StopIteration:
                    break
            else:
                value = i
            if i > max_iter:
                reason = "max_iterations"
                break
            loop_vars = {"loop_value": value, "loop_index": i, "iteration": i}
            scope = _scope(run, loop=loop_vars)
            last = {"last_output": run.last_output}
            try:
                if spec.iterator == "while_condition" and not await engine.check(run, spec.while_cond, scope, last):
                    break
                if spec.loop_condition is not None and not await engine.check(run, spec.loop_condition, scope, last):
                    reason = "condition"
                    break
            except StepFailed as e:
                run.fail(None, str(e))
                reason = "error"
                break
            run.extra["total_iterations"] = i
            first = len(run.records)
            ok = await run_steps(engine, run, wf.steps, scope, iteration=i)
            iter_outputs = {r["name"]: r["output"] for r in run.records[first:]
                            if r.get("success") and not r.get("skipped")}
            run.iterations.append({"index": i, "value": value, "success": ok, "outputs": iter_outputs})
            if ok:
                run.extra["completed_iterations"] += 1
            elif _fail_fast(run):
                reason = "error"
                break
            try:
                stop = False
                for bc in spec.break_conditions:
                    if await engine.check(run, bc, scope, {"last_output": run.last_output}):
                        stop = True
                        break
            except StepFailed as e:
                run.fail(None, str(e))
                reason = "error"
                break
            if stop:
                reason = "condition"
                break
    finally:
        run.extra["break_reason"] = reason
        run.extra["aggregated_results_count"] = len(run.iterations)

