"""Ollama native chat API: POST <base>/api/chat, newline-delimited JSON stream."""

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
    Usage,
    call_delta,
    join_url,
)
from llmspell.providers.openai import OpenAIAdapter


class OllamaAdapter(ProviderAdapter):
    """Ollama's /api/chat; a key is sent as Bearer only when one is configured (proxies)."""

    kind = "ollama"
    supports_tools = False

    @property
    def url(self) -> str:
        return join_url(self.endpoint.base_url, "/api/chat")

    headers = OpenAIAdapter.headers  # the same JSON + optional Bearer headers

    def build_payload(self, req: ChatRequest) -> dict[str, Any]:
        options: dict[str, Any] = {"num_predict": req.max_tokens}
        if req.temperature is not None:
            options["temperature"] = req.temperature
        if req.stop:
            options["stop"] = list(req.stop)
        if req.seed is not None:
            options["seed"] = req.seed
        body: dict[str, Any] = {
            "model": req.model,
            "messages": [_message(m) for m in req.messages],
            "stream": req.stream,
            "options": options,
        }
        if req.response_format == "json":
            body["format"] = "json"
        return body

    def parse_response(self, req: ChatRequest, data: dict[str, Any]) -> ChatResponse:
        msg = data.get("message")
        if not isinstance(msg, dict):
            raise self._err(ResponseFormatError, req, "the response has no message",
                            hint="the endpoint is not an Ollama server; check base_url")
        content = msg.get("content")
        return ChatResponse(text=content if isinstance(content, str) else "", model=str(data.get("model") or req.model),
                            usage=_usage(data), finish_reason=data.get("done_reason"), raw=data)

    async def parse_stream(self, req: ChatRequest, resp: httpx.Response,
                           on_delta: DeltaCallback | None) -> ChatResponse:
        parts: list[str] = []
        last: dict[str, Any] = {}
        done = False
        async for line in resp.aiter_lines():
            if not line.strip():
                continue
            chunk = self._stream_json(req, line, "the endpoint is not an Ollama server; check base_url",
                                      message="malformed JSON line in the stream")
            if "error" in chunk:
                raise self._err(ResponseFormatError, req, str(chunk["error"]), hint="the server reported an error")
            piece = (chunk.get("message") or {}).get("content")
            if isinstance(piece, str) and piece:
                parts.append(piece)
                await call_delta(on_delta, piece)
            if chunk.get("done"):
                last, done = chunk, True
                break
        if not done:
            raise self._truncated(req)
        return ChatResponse(text="".join(parts), model=str(last.get("model") or req.model), usage=_usage(last),
                            finish_reason=last.get("done_reason"))


def _message(m: ChatMessage) -> dict[str, Any]:
    out: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.images:
        out["images"] = [i.base64 for i in m.images]
    return out


def _usage(data: dict[str, Any]) -> Usage | None:
    return Usage.of(data.get("prompt_eval_count"), data.get("eval_count"))
