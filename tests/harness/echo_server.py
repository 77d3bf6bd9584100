"""A tiny loopback OpenAI-compatible server for the harness tests: it echoes the prompt, or answers a fixed text.

It stands in for a model that contributes nothing (the echo mode) and for one that answers (the
fixed mode), on a port of the harness tests' range 19000-19099.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PORTS = range(19000, 19100)


class _Handler(BaseHTTPRequestHandler):
    server: EchoServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass

    def _send(self, status: int, data: dict[str, Any]) -> None:
        body = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        if self.path.rstrip("/").endswith("/models"):
            self._send(200, {"object": "list", "data": [{"id": "echo", "object": "model"}]})
        else:
            self._send(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        length = int(self.headers.get("content-length") or 0)
        try:
            req = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            self._send(400, {"error": {"message": "body is not JSON"}})
            return
        self.server.requests.append(req)
        if "prompt" in req:
            prompt = req["prompt"] if isinstance(req["prompt"], str) else "\n".join(map(str, req["prompt"]))
        else:
            users = [m.get("content") for m in req.get("messages") or [] if m.get("role") == "user"]
            prompt = str(users[-1] if users else "")
        reply = prompt if self.server.answer is None else self.server.answer
        if self.server.grade is not None and prompt.rstrip().endswith("Score:"):
            reply = self.server.grade  # a judge-model request (harness/grader.py)
        usage = {"prompt_tokens": len(prompt.split()), "completion_tokens": len(reply.split()),
                 "total_tokens": len(prompt.split()) + len(reply.split())}
        path = self.path.rstrip("/")
        if path.endswith("/chat/completions"):
            self._send(200, {"id": "echo-1", "object": "chat.completion", "created": int(time.time()),
                             "model": req.get("model", "echo"), "usage": usage,
                             "choices": [{"index": 0, "finish_reason": "stop",
                                          "message": {"role": "assistant", "content": reply}}]})
        elif path.endswith("/completions"):
            self._send(200, {"id": "echo-1", "object": "text_completion", "created": int(time.time()),
                             "model": req.get("model", "echo"), "usage": usage,
                             "choices": [{"index": 0, "finish_reason": "stop", "text": reply}]})
        elif path.endswith("/embeddings"):
            inputs = req.get("input") if isinstance(req.get("input"), list) else [req.get("input")]
            self._send(200, {"object": "list", "model": "echo", "usage": {"prompt_tokens": 1, "total_tokens": 1},
                             "data": [{"object": "embedding", "index": i, "embedding": [1.0, 0.0, 0.0]}
                                      for i, _ in enumerate(inputs)]})
        else:
            self._send(404, {"error": {"message": f"no route {self.path}"}})


class EchoServer(ThreadingHTTPServer):
    """Serves /v1/chat/completions, /v1/completions, /v1/embeddings and /v1/models on 127.0.0.1."""

    daemon_threads = True

    def __init__(self, port: int, answer: str | None = None, grade: str | None = None) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.answer = answer
        self.grade = grade
        self.requests: list[dict[str, Any]] = []
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def start(self) -> EchoServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(5)


def start_server(answer: str | None = None, grade: str | None = None) -> EchoServer:
    """An echo (answer None) or fixed-answer server on the first free port of 19000-19099.

    With `grade`, prompts ending in `Score:` (the judge model's) get that reply instead.
    """
    for port in PORTS:
        try:
            return EchoServer(port, answer, grade).start()
        except OSError:
            continue
    raise RuntimeError("no free port in 19000-19099 for the echo server")


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0
