"""The tool registry: name resolution, per-tool config, lazy construction, listing and discovery.

`build_registry(config, services)` is the bootstrap factory. It only indexes the static catalog;
tool objects are built on first use (the tool-init gate is 10 ms, the aim 0.1 ms).
"""

from __future__ import annotations

import difflib
import importlib
import logging
import os
import threading
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from llmspell.settings import SecuritySettings, ToolsSettings, settings_of
from llmspell.tools.base import Tool, ToolContext, ToolError, ToolSpec
from llmspell.tools.catalog import ALIASES, CATEGORIES, SPECS, SPECS_BY_NAME
from llmspell.tools.sandbox import Sandbox, sandbox_refusal

if TYPE_CHECKING:
    from llmspell.script.services import Services

log = logging.getLogger("llmspell.tools")

_EMPTY: Mapping[str, Any] = MappingProxyType({})


class UnknownToolError(ToolError):
    """A name that resolves to no tool; the message carries the closest names."""


def _norm(name: str) -> str:
    return name.replace("-", "_").lower()


_NORMALIZED: dict[str, str] = {_norm(s.name): s.name for s in SPECS}


def resolve_name(name: str) -> str | None:
    """§4.1: exact name, then `-`/`_` treated as equal, then the aliases; None when unknown."""
    if name in SPECS_BY_NAME:
        return name
    found = _NORMALIZED.get(_norm(name))
    if found is not None:
        return found
    alias = ALIASES.get(name) or ALIASES.get(_norm(name))
    return alias


def suggestions(name: str, n: int = 3) -> list[str]:
    """The closest tool names to `name` (for 'did you mean' messages)."""
    pool = {_norm(s.name): s.name for s in SPECS}
    hits = difflib.get_close_matches(_norm(name), list(pool), n=n, cutoff=0.5)
    if not hits:
        hits = [k for k in pool if _norm(name) in k or k in _norm(name)][:n]
    return [pool[h] for h in hits]


def unknown_tool_message(name: str) -> str:
    close = suggestions(name)
    if close:
        hint = "did you mean " + " or ".join(f"'{c}'" for c in close) + "?"
    else:
        hint = "see Tool.list() for the available tools"
    return f"unknown tool '{name}' ({hint})"


