"""A small real OpenAI-compatible HTTP server for unit tests (stdlib only, free port, own thread).

`POST /v1/chat/completions` (also `/chat/completions`) answers with a completion whose text is
derived from the request: by default `"reply: <last user message>"`, or `reply_fn(request_json)`.
It sleeps `delay` seconds first (concurrent requests are served concurrently), records every
request, and can be told to fail with an HTTP status. Any other path serves `routes` (for tool
tests) or 404.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorded:
    """One request as received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Route:
    """A canned response for a non-chat path."""

    status: int = 200
    body: str | bytes = ""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class LLMServer:
    """Threaded HTTP server; use as a context manager or call start()/stop()."""

    def __init__(self, *, delay: float = 0.0, reply_fn: Callable[[dict[str, Any]], str] | None = None,
                 model: str = "test-model") -> None:
        self.delay = delay
        self.reply_fn = reply_fn
        self.model = model
        self.requests: list[Recorded] = []
        self.routes: dict[str, Route] = {}
        self.fail_status: int | None = None
        self.fail_times = 0
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def port(self) -> int:
        assert self._httpd is not None
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL (`.../v1`)."""
        return self.url + "/v1"

    def start(self) -> LLMServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out as separate writes

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                rec = Recorded(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body,
                               time.monotonic())
                with server._lock:
                    server.requests.append(rec)
                server._respond(self, rec)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle  # noqa: N815

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), name="llm-test-server",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> LLMServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ------------------------------------------------------------------ responses
    def chat_requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.json() for r in self.requests if r.path.rstrip("/").endswith("/chat/completions")]

    def _send(self, h: BaseHTTPRequestHandler, status: int, body: bytes, ctype: str,
              headers: dict[str, str] | None = None) -> None:
        try:
            h.send_response(status)
            h.send_header("content-type", ctype)
            h.send_header("content-length", str(len(body)))
            for k, v in (headers or {}).items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a cancelled step): expected in timeout tests

    def _respond(self, h: BaseHTTPRequestHandler, rec: Recorded) -> None:
        path = rec.path.split("?", 1)[0]
        if path.rstrip("/").endswith("/chat/completions") and rec.method == "POST":
            self._chat(h, rec)
            return
        route = self.routes.get(path)
        if route is None:
            self._send(h, 404, b'{"error": "not found"}', "application/json")
            return
        if route.delay:
            time.sleep(route.delay)
        data = route.body.encode() if isinstance(route.body, str) else route.body
        self._send(h, route.status, data, route.content_type, route.headers)

    def _chat(self, h: BaseHTTPRequestHandler, rec: Recorded) -> None:
        if self.delay:
            time.sleep(self.delay)
        with self._lock:
            fail = self.fail_status if self.fail_times != 0 else None
            if fail is not None and self.fail_times > 0:
                self.fail_times -= 1
        if fail is not None:
            err = json.dumps({"error": {"message": f"test failure {fail}", "type": "test_error"}}).encode()
            self._send(h, fail, err, "application/json")
            return
        req = rec.json() or {}
        messages = req.get("messages") or []
        user = next((m.get("content", "") for m in reversed(messages) if m.get("role") == "user"), "")
        text = self.reply_fn(req) if self.reply_fn else f"reply: {user}"
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in messages)
        completion_tokens = len(text.split())
        payload = {
            "id": f"chatcmpl-{len(self.requests)}", "object": "chat.completion", "created": int(time.time()),
            "model": req.get("model", self.model),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        }
        self._send(h, 200, json.dumps(payload).encode(), "application/json")
