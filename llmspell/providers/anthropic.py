"""Anthropic Messages wire format: x-api-key, pinned anthropic-version, top-level system, event stream."""

from __future__ import annotations

from typing import Any

import httpx

from llmspell.providers.base import (
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


class AnthropicAdapter(ProviderAdapter):
    """POST <base>/v1/messages with `x-api-key` and `anthropic-version`."""

    kind = "anthropic"

    @property
    def url(self) -> str:
        return join_url(self.endpoint.base_url, "/v1/messages")

    def headers(self) -> dict[str, str]:
        return self._json_headers("x-api-key", self.endpoint.api_key or "",
                                  {"anthropic-version": self.endpoint.anthropic_version})

    def build_payload(self, req: ChatRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": req.model,
            "max_tokens": req.max_tokens,
            "messages": _messages(req.messages),
        }
        system = req.system
        if system:
            body["system"] = system
        if req.temperature is not None:
            body["temperature"] = req.temperature
        if req.stop:
            body["stop_sequences"] = list(req.stop)
        if req.stream:
            body["stream"] = True
        if req.tools:
            body["tools"] = [{"name": t.name, "description": t.description, "input_schema": t.parameters}
                             for t in req.tools]
        return body

    def parse_response(self, req: ChatRequest, data: dict[str, Any]) -> ChatResponse:
        content = data.get("content")
        if not isinstance(content, list):
            raise self._err(ResponseFormatError, req, "the response has no content blocks",
                            hint="the endpoint is not speaking the Anthropic Messages API; check base_url")
        text = "".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")
        calls = [ToolCall(id=str(b.get("id", "")), name=str(b.get("name", "")), arguments=_input(b.get("input")))
                 for b in content if isinstance(b, dict) and b.get("type") == "tool_use"]
        return ChatResponse(text=text, model=str(data.get("model") or req.model), usage=_usage(data.get("usage")),
                            finish_reason=data.get("stop_reason"), raw=data, tool_calls=calls)

    async def parse_stream(self, req: ChatRequest, resp: httpx.Response,
                           on_delta: DeltaCallback | None) -> ChatResponse:
        parts: list[str] = []
        inp: int | None = None
        out: int | None = None
        finish: str | None = None
        model = req.model
        stopped = False
        async for event, data in iter_sse(resp):
            ev = self._stream_json(req, data,
                                   hint="the endpoint is not speaking the Anthropic Messages API")
            kind = ev.get("type") or event
            if kind == "message_start":
                msg = ev.get("message") or {}
                model = str(msg.get("model") or model)
                u = msg.get("usage") or {}
                inp = u.get("input_tokens", inp)
                out = u.get("output_tokens", out)
            elif kind == "content_block_delta":
                delta = ev.get("delta") or {}
                if delta.get("type") == "text_delta" and delta.get("text"):
                    parts.append(delta["text"])
                    await call_delta(on_delta, delta["text"])
            elif kind == "message_delta":
                finish = (ev.get("delta") or {}).get("stop_reason") or finish
                u = ev.get("usage") or {}
                out = u.get("output_tokens", out)
                inp = u.get("input_tokens", inp)
            elif kind == "message_stop":
                stopped = True
                break
            elif kind == "error":
                err = ev.get("error") or {}
                raise self._err(ResponseFormatError, req, str(err.get("message") or "stream error"),
                                hint="the provider reported an error mid-stream")
        if not stopped:
            raise self._truncated(req)
        return ChatResponse(text="".join(parts), model=model, usage=Usage.of(inp, out), finish_reason=finish)


def _messages(messages: list[ChatMessage]) -> list[dict[str, Any]]:
    """Messages API turns: tool calls become tool_use blocks, tool results user tool_result blocks."""
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "system":
            continue
        if m.role == "tool":
            block = {"type": "tool_result", "tool_use_id": m.tool_call_id or "", "content": m.content}
            if out and out[-1]["role"] == "user" and isinstance(out[-1]["content"], list):
                out[-1]["content"].append(block)
            else:
                out.append({"role": "user", "content": [block]})
            continue
        if m.tool_calls:
            blocks: list[dict[str, Any]] = [{"type": "text", "text": m.content}] if m.content else []
            blocks += [{"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments} for c in m.tool_calls]
            out.append({"role": "assistant", "content": blocks})
            continue
        if m.images:
            out.append({"role": m.role, "content": [
                {"type": "image", "source": {"type": "base64", "media_type": i.media_type, "data": i.base64}}
                for i in m.images] + [{"type": "text", "text": m.content}]})
            continue
        out.append({"role": m.role, "content": m.content})
    return out


def _input(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _usage(u: Any) -> Usage | None:
    if not isinstance(u, dict) or ("input_tokens" not in u and "output_tokens" not in u):
        return None
    return Usage(int(u.get("input_tokens") or 0), int(u.get("output_tokens") or 0))
