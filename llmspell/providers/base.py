"""Provider interface: chat request/response dataclasses, typed errors, and the shared HTTP plumbing.

Every adapter (openai, anthropic, ollama) turns a `ChatRequest` into its wire format, sends it with
the process-wide httpx client of the IO runtime, and turns the reply into a `ChatResponse`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from llmspell.runtime.errors import ServiceError
from llmspell.runtime.io import get_io

#: Called with each streamed text delta (on the IO loop).
DeltaCallback = Callable[[str], Awaitable[None] | None]
#: Default cap on one provider reply body ([providers.<name>] max_response_bytes).
DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024
#: What a reply parser may raise on a body of the wrong shape (turned into ResponseFormatError).
_SHAPE_ERRORS = (KeyError, TypeError, AttributeError, IndexError, ValueError)
_STREAM_SHAPE_ERRORS = (KeyError, TypeError, AttributeError, IndexError)


@dataclass(slots=True)
class Image:
    """An image attached to a user message (base64 data and its format, e.g. "png")."""

    base64: str
    format: str = "png"

    @property
    def media_type(self) -> str:
        fmt = self.format.lower().removeprefix("image/")
        return "image/" + ("jpeg" if fmt == "jpg" else fmt)


@dataclass(slots=True)
class ToolCall:
    """A function call the model asked for; `arguments` is the parsed JSON object."""

    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(slots=True)
class ToolDef:
    """A tool offered to the model: name, description and a JSON-schema object for its parameters."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(slots=True)
class ChatMessage:
    """One chat message: role is system, user, assistant or tool (a tool result for `tool_call_id`)."""

    role: str
    content: str
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    images: list[Image] | None = None


@dataclass(slots=True)
class ChatRequest:
    """A provider-neutral chat request (lua-api.md §2.7)."""

    model: str
    messages: list[ChatMessage]
    max_tokens: int
    temperature: float | None = None
    stop: list[str] | None = None
    seed: int | None = None
    response_format: str | None = None  # "json" asks for JSON mode
    stream: bool = False
    tools: list[ToolDef] | None = None

    @property
    def system(self) -> str | None:
        """The joined system messages (Anthropic sends them top-level)."""
        parts = [m.content for m in self.messages if m.role == "system"]
        return "\n\n".join(parts) if parts else None


@dataclass(slots=True)
class Usage:
    """Token usage as reported by the provider."""

    input_tokens: int
    output_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @classmethod
    def of(cls, input_tokens: Any, output_tokens: Any) -> Usage | None:
        """Usage from a reply's two counts (a missing one counts 0); None when it reported neither."""
        if input_tokens is None and output_tokens is None:
            return None
        return cls(int(input_tokens or 0), int(output_tokens or 0))


@dataclass(slots=True)
class ChatResponse:
    """A parsed provider reply."""

    text: str
    model: str
    usage: Usage | None = None
    finish_reason: str | None = None
    latency_ms: float = 0.0
    attempts: int = 1
    tool_calls: list[ToolCall] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


