"""Wire formats, checked field by field against the documented OpenAI, Anthropic and Ollama APIs."""

from __future__ import annotations

import json

import httpx
import respx

from llmspell.providers.base import ChatMessage, ChatRequest
from llmspell.providers.registry import ProviderRegistry
from llmspell.runtime.io import get_io
from tests.providers.conftest import ANTHROPIC, OLLAMA, OPENAI, make_registry


def _req(**kw: object) -> ChatRequest:
    base: dict[str, object] = {
        "model": "m-1",
        "messages": [ChatMessage("system", "Be brief."), ChatMessage("user", "Hi"),
                     ChatMessage("assistant", "Hello!"), ChatMessage("user", "Bye")],
        "max_tokens": 64,
    }
    base.update(kw)
    return ChatRequest(**base)  # type: ignore[arg-type]


OPENAI_OK = {"id": "c1", "object": "chat.completion", "model": "m-1",
             "choices": [{"index": 0, "message": {"role": "assistant", "content": "pong"}, "finish_reason": "stop"}],
             "usage": {"prompt_tokens": 11, "completion_tokens": 2, "total_tokens": 13}}
ANTHROPIC_OK = {"id": "msg_1", "type": "message", "role": "assistant", "model": "m-1",
                "content": [{"type": "text", "text": "pong"}], "stop_reason": "end_turn",
                "usage": {"input_tokens": 11, "output_tokens": 2}}
OLLAMA_OK = {"model": "m-1", "message": {"role": "assistant", "content": "pong"}, "done": True,
             "done_reason": "stop", "prompt_eval_count": 11, "eval_count": 2}


def test_openai_request_fields(reg: ProviderRegistry) -> None:
    with respx.mock(assert_all_called=True) as mock:
        route = mock.post(f"{OPENAI}/chat/completions").mock(return_value=httpx.Response(200, json=OPENAI_OK))
        resp = get_io().run(reg.chat("openai", _req(temperature=0.3, stop=["END"], seed=7, response_format="json")))
    sent = route.calls.last.request
    assert sent.method == "POST"
    assert str(sent.url) == "https://api.openai.test/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer sk-test-openai"
    assert sent.headers["content-type"] == "application/json"
    assert "x-api-key" not in sent.headers
    body = json.loads(sent.content)
    assert body == {
        "model": "m-1",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                     {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Bye"}],
        "max_tokens": 64, "stream": False, "temperature": 0.3, "stop": ["END"], "seed": 7,
        "response_format": {"type": "json_object"},
    }
    assert resp.text == "pong" and resp.finish_reason == "stop"
    assert resp.usage is not None and (resp.usage.input_tokens, resp.usage.output_tokens) == (11, 2)


def test_openai_optional_fields_absent_when_unset(reg: ProviderRegistry) -> None:
    with respx.mock() as mock:
        route = mock.post(f"{OPENAI}/chat/completions").mock(return_value=httpx.Response(200, json=OPENAI_OK))
        get_io().run(reg.chat("openai", _req()))
    body = json.loads(route.calls.last.request.content)
    assert set(body) == {"model", "messages", "max_tokens", "stream"}


def test_anthropic_request_fields(reg: ProviderRegistry) -> None:
    with respx.mock() as mock:
        route = mock.post(f"{ANTHROPIC}/v1/messages").mock(return_value=httpx.Response(200, json=ANTHROPIC_OK))
        resp = get_io().run(reg.chat("anthropic", _req(temperature=0.5, stop=["END"])))
    sent = route.calls.last.request
    assert str(sent.url) == "https://api.anthropic.test/v1/messages"
    assert sent.headers["x-api-key"] == "sk-ant-test"
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in sent.headers
    body = json.loads(sent.content)
    assert body == {
        "model": "m-1", "max_tokens": 64, "system": "Be brief.",
        "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
                     {"role": "user", "content": "Bye"}],
        "temperature": 0.5, "stop_sequences": ["END"],
    }
    assert all(m["role"] != "system" for m in body["messages"])
    assert resp.text == "pong" and resp.finish_reason == "end_turn"
    assert resp.usage is not None and resp.usage.total_tokens == 13


def test_anthropic_version_configurable_and_v1_base_normalized() -> None:
    reg = make_registry({"providers": {"anthropic": {"anthropic_version": "2024-01-01",
                                                     "api_base": "https://proxy.test/v1"}}},
                        env={"ANTHROPIC_API_KEY": "k"})
    with respx.mock() as mock:
        route = mock.post("https://proxy.test/v1/messages").mock(return_value=httpx.Response(200, json=ANTHROPIC_OK))
        get_io().run(reg.chat("anthropic", _req()))
    assert route.calls.last.request.headers["anthropic-version"] == "2024-01-01"


