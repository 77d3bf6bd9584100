"""Workflow definitions as plain data: steps, conditions, branches, loops (lua-api.md §5.2-§5.4).

Lua functions (function steps, condition functions, compiled expression conditions) are kept as
opaque values; the engine only ever hands them to its `LuaCalls` adapter.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from llmspell.runtime.errors import ServiceError

WORKFLOW_TYPES: tuple[str, ...] = ("sequential", "parallel", "conditional", "loop")
STEP_TYPES: tuple[str, ...] = ("agent", "tool", "workflow", "custom")
ERROR_STRATEGIES: tuple[str, ...] = ("fail_fast", "continue", "retry")
CONDITION_TYPES: tuple[str, ...] = (
    "always", "never", "shared_data_equals", "shared_data_exists", "shared_data_contains", "input_equals",
    "output_contains",
)
MAX_DEPTH = 16


@dataclass(frozen=True)
class LuaRef:
    """A Lua value (a function, a child's Lua object) kept on the Lua side of its workflow's proxy.

    A WorkflowDef holding Lua functions directly made a cycle across the two heaps whenever such a
    function referred to the workflow (a lupa reference is a GC root for Lua and opaque to Python's
    collector), so a replaced workflow was never freed. The engine passes these to `LuaCalls`.
    """

    index: int


class WorkflowDefinitionError(ServiceError):
    """Misuse found while building (bad step, unknown type or strategy...)."""


class WorkflowConfigError(ServiceError):
    """A configuration error found at execute time: `wf:execute` raises (§5.7)."""


@dataclass
class Condition:
    """A branch/loop condition: a table condition, or a Lua callable (function or compiled expression)."""

    kind: str
    key: str | None = None
    value: Any = None
    step: str | None = None
    fn: Any = None
    source: str | None = None
    error: str | None = None

    def describe(self) -> str:
        if self.kind == "lua":
            return self.source or "function"
        return self.kind


@dataclass
class Step:
    """One step table (§5.4)."""

    name: str
    type: str
    agent: Any = None
    tool: str | None = None
    workflow: Any = None
    input: Any = None
    parameters: Any = None
    fn: Any = None
    timeout_ms: int | None = None
    retry_count: int = 0
    retry_delay_ms: int = 1000
    continue_on_error: bool = False
    description: str = ""

    @property
    def agent_name(self) -> str | None:
        if isinstance(self.agent, str):
            return self.agent
        return getattr(self.agent, "name", None)

    def target_label(self) -> dict[str, Any]:
        if self.type == "agent":
            return {"agent": self.agent_name}
        if self.type == "tool":
            return {"tool": self.tool}
        if self.type == "workflow":
            wf = self.workflow
            return {"workflow": wf if isinstance(wf, str) else getattr(wf, "name", None)}
        return {}


@dataclass
class Branch:
    """A parallel branch or a conditional branch: its steps run in sequence."""

    label: str
    steps: list[Step] = field(default_factory=list)
    condition: Condition | None = None


@dataclass
class LoopSpec:
    """The loop iterator and its limits."""

    iterator: str | None = None  # collection | range | while_condition
    collection: list[Any] = field(default_factory=list)
    start: float = 1
    end: float = 10
    step: float = 1
    while_cond: Condition | None = None
    loop_condition: Condition | None = None
    break_conditions: list[Condition] = field(default_factory=list)
    max_iterations: int | None = None


@dataclass
class Metrics:
    """Per-instance execution figures (`wf:get_metrics()`)."""

    executions: int = 0
    successes: int = 0
    failures: int = 0
    total_ms: int = 0
    last_ms: int = 0


@dataclass
class WorkflowDef:
    """A built workflow instance."""

    name: str
    type: str
    description: str = ""
    steps: list[Step] = field(default_factory=list)
    branches: list[Branch] = field(default_factory=list)
    loop: LoopSpec = field(default_factory=LoopSpec)
    timeout_ms: int | None = None
    error_strategy: str = "fail_fast"
    max_concurrency: int = 8
    id: str = field(default_factory=lambda: f"workflow_{uuid.uuid4()}")
    shared_data: dict[str, Any] = field(default_factory=dict)
    callbacks: dict[str, list[Any]] = field(default_factory=dict)
    metrics: Metrics = field(default_factory=Metrics)
    last_execution_id: str | None = None
    last_summary: str | None = None

    def step_names(self) -> list[str]:
        names = [s.name for s in self.steps]
        for b in self.branches:
            names.extend(s.name for s in b.steps)
        return names

    def all_steps(self) -> list[Step]:
        out = list(self.steps)
        for b in self.branches:
            out.extend(b.steps)
        return out


class StepFailed(Exception):
    """Internal: a step attempt failed with a message."""