class ProviderError(ServiceError):
    """A provider call failed; carries what a user needs to fix it (status, provider message, hint)."""

    retryable = False

    def __init__(self, message: str, *, provider: str = "", model: str = "", status: int | None = None,
                 hint: str = "", retry_after: float | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.model = model
        self.status = status
        self.hint = hint
        self.retry_after = retry_after
        self.code = code
        self.attempts = 1

    def describe(self) -> str:
        """`<status> <message> — <hint>` for error strings shown to scripts."""
        head = f"{self.status} {self.message}" if self.status else self.message
        if self.attempts > 1:
            head += f" (after {self.attempts} attempts)"
        return f"{head} — {self.hint}" if self.hint else head

    def __str__(self) -> str:
        return self.describe()


class BadRequestError(ProviderError):
    """400/422: the request was rejected; never retried."""


class AuthenticationError(ProviderError):
    """401/403: bad, missing or unauthorized key; never retried."""


class NotFoundError(ProviderError):
    """404: unknown model or wrong endpoint."""


class RateLimitError(ProviderError):
    """429 rate limit (retried)."""

    retryable = True


class QuotaExceededError(ProviderError):
    """429 insufficient_quota: billing problem, never retried."""


class ServerError(ProviderError):
    """408/409/5xx: transient provider trouble (retried)."""

    retryable = True


class ProviderTimeoutError(ProviderError):
    """Connect or read timeout (retried)."""

    retryable = True


class ProviderConnectionError(ProviderError):
    """The endpoint could not be reached (retried)."""

    retryable = True


class ResponseFormatError(ProviderError):
    """The reply was not the documented format (malformed JSON, truncated stream)."""


class ResponseTooLargeError(ResponseFormatError):
    """The reply body grew past max_response_bytes; reading stopped there."""


class CircuitOpenError(ProviderError):
    """The endpoint failed repeatedly; calls fail fast until the cool-down ends."""


class MissingKeyError(ProviderError):
    """A key is required and none was found (lua-api.md §2.4)."""


class ReplayMissError(ProviderError):
    """Replay mode: the cassette holds no recorded response for this request."""


@dataclass(slots=True)
class Endpoint:
    """Where and how one provider is reached (resolved from config by the registry)."""

    provider: str
    kind: str  # openai | anthropic | ollama
    base_url: str
    api_key: str | None = None
    key_env: str = ""
    timeout_seconds: float = 120.0
    connect_timeout: float = 10.0
    headers: dict[str, str] = field(default_factory=dict)
    anthropic_version: str = "2023-06-01"
    api: str = "chat"  # openai kind: "chat" (/chat/completions) or "completions" (/completions, one prompt)
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES


class ProviderAdapter:
    """Base class of the wire-format adapters; subclasses implement `_build`, `_parse` and streaming."""

    kind = "base"
    supports_tools = True
    supports_streaming = True

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    # ------------------------------------------------------------ public API
    @property
    def url(self) -> str:
        """The full endpoint URL for chat requests."""
        raise NotImplementedError

    async def chat(self, req: ChatRequest) -> ChatResponse:
        """Send one non-streaming chat request and parse the reply."""
        t0 = time.perf_counter()
        payload = self.build_payload(req)
        resp = await self._send(req, payload)
        data = self._json(req, resp)
        try:
            out = self.parse_response(req, data)
        except _SHAPE_ERRORS as e:
            raise self._shape_error(req, e) from None
        out.latency_ms = (time.perf_counter() - t0) * 1000.0
        return out

    async def chat_stream(self, req: ChatRequest, on_delta: DeltaCallback | None) -> ChatResponse:
        """Send a streaming request, call `on_delta` per text delta, return the assembled reply."""
        t0 = time.perf_counter()
        req.stream = True
        payload = self.build_payload(req)
        client = get_io().http_client(self.endpoint.base_url)
        started = False
        try:
            async with client.stream("POST", self.url, json=payload, headers=self.headers(),
                                     timeout=self._timeout()) as resp:
                if resp.status_code >= 400:
                    await resp.aread()
                    raise self.error_for(req, resp)
                started = True
                resp.stream = _CappedStream(resp.stream, self.endpoint.max_response_bytes,
                                            lambda: self._too_large(req))
                try:
                    out = await self.parse_stream(req, resp, on_delta)
                except _STREAM_SHAPE_ERRORS as e:
                    raise self._shape_error(req, e) from None
        except httpx.TimeoutException as e:
            raise self._timeout_error(req, e) from None
        except (httpx.TransportError, httpx.StreamError) as e:
            if started:
                raise self._truncated(req) from None
            raise self._connect_error(req, e) from None
        out.latency_ms = (time.perf_counter() - t0) * 1000.0
        return out

    def headers(self) -> dict[str, str]:
        """Request headers: auth (only when a key is known) plus configured extras."""
        raise NotImplementedError

    def build_payload(self, req: ChatRequest) -> dict[str, Any]:
        raise NotImplementedError

    def parse_response(self, req: ChatRequest, data: dict[str, Any]) -> ChatResponse:
        raise NotImplementedError

    async def parse_stream(self, req: ChatRequest, resp: httpx.Response,
                           on_delta: DeltaCallback | None) -> ChatResponse:
        raise NotImplementedError

    # ------------------------------------------------------------ helpers
    def _json_headers(self, auth_header: str, auth_value: str, fixed: dict[str, str] | None = None) -> dict[str, str]:
        """JSON request headers, `fixed` ones, the auth header when a key is known, then configured extras."""
        h = {"content-type": "application/json", "accept": "application/json", **(fixed or {})}
        if self.endpoint.api_key:
            h[auth_header] = auth_value
        h.update(self.endpoint.headers)
        return h

    def _stream_json(self, req: ChatRequest, text: str, hint: str,
                     message: str = "malformed JSON in the event stream") -> Any:
        """One JSON item of a response stream; malformed JSON is a ResponseFormatError with `message`."""
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            raise self._err(ResponseFormatError, req, message, hint=hint) from None

    def _timeout(self) -> httpx.Timeout:
        ep = self.endpoint
        return httpx.Timeout(ep.timeout_seconds, connect=ep.connect_timeout)

    async def _send(self, req: ChatRequest, payload: dict[str, Any], url: str | None = None) -> httpx.Response:
        """POST and read the reply body, at most max_response_bytes; a body cut short is ResponseFormatError."""
        client = get_io().http_client(self.endpoint.base_url)
        request = client.build_request("POST", url or self.url, json=payload, headers=self.headers(),
                                       timeout=self._timeout())
        try:
            streamed = await client.send(request, stream=True)
        except httpx.TimeoutException as e:
            raise self._timeout_error(req, e) from None
        except httpx.TransportError as e:
            raise self._connect_error(req, e) from None
        cap = self.endpoint.max_response_bytes
        try:
            declared = int(streamed.headers.get("content-length") or -1)
        except ValueError:
            declared = -1
        chunks: list[bytes] = []
        got = 0
        try:
            if declared > cap:
                raise self._too_large(req, declared)
            async for chunk in streamed.aiter_bytes():
                got += len(chunk)
                if got > cap:
                    raise self._too_large(req)
                chunks.append(chunk)
        except httpx.TimeoutException as e:
            raise self._timeout_error(req, e) from None
        except (httpx.TransportError, httpx.StreamError, httpx.DecodingError):
            raise self._err(ResponseFormatError, req,
                            f"the response body was cut off after {got} bytes"
                            + (f" of {declared}" if declared >= 0 else ""), status=streamed.status_code,
                            hint="the connection dropped mid-reply; retry or check the server") from None
        finally:
            await streamed.aclose()
        headers = [(k, v) for k, v in streamed.headers.multi_items()
                   if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")]
        resp = httpx.Response(streamed.status_code, headers=headers, content=b"".join(chunks), request=request)
        if resp.status_code >= 400:
            raise self.error_for(req, resp)
        return resp

    def _json(self, req: ChatRequest, resp: httpx.Response) -> dict[str, Any]:
        try:
            data = resp.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            if (isinstance(e, json.JSONDecodeError) and resp.content.strip()
                    and e.pos >= len(resp.text.rstrip())):
                raise ResponseFormatError(
                    f"the response body ends mid-JSON after {len(resp.content)} bytes ({e.msg})",
                    provider=self.endpoint.provider, model=req.model, status=resp.status_code,
                    hint="the reply was cut short; retry or check the server") from None
            raise ResponseFormatError(
                f"malformed JSON in the response ({_snippet(resp.text)})", provider=self.endpoint.provider,
                model=req.model, status=resp.status_code,
                hint="the endpoint is not speaking the " + self.kind + " API; check base_url") from None
        if not isinstance(data, dict):
            raise ResponseFormatError("the response is not a JSON object", provider=self.endpoint.provider,
                                      model=req.model, status=resp.status_code, hint="check base_url")
        return data

    def _err(self, cls: type[ProviderError], req: ChatRequest, message: str, **kw: Any) -> ProviderError:
        return cls(message, provider=self.endpoint.provider, model=req.model, **kw)

    def _timeout_error(self, req: ChatRequest, e: httpx.TimeoutException) -> ProviderError:
        ep = self.endpoint
        if isinstance(e, httpx.ConnectTimeout | httpx.PoolTimeout):
            return self._err(ProviderTimeoutError, req, f"connect timeout after {ep.connect_timeout:g} s",
                             hint=f"check that {ep.base_url} is reachable")
        return self._err(ProviderTimeoutError, req, f"read timeout after {ep.timeout_seconds:g} s",
                         hint=f"the server is slow or hung; raise [providers.{ep.provider}] timeout_seconds")

    def _connect_error(self, req: ChatRequest, e: Exception) -> ProviderError:
        ep = self.endpoint
        return self._err(ProviderConnectionError, req, f"cannot connect to {ep.base_url} ({type(e).__name__}: {e})",
                         hint=f"start the server or fix [providers.{ep.provider}] base_url")

    def _too_large(self, req: ChatRequest, declared: int | None = None) -> ProviderError:
        cap = self.endpoint.max_response_bytes
        size = f"{declared} bytes" if declared is not None else f"more than {cap} bytes"
        return self._err(ResponseTooLargeError, req, f"the response is {size}, over the {cap}-byte limit; "
                         "reading stopped", hint=f"raise [providers.{self.endpoint.provider}] max_response_bytes "
                                                 "if such replies are expected")

    def _shape_error(self, req: ChatRequest, e: BaseException) -> ProviderError:
        detail = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        return self._err(ResponseFormatError, req, f"the response does not have the {self.kind} reply shape "
                         f"({detail})", hint=f"the endpoint is not speaking the {self.kind} API; check base_url")

    def _truncated(self, req: ChatRequest) -> ProviderError:
        return self._err(ResponseFormatError, req, "the stream ended before the reply was complete",
                         hint="the connection dropped mid-stream; retry or check the server")

    def error_for(self, req: ChatRequest, resp: httpx.Response) -> ProviderError:
        """Map an HTTP error response to a typed error; an `x-should-retry` header overrides retryability."""
        err = self._classify(req, resp)
        should = resp.headers.get("x-should-retry", "").strip().lower()
        if should in ("true", "false") and not isinstance(err, QuotaExceededError):
            err.retryable = should == "true"
        return err

    def _classify(self, req: ChatRequest, resp: httpx.Response) -> ProviderError:
        status = resp.status_code
        message, code = _error_message(resp)
        ep = self.endpoint
        key_var = ep.key_env or f"LLMSPELL_PROVIDER_{ep.provider.upper().replace('-', '_')}_API_KEY"
        retry_after = parse_retry_after(resp.headers)
        kw: dict[str, Any] = {"status": status, "code": code, "retry_after": retry_after}
        if status == 401:
            return self._err(AuthenticationError, req, message or "unauthorized", hint=f"check {key_var}", **kw)
        if status == 403:
            return self._err(AuthenticationError, req, message or "forbidden",
                             hint=f"the key in {key_var} has no access to this model or endpoint", **kw)
        if status == 404:
            return self._err(NotFoundError, req, message or "not found",
                             hint=f"check the model name '{req.model}' and [providers.{ep.provider}] base_url", **kw)
        if status == 429:
            if code == "insufficient_quota" or "insufficient_quota" in (message or ""):
                return self._err(QuotaExceededError, req, message or "insufficient quota",
                                 hint="the account is out of credit; check billing", **kw)
            return self._err(RateLimitError, req, message or "rate limited",
                             hint="slow down or raise the provider's rate limit", **kw)
        if status in (408, 409) or status >= 500:
            return self._err(ServerError, req, message or resp.reason_phrase or "server error",
                             hint="the provider is having trouble; try again later", **kw)
        return self._err(BadRequestError, req, message or resp.reason_phrase or "bad request",
                         hint="the provider rejected the request; check the model and parameters", **kw)


class _CappedStream(httpx.AsyncByteStream):
    """A response stream that raises (the error `make_error` builds) once more than `cap` bytes arrived."""

    def __init__(self, inner: Any, cap: int, make_error: Callable[[], ProviderError]) -> None:
        self._inner = inner
        self._cap = cap
        self._make_error = make_error

    async def __aiter__(self) -> AsyncIterator[bytes]:
        got = 0
        async for chunk in self._inner:
            got += len(chunk)
            if got > self._cap:
                raise self._make_error()
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


def join_url(base: str, suffix: str) -> str:
    """`base` + `suffix` keeping any query string of the base at the end."""
    path, sep, query = base.partition("?")
    return path.rstrip("/") + suffix + (sep + query if sep else "")


def _snippet(text: str, n: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _error_message(resp: httpx.Response) -> tuple[str, str | None]:
    """The provider's own error message and code from an error body (OpenAI/Anthropic/Ollama shapes)."""
    try:
        data = resp.json()
    except Exception:  # noqa: BLE001 - any non-JSON error body
        return (_snippet(resp.text) if resp.text else "", None)
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict):
            msg = err.get("message") or err.get("detail") or ""
            code = err.get("code") or err.get("type")
            return (str(msg), str(code) if code is not None else None)
        if isinstance(err, str):
            return (err, None)
    return (_snippet(resp.text), None)


def parse_retry_after(headers: httpx.Headers) -> float | None:
    """Seconds to wait from `retry-after-ms` or `retry-after` (seconds or HTTP date), if present."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000.0
        except ValueError:
            pass
    ra = headers.get("retry-after")
    if ra:
        try:
            return float(ra)
        except ValueError:
            from email.utils import parsedate_to_datetime

            try:
                when = parsedate_to_datetime(ra)
                return max(0.0, when.timestamp() - time.time())
            except (TypeError, ValueError):
                return None
    return None


async def iter_sse(resp: httpx.Response) -> AsyncIterator[tuple[str | None, str]]:
    """Yield (event, data) pairs of a server-sent-events body."""
    event: str | None = None
    data: list[str] = []
    async for line in resp.aiter_lines():
        if line == "":
            if data:
                yield event, "\n".join(data)
            event, data = None, []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
    if data:
        yield event, "\n".join(data)


async def call_delta(on_delta: DeltaCallback | None, text: str) -> None:
    """Invoke a delta callback that may be sync or async."""
    if on_delta is None or not text:
        return
    r = on_delta(text)
    if asyncio.iscoroutine(r) or isinstance(r, asyncio.Future):
        await r
