"""Core tool types: parameter and tool specs, the context a tool runs in, and what it returns."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from llmspell.runtime.errors import ServiceError
from llmspell.settings import SecuritySettings


class ToolError(ServiceError):
    """A tool's own failure (raised to Lua by Tool.invoke; a step failure inside a workflow)."""


class ToolParamError(ToolError):
    """Invalid parameters: always raises, naming the parameter, expected type and allowed values."""


PARAM_TYPES = ("string", "number", "integer", "boolean", "array", "object", "any")


@dataclass(frozen=True, slots=True)
class Param:
    """One tool parameter as listed in the tool's schema."""

    name: str
    type: str = "string"
    description: str = ""
    required: bool = False
    default: Any = None
    choices: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """Static description of a built-in tool; `impl` is "module:Class" imported on first use."""

    name: str
    category: str
    description: str
    params: tuple[Param, ...] = ()
    impl: str | None = None
    version: str = "1.0.0"
    network: bool = False
    filesystem: bool = False

    @property
    def available(self) -> bool:
        return self.impl is not None

    def schema(self) -> dict[str, Any]:
        """The §4.1 schema table."""
        params = []
        for p in self.params:
            entry: dict[str, Any] = {"name": p.name, "type": "string" if p.type == "any" else p.type,
                                     "description": p.description, "required": p.required}
            if p.default is not None:
                entry["default"] = p.default
            params.append(entry)
        return {"name": self.name, "description": self.description, "parameters": params}

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "category": self.category,
                "version": self.version if self.available else "0.0.0-unavailable"}


@dataclass
class ToolOutput:
    """What a tool produced: output text, optional structured response, own metadata, media."""

    text: str
    response: dict[str, Any] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    media: list[Any] | None = None


@dataclass
class ToolContext:
    """Everything a tool may consult: its merged `[tools.<name>]` table (read-only) and the runtime-wide settings."""

    name: str
    config: Mapping[str, Any]
    sandbox: Any
    security: SecuritySettings = field(default_factory=SecuritySettings)
    http_allowed_hosts: tuple[str, ...] = ()

    def opt(self, key: str, default: Any = None) -> Any:
        value = self.config.get(key)
        return default if value is None else value


class Tool:
    """Base class: sync tools override `run`; I/O tools override `arun`."""

    #: Sync tools that may block (large files, subprocesses) are run in a worker thread on the IO loop.
    blocking: bool = False
    #: True when the tool overrides `arun` (network tools); Lua-thread calls then go through block_on.
    is_async: bool = False

    def __init__(self, spec: ToolSpec) -> None:
        self.spec = spec

    def run(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        raise ToolError(f"{self.spec.name}: not implemented in this version")

    async def arun(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        if self.blocking:
            return await asyncio.to_thread(self.run, params, ctx)
        return self.run(params, ctx)


def json_text(value: Any) -> str:
    """Compact JSON with sorted keys (the §1.8 deterministic form)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS).decode()


def ok(operation: str, result: Any, message: str | None = None, **meta: Any) -> ToolOutput:
    """The §19.1 output contract for a successful operation."""
    body: dict[str, Any] = {"operation": operation, "success": True, "result": result}
    if message is not None:
        body["message"] = message
    return ToolOutput(json_text(body), metadata=dict(meta))


def fail(operation: str, error: str, result: Any = None, **meta: Any) -> ToolOutput:
    """The §19.1 output contract for a graceful failure (success = false, nothing raised)."""
    body: dict[str, Any] = {"operation": operation, "success": False, "error": error}
    if result is not None:
        body["result"] = result
    return ToolOutput(json_text(body), metadata=dict(meta))


def need(params: Mapping[str, Any], name: str, tool: str, typ: type | tuple[type, ...] = str) -> Any:
    """A parameter that this operation requires; raises naming it."""
    value = params.get(name)
    if value is None or (isinstance(value, str) and typ is str and value == ""):
        raise ToolParamError(f"{tool}: missing required parameter '{name}'")
    if not isinstance(value, typ) or isinstance(value, bool) and typ is not bool:
        tname = typ.__name__ if isinstance(typ, type) else "/".join(t.__name__ for t in typ)
        raise ToolParamError(f"{tool}: parameter '{name}' must be {_article(tname)}, got {type_label(value)}")
    return value


def choice(params: Mapping[str, Any], name: str, tool: str, allowed: tuple[str, ...], default: str) -> str:
    """A string parameter restricted to `allowed` (case-insensitive); raises listing the values."""
    value = params.get(name, default)
    if value is None:
        value = default
    if not isinstance(value, str) or value.lower() not in allowed:
        raise ToolParamError(f"{tool}: invalid {name} {value!r} (allowed: {', '.join(allowed)})")
    return value.lower()


def type_label(value: Any) -> str:
    """The Lua-facing type name of a converted parameter value."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _article(tname: str) -> str:
    names = {"str": "string", "int": "integer", "float": "number", "bool": "boolean", "list": "array",
             "dict": "table"}
    label = "/".join(names.get(t, t) for t in tname.split("/"))
    return ("an " if label[0] in "aeiou" else "a ") + label
