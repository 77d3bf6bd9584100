"""The HTTP tools retry on the providers' one RetryPolicy: same backoff, same Retry-After handling."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from llmspell.providers import retry
from tests.support.llm_server import LLMServer, Route
from tests.tools.conftest import invoke

ALLOW = '[tools.http_request]\nallowed_hosts = ["127.0.0.1"]\n'


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record every backoff the retry loop asks for instead of sleeping it."""
    seen: list[float] = []

    async def no_sleep(seconds: float) -> None:
        seen.append(seconds)

    monkeypatch.setattr(retry, "sleep", no_sleep)
    return seen


def test_retry_after_header_is_the_wait(make_rt: Any, http: LLMServer, waits: list[float]) -> None:
    http.routes["/busy"] = Route(429, "slow down", headers={"retry-after": "3"})
    r = invoke(make_rt(ALLOW), "webhook-caller", f'{{input = "{http.url}/busy", max_retries = 2}}')
    assert r["result"]["retry_count"] == 2
    assert waits == [3.0, 3.0]


def test_connect_failures_back_off_like_providers(make_rt: Any, waits: list[float]) -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    r = invoke(make_rt(ALLOW), "webhook-caller", f'{{input = "http://127.0.0.1:{port}/x", max_retries = 3}}')
    assert r["success"] is False and "connection failed" in r["error"]
    policy = retry.RetryPolicy()
    assert len(waits) == 3
    for i, w in enumerate(waits):
        cap = min(policy.base_delay * 2 ** i, policy.max_delay)
        assert 0.75 * cap <= w <= cap


def test_retry_after_over_the_cap_falls_back_to_backoff() -> None:
    policy = retry.RetryPolicy()
    assert policy.delay(0, 5.0) == 5.0
    assert policy.delay(1, policy.max_retry_after + 1) <= policy.base_delay * 2
