"""DAP over TCP: Content-Length framing, one client session per connection, TCP_NODELAY."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("llmspell.debug")

_HEADER_END = b"\r\n\r\n"
#: Largest message body accepted (Content-Length cap); a larger one ends the connection.
MAX_MESSAGE = 4 * 1024 * 1024
#: Longest header block accepted before its blank line.
MAX_HEADER = 1024


class FramingError(Exception):
    """The peer sent something that is not a Content-Length framed message."""


class DapStream:
    """Reads and writes Content-Length framed JSON messages on a connected socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buf = b""
        self._wlock = threading.Lock()
        self.closed = False

    def send(self, message: dict[str, Any]) -> None:
        """Write one message (thread-safe); text that is not valid UTF-8 goes out escaped."""
        body = encode_message(message)
        data = b"Content-Length: %d\r\n\r\n" % len(body) + body
        with self._wlock:
            if self.closed:
                raise OSError("connection closed")
            self.sock.sendall(data)

    def read(self) -> dict[str, Any] | None:
        """The next message, or None at end of stream."""
        while True:
            end = self._buf.find(_HEADER_END)
            if end >= 0:
                length = _content_length(self._buf[:end])
                total = end + len(_HEADER_END) + length
                while len(self._buf) < total:
                    if not self._fill():
                        return None
                body = self._buf[end + len(_HEADER_END):total]
                self._buf = self._buf[total:]
                try:
                    msg = json.loads(body.decode("utf-8"))
                except (UnicodeDecodeError, json.JSONDecodeError) as e:
                    raise FramingError(f"invalid JSON body: {e}") from None
                if not isinstance(msg, dict):
                    raise FramingError("a DAP message must be a JSON object")
                return msg
            if len(self._buf) > MAX_HEADER:
                raise FramingError(f"header longer than {MAX_HEADER} bytes without its blank line")
            if not self._fill():
                return None

    def _fill(self) -> bool:
        try:
            chunk = self.sock.recv(65536)
        except OSError:
            return False
        if not chunk:
            return False
        self._buf += chunk
        return True

    def close(self) -> None:
        with self._wlock:
            if self.closed:
                return
            self.closed = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


