"""AgentRegistry: the agents of one runtime (by name, creation order), builds, contexts, shared memory.

`build_registry(config, services)` is the service factory (bootstrap.SERVICE_FACTORIES, field
`agents`). `services.agents.get(name) -> Agent | None` is what the workflow engine uses.
"""

from __future__ import annotations

import logging
import secrets
import threading
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from llmspell.agents.agent import DEFAULT_LIMITS, Agent, AgentConfig, AgentError, CompositeAgent

if TYPE_CHECKING:
    from llmspell.script.services import Services

log = logging.getLogger("llmspell.agents")

#: Builder presets for Agent.create_from_template (params override them).
TEMPLATES: dict[str, dict[str, Any]] = {
    "llm": {"description": "General-purpose LLM agent"},
    "chat": {"description": "Conversational assistant that keeps the conversation history"},
    "summarizer": {"description": "Summarizes text", "temperature": 0.0, "max_conversation_length": 0,
                   "system_prompt": "You are a summarizer. Summarize the user's text accurately and concisely. "
                                    "Reply with the summary only."},
    "classifier": {"description": "Classifies text into categories", "temperature": 0.0,
                   "max_conversation_length": 0,
                   "system_prompt": "You are a classifier. Classify the user's text into the categories they give "
                                    "and reply with the category name only."},
}
BUILDER_KEYS = ("name", "description", "model", "provider", "system_prompt", "temperature", "max_tokens",
                "max_conversation_length", "base_url", "api_key", "allowed_tools", "custom_config",
                "resource_limits", "type", "agent_type")


@dataclass
class Context:
    """A key/value context for execute_with_context; children read through unless isolated."""

    id: str
    data: dict[str, Any] = field(default_factory=dict)
    parent: str | None = None
    scope: str = "global"
    inheritance: str = "inherit"


