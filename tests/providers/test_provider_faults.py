"""Fault handling for every adapter: HTTP errors, retries, Retry-After, timeouts, bad bodies, breaker."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import respx

from llmspell.providers import base as pb
from llmspell.providers.base import ChatMessage, ChatRequest
from llmspell.providers.registry import ProviderRegistry
from llmspell.runtime.io import get_io
from tests.providers.conftest import ANTHROPIC, OLLAMA, OPENAI, make_registry

URLS = {"openai": f"{OPENAI}/chat/completions", "anthropic": f"{ANTHROPIC}/v1/messages",
        "ollama": f"{OLLAMA}/api/chat"}
OK = {
    "openai": {"model": "m", "choices": [{"message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
               "usage": {"prompt_tokens": 3, "completion_tokens": 1}},
    "anthropic": {"model": "m", "content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn",
                  "usage": {"input_tokens": 3, "output_tokens": 1}},
    "ollama": {"model": "m", "message": {"role": "assistant", "content": "ok"}, "done": True,
               "prompt_eval_count": 3, "eval_count": 1},
}
NO_USAGE = {
    "openai": {"model": "m", "choices": [{"message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}]},
    "anthropic": {"model": "m", "content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn"},
    "ollama": {"model": "m", "message": {"role": "assistant", "content": "ok"}, "done": True},
}
TRUNCATED = {
    "openai": 'data: {"choices":[{"delta":{"content":"o"}}]}\n\n',
    "anthropic": 'event: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":1}}}\n\n'
                 'event: content_block_delta\ndata: {"type":"content_block_delta","delta":{"type":"text_delta",'
                 '"text":"o"}}\n\n',
    "ollama": '{"message":{"content":"o"},"done":false}\n',
}
ADAPTERS = ("openai", "anthropic", "ollama")


def err_body(kind: str, status: int, message: str, code: str | None = None) -> dict[str, Any]:
    if kind == "anthropic":
        return {"type": "error", "error": {"type": code or "api_error", "message": message}}
    if kind == "ollama":
        return {"error": message}
    return {"error": {"message": message, "type": code or "invalid_request_error", "code": code}}


def req() -> ChatRequest:
    return ChatRequest(model="m", messages=[ChatMessage("user", "hi")], max_tokens=8)


def call(reg: ProviderRegistry, name: str, **kw: Any) -> Any:
    return get_io().run(reg.chat(name, req(), **kw), timeout=30)


@pytest.mark.parametrize("name", ADAPTERS)
@pytest.mark.parametrize(("status", "cls", "hint"), [
    (401, pb.AuthenticationError, "check"),
    (403, pb.AuthenticationError, "no access"),
    (404, pb.NotFoundError, "model name 'm'"),
    (400, pb.BadRequestError, "rejected"),
])
def test_client_errors_are_not_retried(reg: ProviderRegistry, delays: list[float], name: str, status: int,
                                       cls: type, hint: str) -> None:
    with respx.mock() as mock:
        route = mock.post(URLS[name]).mock(return_value=httpx.Response(status, json=err_body(name, status, "nope")))
        with pytest.raises(cls) as ei:
            call(reg, name)
    assert route.call_count == 1 and delays == []
    e = ei.value
    assert e.status == status and e.provider == name and e.model == "m"
    assert f"{status} nope" in str(e) and hint in str(e)


def test_401_hint_names_the_key_variable(reg: ProviderRegistry) -> None:
    with respx.mock() as mock:
        mock.post(URLS["openai"]).mock(return_value=httpx.Response(401, json=err_body("openai", 401, "invalid api key")))
        with pytest.raises(pb.AuthenticationError) as ei:
            call(reg, "openai")
    assert str(ei.value) == "401 invalid api key — check OPENAI_API_KEY"


@pytest.mark.parametrize("name", ADAPTERS)
def test_429_with_retry_after_is_honoured(reg: ProviderRegistry, delays: list[float], name: str) -> None:
    with respx.mock() as mock:
        route = mock.post(URLS[name]).mock(side_effect=[
            httpx.Response(429, json=err_body(name, 429, "slow down"), headers={"retry-after": "2"}),
            httpx.Response(429, json=err_body(name, 429, "slow down"), headers={"retry-after-ms": "1500"}),
            httpx.Response(200, json=OK[name]),
        ])
        resp = call(reg, name)
    assert resp.text == "ok" and route.call_count == 3 and resp.attempts == 3
    assert delays == [2.0, 1.5]
    assert reg.request_count(name) == 3


@pytest.mark.parametrize("name", ADAPTERS)
def test_429_without_retry_after_uses_backoff_then_fails(reg: ProviderRegistry, delays: list[float],
                                                          name: str) -> None:
    with respx.mock() as mock:
        route = mock.post(URLS[name]).mock(return_value=httpx.Response(429, json=err_body(name, 429, "busy")))
        with pytest.raises(pb.RateLimitError) as ei:
            call(reg, name)
    assert route.call_count == 3  # max_retries = 2
    assert 0.375 <= delays[0] <= 0.5 and 0.75 <= delays[1] <= 1.0
    assert "429 busy (after 3 attempts)" in str(ei.value)


def test_retry_after_above_60s_falls_back_to_backoff(reg: ProviderRegistry, delays: list[float]) -> None:
    with respx.mock() as mock:
        mock.post(URLS["openai"]).mock(side_effect=[
            httpx.Response(429, json={}, headers={"retry-after": "600"}), httpx.Response(200, json=OK["openai"])])
        call(reg, "openai")
    assert delays and delays[0] <= 0.5


def test_429_insufficient_quota_is_not_retried(reg: ProviderRegistry, delays: list[float]) -> None:
    body = err_body("openai", 429, "You exceeded your current quota", "insufficient_quota")
    with respx.mock() as mock:
        route = mock.post(URLS["openai"]).mock(return_value=httpx.Response(429, json=body))
        with pytest.raises(pb.QuotaExceededError) as ei:
            call(reg, "openai")
    assert route.call_count == 1 and delays == [] and "billing" in str(ei.value)


@pytest.mark.parametrize("name", ADAPTERS)
@pytest.mark.parametrize("status", [500, 503, 408, 409, 529])
def test_server_errors_are_retried(reg: ProviderRegistry, delays: list[float], name: str, status: int) -> None:
    with respx.mock() as mock:
        route = mock.post(URLS[name]).mock(side_effect=[
            httpx.Response(status, json=err_body(name, status, "boom")), httpx.Response(200, json=OK[name])])
        resp = call(reg, name)
    assert resp.text == "ok" and route.call_count == 2 and len(delays) == 1


@pytest.mark.parametrize("name", ADAPTERS)
def test_persistent_500_raises_server_error(reg: ProviderRegistry, delays: list[float], name: str) -> None:
    with respx.mock() as mock:
        route = mock.post(URLS[name]).mock(return_value=httpx.Response(500, text="Internal Server Error"))
        with pytest.raises(pb.ServerError) as ei:
            call(reg, name)
    assert route.call_count == 3 and ei.value.status == 500
    assert "try again later" in str(ei.value)


@pytest.mark.parametrize("name", ADAPTERS)
def test_malformed_json_is_a_format_error(reg: ProviderRegistry, delays: list[float], name: str) -> None:
    with respx.mock() as mock:
        route = mock.post(URLS[name]).mock(return_value=httpx.Response(200, text="<html>gateway</html>"))
        with pytest.raises(pb.ResponseFormatError) as ei:
            call(reg, name)
    assert route.call_count == 1 and "malformed JSON" in str(ei.value) and "base_url" in str(ei.value)


@pytest.mark.parametrize("name", ADAPTERS)
def test_wrong_shape_is_a_format_error(reg: ProviderRegistry, name: str) -> None:
    with respx.mock() as mock:
        mock.post(URLS[name]).mock(return_value=httpx.Response(200, json={"unexpected": True}))
        with pytest.raises(pb.ResponseFormatError):
            call(reg, name)


@pytest.mark.parametrize("name", ADAPTERS)
def test_truncated_stream_is_a_format_error(reg: ProviderRegistry, name: str) -> None:
    seen: list[str] = []
    with respx.mock() as mock:
        mock.post(URLS[name]).mock(return_value=httpx.Response(200, text=TRUNCATED[name]))
        with pytest.raises(pb.ResponseFormatError) as ei:
            call(reg, name, stream=True, on_delta=seen.append)
    assert "stream ended" in str(ei.value) and seen == ["o"]


@pytest.mark.parametrize("name", ADAPTERS)
@pytest.mark.parametrize(("exc", "text"), [(httpx.ConnectTimeout, "connect timeout after 10 s"),
                                           (httpx.ReadTimeout, "read timeout after 120 s")])
def test_timeouts_are_retried_then_raise(reg: ProviderRegistry, delays: list[float], name: str,
                                         exc: type[Exception], text: str) -> None:
    with respx.mock() as mock:
        route = mock.post(URLS[name]).mock(side_effect=exc("timed out"))
        with pytest.raises(pb.ProviderTimeoutError) as ei:
            call(reg, name)
    assert route.call_count == 3 and len(delays) == 2 and text in str(ei.value)


@pytest.mark.parametrize("name", ADAPTERS)
def test_connection_error_then_success(reg: ProviderRegistry, delays: list[float], name: str) -> None:
    with respx.mock() as mock:
        mock.post(URLS[name]).mock(side_effect=[httpx.ConnectError("refused"), httpx.Response(200, json=OK[name])])
        assert call(reg, name).text == "ok"


@pytest.mark.parametrize("name", ADAPTERS)
def test_missing_usage_gives_none(reg: ProviderRegistry, name: str) -> None:
    with respx.mock() as mock:
        mock.post(URLS[name]).mock(return_value=httpx.Response(200, json=NO_USAGE[name]))
        resp = call(reg, name)
    assert resp.text == "ok" and resp.usage is None


def test_timeouts_come_from_config() -> None:
    reg = make_registry({"providers": {"openai": {"timeout": 7, "retry_attempts": 0}}})
    seen: dict[str, Any] = {}

    def capture(request: httpx.Request) -> httpx.Response:
        seen.update(request.extensions["timeout"])
        return httpx.Response(200, json=OK["openai"])

    with respx.mock() as mock:
        mock.post(URLS["openai"]).mock(side_effect=capture)
        call(reg, "openai")
    assert seen["read"] == 7 and seen["connect"] == 10
    assert reg.spec("openai").max_retries == 0  # type: ignore[union-attr]


def test_circuit_breaker_opens_and_fails_fast(delays: list[float]) -> None:
    reg = make_registry({"providers": {"openai": {"max_retries": 0}}})
    with respx.mock() as mock:
        route = mock.post(URLS["openai"]).mock(return_value=httpx.Response(503, json={}))
        for _ in range(5):
            with pytest.raises(pb.ServerError):
                call(reg, "openai")
        with pytest.raises(pb.CircuitOpenError) as ei:
            call(reg, "openai")
    assert route.call_count == 5 and "circuit open" in str(ei.value)
    breaker = reg.breakers.get(URLS["openai"])
    breaker.opened_at = (breaker.opened_at or 0) - breaker.cooldown  # cool-down elapsed: half-open
    with respx.mock() as mock:
        mock.post(URLS["openai"]).mock(return_value=httpx.Response(200, json=OK["openai"]))
        assert call(reg, "openai").text == "ok"
    assert breaker.state == "closed"


def test_error_body_not_json_keeps_text(reg: ProviderRegistry) -> None:
    with respx.mock() as mock:
        mock.post(URLS["anthropic"]).mock(return_value=httpx.Response(404, text="no such route"))
        with pytest.raises(pb.NotFoundError) as ei:
            call(reg, "anthropic")
    assert "404 no such route" in str(ei.value)


def test_stream_http_error_maps_status(reg: ProviderRegistry) -> None:
    with respx.mock() as mock:
        mock.post(URLS["openai"]).mock(return_value=httpx.Response(401, json=err_body("openai", 401, "bad key")))
        with pytest.raises(pb.AuthenticationError):
            call(reg, "openai", stream=True, on_delta=lambda _t: None)


def test_fault_mode_injects_then_passes_through(delays: list[float]) -> None:
    from llmspell.providers import traffic

    reg = make_registry()
    with traffic.use("fault", faults=["429@1", "500", "timeout"]), respx.mock() as mock:
        route = mock.post(URLS["openai"]).mock(return_value=httpx.Response(200, json=OK["openai"]))
        with pytest.raises(pb.ProviderTimeoutError):
            call(reg, "openai")  # 429, 500, timeout: three attempts, all faults
        assert call(reg, "openai").text == "ok"
    assert delays[0] == 1.0 and route.call_count == 1
    assert json.loads(route.calls.last.request.content)["model"] == "m"


def test_max_concurrent_requests_bounds_in_flight_calls() -> None:
    import asyncio

    reg = make_registry({"providers": {"openai": {"max_concurrent_requests": 2}}})
    in_flight = 0
    peak = 0

    async def slow(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return httpx.Response(200, json=OK["openai"])

    async def many() -> list[Any]:
        return list(await asyncio.gather(*(reg.chat("openai", req()) for _ in range(6))))

    with respx.mock() as mock:
        route = mock.post(URLS["openai"]).mock(side_effect=slow)
        results = get_io().run(many(), timeout=30)
    assert len(results) == 6 and route.call_count == 6 and peak == 2


def test_rate_limit_waits_for_the_window() -> None:
    from llmspell.providers.registry import _RateLimiter

    now = [100.0]
    waits: list[float] = []

    async def fake_sleep(s: float) -> None:
        waits.append(s)
        now[0] += s

    lim = _RateLimiter(2, clock=lambda: now[0], sleep=fake_sleep)

    async def three() -> None:
        await lim.acquire()
        now[0] += 10
        await lim.acquire()
        await lim.acquire()

    get_io().run(three(), timeout=10)
    assert waits == [50.0]


def test_rate_limit_config_is_read() -> None:
    reg = make_registry({"providers": {"openai": {"rate_limit": {"requests_per_minute": 30}}}})
    assert reg.spec("openai").requests_per_minute == 30  # type: ignore[union-attr]


def test_x_should_retry_header_overrides(reg: ProviderRegistry, delays: list[float]) -> None:
    with respx.mock() as mock:
        route = mock.post(URLS["anthropic"]).mock(side_effect=[
            httpx.Response(400, json={}, headers={"x-should-retry": "true"}),
            httpx.Response(503, json={}, headers={"x-should-retry": "false"})])
        with pytest.raises(pb.ServerError):
            call(reg, "anthropic")
    assert route.call_count == 2 and len(delays) == 1