def test_ollama_request_fields(reg: ProviderRegistry) -> None:
    with respx.mock() as mock:
        route = mock.post(f"{OLLAMA}/api/chat").mock(return_value=httpx.Response(200, json=OLLAMA_OK))
        resp = get_io().run(reg.chat("ollama", _req(temperature=0.2)))
    sent = route.calls.last.request
    assert str(sent.url) == "http://ollama.test:11434/api/chat"
    assert "authorization" not in sent.headers
    body = json.loads(sent.content)
    assert body == {
        "model": "m-1",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                     {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Bye"}],
        "stream": False, "options": {"temperature": 0.2, "num_predict": 64},
    }
    assert resp.text == "pong" and resp.usage is not None and resp.usage.total_tokens == 13


def test_openai_sse_stream(reg: ProviderRegistry) -> None:
    chunks = [
        {"model": "m-1", "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]},
        {"model": "m-1", "choices": [{"index": 0, "delta": {"content": "po"}}]},
        {"model": "m-1", "choices": [{"index": 0, "delta": {"content": "ng"}, "finish_reason": "stop"}]},
        {"model": "m-1", "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2}},
    ]
    body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
    seen: list[str] = []
    with respx.mock() as mock:
        route = mock.post(f"{OPENAI}/chat/completions").mock(return_value=httpx.Response(
            200, text=body, headers={"content-type": "text/event-stream"}))
        resp = get_io().run(reg.chat("openai", _req(), stream=True, on_delta=seen.append))
    sent = json.loads(route.calls.last.request.content)
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert seen == ["po", "ng"] and resp.text == "pong" and resp.finish_reason == "stop"
    assert resp.usage is not None and resp.usage.total_tokens == 7


def test_anthropic_event_stream(reg: ProviderRegistry) -> None:
    events = [
        ("message_start", {"type": "message_start", "message": {"model": "m-1", "usage": {"input_tokens": 9,
                                                                                          "output_tokens": 1}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
        ("ping", {"type": "ping"}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": "po"}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": "ng"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                           "usage": {"output_tokens": 2}}),
        ("message_stop", {"type": "message_stop"}),
    ]
    body = "".join(f"event: {e}\ndata: {json.dumps(d)}\n\n" for e, d in events)
    seen: list[str] = []
    with respx.mock() as mock:
        route = mock.post(f"{ANTHROPIC}/v1/messages").mock(return_value=httpx.Response(
            200, text=body, headers={"content-type": "text/event-stream"}))
        resp = get_io().run(reg.chat("anthropic", _req(), stream=True, on_delta=seen.append))
    assert json.loads(route.calls.last.request.content)["stream"] is True
    assert seen == ["po", "ng"] and resp.text == "pong" and resp.finish_reason == "end_turn"
    assert resp.usage is not None and (resp.usage.input_tokens, resp.usage.output_tokens) == (9, 2)


def test_ollama_ndjson_stream(reg: ProviderRegistry) -> None:
    lines = [{"model": "m-1", "message": {"role": "assistant", "content": "po"}, "done": False},
             {"model": "m-1", "message": {"role": "assistant", "content": "ng"}, "done": False},
             {"model": "m-1", "message": {"role": "assistant", "content": ""}, "done": True, "done_reason": "stop",
              "prompt_eval_count": 4, "eval_count": 2}]
    body = "\n".join(json.dumps(x) for x in lines) + "\n"
    seen: list[str] = []
    with respx.mock() as mock:
        route = mock.post(f"{OLLAMA}/api/chat").mock(return_value=httpx.Response(200, text=body))
        resp = get_io().run(reg.chat("ollama", _req(), stream=True, on_delta=seen.append))
    assert json.loads(route.calls.last.request.content)["stream"] is True
    assert seen == ["po", "ng"] and resp.text == "pong"
    assert resp.usage is not None and resp.usage.total_tokens == 6


def test_openai_embeddings(reg: ProviderRegistry) -> None:
    data = {"object": "list", "data": [{"index": 1, "embedding": [0.0, 1.0]}, {"index": 0, "embedding": [1.0, 0.0]}],
            "usage": {"prompt_tokens": 4, "total_tokens": 4}}
    with respx.mock() as mock:
        route = mock.post(f"{OPENAI}/embeddings").mock(return_value=httpx.Response(200, json=data))
        vectors, usage = get_io().run(reg.embed("openai", "text-embedding-3-small", ["a", "b"]))
    assert json.loads(route.calls.last.request.content) == {"model": "text-embedding-3-small", "input": ["a", "b"]}
    assert route.calls.last.request.headers["authorization"] == "Bearer sk-test-openai"
    assert vectors == [[1.0, 0.0], [0.0, 1.0]] and usage is not None and usage.input_tokens == 4


def test_force_model_and_aliases_change_only_the_wire_model() -> None:
    reg = make_registry({"providers": {"openai": {"model_aliases": {"gpt-4o-mini": "local-small"}},
                                       "local": {"base_url": "http://127.0.0.1:9999", "force_model": "gemma"}}})
    with respx.mock() as mock:
        r1 = mock.post(f"{OPENAI}/chat/completions").mock(return_value=httpx.Response(200, json=OPENAI_OK))
        r2 = mock.post("http://127.0.0.1:9999/v1/chat/completions").mock(
            return_value=httpx.Response(200, json=OPENAI_OK))
        get_io().run(reg.chat("openai", _req(model="gpt-4o-mini")))
        get_io().run(reg.chat("local", _req(model="anything")))
    assert json.loads(r1.calls.last.request.content)["model"] == "local-small"
    sent = r2.calls.last.request
    assert json.loads(sent.content)["model"] == "gemma"
    assert "authorization" not in sent.headers  # loopback: no key needed, none sent


def test_extra_headers_sent() -> None:
    reg = make_registry({"providers": {"openai": {"headers": {"x-team": "llmspell"}}}})
    with respx.mock() as mock:
        route = mock.post(f"{OPENAI}/chat/completions").mock(return_value=httpx.Response(200, json=OPENAI_OK))
        get_io().run(reg.chat("openai", _req()))
    assert route.calls.last.request.headers["x-team"] == "llmspell"


def test_ollama_images_field(reg: ProviderRegistry) -> None:
    from llmspell.providers.base import Image

    msgs = [ChatMessage("user", "what?", images=[Image("QUJD", "png")])]
    with respx.mock() as mock:
        route = mock.post(f"{OLLAMA}/api/chat").mock(return_value=httpx.Response(200, json=OLLAMA_OK))
        get_io().run(reg.chat("ollama", ChatRequest(model="llava", messages=msgs, max_tokens=8)))
    assert json.loads(route.calls.last.request.content)["messages"] == [
        {"role": "user", "content": "what?", "images": ["QUJD"]}]