class AgentRegistry:
    """Agents by name (in creation order) plus contexts and shared memory; lives as long as the runtime."""

    def __init__(self, services: Services | None) -> None:
        self.services = services
        self._agents: dict[str, Agent] = {}
        self._lock = threading.Lock()
        self._contexts: dict[str, Context] = {}
        self._shared: dict[str, dict[str, Any]] = {}

    @property
    def providers(self) -> Any:
        return self.services.providers if self.services is not None else None

    # ------------------------------------------------------------ agents
    def get(self, name: str) -> Agent | None:
        return self._agents.get(name)

    def names(self) -> list[str]:
        return list(self._agents)

    def all(self) -> list[Agent]:
        return list(self._agents.values())

    def remove(self, name: str) -> bool:
        with self._lock:
            return self._agents.pop(name, None) is not None

    def build(self, cfg: dict[str, Any], fname: str = "Agent.builder") -> Agent:
        """Validate builder keys offline and register the agent (a duplicate name replaces the old one)."""
        name = cfg.get("name") or f"agent_{secrets.token_hex(4)}"
        if not isinstance(name, str) or not name:
            raise AgentError(f"{fname}: name must be a non-empty string")
        model = cfg.get("model")
        provider = cfg.get("provider")
        if model is not None and not isinstance(model, str):
            raise AgentError(f"{fname}: model must be a string (e.g. \"openai/gpt-4o-mini\")")
        if provider is not None and not isinstance(provider, str):
            raise AgentError(f"{fname}: provider must be a string (e.g. \"openai\")")
        try:
            pname, mname = self.providers.resolve(model or None, provider or None, fname)
        except ValueError as e:
            raise AgentError(str(e)) from None
        spec = self.providers.spec(pname)
        if not spec.enabled:
            raise AgentError(f"{fname}: provider '{pname}' is disabled in config (set [providers.{pname}] "
                             "enabled = true)")
        custom = dict(cfg.get("custom_config") or {})
        merged = {k: custom[k] for k in ("system_prompt", "max_conversation_length", "temperature", "max_tokens")
                  if k in custom}
        merged.update({k: v for k, v in cfg.items() if v is not None})
        temperature = merged.get("temperature")
        if temperature is not None:
            if not isinstance(temperature, int | float) or isinstance(temperature, bool) or not 0 <= temperature <= 2:
                raise AgentError(f"{fname}: temperature must be a number in 0-2, got {temperature!r}")
            temperature = float(temperature)
        max_tokens = merged.get("max_tokens")
        if max_tokens is not None:
            if isinstance(max_tokens, float) and max_tokens.is_integer():
                max_tokens = int(max_tokens)
            if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens <= 0:
                raise AgentError(f"{fname}: max_tokens must be an integer > 0, got {max_tokens!r}")
        mcl = merged.get("max_conversation_length", 100)
        if isinstance(mcl, float) and mcl.is_integer():
            mcl = int(mcl)
        if not isinstance(mcl, int) or isinstance(mcl, bool) or mcl < 0:
            raise AgentError(f"{fname}: max_conversation_length must be an integer >= 0, got {mcl!r}")
        limits: dict[str, Any] = dict(DEFAULT_LIMITS)
        for k, v in (cfg.get("resource_limits") or {}).items():
            if k in DEFAULT_LIMITS:
                if not isinstance(v, int | float) or isinstance(v, bool) or v <= 0:
                    raise AgentError(f"{fname}: resource_limits.{k} must be a number > 0, got {v!r}")
                limits[k] = int(v) if float(v).is_integer() else v
        tools = list(cfg.get("allowed_tools") or [])
        tool_reg = getattr(self.services, "tools", None)
        for t in tools:
            if not isinstance(t, str):
                raise AgentError(f"{fname}: allowed_tools must be tool names (strings)")
            if tool_reg is not None and not tool_reg.exists(t):
                raise AgentError(f"{fname}: unknown tool '{t}' in allowed_tools (see Tool.list())")
        atype = cfg.get("agent_type") or cfg.get("type") or "llm"
        if atype != "llm":
            log.warning("agent '%s': type %r is not supported; building an LLM agent", name, atype)
        system_prompt = merged.get("system_prompt")
        config = AgentConfig(
            name=name, provider=pname, model=mname, description=str(cfg.get("description") or "LLM-powered agent"),
            system_prompt=str(system_prompt) if system_prompt is not None else None, temperature=temperature,
            max_tokens=max_tokens, max_conversation_length=mcl, base_url=cfg.get("base_url"),
            api_key=cfg.get("api_key"), allowed_tools=tools, custom_config=custom, resource_limits=limits)
        self._fire("BeforeAgentInit", {"agent": name, "provider": pname, "model": mname}, name)
        self.providers.prepare(pname, base_url=config.base_url)
        agent = Agent(config, self)
        with self._lock:
            if name in self._agents:
                log.warning("agent '%s' already exists; replacing it", name)
            self._agents.pop(name, None)
            self._agents[name] = agent
        stats = getattr(self.services, "stats", None)
        if stats is not None:
            stats.count("agents_created")
        self._fire("AfterAgentInit", {"agent": name, "provider": pname, "model": mname}, name)
        return agent

    def build_composite(self, name: str, members: list[str], cfg: dict[str, Any] | None = None) -> Agent:
        """A composite agent over existing agents (provider/model shown are the first member's)."""
        fname = "Agent.create_composite"
        if not members or not all(isinstance(m, str) for m in members):
            raise AgentError(f"{fname}: agent_names must be a non-empty array of agent names")
        missing = [m for m in members if m not in self._agents]
        if missing:
            raise AgentError(f"{fname}: unknown agent '{missing[0]}' (build it first; see Agent.list_instances())")
        if name in members:
            raise AgentError(f"{fname}: a composite cannot contain itself ('{name}')")
        first = self._agents[members[0]]
        cfg = cfg or {}
        config = AgentConfig(name=name, provider=first.provider, model=first.model,
                             description=str(cfg.get("description") or f"Composite of {', '.join(members)}"),
                             custom_config={k: v for k, v in cfg.items() if k != "description"})
        self._fire("BeforeAgentInit", {"agent": name, "provider": first.provider, "model": first.model}, name)
        agent = CompositeAgent(config, self, members)
        with self._lock:
            self._agents.pop(name, None)
            self._agents[name] = agent
        stats = getattr(self.services, "stats", None)
        if stats is not None:
            stats.count("agents_created")
        self._fire("AfterAgentInit", {"agent": name, "provider": first.provider, "model": first.model}, name)
        return agent

    def hierarchy(self, name: str, _seen: frozenset[str] = frozenset()) -> dict[str, Any]:
        """`{name, children}` where children are the members' hierarchies (composites nest)."""
        agent = self._agents.get(name)
        members = getattr(agent, "members", []) if name not in _seen else []
        return {"name": name, "children": [self.hierarchy(m, _seen | {name}) for m in members]}

    def _fire(self, point: str, data: dict[str, Any], name: str) -> None:
        hooks = getattr(self.services, "hooks", None)
        if hooks is None or not hooks.active(point):
            return
        hooks.run(point, data, component=("agent", name))

    def shutdown(self, name: str) -> None:
        """Fire the shutdown hooks of one agent."""
        self._fire("BeforeAgentShutdown", {"agent": name}, name)
        self._fire("AfterAgentShutdown", {"agent": name}, name)

    # ------------------------------------------------------------ contexts
    def create_context(self, cfg: dict[str, Any] | None = None) -> str:
        cfg = cfg or {}
        cid = f"ctx_{uuid.uuid4().hex[:12]}"
        raw = cfg.get("data")
        data: dict[str, Any] = dict(raw) if isinstance(raw, dict) else {}
        self._contexts[cid] = Context(cid, data, scope=str(cfg.get("scope", "global")))
        return cid

    def create_child_context(self, parent_id: str, scope: str = "child", inheritance: str = "inherit") -> str:
        if parent_id not in self._contexts:
            raise AgentError(f"Agent.create_child_context: unknown context '{parent_id}'")
        cid = f"ctx_{uuid.uuid4().hex[:12]}"
        self._contexts[cid] = Context(cid, {}, parent=parent_id, scope=scope, inheritance=inheritance or "inherit")
        return cid

    def context(self, cid: str, fname: str) -> Context:
        ctx = self._contexts.get(cid)
        if ctx is None:
            raise AgentError(f"{fname}: unknown context '{cid}' (create one with Agent.create_context())")
        return ctx

    def context_items(self, cid: str) -> dict[str, Any]:
        """A context's effective key/values (parents first, unless isolated)."""
        ctx = self.context(cid, "Agent:execute_with_context")
        chain = [ctx]
        while chain[-1].parent and chain[-1].inheritance != "isolate":
            parent = self._contexts.get(chain[-1].parent)
            if parent is None:
                break
            chain.append(parent)
        out: dict[str, Any] = {}
        for c in reversed(chain):
            out.update(c.data)
        return out

    def remove_context(self, cid: str) -> bool:
        return self._contexts.pop(cid, None) is not None

    # ------------------------------------------------------------ shared memory
    @staticmethod
    def scope_key(scope: Any) -> str:
        if isinstance(scope, str):
            return scope
        if isinstance(scope, dict):
            return f"{scope.get('type', 'global')}:{scope.get('id', '')}"
        raise AgentError("Agent.set_shared_memory: scope must be a string or {type = ..., id = ...}")

    def set_shared(self, scope: Any, key: str, value: Any) -> None:
        with self._lock:
            self._shared.setdefault(self.scope_key(scope), {})[key] = value

    def get_shared(self, scope: Any, key: str) -> Any:
        return self._shared.get(self.scope_key(scope), {}).get(key)


def build_registry(config: Any, services: Any) -> AgentRegistry:
    """Service factory for `services.agents`."""
    return AgentRegistry(services)
