"""Provider registry: built-ins, presets and configured endpoints; "provider/model" resolution; keys; calls.

`build_registry(config, services)` is the service factory (bootstrap.SERVICE_FACTORIES). It also
installs the process-wide traffic mode named by LLMSPELL_TRAFFIC (providers/traffic.py).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from llmspell.config import BUILTIN_PROVIDERS, STANDARD_BASE_URL_ENV, is_loopback
from llmspell.providers import traffic
from llmspell.providers.anthropic import AnthropicAdapter
from llmspell.providers.base import (
    DEFAULT_MAX_RESPONSE_BYTES,
    ChatRequest,
    ChatResponse,
    DeltaCallback,
    Endpoint,
    MissingKeyError,
    ProviderAdapter,
    ProviderError,
    Usage,
    call_delta,
    join_url,
)
from llmspell.providers.ollama import OllamaAdapter
from llmspell.providers.openai import OpenAIAdapter
from llmspell.providers.retry import BreakerBoard, RetryPolicy, with_retries
from llmspell.providers.scrub import register_provider_secrets
from llmspell.providers.trust import CwdGate, gate_for
from llmspell.runtime.io import get_io
from llmspell.runtime.redact import register_secret
from llmspell.settings import as_bool, settings_of

log = logging.getLogger("llmspell.providers")

KINDS = ("openai", "anthropic", "ollama")
#: The OpenAI-format endpoints a provider can use ([providers.<name>] api).
APIS = ("chat", "completions")
ADAPTERS: dict[str, type[ProviderAdapter]] = {"openai": OpenAIAdapter, "anthropic": AnthropicAdapter,
                                              "ollama": OllamaAdapter}

#: name -> (wire kind, default base URL, standard key variable); one table, owned by config.
BUILTINS = BUILTIN_PROVIDERS
#: Standard base-URL variables (override the file, lose to LLMSPELL_PROVIDER_<P>_BASE_URL).
STANDARD_BASE_ENV = STANDARD_BASE_URL_ENV
#: Key aliases of [providers.<name>] entries (lua-api.md §20.2).
ALIASES = {"type": "provider_type", "api_base": "base_url", "endpoint": "base_url", "api_base_env": "base_url_env",
           "model": "default_model", "timeout": "timeout_seconds", "retry_attempts": "max_retries"}
_ENV_SUFFIXES = (("FORCE_MODEL", "force_model"), ("MAX_RETRIES", "max_retries"), ("API_KEY", "api_key_override"),
                 ("BASE_URL", "base_url_override"), ("TIMEOUT", "timeout_seconds"), ("MODEL", "default_model"),
                 ("TYPE", "provider_type"))
_CAPS = {"openai": (True, True, True), "anthropic": (True, True, True), "ollama": (True, False, False)}
_CONTEXT = {"openai": 128000, "anthropic": 200000}


def env_name(provider: str) -> str:
    """A provider name as used in variable names: upper-cased, '-' -> '_'."""
    return provider.upper().replace("-", "_")


def normalize_base_url(kind: str, url: str) -> str:
    """§20.2: openai bases get /v1 when they have no path; anthropic bases drop a trailing /v1."""
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = "http://" + url
    parts = urlsplit(url)
    if kind == "openai" and parts.path in ("", "/"):
        return join_url(url, "/v1")
    if kind == "anthropic" and url.endswith("/v1"):
        return url[:-3]
    return url


@dataclass
class ProviderSpec:
    """One provider's effective settings (config file + environment + defaults)."""

    name: str
    kind: str = "openai"
    base_url: str | None = None
    base_url_env: str | None = None
    api_key_env: str | None = None
    api_key: str | None = None
    api_key_override: str | None = None
    api_key_required: bool | None = None
    standard_key_env: str | None = None
    default_model: str | None = None
    timeout_seconds: float = 120.0
    max_retries: int = 2
    max_tokens: int | None = None
    temperature: float | None = None
    max_concurrent_requests: int = 8
    anthropic_version: str = "2023-06-01"
    headers: dict[str, str] = field(default_factory=dict)
    force_model: str | None = None
    model_aliases: dict[str, str] = field(default_factory=dict)
    enabled: bool = True
    requests_per_minute: int | None = None
    configured: bool = False
    base_url_override: str | None = None
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    api: str = "chat"

    @property
    def default_max_tokens(self) -> int:
        return self.max_tokens or (4096 if self.kind == "anthropic" else 2048)


