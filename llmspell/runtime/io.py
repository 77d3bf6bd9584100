"""The process-wide IO runtime: one asyncio loop in a daemon thread, owner of every HTTP client.

Lua-facing code never runs its own event loop. It submits coroutines here and waits on the
returned concurrent future, so pooled connections always belong to this one long-lived loop.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import ssl
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import anyio
import httpx

T = TypeVar("T")

TransportFactory = Callable[[str], "httpx.AsyncBaseTransport | None"]


class IORuntime:
    """An asyncio loop on a daemon thread plus a cache of httpx clients keyed by base URL."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="llmspell-io", daemon=True)
        self._clients: dict[tuple[str, str], httpx.AsyncClient] = {}
        self._clients_lock = threading.Lock()
        self._transport_factory: TransportFactory | None = None
        self._closed = False
        self._backend_loaded = False
        self._thread.start()
        self._ready.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.call_soon(self._ready.set)
        self._loop.run_forever()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def in_loop_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule a coroutine on the IO loop from any thread."""
        if self._closed:
            coro.close()
            raise RuntimeError("the IO runtime is shut down")
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run a coroutine on the IO loop and wait for it (for threads that are not the IO thread)."""
        if self.in_loop_thread():
            coro.close()
            raise RuntimeError("IORuntime.run called from the IO thread; await the coroutine instead")
        return self.submit(coro).result(timeout)

    def set_transport_factory(self, factory: TransportFactory | None) -> None:
        """Install the factory that supplies an httpx transport per base URL (traffic modes plug in here).

        Clients already created keep their transport, so this is called once at start-up, before traffic.
        """
        self._transport_factory = factory
        self._drop_clients()

    def http_client(self, base_url: str = "", *, kind: str = "default") -> httpx.AsyncClient:
        """The shared AsyncClient for a base URL; created on first use and kept for the process."""
        key = (kind, base_url)
        client = self._clients.get(key)
        if client is not None:
            return client
        with self._clients_lock:
            client = self._clients.get(key)
            if client is None:
                client = self._make_client(base_url, kind)
                self._clients[key] = client
            return client

    def prepare(self, base_url: str, *, kind: str = "default") -> None:
        """Build the client for `base_url` and load the connection stack now, so a first request pays only the network.

        httpx imports its connection pool (httpcore) when a client is made, and anyio loads its asyncio
        backend on the first socket: together 20-60 ms. Agents call this when they are built.
        """
        self.http_client(base_url, kind=kind)
        if not self._backend_loaded and not self.in_loop_thread():
            self.run(anyio.sleep(0))
            self._backend_loaded = True

    def _make_client(self, base_url: str, kind: str = "default") -> httpx.AsyncClient:
        transport = self._transport_factory(base_url) if self._transport_factory else None
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=16, keepalive_expiry=30.0)
        kwargs: dict[str, Any] = {"limits": limits, "timeout": httpx.Timeout(120.0, connect=10.0),
                                  "verify": tls_context(plain_http=kind == "default" and base_url.startswith("http://"))}
        if transport is not None:
            kwargs["transport"] = transport
        return httpx.AsyncClient(**kwargs)

    def _drop_clients(self) -> None:
        with self._clients_lock:
            clients = list(self._clients.values())
            self._clients.clear()
        for c in clients:
            if not self._closed and self._loop.is_running():
                asyncio.run_coroutine_threadsafe(c.aclose(), self._loop)

    def shutdown(self, timeout: float = 2.0) -> None:
        """Close every client and stop the loop."""
        if self._closed:
            return
        clients = list(self._clients.values())
        self._clients.clear()

        async def _close_all() -> None:
            await asyncio.gather(*(c.aclose() for c in clients), return_exceptions=True)

        if self._loop.is_running() and not self.in_loop_thread():
            with contextlib.suppress(Exception):  # shutdown is best effort
                asyncio.run_coroutine_threadsafe(_close_all(), self._loop).result(timeout)
            self._closed = True
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
        self._closed = True


_tls: dict[bool, ssl.SSLContext] = {}
_tls_lock = threading.Lock()


def tls_context(plain_http: bool = False) -> ssl.SSLContext:
    """One verifying TLS context for the process (loading the CA bundle costs 20-40 ms per client otherwise).

    A provider client for an http:// base URL never handshakes (providers follow no redirects): it
    gets a context with verification on and no CA loaded, which would fail closed if ever used.
    """
    with _tls_lock:
        ctx = _tls.get(plain_http)
        if ctx is None:
            # A bare client context keeps CERT_REQUIRED and check_hostname: it fails closed.
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT) if plain_http else httpx.create_ssl_context()
            _tls[plain_http] = ctx
        return ctx


_io: IORuntime | None = None
_io_lock = threading.Lock()


def run_inline(coro: Coroutine[Any, Any, T], where: str) -> T:
    """Run a coroutine that never suspends on the calling thread, without an event loop.

    The sync paths of the tool pipeline and of a workflow's start and finish share their code with
    the async paths this way; a suspension there is a bug, raised as RuntimeError naming `where`.
    """
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise RuntimeError(f"{where} suspended, which its synchronous caller cannot wait for")


def get_io() -> IORuntime:
    """The process's IO runtime, created on first use."""
    global _io
    if _io is None:
        with _io_lock:
            if _io is None:
                _io = IORuntime()
                atexit.register(_io.shutdown)
    return _io
