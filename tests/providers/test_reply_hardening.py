"""Issue 17.9 (providers): replies of the wrong shape, cut short, or too big get an accurate ProviderError.

Each case sends the hostile reply, asserts the error type and message (never a KeyError/TypeError
leaking out), and then shows the same registry still serving a normal reply.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import respx

from llmspell.providers import base as pb
from llmspell.providers.registry import ProviderRegistry
from llmspell.runtime.io import get_io
from tests.providers.conftest import make_registry
from tests.providers.test_provider_faults import OK, URLS, call


def still_serving(reg: ProviderRegistry, name: str = "openai") -> None:
    with respx.mock() as mock:
        mock.post(URLS[name]).mock(return_value=httpx.Response(200, json=OK[name]))
        assert call(reg, name).text == "ok"


@pytest.mark.parametrize(("body", "needle"), [
    ({"model": "m", "choices": [{"message": None, "finish_reason": "stop"}]}, "choices[0].message is null"),
    ({"model": "m", "choices": [{"message": "hi"}]}, "choices[0].message is a str"),
    ({"model": "m"}, "no choices (choices is missing)"),
    ({"model": "m", "choices": []}, "no choices (choices is empty)"),
    ({"model": "m", "choices": [None]}, "no choices (choices is not a list of objects)"),
    ({"error": {"message": "overloaded"}}, "only an error: overloaded"),
    ({"model": "m", "choices": [{"message": {"content": "x", "tool_calls": ["not-an-object"]}}]},
     "does not have the openai reply shape"),
])
def test_openai_reply_of_the_wrong_shape(reg: ProviderRegistry, body: dict[str, Any], needle: str) -> None:
    with respx.mock() as mock:
        mock.post(URLS["openai"]).mock(return_value=httpx.Response(200, json=body))
        with pytest.raises(pb.ResponseFormatError) as ei:
            call(reg, "openai")
    assert needle in str(ei.value) and ei.value.provider == "openai"
    still_serving(reg)


@pytest.mark.parametrize(("name", "body"), [
    ("anthropic", {"content": [{"type": "tool_use", "input": "not-json", "id": 1}], "usage": "x"}),
    ("ollama", {"message": {"content": "x"}, "prompt_eval_count": {"a": 1}}),
    ("ollama", {"message": None}),
])
def test_other_adapters_wrong_shape_is_a_provider_error(reg: ProviderRegistry, name: str, body: Any) -> None:
    with respx.mock() as mock:
        mock.post(URLS[name]).mock(return_value=httpx.Response(200, json=body))
        try:
            out = call(reg, name)
        except pb.ProviderError as e:
            assert isinstance(e, pb.ResponseFormatError) and e.provider == name
        else:  # a tolerant parse is fine too, as long as nothing but a ProviderError can escape
            assert isinstance(out.text, str)
    still_serving(reg, name)


def test_body_that_ends_mid_json_names_the_cut(reg: ProviderRegistry) -> None:
    whole = json.dumps(OK["openai"]).encode()
    with respx.mock() as mock:
        mock.post(URLS["openai"]).mock(return_value=httpx.Response(200, content=whole[:40],
                                                                   headers={"content-type": "application/json"}))
        with pytest.raises(pb.ResponseFormatError) as ei:
            call(reg, "openai")
    assert "ends mid-JSON after 40 bytes" in str(ei.value)
    still_serving(reg)


class _Cut(httpx.AsyncByteStream):
    """A body stream that delivers a prefix and then loses the connection."""

    def __init__(self, prefix: bytes) -> None:
        self.prefix = prefix

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.prefix
        raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")


def test_connection_lost_mid_body_is_a_cut_not_a_connect_error(reg: ProviderRegistry) -> None:
    with respx.mock() as mock:
        mock.post(URLS["openai"]).mock(return_value=httpx.Response(
            200, headers={"content-length": "500", "content-type": "application/json"}, stream=_Cut(b'{"choices": [')))
        with pytest.raises(pb.ResponseFormatError) as ei:
            call(reg, "openai")
    assert "cut off after 13 bytes of 500" in str(ei.value) and "cannot connect" not in str(ei.value)
    still_serving(reg)


class _Endless(httpx.AsyncByteStream):
    """An unbounded body; counts what was pulled so the test can see reading stopped."""

    def __init__(self) -> None:
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunk = b"x" * 65536
        while self.sent < 1 << 30:
            self.sent += len(chunk)
            yield chunk


def test_oversized_reply_is_refused_while_streaming_the_read() -> None:
    reg = make_registry({"providers": {"openai": {"max_response_bytes": 1 << 20}}})
    assert reg.spec("openai").max_response_bytes == 1 << 20  # type: ignore[union-attr]
    body = _Endless()
    with respx.mock() as mock:
        mock.post(URLS["openai"]).mock(return_value=httpx.Response(200, stream=body))
        with pytest.raises(pb.ResponseTooLargeError) as ei:
            call(reg, "openai")
    assert "over the 1048576-byte limit" in str(ei.value) and "max_response_bytes" in str(ei.value)
    assert body.sent <= (1 << 20) + 65536  # stopped at the cap, not at the end of the body
    # a declared Content-Length over the cap is refused before reading
    with respx.mock() as mock:
        mock.post(URLS["openai"]).mock(return_value=httpx.Response(
            200, headers={"content-length": str(5 << 20)}, stream=_Cut(b"{")))
        with pytest.raises(pb.ResponseTooLargeError) as ei2:
            call(reg, "openai")
    assert f"{5 << 20} bytes" in str(ei2.value)
    still_serving(reg)


def test_oversized_stream_is_refused() -> None:
    reg = make_registry({"providers": {"openai": {"max_response_bytes": 4096}}})
    event = b'data: {"choices":[{"delta":{"content":"' + b"y" * 500 + b'"}}]}\n\n'

    class Events(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            for _ in range(1000):
                yield event

    with respx.mock() as mock:
        mock.post(URLS["openai"]).mock(return_value=httpx.Response(
            200, headers={"content-type": "text/event-stream"}, stream=Events()))
        with pytest.raises(pb.ResponseTooLargeError):
            get_io().run(reg.chat("openai", _req(), stream=True), timeout=30)
    still_serving(reg)


@pytest.mark.parametrize(("name", "ctype", "body", "message", "hint"), [
    ("openai", "text/event-stream", b"data: {not json\n\n", "malformed JSON in the event stream", "OpenAI-compatible"),
    ("anthropic", "text/event-stream", b"event: message_start\ndata: {not json\n\n",
     "malformed JSON in the event stream", "Anthropic Messages API"),
    ("ollama", "application/x-ndjson", b"{not json\n", "malformed JSON line in the stream", "Ollama server"),
])
def test_malformed_json_in_a_stream_is_a_format_error(reg: ProviderRegistry, name: str, ctype: str, body: bytes,
                                                      message: str, hint: str) -> None:
    with respx.mock() as mock:
        mock.post(URLS[name]).mock(return_value=httpx.Response(200, headers={"content-type": ctype}, content=body))
        with pytest.raises(pb.ResponseFormatError) as ei:
            get_io().run(reg.chat(name, _req(), stream=True), timeout=30)
    assert ei.value.message == message and hint in ei.value.hint and ei.value.provider == name
    still_serving(reg, name)


def _req() -> pb.ChatRequest:
    return pb.ChatRequest(model="m", messages=[pb.ChatMessage("user", "hi")], max_tokens=8)


# ----------------------------------------------------------------------------- a real socket that hangs up
@pytest.fixture
def cutting_server() -> Iterator[int]:
    """A loopback server (port 19100-19199) that announces 400 body bytes, sends 30, and closes."""
    srv = socket.socket()
    for port in range(19100, 19200):
        try:
            srv.bind(("127.0.0.1", port))
            break
        except OSError:
            continue
    else:
        pytest.fail("no free port in 19100-19199")
    srv.listen(4)
    stop = threading.Event()

    def serve() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, rest = data.partition(b"\r\n\r\n")
                length = int(next((ln.split(b":")[1] for ln in head.split(b"\r\n")
                                   if ln.lower().startswith(b"content-length")), b"0"))
                while len(rest) < length:
                    rest += conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 400\r\n\r\n"
                             + b'{"choices": [{"message": {"con')
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield port
    stop.set()
    t.join()
    srv.close()


def test_real_server_hanging_up_mid_body(cutting_server: int) -> None:
    env = {"OPENAI_API_KEY": "sk-x", "LLMSPELL_PROVIDER_OPENAI_BASE_URL": f"http://127.0.0.1:{cutting_server}/v1"}
    reg = make_registry({"providers": {"openai": {"max_retries": 0}}}, env=env)
    for _ in range(2):  # twice: the registry keeps serving after the first cut
        with pytest.raises(pb.ResponseFormatError) as ei:
            get_io().run(reg.chat("openai", _req()), timeout=30)
        assert "cut off after 30 bytes of 400" in str(ei.value)