class _RateLimiter:
    """requests_per_minute enforced as a sliding one-minute window (on the IO loop)."""

    def __init__(self, rpm: int, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.rpm = rpm
        self._times: deque[float] = deque()
        self._clock = clock
        self._sleep = sleep

    async def acquire(self) -> None:
        while True:
            now = self._clock()
            while self._times and now - self._times[0] >= 60.0:
                self._times.popleft()
            if len(self._times) < self.rpm:
                self._times.append(now)
                return
            await self._sleep(60.0 - (now - self._times[0]))


class ProviderRegistry:
    """Every provider known to one runtime, and the single path by which agents call them."""

    def __init__(self, specs: dict[str, ProviderSpec], *, env: Mapping[str, str], default_provider: str = "openai",
                 default_model: str | None = None, mode: str = "live", warnings: list[str] | None = None) -> None:
        self.specs = specs
        self.env = env
        self.default_provider = default_provider
        self.default_model = default_model
        self.configured_mode = mode
        self.warnings = warnings or []
        self.breakers = BreakerBoard()
        self._requests: dict[str, int] = {}
        self._sems: dict[str, asyncio.Semaphore] = {}
        self._limiters: dict[str, _RateLimiter] = {}
        self._lock = threading.Lock()
        #: Set when the config came from the working directory untrusted (providers/trust.py).
        self.gate: CwdGate | None = None

    @property
    def mode(self) -> str:
        """The process's installed traffic mode (traffic is process-wide)."""
        return traffic.installed().mode

    # ------------------------------------------------------------ lookup
    def names(self) -> list[str]:
        return sorted(self.specs)

    def configured_names(self) -> list[str]:
        """Providers the config names (file or LLMSPELL_PROVIDER_* variables) or whose key is set (§3)."""
        return sorted(n for n, spec in self.specs.items() if spec.configured or self.has_key(n))

    def has(self, name: str) -> bool:
        return name in self.specs

    def spec(self, name: str) -> ProviderSpec | None:
        return self.specs.get(name)

    def resolve(self, model: str | None, provider: str | None, fname: str = "Agent.builder") -> tuple[str, str]:
        """§2.3: (provider, model) for a builder's :model / :provider; raises ValueError with the spec's text."""
        if model:
            head, sep, rest = model.partition("/")
            if sep and head in self.specs and rest:
                return head, rest
            if sep and provider is None:
                raise ValueError(f"{fname}: unknown provider '{head}' (configure [providers.{head}] or use :provider())")
            if provider is not None:
                return self._known(provider, fname), model
            if model.startswith("claude-"):
                return "anthropic", model
            return self._known(self.default_provider, fname), model
        name = self._known(provider or self.default_provider, fname)
        spec = self.specs[name]
        default = spec.default_model or (self.default_model if provider is None else None)
        if default:
            if "/" in default and default.split("/", 1)[0] in self.specs and provider is None:
                return self.resolve(default, None, fname)
            return name, default
        raise ValueError(f'{fname}: model is required (e.g. :model("openai/gpt-4o-mini"))')

    def _known(self, name: str, fname: str) -> str:
        if name not in self.specs:
            raise ValueError(f"{fname}: unknown provider '{name}' (configure [providers.{name}] or use :provider())")
        return name

    def wire_model(self, name: str, model: str) -> str:
        """The model id sent on the wire after force_model / model_aliases routing."""
        spec = self.specs[name]
        if spec.force_model:
            return spec.force_model
        return spec.model_aliases.get(model, model)

    def base_url(self, name: str, override: str | None = None) -> str | None:
        spec = self.specs[name]
        url = override or spec.base_url_override
        if not url and spec.base_url_env:
            url = self.env.get(spec.base_url_env) or None
        if not url:
            std = STANDARD_BASE_ENV.get(name)
            url = (self.env.get(std) if std else None) or spec.base_url
        return normalize_base_url(spec.kind, url) if url else None

    def key_needed(self, name: str, base_url_override: str | None = None) -> bool:
        """False for ollama, loopback endpoints, api_key_required = false, and replay mode (§2.4)."""
        spec = self.specs[name]
        if self.mode == "replay" or spec.kind == "ollama" or spec.api_key_required is False:
            return False
        if base_url_override and is_loopback(base_url_override):
            return False
        url = self.base_url(name, base_url_override)
        return not (spec.api_key_required is None and url is not None and is_loopback(url))

    def find_key(self, name: str, override: str | None = None) -> str | None:
        """The first key found in the §2.4 order."""
        spec = self.specs[name]
        p = env_name(name)
        for candidate in (override, spec.api_key_override, self.env.get(f"LLMSPELL_PROVIDER_{p}_API_KEY"),
                          self.env.get(f"LLMSPELL_{p}_API_KEY"),
                          self.env.get(spec.api_key_env) if spec.api_key_env else None,
                          self.env.get(spec.standard_key_env) if spec.standard_key_env else None, spec.api_key):
            if candidate:
                return candidate
        return None

    def key_variable(self, name: str) -> str:
        """The variable to name in 'no API key' messages."""
        spec = self.specs[name]
        return spec.api_key_env or spec.standard_key_env or f"LLMSPELL_PROVIDER_{env_name(name)}_API_KEY"

    def missing_key_message(self, name: str) -> str:
        var = self.key_variable(name)
        alt = f"LLMSPELL_PROVIDER_{env_name(name)}_API_KEY"
        also = f" (or {alt})" if alt != var else ""
        return f"no API key — set {var}{also}, or point [providers.{name}] base_url at a local server"

    def has_key(self, name: str) -> bool:
        return self.find_key(name) is not None

    def is_available(self, name: str) -> bool:
        spec = self.specs.get(name)
        if spec is None or not spec.enabled or self.base_url(name) is None:
            return False
        return self.has_key(name) or not self.key_needed(name)

    def info(self, name: str) -> dict[str, Any] | None:
        """The Provider.list entry (never includes keys)."""
        spec = self.specs.get(name)
        if spec is None:
            return None
        streaming, tools, multimodal = _CAPS[spec.kind]
        caps: dict[str, Any] = {"supports_streaming": streaming, "supports_tools": tools,
                                "supports_multimodal": multimodal}
        if name in _CONTEXT and spec.kind == name and not spec.force_model:
            caps["max_context_tokens"] = _CONTEXT[name]
        return {"name": name, "type": spec.kind, "enabled": spec.enabled, "base_url": self.base_url(name) or "",
                "default_model": spec.default_model, "has_key": self.has_key(name), "capabilities": caps}

    def request_count(self, name: str) -> int:
        return self._requests.get(name, 0)

    # ------------------------------------------------------------ calls
    def endpoint(self, name: str, *, base_url: str | None = None, api_key: str | None = None) -> Endpoint:
        """Resolve where and how to call a provider; raises MissingKeyError / ProviderError when unusable."""
        spec = self.specs[name]
        url = self.base_url(name, base_url)
        if url is None:
            raise ProviderError(f"provider '{name}' has no base URL",
                                provider=name, hint=f"set [providers.{name}] base_url (or the variable named by "
                                                    "base_url_env)")
        key = self.find_key(name, api_key) if self.mode != "replay" else None
        register_secret(key)
        if key is not None and self.gate is not None:
            key = self.gate.vet(name, url, key, explicit=api_key is not None, standard_env=spec.standard_key_env,
                                default_url=BUILTINS[name][1] if name in BUILTINS else None)
        if key is None and self.key_needed(name, base_url):
            raise MissingKeyError(self.missing_key_message(name), provider=name)
        return Endpoint(provider=name, kind=spec.kind, base_url=url, api_key=key, key_env=self.key_variable(name),
                        timeout_seconds=spec.timeout_seconds, headers=dict(spec.headers),
                        anthropic_version=spec.anthropic_version, api=spec.api,
                        max_response_bytes=spec.max_response_bytes)

    def prepare(self, name: str, *, base_url: str | None = None) -> None:
        """Make the provider's HTTP client ready (agents call this when built; a first call then pays only the network)."""
        url = self.base_url(name, base_url)
        if url:
            get_io().prepare(url)

    def adapter(self, name: str, *, base_url: str | None = None, api_key: str | None = None) -> ProviderAdapter:
        ep = self.endpoint(name, base_url=base_url, api_key=api_key)
        return ADAPTERS[ep.kind](ep)

    def _count(self, name: str) -> None:
        with self._lock:
            self._requests[name] = self._requests.get(name, 0) + 1

    def _semaphore(self, name: str) -> asyncio.Semaphore:
        sem = self._sems.get(name)
        if sem is None:
            sem = self._sems[name] = asyncio.Semaphore(max(1, self.specs[name].max_concurrent_requests))
        return sem

    async def chat(self, name: str, req: ChatRequest, *, base_url: str | None = None, api_key: str | None = None,
                   on_delta: DeltaCallback | None = None, stream: bool = False) -> ChatResponse:
        """Send a chat request with routing, concurrency limit, rate limit, retries and circuit breaker.

        `req.model` is the model the script named; the wire model is applied here. Runs on the IO loop.
        """
        spec = self.specs[name]
        adapter = self.adapter(name, base_url=base_url, api_key=api_key)
        wire = replace(req, model=self.wire_model(name, req.model))
        policy = RetryPolicy(max_retries=max(0, spec.max_retries))
        breaker = self.breakers.get(adapter.url)
        limiter = self._limiters.get(name)
        if limiter is None and spec.requests_per_minute:
            limiter = self._limiters[name] = _RateLimiter(spec.requests_per_minute)
        attempts = 0

        emitted = False

        async def tracked(text: str) -> None:
            nonlocal emitted
            emitted = True
            await call_delta(on_delta, text)

        async def once() -> ChatResponse:
            nonlocal attempts
            attempts += 1
            if limiter is not None:
                await limiter.acquire()
            self._count(name)
            if not stream:
                return await adapter.chat(wire)
            try:
                return await adapter.chat_stream(replace(wire), tracked)
            except ProviderError as e:
                if emitted:
                    e.retryable = False  # deltas already reached the script: never replay them
                raise

        async with self._semaphore(name):
            t0 = time.perf_counter()
            try:
                resp = await with_retries(once, policy, breaker, endpoint=adapter.url, provider=name, model=req.model)
            except ProviderError as e:
                e.model = e.model or req.model
                raise
            resp.latency_ms = (time.perf_counter() - t0) * 1000.0
            resp.attempts = attempts
            return resp

    async def embed(self, name: str, model: str, texts: list[str], *, base_url: str | None = None,
                    api_key: str | None = None) -> tuple[list[list[float]], Usage | None]:
        """Embeddings through an OpenAI-compatible /embeddings endpoint (with retries)."""
        adapter = self.adapter(name, base_url=base_url, api_key=api_key)
        if not isinstance(adapter, OpenAIAdapter):
            raise ProviderError(f"provider '{name}' has no embeddings endpoint", provider=name, model=model,
                                hint="use an OpenAI-compatible provider for [rag.embedding]")
        spec = self.specs[name]

        async def once() -> tuple[list[list[float]], Usage | None]:
            self._count(name)
            return await adapter.embed(self.wire_model(name, model), texts)

        async with self._semaphore(name):
            return await with_retries(once, RetryPolicy(max_retries=spec.max_retries),
                                      self.breakers.get(adapter.embeddings_url), endpoint=adapter.embeddings_url,
                                      provider=name, model=model)


# ---------------------------------------------------------------------------- construction
def _entries(section: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """[providers.<name>] and [providers.providers.<name>] tables, aliases resolved (nested wins)."""
    out: dict[str, dict[str, Any]] = {}
    raw = section.get("providers")
    nested: Mapping[str, Any] = raw if isinstance(raw, dict) else {}
    for source in (section, nested):
        for name, entry in source.items():
            if name == "providers" or not isinstance(name, str) or not isinstance(entry, dict):
                continue
            norm = out.setdefault(name, {})
            for k, v in entry.items():
                norm[ALIASES.get(str(k), str(k))] = v
    return out


def _apply(spec: ProviderSpec, entry: Mapping[str, Any], warnings: list[str]) -> None:
    kind = entry.get("provider_type")
    if kind is not None:
        kind = "openai" if str(kind) in ("openai_compatible", "openai-compatible") else str(kind)
        if kind in KINDS:
            spec.kind = kind
        else:
            warnings.append(f"[providers.{spec.name}] provider_type {kind!r} is not openai, anthropic or ollama")
    for key in ("base_url", "base_url_env", "api_key_env", "api_key", "default_model", "anthropic_version",
                "force_model", "base_url_override", "api_key_override"):
        if entry.get(key) not in (None, ""):
            setattr(spec, key, str(entry[key]))
    for key, conv in (("timeout_seconds", float), ("max_retries", int), ("max_tokens", int),
                      ("temperature", float), ("max_concurrent_requests", int), ("max_response_bytes", int)):
        if entry.get(key) is not None:
            try:
                setattr(spec, key, conv(entry[key]))
            except (TypeError, ValueError):
                warnings.append(f"[providers.{spec.name}] {key} = {entry[key]!r} is not a number; ignored")
    if "timeout_minutes" in entry:
        spec.timeout_seconds = float(entry["timeout_minutes"]) * 60.0
    api = entry.get("api")
    if api is not None:
        if str(api) in APIS:
            spec.api = str(api)
        else:
            warnings.append(f"[providers.{spec.name}] api {api!r} is not chat or completions; chat is used")
    if entry.get("api_key_required") is not None:
        spec.api_key_required = as_bool(entry["api_key_required"], False)
    if entry.get("enabled") is not None:
        spec.enabled = as_bool(entry["enabled"], True)
    if isinstance(entry.get("headers"), dict):
        spec.headers.update({str(k): str(v) for k, v in entry["headers"].items()})
    if isinstance(entry.get("model_aliases"), dict):
        spec.model_aliases.update({str(k): str(v) for k, v in entry["model_aliases"].items()})
    rl = entry.get("rate_limit")
    if isinstance(rl, dict) and rl.get("requests_per_minute"):
        spec.requests_per_minute = int(rl["requests_per_minute"])


def _env_entries(env: Mapping[str, str], known: list[str]) -> dict[str, dict[str, Any]]:
    """LLMSPELL_PROVIDER_<NAME>_<SUFFIX> overrides (§21), keyed by provider name."""
    by_env = {env_name(n): n for n in known}
    out: dict[str, dict[str, Any]] = {}
    for var, value in env.items():
        if not var.startswith("LLMSPELL_PROVIDER_") or not value:
            continue
        body = var[len("LLMSPELL_PROVIDER_"):]
        for suffix, key in _ENV_SUFFIXES:
            if body.endswith("_" + suffix) and len(body) > len(suffix) + 1:
                pname = body[: -len(suffix) - 1]
                name = by_env.get(pname, pname.lower())
                out.setdefault(name, {})[key] = value
                break
    return out


def registry_from_config(config: Any, env: Mapping[str, str] | None = None) -> ProviderRegistry:
    """Build the registry from an LLMConfig and the environment it captured (or `env`, whose LLMSPELL_TRAFFIC then counts)."""
    settings = settings_of(config)
    explicit_env = env is not None
    env = env if env is not None else settings.providers.env
    warnings: list[str] = []
    specs: dict[str, ProviderSpec] = {}
    for name, (kind, url, key_env) in BUILTINS.items():
        specs[name] = ProviderSpec(name=name, kind=kind, base_url=url, standard_key_env=key_env)
    entries = _entries(settings.providers.entries)
    for name, entry in entries.items():
        spec = specs.get(name)
        if spec is None:
            kind = "openai"
            if name in KINDS:
                kind = name
            spec = specs[name] = ProviderSpec(name=name, kind=kind)
        spec.configured = True
        _apply(spec, entry, warnings)
    for name, entry in _env_entries(env, list(specs)).items():
        spec = specs.get(name)
        if spec is None:
            spec = specs[name] = ProviderSpec(name=name)
        spec.configured = True
        _apply(spec, entry, warnings)
    mode = settings.traffic.mode
    if explicit_env:
        try:
            mode = traffic.current_mode(env)
        except ValueError as e:
            warnings.append(str(e))
            mode = "live"
    reg = ProviderRegistry(specs, env=env, default_provider=settings.providers.default_provider,
                           default_model=settings.providers.default_model, mode=mode, warnings=warnings)
    reg.gate = gate_for(config, env)
    register_provider_secrets(reg, config)  # scrubbed by value from cassettes, logs, state and sessions
    return reg


def build_registry(config: Any, services: Any = None) -> ProviderRegistry:
    """Service factory: the provider registry, with the configuration's traffic mode installed (`settings.traffic`)."""
    reg = registry_from_config(config)
    traffic.install_settings(settings_of(config).traffic)
    for w in reg.warnings:
        log.warning("%s", w)
    return reg
