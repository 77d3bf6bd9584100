"""Agent: an LLM-backed object with a system prompt, bounded history, metrics, hooks and events.

`await agent.aexecute(input)` is the one execution path. It runs on the IO loop, returns the
lua-api.md §2.6 result as plain Python data, and raises `AgentError` for provider failures (after
retries) and a missing API key. Callers on the Lua thread (Lua `agent:execute`, workflow agent steps
with hooks) run it in its three parts, `before_here` / `acore` / `after_here`, so the Before and After
hooks fire on the Lua thread without a hop from the IO loop.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from llmspell.providers.base import (
    ChatMessage,
    ChatRequest,
    ChatResponse,
    DeltaCallback,
    Image,
    MissingKeyError,
    ProviderError,
    ToolDef,
)
from llmspell.providers.cost import price_usd
from llmspell.runtime.errors import ServiceError
from llmspell.script.bridge import LuaApiError

if TYPE_CHECKING:
    from llmspell.agents.registry import AgentRegistry

log = logging.getLogger("llmspell.agents")

DEFAULT_LIMITS = {"max_execution_time_secs": 300, "max_memory_mb": 512, "max_tool_calls": 100,
                  "max_recursion_depth": 10}
STATES = ("ready", "running", "paused", "terminated", "error")


class AgentError(LuaApiError, ServiceError):
    """An agent call failed (provider error after retries, missing key, cancelled by a hook...)."""

    def __init__(self, message: str, *, cause: BaseException | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.cause = cause
        self.status = status


@dataclass
class AgentConfig:
    """Everything a builder collects; `api_key` and `base_url` are never shown or persisted."""

    name: str
    provider: str
    model: str
    description: str = "LLM-powered agent"
    system_prompt: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    max_conversation_length: int = 100
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    allowed_tools: list[str] = field(default_factory=list)
    custom_config: dict[str, Any] = field(default_factory=dict)
    resource_limits: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    agent_type: str = "llm"

    @property
    def effective_system_prompt(self) -> str:
        if self.system_prompt is not None:
            return self.system_prompt
        return f"You are {self.name}, a helpful AI assistant. {self.description}"

    def public(self) -> dict[str, Any]:
        """`:get_config()`: never contains keys or base URL overrides."""
        out: dict[str, Any] = {
            "name": self.name, "description": self.description, "provider": self.provider, "model": self.model,
            "system_prompt": self.effective_system_prompt, "max_conversation_length": self.max_conversation_length,
            "allowed_tools": list(self.allowed_tools), "resource_limits": dict(self.resource_limits),
            "custom_config": copy.deepcopy(self.custom_config),
        }
        if self.temperature is not None:
            out["temperature"] = self.temperature
        if self.max_tokens is not None:
            out["max_tokens"] = self.max_tokens
        return out


@dataclass
class AgentMetrics:
    """Counters for `:get_metrics()` (all ints except cost)."""

    executions: int = 0
    successes: int = 0
    failures: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_cost_usd: float = 0.0
    total_duration_ms: int = 0
    last_duration_ms: int = 0

    def as_dict(self) -> dict[str, Any]:
        done = self.successes + self.failures
        return {"executions": self.executions, "successes": self.successes, "failures": self.failures,
                "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "total_tokens": self.input_tokens + self.output_tokens, "total_cost_usd": float(self.total_cost_usd),
                "avg_duration_ms": int(self.total_duration_ms // done) if done else 0,
                "last_duration_ms": self.last_duration_ms}


@dataclass
class _Turn:
    """Totals of one execute: every provider call of the tool loop, and the tool calls made."""

    input_tokens: int = 0
    output_tokens: int = 0
    usage_known: bool = True
    cost: float | None = None
    last: ChatResponse | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)

    def add(self, figures: tuple[int, int, bool, float | None], resp: ChatResponse) -> None:
        inp, out, known, cost = figures
        self.input_tokens += inp
        self.output_tokens += out
        self.usage_known = self.usage_known and known
        if cost is not None:
            self.cost = (self.cost or 0.0) + cost
        self.last = resp


def extract_json(text: str) -> Any:
    """The JSON object/array in a reply (``` fences removed), or None."""
    t = text.strip()
    if t.startswith("```"):
        first_nl = t.find("\n")
        t = t[first_nl + 1:] if first_nl >= 0 else t[3:]
        if t.rstrip().endswith("```"):
            t = t.rstrip()[:-3]
        t = t.strip()
    if not t or t[0] not in "[{":
        return None
    try:
        data = json.loads(t)
    except ValueError:
        return None
    return data if isinstance(data, dict | list) else None


def _images(value: Any) -> list[Image] | None:
    """`media`/`image` input: an array of {base64, format, width?, height?} (one table is accepted too)."""
    if value is None:
        return None
    items = [value] if isinstance(value, dict) else value
    if not isinstance(items, list):
        raise AgentError("Agent:execute: media must be an array of {base64 = ..., format = 'png'}")
    out = []
    for it in items:
        if not isinstance(it, dict) or not isinstance(it.get("base64"), str) or not it["base64"]:
            raise AgentError("Agent:execute: each media item needs base64 data (e.g. {base64 = b64, format = 'png'})")
        out.append(Image(base64=it["base64"], format=str(it.get("format") or "png")))
    return out or None


def normalize_input(value: Any, who: str = "Agent:execute") -> dict[str, Any]:
    """A string means {text = s}; `prompt`/`input` alias `text`; empty text raises."""
    if isinstance(value, str):
        value = {"text": value}
    if not isinstance(value, dict):
        raise AgentError(f"{who}: input must be a string or a table with 'text' (e.g. {{text = \"Hello\"}})")
    text = value.get("text")
    if text is None:
        text = value.get("prompt", value.get("input"))
    if not isinstance(text, str) or not text.strip():
        raise AgentError(f"{who}: input text is empty (pass a non-empty string or {{text = \"...\"}})")
    out = dict(value)
    out["text"] = text
    return out


class Agent:
    """One named LLM agent of a runtime."""

    def __init__(self, config: AgentConfig, registry: AgentRegistry) -> None:
        self.config = config
        self._registry = registry
        self.history: list[ChatMessage] = []
        self.state = "ready"
        self.metrics = AgentMetrics()
        self.last_error: str | None = None
        self.consecutive_failures = 0
        self._lock = threading.Lock()
        self._running = 0

    # ------------------------------------------------------------ fields
    @property
    def name(self) -> str:
        return self.config.name

    @property
    def model(self) -> str:
        return self.config.model

    @property
    def provider(self) -> str:
        return self.config.provider

    def __repr__(self) -> str:
        return f"Agent({self.name}, {self.provider}/{self.model})"

    def _label(self) -> str:
        return f"agent '{self.name}' ({self.provider}/{self.model})"

    # ------------------------------------------------------------ history
    def get_history(self) -> list[dict[str, str]]:
        with self._lock:
            return [{"role": m.role, "content": m.content} for m in self.history]

    def set_history(self, items: list[dict[str, Any]]) -> None:
        msgs = [ChatMessage(str(i.get("role", "user")), str(i.get("content", ""))) for i in items if isinstance(i, dict)]
        with self._lock:
            self.history = msgs

    def clear_history(self) -> None:
        with self._lock:
            self.history = []

    def _append_history(self, user: str, reply: str) -> None:
        limit = self.config.max_conversation_length
        if limit <= 0:
            return
        with self._lock:
            self.history.extend([ChatMessage("user", user), ChatMessage("assistant", reply)])
            if len(self.history) > limit:
                del self.history[: len(self.history) - limit]

    # ------------------------------------------------------------ request
    def build_request(self, inp: dict[str, Any], context_text: str | None = None) -> ChatRequest:
        """The §2.7 message list and parameters for one call (history as it is now)."""
        cfg = self.config
        spec = self._registry.providers.spec(cfg.provider)
        raw_params = inp.get("parameters")
        params: dict[str, Any] = raw_params if isinstance(raw_params, dict) else {}
        system = inp.get("system") if isinstance(inp.get("system"), str) else cfg.effective_system_prompt
        text = inp["text"]
        if isinstance(inp.get("instruction"), str) and inp["instruction"]:
            text = inp["instruction"] + "\n\n" + text
        if context_text:
            text = context_text + "\n\n" + text
        messages = [ChatMessage("system", system)] if system else []
        use_history = inp.get("history", True) is not False
        if use_history and cfg.max_conversation_length > 0:
            with self._lock:
                messages.extend(self.history[-cfg.max_conversation_length:])
        messages.append(ChatMessage("user", text, images=_images(inp.get("media", inp.get("image")))))
        max_tokens = params.get("max_tokens") or cfg.max_tokens or (spec.default_max_tokens if spec else 2048)
        temperature = params.get("temperature", cfg.temperature)
        if temperature is None and spec is not None:
            temperature = spec.temperature
        stop = params.get("stop")
        if isinstance(stop, str):
            stop = [stop]
        return ChatRequest(model=cfg.model, messages=messages, max_tokens=int(max_tokens),
                           temperature=float(temperature) if temperature is not None else None,
                           stop=list(stop) if isinstance(stop, list) and stop else None,
                           seed=int(params["seed"]) if isinstance(params.get("seed"), int | float) else None,
                           response_format="json" if params.get("response_format") in ("json", "json_object")
                           else None)

    # ------------------------------------------------------------ execution
    async def aexecute(self, input: Any, *, on_delta: DeltaCallback | None = None,
                       context_text: str | None = None, _depth: int = 0) -> dict[str, Any]:
        """Run one call (hooks, events, retries by AgentError hooks) and return the §2.6 result."""
        inp = normalize_input(input)
        self._check_runnable()
        hooks = self._hooks()
        oc = None
        if hooks is not None and hooks.active("BeforeAgentExecution"):
            oc = await hooks.arun("BeforeAgentExecution", {"agent": self.name, "input": inp}, component=self._comp())
        inp, result, final = await self.acore(inp, oc, on_delta=on_delta, context_text=context_text, _depth=_depth)
        if final:
            return result
        if hooks is not None and hooks.active("AfterAgentExecution"):
            oc = await hooks.arun("AfterAgentExecution", self._after_data(inp, result), component=self._comp())
            self._apply_after(result, oc)
        self._completed(result)
        return result

    # The same call in three parts, for callers on the Lua thread (Lua `agent:execute`, a workflow's
    # agent step): the Before and After hooks run where the caller is, so firing them costs no thread
    # hop from the IO loop; `acore` is the part on the IO loop. Same hooks, same order, same effects.
    def before_here(self, input: Any) -> tuple[dict[str, Any], Any]:
        """Fire BeforeAgentExecution on this (the Lua) thread: (the normalized input, the outcome or None)."""
        inp = normalize_input(input)
        self._check_runnable()
        hooks = self._hooks()
        if hooks is None or not hooks.active("BeforeAgentExecution"):
            return inp, None
        return inp, hooks.run("BeforeAgentExecution", {"agent": self.name, "input": inp}, component=self._comp())

    async def acore(self, inp: dict[str, Any], before: Any, *, on_delta: DeltaCallback | None = None,
                    context_text: str | None = None, _depth: int = 0) -> tuple[dict[str, Any], dict[str, Any], bool]:
        """Apply the Before outcome and run the call: (input, result, final). A final result (skipped, or
        from an agent a hook redirected to) gets no After hook from this agent."""
        reg = self._registry
        if before is not None:
            oc = before
            action = getattr(oc, "action", "continue")
            if action == "skip":
                return inp, {"text": "", "response": "", "skipped": True,
                             "metadata": {"skipped": True, "agent": self.name}}, True
            if action == "cancel":
                raise AgentError(f"cancelled by hook: {getattr(oc, 'reason', None) or 'cancelled'}")
            if action == "modified" and isinstance(getattr(oc, "data", None), dict):
                new_inp = oc.data.get("input")
                if new_inp is not None:
                    inp = normalize_input(new_inp)
            if action == "redirect" and getattr(oc, "target", None):
                target = reg.get(str(oc.target))
                if target is None:
                    raise AgentError(f"{self._label()}: hook redirected to unknown agent '{oc.target}'")
                if _depth >= int(self.config.resource_limits.get("max_recursion_depth", 10)):
                    raise AgentError(f"{self._label()}: redirect depth exceeded max_recursion_depth")
                return inp, await target.aexecute(inp, on_delta=on_delta, context_text=context_text,
                                                  _depth=_depth + 1), True
        hooks = self._hooks()
        comp = self._comp()
        self._publish("agent.execution.started", {"agent": self.name, "provider": self.provider, "model": self.model})
        attempt = 0
        while True:
            try:
                result = await self._execute_once(inp, on_delta, context_text)
                break
            except AgentError as e:
                outcome = None
                if hooks is not None and hooks.active("AgentError"):
                    outcome = await hooks.arun("AgentError", {"agent": self.name, "error": e.message}, component=comp)
                if outcome is not None and getattr(outcome, "action", "") == "retry" and \
                        attempt + 1 < max(1, int(getattr(outcome, "max_attempts", 1) or 1)):
                    attempt += 1
                    delay = float(getattr(outcome, "delay_ms", 0) or 0) / 1000.0
                    if delay > 0:
                        await asyncio.sleep(delay)
                    continue
                self._publish("agent.execution.failed", {"agent": self.name, "provider": self.provider,
                                                         "model": self.model, "error": e.message})
                raise
        return inp, result, False

    def after_here(self, inp: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
        """Fire AfterAgentExecution on this (the Lua) thread, apply it, publish completion; the result."""
        hooks = self._hooks()
        if hooks is not None and hooks.active("AfterAgentExecution"):
            oc = hooks.run("AfterAgentExecution", self._after_data(inp, result), component=self._comp())
            self._apply_after(result, oc)
        self._completed(result)
        return result

    def _check_runnable(self) -> None:
        if self.state in ("paused", "terminated"):
            raise AgentError(f"{self._label()}: cannot execute while {self.state} (call :resume() or build it again)")

    def _hooks(self) -> Any:
        reg = self._registry
        return reg.services.hooks if reg.services is not None else None

    def _comp(self) -> tuple[str, str]:
        return ("agent", self.name)

    def _after_data(self, inp: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
        return {"agent": self.name, "input": inp, "output": {"text": result["text"],
                                                             "metadata": dict(result["metadata"])}}

    @staticmethod
    def _apply_after(result: dict[str, Any], oc: Any) -> None:
        if getattr(oc, "action", "") == "modified" and isinstance(getattr(oc, "data", None), dict):
            new_out = oc.data.get("output")
            if isinstance(new_out, dict) and isinstance(new_out.get("text"), str):
                result["text"] = result["response"] = new_out["text"]
                data = extract_json(new_out["text"])
                if data is not None:
                    result["data"] = data
                else:
                    result.pop("data", None)

    def _completed(self, result: dict[str, Any]) -> None:
        md = result["metadata"]
        self._publish("agent.execution.completed", {"agent": self.name, "provider": self.provider, "model": self.model,
                                                    "duration_ms": md.get("duration_ms"),
                                                    "total_tokens": md.get("total_tokens")})

    async def _execute_once(self, inp: dict[str, Any], on_delta: DeltaCallback | None,
                            context_text: str | None) -> dict[str, Any]:
        req = self.build_request(inp, context_text)
        user_text = req.messages[-1].content
        limit = float(self.config.resource_limits.get("max_execution_time_secs") or 300)
        t0 = time.perf_counter()
        with self._lock:
            self.metrics.executions += 1
            self._running += 1
            if self.state == "ready":
                self.state = "running"
        try:
            turn = await asyncio.wait_for(self._converse(req, on_delta), timeout=limit)
        except MissingKeyError as e:
            self._failed(e.message, t0)
            raise AgentError(f"{self._label()}: {e.message}", cause=e) from None
        except ProviderError as e:
            msg = f"{self._label()}: {e.describe()}"
            self._failed(msg, t0)
            raise AgentError(msg, cause=e, status=e.status) from None
        except TimeoutError:
            msg = f"{self._label()}: execution exceeded max_execution_time ({limit:g} s)"
            self._failed(msg, t0)
            raise AgentError(msg) from None
        except asyncio.CancelledError:
            self._failed("cancelled", t0)
            raise
        finally:
            with self._lock:
                self._running -= 1
                if self._running == 0 and self.state == "running":
                    self.state = "ready"
        return self._result(turn, user_text, inp, t0)

    async def _converse(self, req: ChatRequest, on_delta: DeltaCallback | None) -> _Turn:
        """One provider call, or the tool loop when tools are allowed and the provider supports them."""
        reg = self._registry
        tools = self._tool_defs() if on_delta is None else None
        if tools:
            req.tools = tools
        max_calls = int(self.config.resource_limits.get("max_tool_calls") or 100)
        turn = _Turn()
        while True:
            resp = await reg.providers.chat(self.provider, req, base_url=self.config.base_url,
                                            api_key=self.config.api_key, on_delta=on_delta,
                                            stream=on_delta is not None)
            turn.add(self._record(req, resp), resp)
            if not tools or not resp.tool_calls:
                return turn
            if len(turn.tool_calls) >= max_calls:
                log.warning("agent '%s': max_tool_calls (%d) reached; returning the last reply", self.name, max_calls)
                return turn
            req.messages.append(ChatMessage("assistant", resp.text or "", tool_calls=list(resp.tool_calls)))
            for call in resp.tool_calls:
                text = await self._run_tool(call.name, call.arguments)
                turn.tool_calls.append({"name": call.name, "arguments": call.arguments, "result_text": text})
                req.messages.append(ChatMessage("tool", text, tool_call_id=call.id))

    def _tool_defs(self) -> list[ToolDef] | None:
        """The allowed tools as function definitions (None when there are none or the provider lacks tools)."""
        names = self.config.allowed_tools
        treg = getattr(self._registry.services, "tools", None)
        if not names or treg is None:
            return None
        info = self._registry.providers.info(self.provider) or {}
        if not info.get("capabilities", {}).get("supports_tools"):
            return None
        defs = []
        for name in names:
            spec = treg.resolve(name)
            if spec is None:
                continue
            schema = spec.schema()
            props: dict[str, Any] = {}
            required: list[str] = []
            for p in schema.get("parameters", []):
                prop: dict[str, Any] = {"type": p.get("type", "string"), "description": p.get("description", "")}
                if prop["type"] == "array":
                    prop["items"] = {}
                props[p["name"]] = prop
                if p.get("required"):
                    required.append(p["name"])
            defs.append(ToolDef(name=spec.name, description=spec.description,
                                parameters={"type": "object", "properties": props, "required": required}))
        return defs or None

    async def _run_tool(self, name: str, arguments: dict[str, Any]) -> str:
        """Run one model-requested tool call through the tool invoker; failures become the result text."""
        if name not in self.config.allowed_tools:
            return f"error: tool '{name}' is not allowed for this agent"
        from llmspell.tools.invoke import shared_invoker

        inv = shared_invoker(self._registry.services)
        try:
            result = await inv.ainvoke(name, dict(arguments))
        except Exception as e:  # noqa: BLE001 - a failing tool is reported back to the model
            return f"error: {e}"
        text = result.get("text") if isinstance(result, dict) else None
        return text if isinstance(text, str) else json.dumps(result, sort_keys=True, default=str)

    def _record(self, req: ChatRequest, resp: ChatResponse) -> tuple[int, int, bool, float | None]:
        """Tokens (estimated when usage is missing) and cost of one provider call, recorded in the run stats."""
        if resp.usage is not None:
            inp_t, out_t, known = resp.usage.input_tokens, resp.usage.output_tokens, True
        else:
            prompt_chars = sum(len(m.content) for m in req.messages)
            inp_t, out_t, known = math.ceil(prompt_chars / 4), math.ceil(len(resp.text or "") / 4), False
        cost = price_usd(self.model, inp_t, out_t, self.provider)
        services = self._registry.services
        if services is not None and getattr(services, "stats", None) is not None:
            services.stats.record_llm_call(self.model, inp_t, out_t, cost, resp.latency_ms)
        return inp_t, out_t, known, cost

    def _failed(self, message: str, t0: float) -> None:
        dur = int((time.perf_counter() - t0) * 1000)
        with self._lock:
            self.metrics.failures += 1
            self.metrics.last_duration_ms = dur
            self.metrics.total_duration_ms += dur
            self.last_error = message
            self.consecutive_failures += 1
        stats = self._registry.services.stats if self._registry.services is not None else None
        if stats is not None:
            stats.count("errors")

    def _result(self, turn: _Turn, user_text: str, inp: dict[str, Any], t0: float) -> dict[str, Any]:
        reg = self._registry
        dur = int((time.perf_counter() - t0) * 1000)
        resp = turn.last
        assert resp is not None
        text = resp.text or ""
        md: dict[str, Any] = {"agent": self.name, "provider": self.provider, "model": self.model,
                              "duration_ms": dur, "execution_time_ms": dur,
                              "provider_total_requests": reg.providers.request_count(self.provider)}
        if resp.finish_reason is not None:
            md["finish_reason"] = str(resp.finish_reason)
        inp_t, out_t, cost = turn.input_tokens, turn.output_tokens, turn.cost
        if turn.usage_known:
            md.update(input_tokens=inp_t, output_tokens=out_t, total_tokens=inp_t + out_t,
                      token_count=inp_t + out_t)
        md["estimated_tokens"] = inp_t + out_t
        if cost is not None:
            md["cost_usd"] = float(cost)
            md["estimated_cost_cents"] = float(cost * 100.0)
        with self._lock:
            m = self.metrics
            m.successes += 1
            m.input_tokens += inp_t
            m.output_tokens += out_t
            m.total_cost_usd += cost or 0.0
            m.last_duration_ms = dur
            m.total_duration_ms += dur
            self.consecutive_failures = 0
        if inp.get("history", True) is not False:
            self._append_history(user_text, text)
        result: dict[str, Any] = {"text": text, "response": text, "metadata": md}
        data = extract_json(text)
        if data is not None:
            result["data"] = data
        if turn.tool_calls:
            result["tool_calls"] = turn.tool_calls
        return result

    def _publish(self, event_type: str, data: dict[str, Any]) -> None:
        services = self._registry.services
        bus = getattr(services, "events", None) if services is not None else None
        if bus is None:
            return
        try:
            bus.publish(event_type, {k: v for k, v in data.items() if v is not None})
        except Exception:  # noqa: BLE001 - events never fail an agent call
            log.debug("event publish failed", exc_info=True)

    # ------------------------------------------------------------ lifecycle
    def set_lifecycle(self, state: str) -> str:
        with self._lock:
            self.state = state
        return state

    def health(self) -> dict[str, Any]:
        out: dict[str, Any] = {"healthy": self.state not in ("error", "terminated") and self.consecutive_failures < 3,
                               "state": self.state, "consecutive_failures": self.consecutive_failures}
        if self.last_error is not None:
            out["last_error"] = self.last_error
        return out

    def snapshot(self) -> dict[str, Any]:
        return {"history": self.get_history(), "config": self.config.public()}


class CompositeAgent(Agent):
    """Runs its member agents in order, each receiving the previous reply (lua-api.md §2.1)."""

    def __init__(self, config: AgentConfig, registry: AgentRegistry, members: list[str]) -> None:
        super().__init__(config, registry)
        self.members = list(members)

    async def _execute_once(self, inp: dict[str, Any], on_delta: DeltaCallback | None,
                            context_text: str | None) -> dict[str, Any]:
        t0 = time.perf_counter()
        text = inp["text"]
        if isinstance(inp.get("instruction"), str) and inp["instruction"]:
            text = inp["instruction"] + "\n\n" + text
        totals = {"input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0}
        known = True
        last: dict[str, Any] = {}
        with self._lock:
            self.metrics.executions += 1
        for i, name in enumerate(self.members):
            agent = self._registry.get(name)
            if agent is None:
                msg = f"{self._label()}: member agent '{name}' no longer exists"
                self._failed(msg, t0)
                raise AgentError(msg)
            step: dict[str, Any] = {"text": text, "history": inp.get("history", True)}
            try:
                last = await agent.aexecute(step, on_delta=on_delta if i == len(self.members) - 1 else None,
                                            context_text=context_text if i == 0 else None)
            except AgentError as e:
                self._failed(e.message, t0)
                raise AgentError(f"{self._label()}: member '{name}' failed: {e.message}", cause=e) from None
            text = last.get("text", "")
            md = last.get("metadata", {})
            if "input_tokens" in md:
                totals["input_tokens"] += md["input_tokens"]
                totals["output_tokens"] += md["output_tokens"]
            else:
                known = False
            totals["cost_usd"] += md.get("cost_usd", 0.0)
        dur = int((time.perf_counter() - t0) * 1000)
        md_out: dict[str, Any] = {"agent": self.name, "provider": self.provider, "model": self.model,
                                  "duration_ms": dur, "execution_time_ms": dur, "members": list(self.members),
                                  "cost_usd": float(totals["cost_usd"]),
                                  "estimated_cost_cents": float(totals["cost_usd"] * 100.0),
                                  "provider_total_requests": self._registry.providers.request_count(self.provider)}
        total = int(totals["input_tokens"] + totals["output_tokens"])
        if known:
            md_out.update(input_tokens=int(totals["input_tokens"]), output_tokens=int(totals["output_tokens"]),
                          total_tokens=total, token_count=total)
        md_out["estimated_tokens"] = total if known else math.ceil(len(text) / 4)
        with self._lock:
            m = self.metrics
            m.successes += 1
            m.input_tokens += int(totals["input_tokens"])
            m.output_tokens += int(totals["output_tokens"])
            m.total_cost_usd += totals["cost_usd"]
            m.last_duration_ms = dur
            m.total_duration_ms += dur
            self.consecutive_failures = 0
        result: dict[str, Any] = {"text": text, "response": text, "metadata": md_out}
        data = extract_json(text)
        if data is not None:
            result["data"] = data
        return result
