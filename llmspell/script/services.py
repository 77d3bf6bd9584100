"""What a ScriptRuntime is given: configuration, run figures, and the service objects globals use.

Layer 2 (script/) only knows these names and the Protocols of script/protocols.py; the concrete
services (layer 3: state, events, hooks, sessions, rag) and providers are built by the composition
root, `llmspell.bootstrap`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from llmspell.script.protocols import (
    AgentService,
    ArtifactService,
    DebugCapture,
    EventService,
    HookService,
    RagService,
    SessionService,
    StateService,
    ToolInvokerService,
    ToolService,
    WorkflowEngineService,
    WorkflowService,
)

if TYPE_CHECKING:
    from llmspell.config import LLMConfig
    from llmspell.providers.registry import ProviderRegistry


@dataclass
class ModelUsage:
    """Tokens and cost of one model within a run."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0


@dataclass
class RunStats:
    """Figures of one run (one `llmspell run`, one kernel execute_request).

    The kernel puts `as_dict()` into execute_reply metadata["llmspell"]; the harness reads it.
    """

    models: dict[str, ModelUsage] = field(default_factory=dict)
    agents_created: int = 0
    tool_calls: int = 0
    llm_calls: int = 0
    workflows_run: int = 0
    errors: int = 0
    wall_ms: float = 0.0
    #: What the script reported through the Metrics global (lua-api.md §23).
    metrics: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def reset(self) -> None:
        with self._lock:
            self.models = {}
            self.agents_created = self.tool_calls = self.llm_calls = self.workflows_run = self.errors = 0
            self.wall_ms = 0.0
            self.metrics = {}

    def record_llm_call(self, model: str, input_tokens: int, output_tokens: int,
                        cost_usd: float | None, latency_ms: float) -> None:
        """Count one provider call (thread-safe: called from the IO loop)."""
        with self._lock:
            u = self.models.setdefault(model, ModelUsage())
            u.calls += 1
            u.input_tokens += int(input_tokens or 0)
            u.output_tokens += int(output_tokens or 0)
            u.cost_usd += float(cost_usd or 0.0)
            u.latency_ms += latency_ms
            self.llm_calls += 1

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + n)

    @property
    def cost_usd(self) -> float:
        return sum(u.cost_usd for u in self.models.values())

    @property
    def input_tokens(self) -> int:
        return sum(u.input_tokens for u in self.models.values())

    @property
    def output_tokens(self) -> int:
        return sum(u.output_tokens for u in self.models.values())

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "tokens": {m: {"input": u.input_tokens, "output": u.output_tokens, "calls": u.calls}
                           for m, u in self.models.items()},
                "input_tokens": sum(u.input_tokens for u in self.models.values()),
                "output_tokens": sum(u.output_tokens for u in self.models.values()),
                "cost_usd": round(sum(u.cost_usd for u in self.models.values()), 8),
                "cost_by_model": {m: round(u.cost_usd, 8) for m, u in self.models.items()},
                "agents_created": self.agents_created,
                "tool_calls": self.tool_calls,
                "llm_calls": self.llm_calls,
                "workflows_run": self.workflows_run,
                "wall_ms": round(self.wall_ms, 3),
                "metrics": dict(self.metrics),
            }


@dataclass
class Services:
    """Service objects shared by the globals of one ScriptRuntime.

    Filled by `llmspell.bootstrap.build_services` (a service not configured stays None); each field's
    type is the Protocol of script/protocols.py that says what layer 2 and the bindings call on it.
    `tool_invoker`, `workflow_engine` and `debug` are made by the Tool, Workflow and Debug globals.
    """

    config: LLMConfig
    stats: RunStats = field(default_factory=RunStats)
    providers: ProviderRegistry | None = None
    agents: AgentService | None = None
    tools: ToolService | None = None
    workflows: WorkflowService | None = None
    state: StateService | None = None
    events: EventService | None = None
    hooks: HookService | None = None
    sessions: SessionService | None = None
    artifacts: ArtifactService | None = None
    rag: RagService | None = None
    tool_invoker: ToolInvokerService | None = None
    workflow_engine: WorkflowEngineService | None = None
    debug: DebugCapture | None = None
