"""The OpenAI adapter's completions mode (`api = "completions"`): plain prompt to /completions, for base models."""

from __future__ import annotations

import json

import httpx
import pytest
import respx

from llmspell.config import normalize
from llmspell.providers.base import BadRequestError, ChatMessage, ChatRequest, Image, ToolDef
from llmspell.providers.openai import render_prompt
from llmspell.providers.registry import ProviderRegistry
from llmspell.runtime.io import get_io
from tests.providers.conftest import OPENAI, make_registry

COMPLETION_OK = {"id": "cmpl-1", "object": "text_completion", "model": "m-1",
                 "choices": [{"index": 0, "text": " docs", "finish_reason": "stop", "logprobs": None}],
                 "usage": {"prompt_tokens": 20, "completion_tokens": 2, "total_tokens": 22}}
FEW_SHOT = "File: report.pdf\nCategory: docs\n\nFile: main.py\nCategory:"


@pytest.fixture
def creg() -> ProviderRegistry:
    return make_registry({"providers": {"openai": {"api": "completions"}}})


def _req(**kw: object) -> ChatRequest:
    base: dict[str, object] = {"model": "m-1", "max_tokens": 4,
                               "messages": [ChatMessage("system", "Sort files."), ChatMessage("user", FEW_SHOT)]}
    base.update(kw)
    return ChatRequest(**base)  # type: ignore[arg-type]


def test_completions_request_fields(creg: ProviderRegistry) -> None:
    with respx.mock(assert_all_called=True) as mock:
        route = mock.post(f"{OPENAI}/completions").mock(return_value=httpx.Response(200, json=COMPLETION_OK))
        resp = get_io().run(creg.chat("openai", _req(temperature=0.0, stop=["\n"], seed=7)))
    sent = route.calls.last.request
    assert str(sent.url) == "https://api.openai.test/v1/completions"
    assert sent.headers["authorization"] == "Bearer sk-test-openai"
    assert json.loads(sent.content) == {
        "model": "m-1", "prompt": "Sort files.\n\n" + FEW_SHOT, "max_tokens": 4, "stream": False,
        "temperature": 0.0, "stop": ["\n"], "seed": 7,
    }
    assert resp.text == " docs" and resp.finish_reason == "stop"
    assert resp.usage is not None and (resp.usage.input_tokens, resp.usage.output_tokens) == (20, 2)


def test_completions_cut_reply_keeps_finish_reason(creg: ProviderRegistry) -> None:
    cut = dict(COMPLETION_OK, choices=[{"index": 0, "text": " a long", "finish_reason": "length"}])
    with respx.mock() as mock:
        mock.post(f"{OPENAI}/completions").mock(return_value=httpx.Response(200, json=cut))
        resp = get_io().run(creg.chat("openai", _req()))
    assert (resp.text, resp.finish_reason) == (" a long", "length")


def test_render_prompt_is_plain_text_in_order() -> None:
    msgs = [ChatMessage("system", "S"), ChatMessage("user", "U1"), ChatMessage("assistant", "A1"),
            ChatMessage("user", ""), ChatMessage("user", "Q: 2+2?\nA:")]
    assert render_prompt(msgs) == "S\n\nU1\n\nA1\n\nQ: 2+2?\nA:"
    assert render_prompt([]) == ""


def test_completions_stream(creg: ProviderRegistry) -> None:
    events = [{"choices": [{"index": 0, "text": " co", "finish_reason": None}]},
              {"choices": [{"index": 0, "text": "de", "finish_reason": "stop"}]},
              {"choices": [], "usage": {"prompt_tokens": 20, "completion_tokens": 2}}]
    body = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
    deltas: list[str] = []
    with respx.mock() as mock:
        route = mock.post(f"{OPENAI}/completions").mock(
            return_value=httpx.Response(200, text=body, headers={"content-type": "text/event-stream"}))
        resp = get_io().run(creg.chat("openai", _req(), stream=True, on_delta=deltas.append))
    assert deltas == [" co", "de"] and resp.text == " code" and resp.finish_reason == "stop"
    sent = json.loads(route.calls.last.request.content)
    assert sent["stream"] is True and "messages" not in sent and sent["prompt"].endswith("Category:")


def test_completions_refuse_tools_with_the_fix(creg: ProviderRegistry) -> None:
    tool = ToolDef("calc", "adds", {"type": "object", "properties": {}})
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(f"{OPENAI}/completions").mock(return_value=httpx.Response(200, json=COMPLETION_OK))
        with pytest.raises(BadRequestError, match="tools need the chat API") as info:
            get_io().run(creg.chat("openai", _req(tools=[tool])))
    assert 'api = "chat"' in info.value.hint
    assert not route.called


def test_completions_refuse_images(creg: ProviderRegistry) -> None:
    msgs = [ChatMessage("user", "What is this?", images=[Image("aGk=", "png")])]
    with respx.mock(assert_all_called=False), pytest.raises(BadRequestError, match="images need the chat API"):
        get_io().run(creg.chat("openai", _req(messages=msgs)))


def test_chat_is_the_default_api(reg: ProviderRegistry) -> None:
    assert reg.specs["openai"].api == "chat"
    assert reg.adapter("openai").url.endswith("/chat/completions")


def test_api_key_in_a_config_file() -> None:
    cfg = normalize({"providers": {"local": {"base_url": "http://127.0.0.1:8080", "api": "completions"}}}, env={})
    assert cfg.get("providers.local.api") == "completions"


def test_unknown_api_value_is_reported_with_the_fix() -> None:
    cfg = normalize({"providers": {"openai": {"api": "legacy"}}}, env={})
    assert any('providers.openai.api has the value "legacy"' in w and '"completions"' in w for w in cfg.warnings)