def encode_message(message: dict[str, Any]) -> bytes:
    """The UTF-8 JSON body of a message; lone surrogates (Lua bytes that are not UTF-8) become \\xNN."""
    text = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(escape_surrogates(message), ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def escape_text(s: str) -> str:
    """`s` with each byte that was not valid UTF-8 in Lua (a surrogateescape code) written as \\xNN."""
    if not any("\ud800" <= ch <= "\udfff" for ch in s):
        return s
    out = []
    for ch in s:
        if "\udc80" <= ch <= "\udcff":
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        elif "\ud800" <= ch <= "\udfff":
            out.append("\ufffd")
        else:
            out.append(ch)
    return "".join(out)


def escape_surrogates(value: Any) -> Any:
    """A copy of a JSON value whose strings (keys too) went through escape_text."""
    if isinstance(value, str):
        return escape_text(value)
    if isinstance(value, dict):
        return {escape_text(str(k)): escape_surrogates(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [escape_surrogates(v) for v in value]
    return value


def _content_length(header: bytes) -> int:
    found: int | None = None
    for line in header.split(b"\r\n"):
        name, colon, value = line.partition(b":")
        if not colon:
            raise FramingError("malformed header line (no ':')")
        if name.strip().lower() == b"content-length":
            text = value.strip()
            if not text.isdigit() or len(text) > 12:
                raise FramingError("bad Content-Length")
            found = int(text)
            if found > MAX_MESSAGE:
                raise FramingError(f"Content-Length {found} is over the {MAX_MESSAGE}-byte limit")
    if found is None:
        raise FramingError("missing Content-Length header")
    return found


def listen(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening socket (port 0 picks a free port; read it with getsockname())."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, port))
    srv.listen(4)
    return srv


def serve_connection(stream: DapStream, handle: Callable[[dict[str, Any]], None],
                     on_close: Callable[[], None],
                     preview: Callable[[dict[str, Any]], None] | None = None,
                     on_bad: Callable[[str], None] | None = None) -> threading.Thread:
    """Serve one connection: a reader thread decodes requests, a worker thread handles them in order.

    `preview` sees each request on the reader thread first (so a `terminate` can cancel an endless
    evaluate the worker is waiting for). A framing error (no or oversized Content-Length, a body that
    is not a JSON object) is reported through `on_bad(text)` (the session sends it as an `output`
    event), then the connection closes.
    `on_close` runs once, after both threads are done. Returns the worker thread.
    """
    import queue

    inbox: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()

    def read_loop() -> None:
        try:
            while True:
                try:
                    msg = stream.read()
                except FramingError as e:
                    log.warning("DAP client sent a bad message: %s", e)
                    if on_bad is not None:
                        with contextlib.suppress(Exception):
                            on_bad(f"llmspell debug: bad DAP message ({e}); closing the connection\n")
                    msg = None
                if msg is None:
                    break
                if preview is not None:
                    try:
                        preview(msg)
                    except Exception:  # noqa: BLE001 - the request itself is still handled
                        log.exception("DAP preview failed")
                inbox.put(msg)
        finally:
            inbox.put(None)

    def work_loop() -> None:
        try:
            while True:
                msg = inbox.get()
                if msg is None:
                    break
                try:
                    handle(msg)
                except OSError:
                    break
                if stream.closed:
                    break
        finally:
            stream.close()
            reader.join(5)
            on_close()

    reader = threading.Thread(target=read_loop, name="llmspell-dap-read", daemon=True)
    worker = threading.Thread(target=work_loop, name="llmspell-dap-work", daemon=True)
    reader.start()
    worker.start()
    return worker


class DapClient:
    """A small DAP client (tests, benchmarks): requests wait for their response, events are queued."""

    def __init__(self, host: str, port: int, timeout: float = 10.0) -> None:
        import queue

        self.stream = DapStream(socket.create_connection((host, port), timeout=timeout))
        self.stream.sock.settimeout(None)
        self.timeout = timeout
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._responses: dict[int, queue.Queue[dict[str, Any]]] = {}
        self._seq = 0
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read_loop, name="dap-client", daemon=True)
        self._reader.start()

    def _read_loop(self) -> None:
        while True:
            try:
                msg = self.stream.read()
            except (FramingError, OSError):
                msg = None
            if msg is None:
                self.events.put({"type": "event", "event": "_closed"})
                return
            if msg.get("type") == "response":
                q = self._responses.get(int(msg.get("request_seq", -1)))
                if q is not None:
                    q.put(msg)
            else:
                self.events.put(msg)

    def send(self, command: str, arguments: dict[str, Any] | None = None) -> int:
        """Send a request without waiting; returns its seq."""
        import queue

        with self._lock:
            self._seq += 1
            seq = self._seq
            self._responses[seq] = queue.Queue()
        msg: dict[str, Any] = {"seq": seq, "type": "request", "command": command}
        if arguments is not None:
            msg["arguments"] = arguments
        self.stream.send(msg)
        return seq

    def response(self, seq: int) -> dict[str, Any]:
        resp = self._responses[seq].get(timeout=self.timeout)
        del self._responses[seq]
        return resp

    def request(self, command: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send a request and return its response."""
        return self.response(self.send(command, arguments))

    def wait_event(self, name: str, timeout: float | None = None) -> dict[str, Any]:
        """The next event called `name` (earlier other events are dropped)."""
        import time

        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {name} event")
            ev = self.events.get(timeout=left)
            if ev.get("event") == name:
                return ev
            if ev.get("event") == "_closed":
                raise ConnectionError(f"connection closed while waiting for {name}")

    def close(self) -> None:
        self.stream.close()
