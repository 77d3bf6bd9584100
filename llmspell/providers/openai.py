"""OpenAI chat completions wire format (also every OpenAI-compatible server), SSE streaming, embeddings.

With `[providers.<name>] api = "completions"` the same adapter speaks the legacy text-completions
endpoint instead: the messages become one plain prompt, for base (not instruction-tuned) models.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from llmspell.providers.base import (
    BadRequestError,
    ChatMessage,
    ChatRequest,
    ChatResponse,
    DeltaCallback,
    ProviderAdapter,
    ResponseFormatError,
    ToolCall,
    Usage,
    call_delta,
    iter_sse,
    join_url,
)


class OpenAIAdapter(ProviderAdapter):
    """POST <base>/chat/completions (or <base>/completions) with `Authorization: Bearer <key>`."""

    kind = "openai"

    @property
    def completions(self) -> bool:
        """True when this endpoint is configured for the plain-text /completions API."""
        return self.endpoint.api == "completions"

    @property
    def url(self) -> str:
        return join_url(self.endpoint.base_url, "/completions" if self.completions else "/chat/completions")

    @property
    def embeddings_url(self) -> str:
        return join_url(self.endpoint.base_url, "/embeddings")

    def headers(self) -> dict[str, str]:
        return self._json_headers("authorization", f"Bearer {self.endpoint.api_key}")

    def build_payload(self, req: ChatRequest) -> dict[str, Any]:
        if self.completions:
            return self._completion_payload(req)
        body = _sampling({"model": req.model, "messages": [_message(m) for m in req.messages]}, req)
        if req.response_format == "json":
            body["response_format"] = {"type": "json_object"}
        if req.tools:
            body["tools"] = [{"type": "function", "function": {"name": t.name, "description": t.description,
                                                               "parameters": t.parameters}} for t in req.tools]
        return body

    def _completion_payload(self, req: ChatRequest) -> dict[str, Any]:
        """The /completions body: one plain prompt rendered from the messages; tools and images refused."""
        hint = f"set [providers.{self.endpoint.provider}] api = \"chat\" for this model"
        if req.tools:
            raise self._err(BadRequestError, req, "tools need the chat API; this provider uses api = \"completions\"",
                            hint=hint)
        if any(m.images for m in req.messages):
            raise self._err(BadRequestError, req,
                            "images need the chat API; this provider uses api = \"completions\"", hint=hint)
        return _sampling({"model": req.model, "prompt": render_prompt(req.messages)}, req)

    def parse_response(self, req: ChatRequest, data: dict[str, Any]) -> ChatResponse:
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            err = data.get("error")
            if err:
                raise self._err(ResponseFormatError, req, "the response has no choices, only an error: "
                                + str(err.get("message") if isinstance(err, dict) else err),
                                hint="the provider reported an error with a success status")
            what = "missing" if choices is None else ("empty" if choices == [] else "not a list of objects")
            raise self._err(ResponseFormatError, req, f"the response has no choices (choices is {what})",
                            hint="the endpoint is not OpenAI-compatible; check base_url")
        choice = choices[0]
        if self.completions:
            text = choice.get("text")
            return ChatResponse(text=text if isinstance(text, str) else "", model=str(data.get("model") or req.model),
                                usage=_usage(data.get("usage")), finish_reason=choice.get("finish_reason"), raw=data)
        msg = choice.get("message")
        if not isinstance(msg, dict):
            raise self._err(ResponseFormatError, req, "choices[0].message is "
                            + ("null" if msg is None else f"a {type(msg).__name__}") + ", not a message object",
                            hint="the endpoint is not OpenAI-compatible, or sent an incomplete reply")
        content = msg.get("content")
        text = content if isinstance(content, str) else ""
        calls: list[ToolCall] = []
        for i, tc in enumerate((msg.get("tool_calls") if isinstance(msg, dict) else None) or []):
            fn = tc.get("function") or {}
            calls.append(ToolCall(id=str(tc.get("id") or f"call_{i}"), name=str(fn.get("name", "")),
                                  arguments=_arguments(fn.get("arguments"))))
        return ChatResponse(text=text, model=str(data.get("model") or req.model), usage=_usage(data.get("usage")),
                            finish_reason=choice.get("finish_reason"), raw=data, tool_calls=calls)

    async def parse_stream(self, req: ChatRequest, resp: httpx.Response,
                           on_delta: DeltaCallback | None) -> ChatResponse:
        parts: list[str] = []
        usage: Usage | None = None
        finish: str | None = None
        model = req.model
        done = False
        async for _event, data in iter_sse(resp):
            if data.strip() == "[DONE]":
                done = True
                break
            chunk = self._stream_json(req, data,
                                      hint="the endpoint is not OpenAI-compatible; check base_url")
            if isinstance(chunk, dict) and "error" in chunk:
                err = chunk["error"]
                raise self._err(ResponseFormatError, req, str(err.get("message") if isinstance(err, dict) else err),
                                hint="the provider reported an error mid-stream")
            model = str(chunk.get("model") or model)
            usage = _usage(chunk.get("usage")) or usage
            for choice in chunk.get("choices") or []:
                delta = choice.get("text") if self.completions else (choice.get("delta") or {}).get("content")
                if isinstance(delta, str) and delta:
                    parts.append(delta)
                    await call_delta(on_delta, delta)
                if choice.get("finish_reason"):
                    finish = choice["finish_reason"]
        if not done:
            raise self._truncated(req)
        return ChatResponse(text="".join(parts), model=model, usage=usage, finish_reason=finish)

    async def embed(self, model: str, texts: list[str]) -> tuple[list[list[float]], Usage | None]:
        """POST <base>/embeddings; returns the vectors in input order and the usage."""
        req = ChatRequest(model=model, messages=[], max_tokens=0)
        resp = await self._send(req, {"model": model, "input": texts}, url=self.embeddings_url)
        data = self._json(req, resp)
        items = data.get("data")
        if not isinstance(items, list):
            raise self._err(ResponseFormatError, req, "the embeddings response has no data",
                            hint="the endpoint does not serve /embeddings")
        ordered = sorted(items, key=lambda d: d.get("index", 0))
        vectors = [list(map(float, d.get("embedding") or [])) for d in ordered]
        u = data.get("usage") or {}
        usage = Usage(int(u.get("prompt_tokens") or 0), 0) if isinstance(u, dict) and u else None
        return vectors, usage


def render_prompt(messages: list[ChatMessage]) -> str:
    """Messages as one plain prompt for a base model: their texts in order, blank-line separated, no template.

    The prompt ends exactly where the last message ends, so a few-shot text ending in `Category:` is
    continued by the model right there.
    """
    return "\n\n".join(m.content for m in messages if m.content)


def _message(m: ChatMessage) -> dict[str, Any]:
    if m.role == "tool":
        return {"role": "tool", "tool_call_id": m.tool_call_id or "", "content": m.content}
    out: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.images:
        out["content"] = [{"type": "text", "text": m.content}] + [
            {"type": "image_url", "image_url": {"url": f"data:{i.media_type};base64,{i.base64}"}} for i in m.images]
    if m.tool_calls:
        out["tool_calls"] = [{"id": c.id, "type": "function",
                              "function": {"name": c.name, "arguments": json.dumps(c.arguments, sort_keys=True)}}
                             for c in m.tool_calls]
    return out


def _arguments(raw: Any) -> dict[str, Any]:
    """Tool-call arguments: a JSON string (OpenAI) or an object; anything unparsable becomes {}."""
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str) and raw.strip():
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            return {}
        return value if isinstance(value, dict) else {}
    return {}


def _usage(u: Any) -> Usage | None:
    if not isinstance(u, dict):
        return None
    return Usage.of(u.get("prompt_tokens"), u.get("completion_tokens"))



def _sampling(body: dict[str, Any], req: ChatRequest) -> dict[str, Any]:
    """Add the fields the chat and completions bodies share: limits, sampling, stop, seed, streaming."""
    body.update(max_tokens=req.max_tokens, stream=req.stream)
    if req.temperature is not None:
        body["temperature"] = req.temperature
    if req.stop:
        body["stop"] = list(req.stop)
    if req.seed is not None:
        body["seed"] = req.seed
    if req.stream:
        body["stream_options"] = {"include_usage": True}
    return body
