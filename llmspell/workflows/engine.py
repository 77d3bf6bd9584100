"""The workflow engine: one execution of a WorkflowDef as a coroutine on the global IO loop.

Steps run as coroutines (agent and tool I/O of parallel branches overlap). Lua code (function
steps, condition functions, callbacks) runs on the Lua thread through the `LuaCalls` adapter.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from llmspell.runtime.io import run_inline
from llmspell.script.placeholders import render_value, to_json
from llmspell.settings import WorkflowSettings
from llmspell.workflows.effects import Effects, HookResult
from llmspell.workflows.kinds import run_body, settle, transition_into
from llmspell.workflows.model import MAX_DEPTH, Condition, Step, StepFailed, WorkflowConfigError, WorkflowDef
from llmspell.workflows.resolve import Scope
from llmspell.workflows.results import build_result

if TYPE_CHECKING:
    from llmspell.script.services import Services

log = logging.getLogger("llmspell.workflows")


class LuaCallError(Exception):
    """A Lua callback raised; the message is the Lua error string."""


class LuaCalls(Protocol):
    """How the engine reaches Lua: every call runs on the Lua thread."""

    async def call(self, fn: Any, ctx: dict[str, Any], wf: WorkflowDef, deadline: float | None = None) -> Any:
        """Call `fn(ctx)`; return its first result as Python data.

        Raises LuaCallError when the Lua code raises (also when it runs past `deadline`, a monotonic
        time), LookupError when `fn` names no global function.
        """
        ...

    def call_here(self, fn: Any, ctx: dict[str, Any], wf: WorkflowDef, deadline: float | None = None) -> Any:
        """`call` for code already running on the Lua thread."""
        ...

    def submit(self, fn: Callable[..., Any], *args: Any) -> concurrent.futures.Future[Any]:
        """Queue a Python callable for the Lua thread (the future is resolved from that thread)."""
        ...

    def interrupted(self) -> bool:
        """Whether the script was interrupted (checked between steps on the Lua thread)."""
        ...

    def sleep_here(self, seconds: float) -> None:
        """Sleep on the Lua thread, waking early for an interrupt."""
        ...


#: `[workflows]` settings, parsed once by config (`config.settings.workflows`).
Settings = WorkflowSettings


@dataclass
class StepOutcome:
    """What one step produced."""

    success: bool
    output: str = ""
    error: str | None = None
    data: Any = None
    tool_success: bool | None = None
    skipped: bool = False
    child_execution_id: str | None = None
    agent_meta: dict[str, Any] | None = None


@dataclass
class Run:
    """Mutable state of one execution."""

    wf: WorkflowDef
    execution_id: str
    inp: dict[str, Any]
    depth: int
    started: float = field(default_factory=time.perf_counter)
    outputs: dict[str, str] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    records: list[dict[str, Any]] = field(default_factory=list)
    iterations: list[dict[str, Any]] = field(default_factory=list)
    state_errors: list[str] = field(default_factory=list)
    skipped: int = 0
    failed: bool = False
    error: str | None = None
    failed_step: str | None = None
    last_output: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    timed_out: bool = False
    deadline: float | None = None

    def check_deadline(self) -> None:
        """Raise TimeoutError once the whole-workflow deadline (own or a parent's) has passed.

        Backs up the asyncio timeout: a cancellation swallowed by a callee can never keep a loop going.
        """
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise TimeoutError

    def fail(self, step: str | None, error: str) -> None:
        self.failed = True
        if self.error is None:
            self.error = error
            self.failed_step = step

    def shared(self, loop: dict[str, Any] | None = None) -> dict[str, Any]:
        """Shared data for conditions: set_shared_data, input keys, step outputs, loop vars."""
        shared: dict[str, Any] = dict(self.wf.shared_data)
        shared.update(self.inp)
        shared.update(self.outputs)
        if loop:
            shared.update(loop)
        return shared


AgentLookup = Callable[[str], Any]


@dataclass
class Engine:
    """Executes workflows; one per ScriptRuntime."""

    services: Services | None
    calls: LuaCalls
    lookup_workflow: Callable[[Any], WorkflowDef | None]
    settings: Settings = field(default_factory=Settings)
    warn: Callable[[str], None] = lambda msg: None
    debug: bool = False
    default_error_handler: Any = None

    def __post_init__(self) -> None:
        self.fx = Effects(self.services)
        self._sync_tools: dict[str, bool] = {}
        # session retention of the §5.9 keys: what each execution wrote, and the finished ones in order
        self._state_keys: dict[str, dict[str, None]] = {}
        self._finished: deque[str] = deque()
        self._keys_lock = threading.Lock()

    # ================================================================== execute
    async def execute(self, wf: WorkflowDef, inp: dict[str, Any], depth: int = 0,
                      parent_deadline: float | None = None) -> dict[str, Any]:
        """Run one execution and return the §5.8 result as Python data (raises WorkflowConfigError)."""
        run, base = self._begin(wf, inp, depth)
        await self._start(run, base)
        try:
            result = await self._body(run, parent_deadline)
            await self._finish(run, result, base)
        finally:
            self._retire(run.execution_id)
        return result

    def execute_here(self, wf: WorkflowDef, inp: dict[str, Any],
                     block_on: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
        """`execute` for a caller on the Lua thread (`wf:execute`): the start and finish (hooks, callbacks)
        run right here, only the body goes to the IO loop through `block_on`; fired from there, each
        hook point and callback was a thread hop of its own."""
        run, base = self._begin(wf, inp, 0)
        run_inline(self._start(run, base), "a workflow start step on the Lua thread")
        try:
            result = block_on(self._body(run, None))
            run_inline(self._finish(run, result, base), "a workflow finish step on the Lua thread")
        finally:
            self._retire(run.execution_id)
        return result

    def _begin(self, wf: WorkflowDef, inp: dict[str, Any], depth: int) -> tuple[Run, dict[str, Any]]:
        if depth > MAX_DEPTH:
            raise WorkflowConfigError(f"workflow '{wf.name}': nesting deeper than {MAX_DEPTH} levels")
        run = Run(wf, str(uuid.uuid4()), dict(inp), depth)
        wf.last_execution_id = run.execution_id
        self.fx.count("workflows_run")
        return run, {"workflow_id": wf.id, "execution_id": run.execution_id, "name": wf.name}

    async def _start(self, run: Run, base: dict[str, Any]) -> None:
        wf = run.wf
        hr = await self.fx.hook("BeforeWorkflowStart", {**base, "type": wf.type, "input": run.inp}, wf.name)
        if hr.modified and isinstance(hr.data, dict) and isinstance(hr.data.get("input"), dict):
            run.inp = dict(hr.data["input"])
        elif hr.cancel:
            run.fail(None, f"cancelled by hook: {hr.reason or hr.action}")
        await self._callbacks(wf, "before", {**_ids(run), "input": run.inp})
        self.fx.publish("workflow.started", base)

    async def _body(self, run: Run, parent_deadline: float | None) -> dict[str, Any]:

        wf = run.wf
        timeout_ms = wf.timeout_ms if wf.timeout_ms is not None else (self.settings.timeout_ms or None)
        own = time.monotonic() + timeout_ms / 1000.0 if timeout_ms else None
        run.deadline = min((d for d in (own, parent_deadline) if d is not None), default=None)
        if not run.failed:
            try:
                async with asyncio.timeout(timeout_ms / 1000.0 if timeout_ms else None):
                    await run_body(self, run)
            except TimeoutError:
                if own is None or run.deadline != own:
                    raise  # an enclosing workflow's deadline: that workflow reports the timeout
                run.timed_out = True
                run.fail(run.failed_step, f"workflow '{wf.name}' timed out after {timeout_ms} ms")
                if wf.type == "loop":
                    run.extra["break_reason"] = "timeout"
        return build_result(self, run)

    # ================================================================== State key retention
    def _save(self, run: Run, key: str, value: Any) -> None:
        """One §5.9 State write, remembered for the retention rule (Settings.state_retention)."""
        if self.settings.state_retention == "session":
            with self._keys_lock:
                self._state_keys.setdefault(run.execution_id, {})[key] = None
        self.fx.save(key, value, run.state_errors)

    def _retire(self, execution_id: str) -> None:
        """An execution finished: past `state_max_executions` finished ones, the oldest loses its keys."""
        drop: list[dict[str, None]] = []
        with self._keys_lock:
            if execution_id not in self._state_keys:
                return
            self._finished.append(execution_id)
            while len(self._finished) > self.settings.state_max_executions:
                drop.append(self._state_keys.pop(self._finished.popleft(), {}))
        for keys in drop:
            for k in keys:
                self.fx.delete(k)

    def release_state(self) -> int:
        """Delete the §5.9 keys this runtime still keeps (its end under session retention); how many."""
        with self._keys_lock:
            keys = [k for ks in self._state_keys.values() for k in ks]
            self._state_keys.clear()
            self._finished.clear()
        return sum(1 for k in keys if self.fx.delete(k))

    def kept_executions(self) -> int:
        """How many executions still have §5.9 keys held by the retention rule."""
        with self._keys_lock:
            return len(self._state_keys)

    async def _finish(self, run: Run, result: dict[str, Any], base: dict[str, Any]) -> None:
        wf = run.wf
        ms = result["metadata"]["execution_time_ms"]
        m = wf.metrics
        m.executions += 1
        m.total_ms += ms
        m.last_ms = ms
        wf.last_summary = result["metadata"]["extra"]["summary"]
        if result["success"]:
            m.successes += 1
            self.fx.publish("workflow.completed", {**base, "duration_ms": ms})
            await self.fx.hook("AfterWorkflowComplete", {**_ids(run), "success": True}, wf.name)
        else:
            m.failures += 1
            err = result.get("error") or "failed"
            step = run.failed_step or ""
            self.fx.publish("workflow.failed", {**base, "duration_ms": ms, "error": err, "step": step or None})
            await self.fx.hook("WorkflowError", {**_ids(run), "success": False, "error": err}, wf.name)
            self.warn(f"workflow '{wf.name}' failed at step '{step}': {err}")
            await self._callbacks(wf, "error", {**_ids(run), "input": run.inp, "error": err, "step": step})
            if self.default_error_handler is not None:
                await self._call_quietly(self.default_error_handler, wf, {
                    "workflow_id": wf.id, "execution_id": run.execution_id, "name": wf.name, "step": step,
                    "error": err})
        await self._callbacks(wf, "after", {**_ids(run), "input": run.inp, "result": result})

    async def _callbacks(self, wf: WorkflowDef, kind: str, ctx: dict[str, Any]) -> None:
        for fn in wf.callbacks.get(kind, ()):
            await self._call_quietly(fn, wf, ctx)

    async def _call_quietly(self, fn: Any, wf: WorkflowDef, ctx: dict[str, Any]) -> None:
        try:
            await self.calls.call(fn, ctx, wf)
        except LuaCallError as e:
            log.warning("workflow '%s': callback failed: %s", wf.name, e)

    # ================================================================== steps
    def runs_here(self, step: Step) -> bool:
        """Whether a step needs no I/O (a Lua function or a sync tool), so it can run on the Lua thread."""
        if step.type == "custom":
            return True
        if step.type != "tool":
            return False
        name = str(step.tool)
        known = self._sync_tools.get(name)
        if known is None:
            known = self._sync_tools[name] = bool(_tool_invoker(self.services).runs_inline(name))
        return known

    async def run_span(self, run: Run, steps: list[Step], lo: int, hi: int, scope: Scope, branch: str | None,
                       iteration: int | None) -> tuple[bool, bool]:
        """Run steps[lo:hi] (all `runs_here`) on the Lua thread in one hop: (all succeeded, stopped early).

        One hop per span instead of one per step or hook point; between steps the span honours
        cancellation of the awaiting task, script interrupts and the workflow deadline.
        """
        stop = threading.Event()
        fut = self.calls.submit(self._span_here, run, steps, lo, hi, scope, branch, iteration, stop)
        try:
            result = await asyncio.wrap_future(fut)
        except asyncio.CancelledError:
            stop.set()
            if not fut.cancel():
                with contextlib.suppress(BaseException):  # let the step in progress finish before unwinding
                    await asyncio.wrap_future(fut)
            raise
        if result is None:
            raise asyncio.CancelledError
        return result  # type: ignore[no-any-return]

    def _span_here(self, run: Run, steps: list[Step], lo: int, hi: int, scope: Scope, branch: str | None,
                   iteration: int | None, stop: threading.Event) -> tuple[bool, bool] | None:

        ok = True
        for i in range(lo, hi):
            if stop.is_set() or self.calls.interrupted():
                return None
            step = steps[i]
            transition = transition_into(self, steps, i)
            base, record = self._step_begin(run, step, branch, iteration)
            t0 = time.perf_counter()
            try:
                outcome = self._attempts_here(run, step, scope, len(run.records) + 1, transition)
            except TimeoutError:
                self._step_aborted(run, record, "workflow timed out", t0)
                raise
            self._step_end(run, step, scope, base, record, outcome, t0, iteration)
            step_ok, stopped = settle(run, steps, i, outcome)
            ok = ok and step_ok
            if stopped:
                return ok, True
        return ok, False

    async def run_step(self, run: Run, step: Step, scope: Scope, index: int,
                       branch: str | None = None, iteration: int | None = None,
                       transition: tuple[str, str] | None = None) -> StepOutcome:
        """Run one step with hooks, events, retries and its timeout; record it; write its outputs."""
        base, record = self._step_begin(run, step, branch, iteration)
        t0 = time.perf_counter()
        try:
            outcome = await self._attempts(run, step, scope, index, transition)
        except (asyncio.CancelledError, TimeoutError) as e:
            self._step_aborted(run, record, "cancelled" if isinstance(e, asyncio.CancelledError)
                               else "workflow timed out", t0)
            raise
        self._step_end(run, step, scope, base, record, outcome, t0, iteration)
        return outcome

    def _step_begin(self, run: Run, step: Step, branch: str | None,
                    iteration: int | None) -> tuple[dict[str, Any], dict[str, Any]]:
        """Check the deadline, publish workflow.step.started; the event base and the step's record."""
        wf = run.wf
        base = {"workflow_id": wf.id, "execution_id": run.execution_id, "name": wf.name, "step": step.name}
        record: dict[str, Any] = {"name": step.name, "type": step.type, **step.target_label()}
        if branch is not None:
            record["branch"] = branch
        if iteration is not None:
            record["iteration"] = iteration
        run.check_deadline()
        self.fx.publish("workflow.step.started", base)
        return base, record

    @staticmethod
    def _step_aborted(run: Run, record: dict[str, Any], why: str, t0: float) -> None:
        record.update(success=False, skipped=True, output="", error=why,
                      duration_ms=int((time.perf_counter() - t0) * 1000))
        run.records.append(record)
        run.skipped += 1

    def _step_end(self, run: Run, step: Step, scope: Scope, base: dict[str, Any], record: dict[str, Any],
                  outcome: StepOutcome, t0: float, iteration: int | None) -> None:
        """Record the step, keep its output, write its State keys, publish completed/failed."""
        wf = run.wf
        ms = int((time.perf_counter() - t0) * 1000)
        record.update(success=outcome.success, output=outcome.output, duration_ms=ms)
        if outcome.error is not None and not outcome.success:
            record["error"] = outcome.error
        if outcome.skipped:
            record["skipped"] = True
            run.skipped += 1
        if outcome.tool_success is not None:
            record["tool_success"] = outcome.tool_success
        if outcome.data is not None:
            record["data"] = outcome.data
        if outcome.child_execution_id:
            record["execution_id"] = outcome.child_execution_id
        run.records.append(record)
        if outcome.success and not outcome.skipped:
            if step.name in run.outputs and step.name in scope.outputs and self.debug:
                log.debug("workflow '%s': step '%s' ran again; the later output wins", wf.name, step.name)
            scope.outputs[step.name] = outcome.output
            run.outputs[step.name] = outcome.output
            if outcome.data is not None:
                run.data[step.name] = outcome.data
            run.last_output = outcome.output
            self._write_state(run, step, outcome, ms, iteration)
            self.fx.publish("workflow.step.completed", {**base, "duration_ms": ms})
        elif not outcome.success:
            self.fx.publish("workflow.step.failed", {**base, "duration_ms": ms, "error": outcome.error})
        if self.debug:
            log.debug("workflow '%s' step '%s' -> %r", wf.name, step.name, outcome.output[:500])

    def _write_state(self, run: Run, step: Step, outcome: StepOutcome, ms: int, iteration: int | None) -> None:
        prefix = f"workflow:{run.execution_id}:"
        self._save(run, f"{prefix}{step.name}", outcome.output)
        self._save(run, f"{prefix}step:{step.name}:output", outcome.output)
        if step.type == "agent" and step.agent_name:
            self._save(run, f"{prefix}agent:{step.agent_name}:output", outcome.output)
            meta = {"step": step.name, "duration_ms": ms, **(outcome.agent_meta or {})}
            self._save(run, f"{prefix}agent:{step.agent_name}:metadata", meta)
        if iteration is not None:
            self._save(run, f"{prefix}iteration:{iteration}:{step.name}", outcome.output)

    def _retry_plan(self, run: Run, step: Step) -> tuple[int, float]:
        """(how many retries a failed step gets, the first delay in seconds; it doubles each time)."""
        retries = max(step.retry_count, 0)
        if run.wf.error_strategy == "retry":
            retries = max(retries, self.settings.retry_attempts)
        return retries, max(step.retry_delay_ms, 0) / 1000.0

    async def _attempts(self, run: Run, step: Step, scope: Scope, index: int,
                        transition: tuple[str, str] | None) -> StepOutcome:
        retries, delay = self._retry_plan(run, step)
        attempt = 0
        while True:
            outcome = await self._one_attempt(run, step, scope, index, transition)
            transition = None
            if outcome.success or attempt >= retries:
                return outcome
            attempt += 1
            log.debug("workflow '%s': retrying step '%s' (%d/%d)", run.wf.name, step.name, attempt, retries)
            await asyncio.sleep(delay)
            delay *= 2

    def _attempts_here(self, run: Run, step: Step, scope: Scope, index: int,
                       transition: tuple[str, str] | None) -> StepOutcome:
        """`_attempts` on the Lua thread (retry delays are interruptible sleeps there)."""
        retries, delay = self._retry_plan(run, step)
        attempt = 0
        while True:
            outcome = self._inline_attempt(run, step, scope, index, transition)
            transition = None
            if outcome.success or attempt >= retries:
                return outcome
            attempt += 1
            log.debug("workflow '%s': retrying step '%s' (%d/%d)", run.wf.name, step.name, attempt, retries)
            self.calls.sleep_here(delay)
            delay *= 2

    def _stage_data(self, run: Run, step: Step, index: int) -> dict[str, Any]:
        stage_input = step.input if step.input is not None else step.parameters
        return {"workflow_id": run.wf.id, "execution_id": run.execution_id, "step": step.name,
                "step_type": step.type, "index": index, "input": stage_input}

    def _transition_data(self, run: Run, transition: tuple[str, str]) -> dict[str, Any]:
        return {"workflow_id": run.wf.id, "execution_id": run.execution_id, "from": transition[0],
                "to": transition[1]}

    def _step_timeout(self, step: Step) -> int | None:
        if step.timeout_ms is None and step.type != "workflow":
            return self.settings.step_timeout_ms
        return step.timeout_ms

    def _enter_stage_here(self, run: Run, step: Step, index: int, transition: tuple[str, str] | None
                          ) -> tuple[StepOutcome | None, Any, dict[str, Any]]:
        """On the Lua thread: the transition and BeforeWorkflowStage hooks of a step (outcome, input, data)."""
        if transition is not None:
            self.fx.hook_sync("WorkflowStageTransition", self._transition_data(run, transition), run.wf.name)
        data = self._stage_data(run, step, index)
        done, override = self._before(self.fx.hook_sync("BeforeWorkflowStage", data, run.wf.name))
        return done, override, data

    @staticmethod
    def _before(hr: HookResult) -> tuple[StepOutcome | None, Any]:
        """(an outcome that ends the attempt, or None; the replaced input, or None)."""
        if hr.skip:
            return StepOutcome(True, "", skipped=True), None
        if hr.cancel:
            return StepOutcome(False, error=f"cancelled by hook: {hr.reason or hr.action}"), None
        return None, (hr.data.get("input") if hr.modified and isinstance(hr.data, dict) else None)

    @staticmethod
    def _after(hr: HookResult, outcome: StepOutcome) -> StepOutcome:
        if hr.modified and isinstance(hr.data, dict) and isinstance(hr.data.get("output"), str):
            outcome.output = hr.data["output"]
        return outcome

    def _inline_attempt(self, run: Run, step: Step, scope: Scope, index: int,
                        transition: tuple[str, str] | None) -> StepOutcome:
        """One attempt of a sync tool or function step on the Lua thread, where hooks run directly.

        A sync tool cannot be pre-empted on either thread, so its step timeout is checked afterwards;
        a function step runs under its deadline guard.
        """
        from llmspell.tools.base import ToolError

        wf = run.wf
        done, override, data = self._enter_stage_here(run, step, index, transition)
        if done is not None:
            return done
        timeout_ms = self._step_timeout(step)
        t0 = time.perf_counter()
        if step.type == "custom":
            ctx, deadline = self._custom_call(run, step, scope, override)
            try:
                outcome = _custom_outcome(self.calls.call_here(step.fn, ctx, wf, deadline))
            except LuaCallError as e:
                outcome = StepOutcome(False, error=str(e))
            except LookupError:
                raise self._missing_function(run, step) from None
            if deadline is not None and time.monotonic() >= deadline and not outcome.success:
                outcome = StepOutcome(False, error=f"step '{step.name}' timed out after {timeout_ms} ms")
        else:
            raw = override if override is not None else (step.input if step.input is not None else step.parameters)
            params = scope.fill(raw if raw is not None else {})
            if not isinstance(params, dict):
                outcome = StepOutcome(False, error=f"tool step '{step.name}': input must be a table of parameters")
            else:
                try:
                    outcome = _tool_outcome(_tool_invoker(self.services).invoke_inline(str(step.tool), params))
                except ToolError as e:
                    outcome = StepOutcome(False, error=str(e))
            if timeout_ms and (time.perf_counter() - t0) * 1000 > timeout_ms:
                outcome = StepOutcome(False, error=f"step '{step.name}' timed out after {timeout_ms} ms")
        hr = self.fx.hook_sync("AfterWorkflowStage", {**data, "output": outcome.output, "success": outcome.success},
                               wf.name)
        return self._after(hr, outcome)

    async def _one_attempt(self, run: Run, step: Step, scope: Scope, index: int,
                           transition: tuple[str, str] | None = None) -> StepOutcome:
        wf = run.wf
        if step.type == "agent" and any(self.fx.hooks_active(p) for p in _AGENT_STEP_POINTS):
            return await self._agent_attempt(run, step, scope, index, transition)
        if transition is not None:
            await self.fx.hook("WorkflowStageTransition", self._transition_data(run, transition), wf.name)
        data = self._stage_data(run, step, index)
        done, override = self._before(await self.fx.hook("BeforeWorkflowStage", data, wf.name))
        if done is not None:
            return done
        timeout_ms = self._step_timeout(step)
        try:
            async with asyncio.timeout(timeout_ms / 1000.0 if timeout_ms else None):
                outcome = await self._dispatch(run, step, scope, override)
        except TimeoutError:
            if run.deadline is not None and time.monotonic() >= run.deadline:
                raise  # the whole workflow (or an enclosing one) timed out, not just this step
            outcome = StepOutcome(False, error=f"step '{step.name}' timed out after {timeout_ms} ms")
        except StepFailed as e:
            outcome = StepOutcome(False, error=str(e))
        hr = await self.fx.hook("AfterWorkflowStage", {**data, "output": outcome.output, "success": outcome.success},
                                wf.name)
        return self._after(hr, outcome)

    async def _dispatch(self, run: Run, step: Step, scope: Scope, override: Any) -> StepOutcome:
        if step.type == "agent":
            return await self._agent_step(run, step, scope, override)
        if step.type == "tool":
            return await self._tool_step(run, step, scope, override)
        if step.type == "workflow":
            return await self._workflow_step(run, step, scope, override)
        return await self._custom_step(run, step, scope, override)

    def _config_error(self, run: Run, step: Step, what: str) -> WorkflowConfigError:
        return WorkflowConfigError(f"workflow '{run.wf.name}' step '{step.name}': {what}")

    # ------------------------------------------------------------------ agent
    def _agent_of(self, run: Run, step: Step) -> Any:
        name = step.agent_name
        agents = getattr(self.services, "agents", None)
        agent = step.agent if not isinstance(step.agent, str) and hasattr(step.agent, "aexecute") else None
        if agent is None and agents is not None and name:
            agent = agents.get(name)
        if agent is None:
            raise self._config_error(run, step, f"unknown agent '{name}' (create it with Agent.builder()"
                                                f":name('{name}')...:build() before execute)")
        return agent

    def _agent_input(self, run: Run, step: Step, scope: Scope, override: Any) -> dict[str, Any]:
        template = override if override is not None else (step.input if step.input is not None else "{{input}}")
        filled = scope.fill(template)
        agent_input: dict[str, Any] = filled if isinstance(filled, dict) else {"text": render_value(filled)}
        if self.debug:
            log.debug("workflow '%s' step '%s' input: %r", run.wf.name, step.name, agent_input)
        return agent_input

    def _agent_failure(self, run: Run, step: Step, e: Exception) -> StepOutcome:
        """A provider failure is a step failure (§5.7); a missing key or unknown provider makes execute raise."""
        if _is_config_error(e):
            raise self._config_error(run, step, str(e)) from None
        return StepOutcome(False, error=str(e))

    @staticmethod
    def _agent_outcome(result: Any) -> StepOutcome:
        result = result if isinstance(result, dict) else {"text": str(result)}
        text = result.get("text")
        meta = result.get("metadata") or {}
        agent_meta = {k: meta[k] for k in ("provider", "model", "input_tokens", "output_tokens") if k in meta}
        return StepOutcome(True, text if isinstance(text, str) else "", agent_meta=agent_meta)

    async def _agent_step(self, run: Run, step: Step, scope: Scope, override: Any) -> StepOutcome:
        agent = self._agent_of(run, step)
        agent_input = self._agent_input(run, step, scope, override)
        try:
            result = await agent.aexecute(agent_input)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - provider failures are step failures (§5.7)
            raise StepFailed(self._agent_failure(run, step, e).error) from None
        return self._agent_outcome(result)

    async def _agent_attempt(self, run: Run, step: Step, scope: Scope, index: int,
                             transition: tuple[str, str] | None) -> StepOutcome:
        """An agent step with hooks: what comes before the model call (transition, BeforeWorkflowStage,
        BeforeAgentExecution) runs in one hop to the Lua thread, what comes after (AfterAgentExecution,
        AfterWorkflowStage) in another. Fired from the IO loop, each of those points was a hop of its own.
        Same hooks, same order, same effects as `_one_attempt` with `_agent_step`."""
        pre = await asyncio.wrap_future(self.calls.submit(self._agent_pre, run, step, scope, index, transition))
        if isinstance(pre, StepOutcome):
            return pre  # skipped or cancelled by BeforeWorkflowStage
        agent, inp, before, data, outcome = pre
        result: Any = None
        final = False
        if outcome is None:
            timeout_ms = self._step_timeout(step)
            try:
                async with asyncio.timeout(timeout_ms / 1000.0 if timeout_ms else None):
                    inp, result, final = await agent.acore(inp, before)
            except TimeoutError:
                if run.deadline is not None and time.monotonic() >= run.deadline:
                    raise  # the whole workflow (or an enclosing one) timed out, not just this step
                outcome = StepOutcome(False, error=f"step '{step.name}' timed out after {timeout_ms} ms")
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - provider failures are step failures (§5.7)
                outcome = self._agent_failure(run, step, e)
        return await asyncio.wrap_future(  # type: ignore[no-any-return]
            self.calls.submit(self._agent_post, run, agent, inp, result, final, outcome, data))

    def _agent_pre(self, run: Run, step: Step, scope: Scope, index: int,
                   transition: tuple[str, str] | None) -> StepOutcome | tuple[Any, Any, Any, dict[str, Any], Any]:
        """On the Lua thread: the hooks before an agent step's model call, and its input."""
        done, override, data = self._enter_stage_here(run, step, index, transition)
        if done is not None:
            return done
        agent = self._agent_of(run, step)
        try:
            inp, before = agent.before_here(self._agent_input(run, step, scope, override))
        except Exception as e:  # noqa: BLE001 - as a failure inside aexecute would be
            return agent, None, None, data, self._agent_failure(run, step, e)
        return agent, inp, before, data, None

    def _agent_post(self, run: Run, agent: Any, inp: Any, result: Any, final: bool, outcome: StepOutcome | None,
                    data: dict[str, Any]) -> StepOutcome:
        """On the Lua thread: the hooks after an agent step's model call; the step's outcome."""
        if outcome is None:
            outcome = self._agent_outcome(result if final else agent.after_here(inp, result))
        hr = self.fx.hook_sync("AfterWorkflowStage", {**data, "output": outcome.output, "success": outcome.success},
                               run.wf.name)
        return self._after(hr, outcome)

    # ------------------------------------------------------------------ tool
    async def _tool_step(self, run: Run, step: Step, scope: Scope, override: Any) -> StepOutcome:
        from llmspell.tools.base import ToolError

        invoker = _tool_invoker(self.services)
        if invoker.registry.resolve(str(step.tool)) is None:
            raise self._config_error(run, step, _unknown_tool(str(step.tool)))
        raw = override if override is not None else (step.input if step.input is not None else step.parameters)
        params = scope.fill(raw if raw is not None else {})
        if not isinstance(params, dict):
            raise StepFailed(f"tool step '{step.name}': input must be a table of parameters")
        if self.debug:
            log.debug("workflow '%s' step '%s' tool %s params: %r", run.wf.name, step.name, step.tool, params)
        try:
            result = await invoker.ainvoke(str(step.tool), params)
        except ToolError as e:
            raise StepFailed(str(e)) from None
        return _tool_outcome(result)

    # ------------------------------------------------------------------ workflow
    async def _workflow_step(self, run: Run, step: Step, scope: Scope, override: Any) -> StepOutcome:
        child = self.lookup_workflow(step.workflow)
        if child is None:
            raise self._config_error(run, step, f"unknown workflow '{step.workflow}' (build it first, or pass "
                                                "the Workflow object)")
        if run.depth + 1 > MAX_DEPTH:
            raise self._config_error(run, step, f"nesting deeper than {MAX_DEPTH} levels")
        raw = override if override is not None else step.input
        child_input = scope.fill(raw) if raw is not None else dict(run.inp)
        if not isinstance(child_input, dict):
            child_input = {"text": render_value(child_input)}
        result = await self.execute(child, child_input, run.depth + 1, run.deadline)
        return StepOutcome(bool(result["success"]), result.get("text", ""), error=result.get("error"),
                           child_execution_id=result["execution_id"])

    # ------------------------------------------------------------------ custom (Lua function)
    def _custom_call(self, run: Run, step: Step, scope: Scope, override: Any) -> tuple[dict[str, Any], float | None]:
        """The ctx table and the deadline of a function step."""
        params = override if override is not None else step.parameters
        ctx = {"input": dict(run.inp), "outputs": dict(scope.outputs),
               "parameters": scope.fill(params) if params is not None else {},
               "execution_id": run.execution_id, **scope.loop}
        timeout_ms = self._step_timeout(step)
        own = time.monotonic() + timeout_ms / 1000.0 if timeout_ms else None
        return ctx, min((d for d in (own, run.deadline) if d is not None), default=None)

    def _missing_function(self, run: Run, step: Step) -> WorkflowConfigError:
        return self._config_error(run, step, f"function '{step.fn}' is not defined (pass a Lua function or the "
                                             "name of a global function)")

    async def _custom_step(self, run: Run, step: Step, scope: Scope, override: Any) -> StepOutcome:
        ctx, deadline = self._custom_call(run, step, scope, override)
        try:
            value = await self.calls.call(step.fn, ctx, run.wf, deadline)
        except LuaCallError as e:
            raise StepFailed(str(e)) from None
        except LookupError:
            raise self._missing_function(run, step) from None
        return _custom_outcome(value)

    # ================================================================== conditions
    async def check(self, run: Run, cond: Condition | None, scope: Scope, extra: dict[str, Any] | None = None) -> bool:
        """Evaluate a condition (None means always)."""
        if cond is None or cond.kind == "always":
            return True
        if cond.kind == "never":
            return False
        shared = run.shared(scope.loop)
        if cond.kind == "lua":
            ctx = {"input": dict(run.inp), "outputs": dict(run.outputs), "shared": shared,
                   "execution_id": run.execution_id, **scope.loop, **(extra or {})}
            try:
                return _truthy(await self.calls.call(cond.fn, ctx, run.wf, run.deadline))
            except LuaCallError as e:
                raise StepFailed(f"condition failed: {e}") from None
        if cond.kind == "shared_data_exists":
            return shared.get(cond.key or "") is not None
        if cond.kind == "shared_data_equals":
            return _equal(shared.get(cond.key or ""), cond.value)
        if cond.kind == "input_equals":
            return _equal(run.inp.get(cond.key or ""), cond.value)
        if cond.kind == "shared_data_contains":
            v = shared.get(cond.key or "")
            return v is not None and str(cond.value).lower() in render_value(v).lower()
        if cond.kind == "output_contains":
            v = run.outputs.get(cond.step or cond.key or "")
            return v is not None and str(cond.value).lower() in v.lower()
        raise StepFailed(f"unknown condition type '{cond.kind}'")


#: The points an agent step fires; with any of them active the step takes the two-hop path.
_AGENT_STEP_POINTS = ("WorkflowStageTransition", "BeforeWorkflowStage", "BeforeAgentExecution",
                      "AfterAgentExecution", "AfterWorkflowStage")


def _custom_outcome(value: Any) -> StepOutcome:
    """A function step's return value as its output: string, table (JSON + data) or nil ("").

    A workflow result returned by the function (`return child:execute(x)`) is kept by reference: the
    output is the child's text and the data a summary with its execution_id. Copied whole, every
    nesting level held its child's result about 5 times over (21.8 MB at 7 levels).
    """
    if value is None:
        return StepOutcome(True, "")
    if isinstance(value, dict | list):
        if isinstance(value, dict) and _is_workflow_result(value):
            ref = _result_ref(value)
            return StepOutcome(True, ref["text"], data=ref, child_execution_id=ref["execution_id"])
        value = _refs_for_results(value)
        return StepOutcome(True, to_json(value), data=value)
    return StepOutcome(True, render_value(value))


def _is_workflow_result(v: Any) -> bool:
    """Whether `v` is a §5.8 result table (as Python data), by its shape."""
    if not isinstance(v, dict) or not isinstance(v.get("execution_id"), str) or "steps" not in v:
        return False
    meta = v.get("metadata")
    extra = meta.get("extra") if isinstance(meta, dict) else None
    return isinstance(extra, dict) and "workflow_instance_id" in extra


def _result_ref(r: dict[str, Any]) -> dict[str, Any]:
    """What a parent keeps of a child's result: which execution, whether it succeeded, its text."""
    extra = r["metadata"]["extra"]
    ref = {"workflow": extra.get("workflow_name"), "execution_id": r["execution_id"],
           "success": bool(r.get("success")), "text": r["text"] if isinstance(r.get("text"), str) else ""}
    if r.get("error") is not None:
        ref["error"] = str(r["error"])
    return ref


def _refs_for_results(v: Any) -> Any:
    """`v` with every workflow result inside it replaced by its reference (see _custom_outcome)."""
    if isinstance(v, dict):
        if _is_workflow_result(v):
            return _result_ref(v)
        return {k: _refs_for_results(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_refs_for_results(x) for x in v]
    return v


def _tool_outcome(result: dict[str, Any]) -> StepOutcome:
    """A tool result as a step outcome: a graceful failure is a success with tool_success = false."""
    if result.get("skipped"):
        return StepOutcome(True, "", skipped=True)
    text = result.get("text")
    return StepOutcome(True, text if isinstance(text, str) else to_json(text),
                       tool_success=bool(result.get("success", True)))


def _ids(run: Run) -> dict[str, Any]:
    return {"workflow_id": run.wf.id, "execution_id": run.execution_id}


def _truthy(v: Any) -> bool:
    return v is not None and v is not False


def _equal(a: Any, b: Any) -> bool:
    if a is None:
        return b is None
    if a == b and type(a) is type(b) or (isinstance(a, int | float) and isinstance(b, int | float) and a == b):
        return True
    return render_value(a).strip() == render_value(b).strip()


def _is_config_error(e: BaseException) -> bool:
    """A missing key / unknown provider behind an agent failure (those make execute raise)."""
    seen: set[int] = set()
    stack: list[Any] = [e]
    while stack:
        x = stack.pop()
        if x is None or id(x) in seen:
            continue
        seen.add(id(x))
        if getattr(x, "config_error", False) or type(x).__name__ in ("MissingKeyError", "AgentConfigError",
                                                                     "ProviderConfigError"):
            return True
        stack.extend([getattr(x, "__cause__", None), getattr(x, "__context__", None), getattr(x, "cause", None)])
    return False


def _tool_invoker(services: Services | None) -> Any:
    from llmspell.tools.invoke import shared_invoker

    return shared_invoker(services)


def _unknown_tool(name: str) -> str:
    from llmspell.tools.registry import unknown_tool_message

    return unknown_tool_message(name)