class ToolRegistry:
    """The built-in tools of one runtime, with their config; thread-safe lazy instances."""

    def __init__(self, config: Any = None, services: Services | None = None) -> None:
        self.config = config
        self.services = services
        self._tools: dict[str, Tool] = {}
        self._contexts: dict[str, ToolContext] = {}
        self._lock = threading.Lock()
        settings = settings_of(config) if config is not None else None
        self.settings: ToolsSettings = settings.tools if settings is not None else ToolsSettings()
        self.enabled: bool = self.settings.enabled
        self.security: SecuritySettings = settings.security if settings is not None else SecuritySettings()
        self._sections = self._index_sections()
        self._sandbox: Sandbox | None = None
        self._start_cwd = os.getcwd()
        self._dynamic: dict[str, ToolSpec] = {}
        from llmspell.tools.limits import RateLimiter

        self.limiter = RateLimiter(self.settings.rate_limit_per_minute)

    # ------------------------------------------------------------------ config
    def _index_sections(self) -> dict[str, Mapping[str, Any]]:
        """`settings.tools.sections` merged by resolved tool name (aliases and `-`/`_` spellings), read-only."""
        merged: dict[str, dict[str, Any]] = {}
        for key, value in self.settings.sections.items():
            target = resolve_name(key)
            if target is None:
                log.warning("config section [tools.%s] names no tool (%s)", key, unknown_tool_message(key))
                continue
            merged.setdefault(target, {}).update(value)
        return {k: MappingProxyType(v) for k, v in merged.items()}

    def section(self, name: str) -> Mapping[str, Any]:
        """The merged `[tools.<name>]` table of a tool (resolved name), read-only; empty when absent."""
        return self._sections.get(name, _EMPTY)

    @property
    def sandbox(self) -> Sandbox:
        if self._sandbox is None:
            from dataclasses import replace

            box = Sandbox.from_config(self.section("file_operations").get("allowed_paths"), self._start_cwd)
            why = sandbox_refusal(self.config, box.roots, self._start_cwd)
            self._sandbox = replace(box, refusal=why) if why else box
        return self._sandbox

    def allowed_hosts(self) -> tuple[str, ...]:
        hosts = self.section("http_request").get("allowed_hosts") or ()
        return tuple(str(h).lower() for h in hosts)

    # ------------------------------------------------------------------ lookup
    def resolve(self, name: str) -> ToolSpec | None:
        if not isinstance(name, str):
            return None
        if self._dynamic:
            spec = self._dynamic.get(name) or self._dynamic.get(_norm(name))
            if spec is not None:
                return spec
        resolved = resolve_name(name)
        return SPECS_BY_NAME.get(resolved) if resolved else None

    def register(self, spec: ToolSpec, tool: Tool) -> None:
        """Add a tool at run time (Agent.wrap_as_tool); it replaces an earlier one of the same name."""
        if spec.name in SPECS_BY_NAME:
            raise ToolError(f"tool name '{spec.name}' is taken by a built-in tool (choose another tool_name)")
        with self._lock:
            self._dynamic[spec.name] = spec
            self._dynamic[_norm(spec.name)] = spec
            self._tools[spec.name] = tool
            self._contexts.pop(spec.name, None)

    def _all_specs(self) -> list[ToolSpec]:
        dyn = {s.name: s for s in self._dynamic.values()}
        return sorted([*SPECS, *dyn.values()], key=lambda s: s.name)

    def require(self, name: str) -> ToolSpec:
        spec = self.resolve(name)
        if spec is None:
            raise UnknownToolError(unknown_tool_message(str(name)))
        return spec

    def exists(self, name: str) -> bool:
        return self.resolve(name) is not None

    def disabled_reason(self, spec: ToolSpec) -> str | None:
        """Why calling this tool is refused by config, or None."""
        if not self.enabled:
            return f"tool '{spec.name}' is disabled by config ([tools] enabled = false)"
        if self.section(spec.name).get("enabled") is False:
            return f"tool '{spec.name}' is disabled by config"
        if spec.filesystem and not self.security.allow_file_access:
            return f"tool '{spec.name}' is disabled by config ([runtime.security] allow_file_access = false)"
        return None

    def instance(self, spec: ToolSpec) -> Tool:
        """The tool object (built on first use)."""
        tool = self._tools.get(spec.name)
        if tool is not None:
            return tool
        with self._lock:
            tool = self._tools.get(spec.name)
            if tool is None:
                if spec.impl is None:
                    tool = Tool(spec)
                else:
                    modname, clsname = spec.impl.split(":")
                    tool = getattr(importlib.import_module(modname), clsname)(spec)
                self._tools[spec.name] = tool
            return tool

    def context(self, spec: ToolSpec) -> ToolContext:
        ctx = self._contexts.get(spec.name)
        if ctx is None:
            ctx = ToolContext(spec.name, self.section(spec.name), self.sandbox, self.security,
                              self.allowed_hosts())
            self._contexts[spec.name] = ctx
        return ctx

    # ------------------------------------------------------------------ listing
    def summaries(self) -> list[dict[str, Any]]:
        return [s.summary() for s in self._all_specs()]

    def categories(self) -> list[str]:
        return list(CATEGORIES)

    def discover(self, category: str | None = None, tag: str | None = None) -> list[dict[str, Any]]:
        out = []
        for s in self._all_specs():
            if category and s.category != category:
                continue
            if tag and tag.lower() not in s.name.lower() and tag.lower() not in s.description.lower():
                continue
            out.append(s.summary())
        return out

    def info(self, spec: ToolSpec) -> dict[str, Any]:
        """`Tool.get` data without the execute function."""
        return {**spec.summary(), "schema": spec.schema()}


def build_registry(config: Any, services: Any) -> ToolRegistry:
    """Bootstrap factory (SERVICE_FACTORIES): the runtime's tool registry."""
    return ToolRegistry(config, services)
