"""Composition root: builds the services from config and a ready ScriptRuntime.

This is the one place that knows every concrete service class, so layer 2 (script/) only sees
the `Services` container. The CLI, the kernel, the REPL, benchmarks and tests all start here.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from llmspell.config import LLMConfig, load_config
from llmspell.script.engine import OutputSink, ScriptRuntime
from llmspell.script.globals import install_globals
from llmspell.script.services import Services

log = logging.getLogger("llmspell")

#: (Services field, "module:factory") pairs; each factory takes the config and the Services so far.
SERVICE_FACTORIES: tuple[tuple[str, str], ...] = (
    ("providers", "llmspell.providers.registry:build_registry"),
    ("agents", "llmspell.agents.registry:build_registry"),
    ("tools", "llmspell.tools.registry:build_registry"),
    ("state", "llmspell.state:build_state"),
    ("events", "llmspell.events:build_bus"),
    ("hooks", "llmspell.hooks:build_registry"),
    ("sessions", "llmspell.sessions:build_sessions"),
    ("artifacts", "llmspell.sessions.artifacts:build_artifacts"),
    ("rag", "llmspell.rag:build_rag"),
)


def build_services(config: LLMConfig | None = None) -> Services:
    """Create every service for a runtime; a package not present yet is left as None."""
    config = config if config is not None else load_config()
    services = Services(config=config)
    for attr, target in SERVICE_FACTORIES:
        modname, fn = target.split(":")
        try:
            mod = importlib.import_module(modname)
        except ModuleNotFoundError as e:
            if e.name and modname.startswith(e.name):
                continue
            raise
        factory = getattr(mod, fn, None)
        if factory is not None:
            setattr(services, attr, factory(config, services))
    return services


def create_runtime(config: LLMConfig | None = None, *, stdout: OutputSink | None = None,
                   stderr: OutputSink | None = None, **kwargs: Any) -> ScriptRuntime:
    """A ScriptRuntime with every global installed, ready to run scripts."""
    kwargs.setdefault("install_globals", install_globals)
    return ScriptRuntime(build_services(config), stdout=stdout, stderr=stderr, **kwargs)


if TYPE_CHECKING:  # mypy checks that each concrete service satisfies the Protocol layer 2 codes against
    from llmspell.agents.registry import AgentRegistry
    from llmspell.events.bus import EventBus
    from llmspell.hooks.registry import HookRegistry
    from llmspell.rag.service import RagService
    from llmspell.script import protocols as p
    from llmspell.script.globals.debug import DebugState
    from llmspell.script.globals.workflow import WorkflowRegistry
    from llmspell.sessions.artifacts import ArtifactStore
    from llmspell.sessions.manager import SessionManager
    from llmspell.state.store import StateStore
    from llmspell.tools.invoke import ToolInvoker
    from llmspell.tools.registry import ToolRegistry
    from llmspell.workflows.engine import Engine

    def _conforms(state: StateStore, events: EventBus, hooks: HookRegistry, sessions: SessionManager,
                  artifacts: ArtifactStore, rag: RagService, agents: AgentRegistry, tools: ToolRegistry,
                  invoker: ToolInvoker, workflows: WorkflowRegistry, engine: Engine, debug: DebugState) -> None:
        _: tuple[p.StateService, p.EventService, p.HookService, p.SessionService, p.ArtifactService,
                 p.RagService, p.AgentService, p.ToolService, p.ToolInvokerService, p.WorkflowService,
                 p.WorkflowEngineService, p.DebugCapture] = (
            state, events, hooks, sessions, artifacts, rag, agents, tools, invoker, workflows, engine, debug)
