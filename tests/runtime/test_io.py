"""The global IO runtime: one loop on a daemon thread, shared HTTP clients, sync bridge, shutdown."""

from __future__ import annotations

import asyncio
import http.server
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from llmspell.runtime.io import IORuntime, get_io


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the client pools the connection

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self.server.hits += 1  # type: ignore[attr-defined]
        self.server.ports.add(self.client_address[1])  # type: ignore[attr-defined]
        body = f"ok {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[str]:
    """A real HTTP/1.1 server on a free loopback port; yields its base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.hits = 0  # type: ignore[attr-defined]
    server.ports = set()  # type: ignore[attr-defined]
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        t.join(5)


def test_get_io_is_one_daemon_loop_per_process() -> None:
    io = get_io()
    assert io is get_io()
    assert io.thread.daemon and io.thread.is_alive() and io.loop.is_running()

    async def where() -> bool:
        return io.in_loop_thread()

    assert io.run(where(), timeout=5) is True
    assert not io.in_loop_thread()


def test_run_from_the_io_thread_is_refused() -> None:
    io = get_io()

    async def nested() -> str:
        async def inner() -> int:
            return 1

        try:
            io.run(inner())
        except RuntimeError as e:
            return str(e)
        return "no error"

    assert "from the IO thread" in io.run(nested(), timeout=5)


def test_http_client_is_shared_per_base_url() -> None:
    io = get_io()
    a = io.http_client("http://127.0.0.1:1")
    assert a is io.http_client("http://127.0.0.1:1")
    assert a is not io.http_client("http://127.0.0.1:2")
    assert a is not io.http_client("http://127.0.0.1:1", kind="tools")


def test_request_through_the_shared_client(http_server: str, lua_runtime: Any) -> None:
    client = get_io().http_client(http_server)
    resp = lua_runtime.block_on(client.get(http_server + "/a"), timeout=10)
    assert resp.status_code == 200 and resp.text == "ok /a"


def test_shutdown_closes_clients_and_stops_the_loop() -> None:
    io = IORuntime()
    client = io.http_client("http://127.0.0.1:9")
    io.shutdown()
    assert client.is_closed and not io.thread.is_alive()
    with pytest.raises(RuntimeError, match="shut down"):
        io.submit(asyncio.sleep(0))
    io.shutdown()  # idempotent


def test_transport_factory_plugs_in_per_base_url() -> None:
    io = IORuntime()
    try:
        seen: list[str] = []

        def factory(base: str) -> httpx.AsyncBaseTransport:
            seen.append(base)
            return httpx.MockTransport(lambda req: httpx.Response(201, text="mocked"))

        io.set_transport_factory(factory)
        client = io.http_client("http://example.invalid")
        resp = io.run(client.get("http://example.invalid/x"), timeout=5)
        assert resp.status_code == 201 and seen == ["http://example.invalid"]
    finally:
        io.shutdown()


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_client_usable_after_65s_idle_while_lua_works(http_server: str, lua_runtime: Any) -> None:
    """A pooled client survives 65 s of idleness while the Lua thread keeps running other work."""
    io = get_io()
    client = io.http_client(http_server)
    first = lua_runtime.block_on(client.get(http_server + "/first"), timeout=10)
    assert first.status_code == 200
    # 65+ s of Lua work on the Lua thread: computation and interruptible sleeps, no HTTP.
    lua_runtime.run_string("""
      local t0 = Utils.now_ms()
      local rounds = 0
      while Utils.now_ms() - t0 < 65500 do
        local x = 0
        for i = 1, 20000 do x = x + i % 7 end
        rounds = rounds + 1
        Utils.sleep(100)
      end
      print(rounds)
    """, "=(idle)")
    assert int(lua_runtime.test_out.text.strip()) > 100
    assert io.thread.is_alive() and io.loop.is_running()
    assert io.http_client(http_server) is client and not client.is_closed
    again = lua_runtime.block_on(client.get(http_server + "/again"), timeout=10)
    assert again.status_code == 200 and again.text == "ok /again"


def test_clients_share_one_tls_context_and_plain_http_providers_load_no_ca() -> None:
    """Loading the CA bundle once per process, not per client; an http:// provider never verifies anything."""
    import ssl

    from llmspell.runtime import io

    io_rt = io.IORuntime()
    try:
        https_a = io_rt.http_client("https://api.example.test/v1")
        https_b = io_rt.http_client("https://other.example.test/v1")
        plain = io_rt.http_client("http://127.0.0.1:9/v1")
        tools = io_rt.http_client("http://example.test", kind="tools")
        verifying, bare = io.tls_context(), io.tls_context(plain_http=True)
        assert verifying is io.tls_context() and verifying.cert_store_stats()["x509_ca"] > 0
        assert bare.cert_store_stats()["x509_ca"] == 0
        assert bare.verify_mode == ssl.CERT_REQUIRED and bare.check_hostname  # fails closed if ever used for TLS
        ssl_of = lambda c: c._transport._pool._ssl_context  # noqa: E731 - httpx internals, read only
        assert ssl_of(https_a) is verifying and ssl_of(https_b) is verifying and ssl_of(tools) is verifying
        assert ssl_of(plain) is bare
    finally:
        io_rt.shutdown()


PREPARE_CHILD = """
import sys
from llmspell.runtime.io import get_io
assert "httpcore" not in sys.modules, "httpcore loaded before any client"
get_io().prepare("http://127.0.0.1:9")
print("httpcore" in sys.modules, "anyio._backends._asyncio" in sys.modules)
"""


def test_prepare_loads_the_connection_stack_before_any_request() -> None:
    """A fresh process: prepare() makes the client and loads httpcore and anyio's asyncio backend, no request sent."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", PREPARE_CHILD], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split() == ["True", "True"], out.stderr


def test_building_an_agent_prepares_its_provider_client(tmp_path: Any) -> None:
    """Agent build makes the provider's client, so the first call pays only the network (issue 18)."""
    from llmspell.bootstrap import create_runtime
    from llmspell.config import load_config
    from llmspell.script.engine import BufferSink

    url = "http://127.0.0.1:7/v1"
    env = {"LLMSPELL_PROVIDER_OPENAI_BASE_URL": url, "OPENAI_API_KEY": "sk-test-prepare",
           "LLMSPELL_STATE_BACKEND": "memory", "HOME": str(tmp_path)}
    rt = create_runtime(load_config(env=env), stdout=BufferSink(), stderr=BufferSink())
    try:
        get_io()._drop_clients()
        rt.run_string('Agent.builder():name("p"):model("openai/gpt-4o-mini"):build()')
        assert ("default", url) in get_io()._clients
    finally:
        rt.close()
