"""The kernel's ZeroMQ sockets: connection files, binding, the iopub sender, heartbeat and control threads.

Sockets: shell and control ROUTER, iopub XPUB, stdin ROUTER, heartbeat ROUTER proxied onto itself
(a REP-style echo done in C by ``zmq.proxy``, so it never waits for the GIL-holding Lua thread).
The shell and stdin sockets belong to the Lua (main) thread, control to its own thread, and
iopub is shared through one locked sender.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import select
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import zmq

from llmspell.kernel.wire import Message, Session, WireError

log = logging.getLogger("llmspell.kernel")

_MORE = int(zmq.SNDMORE)
_raw_send: Any
try:  # the Cython send, without pyzmq's per-frame Python wrapper (about 5x faster for small frames)
    from zmq.backend import Socket as _BackendSocket

    _raw_send = _BackendSocket.send
except (ImportError, AttributeError):  # pragma: no cover - other pyzmq backends
    _raw_send = None


def send_frames(sock: zmq.Socket[bytes], frames: list[bytes]) -> None:
    """Send a multipart message (the same as send_multipart, with less per-frame overhead)."""
    if _raw_send is None:
        sock.send_multipart(frames)
        return
    last = len(frames) - 1
    for i, frame in enumerate(frames):
        _raw_send(sock, frame, _MORE if i < last else 0, True, False)

CHANNEL_NAMES = ("shell", "iopub", "stdin", "control", "hb")
#: Largest frame a client may send to iopub (its subscriptions: one byte and a topic).
IOPUB_MAX_INBOUND_BYTES = 1 << 16


@dataclass
class ConnectionInfo:
    """The contents of a Jupyter connection file."""

    ip: str = "127.0.0.1"
    transport: str = "tcp"
    shell_port: int = 0
    iopub_port: int = 0
    stdin_port: int = 0
    control_port: int = 0
    hb_port: int = 0
    key: str = field(default_factory=lambda: str(uuid.uuid4()))
    signature_scheme: str = "hmac-sha256"
    kernel_name: str = "llmspell"

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ConnectionInfo:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def port(self, channel: str) -> int:
        return int(getattr(self, f"{channel}_port"))

    def url(self, channel: str) -> str:
        port = self.port(channel)
        if self.transport == "ipc":
            return f"ipc://{self.ip}-{port}"
        return f"tcp://{self.ip}:{port}"

    def write(self, path: str | os.PathLike[str]) -> None:
        """Write atomically with mode 0600 (the file holds the signing key)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, indent=1)
        os.replace(tmp, path)


class Channels:
    """Creates and binds the five sockets for a connection; fills in ports chosen by the OS."""

    def __init__(self, info: ConnectionInfo, session: Session) -> None:
        self.info = info
        self.session = session
        self.context = zmq.Context()
        self.sockets: dict[str, zmq.Socket[bytes]] = {}
        # XPUB (a PUB that reports subscriptions) lets the kernel wait for a client's SUB before it
        # publishes what that client waits for (IOPub.wait_for_subscriber).
        kinds = {"shell": zmq.ROUTER, "iopub": zmq.XPUB, "stdin": zmq.ROUTER,
                 "control": zmq.ROUTER, "hb": zmq.ROUTER}
        for name in CHANNEL_NAMES:
            sock = self.context.socket(kinds[name])
            sock.setsockopt(zmq.LINGER, 1000)
            if name in ("shell", "control", "stdin"):
                sock.setsockopt(zmq.ROUTER_HANDOVER, 1)  # a reconnecting client keeps its identity
                if session.max_message_bytes:
                    # Frames far over the limit are refused by libzmq before they are buffered (the
                    # peer is disconnected); the rest is checked, logged and dropped by Session.
                    limit = session.max_message_bytes
                    sock.setsockopt(zmq.MAXMSGSIZE, max(4 * limit, limit + (1 << 20)))
            if name == "iopub":
                sock.setsockopt(zmq.SNDHWM, 0)  # never drop output for a slow subscriber
                # XPUB hands every frame a peer sends to the application, where it waits until the next
                # subscription check: subscriptions are short, a peer sending more is disconnected.
                sock.setsockopt(zmq.MAXMSGSIZE, IOPUB_MAX_INBOUND_BYTES)
            self._bind(sock, name)
            self.sockets[name] = sock
        self.iopub = IOPub(self.sockets["iopub"], session)

    def _bind(self, sock: zmq.Socket[bytes], name: str) -> None:
        info = self.info
        port = info.port(name)
        if info.transport == "ipc":
            if port <= 0:
                port = 1
                while os.path.exists(f"{info.ip}-{port}"):
                    port += 1
            sock.bind(f"ipc://{info.ip}-{port}")
        elif port <= 0:
            sock.bind(f"tcp://{info.ip}:*")
            endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
            port = int(endpoint.rsplit(":", 1)[1])
        else:
            sock.bind(f"tcp://{info.ip}:{port}")
        setattr(info, f"{name}_port", port)

    def close(self, linger_ms: int = 500) -> None:
        """Close the sockets this thread owns and terminate the context (threads see ETERM)."""
        for name in ("shell", "stdin", "iopub"):
            sock = self.sockets.get(name)
            if sock is not None and not sock.closed:
                sock.close(linger=linger_ms)
        term = threading.Thread(target=self.context.term, name="llmspell-zmq-term", daemon=True)
        term.start()
        term.join(2.0)
        if self.info.transport == "ipc":
            for name in CHANNEL_NAMES:
                with contextlib.suppress(OSError):
                    os.unlink(f"{self.info.ip}-{self.info.port(name)}")


class IOPub:
    """The one thread-safe iopub sender: every thread publishes through `send` (a lock, no hop)."""

    def __init__(self, socket: zmq.Socket[bytes], session: Session) -> None:
        self._socket = socket
        self._session = session
        self._lock = threading.Lock()
        self._topic = f"kernel.{session.session[:8]}.".encode()
        #: Topics some client subscribes to, as the XPUB socket reports them (read under the lock).
        self._subscribed: set[bytes] = set()
        self.closed = False

    def _read_subscriptions(self) -> None:
        """Apply the subscription messages XPUB queued (b"\\x01" + topic, b"\\x00" + topic when the
        last subscriber of a topic left); the caller holds the lock."""
        while True:
            try:
                frame = self._socket.recv(zmq.NOBLOCK)
            except zmq.ZMQError:  # zmq.Again: none left (or the socket is closed)
                return
            if frame[:1] == b"\x01":
                self._subscribed.add(frame[1:])
            elif frame[:1] == b"\x00":
                self._subscribed.discard(frame[1:])

    def has_subscriber(self) -> bool:
        """Whether at least one client's SUB socket is subscribed now."""
        with self._lock:
            if self.closed:
                return False
            self._read_subscriptions()
            return bool(self._subscribed)

    def wait_for_subscriber(self, timeout: float, cancel: threading.Event | None = None) -> bool:
        """Wait up to `timeout` seconds until a client subscribes (False on timeout, close or `cancel`).

        PUB drops every message published before a SUB's subscription has reached it (the slow
        joiner), so a request served before then loses its busy, output and idle."""
        deadline = time.monotonic() + timeout
        try:
            fd = int(self._socket.getsockopt(zmq.FD))
        except zmq.ZMQError:
            return False
        while not self.has_subscriber():
            left = deadline - time.monotonic()
            if left <= 0 or self.closed or (cancel is not None and cancel.is_set()):
                return False
            # The socket's fd only signals that something (a subscription) may be ready; another
            # thread's send can consume that signal, so each wait is short and the check repeats.
            try:
                select.select([fd], [], [], min(left, 0.05))
            except (OSError, ValueError):
                return False
        return True

    def send(self, msg_type: str, content: dict[str, Any], parent: dict[str, Any] | None = None,
             metadata: dict[str, Any] | None = None, buffers: tuple[bytes, ...] = ()) -> None:
        frames = self._session.serialize(msg_type, content, parent, metadata=metadata,
                                         idents=(self._topic + msg_type.encode(),), buffers=buffers)
        with self._lock:
            if self.closed:
                return
            try:
                send_frames(self._socket, frames)
            except zmq.ZMQError as e:
                log.warning("iopub send of %s failed: %s", msg_type, e)

    def status(self, state: str, parent: dict[str, Any] | None = None) -> None:
        self.send("status", {"execution_state": state}, parent)

    def close(self) -> None:
        with self._lock:
            self.closed = True


class Heartbeat(threading.Thread):
    """Echoes heartbeat pings in C (zmq.proxy of a ROUTER onto itself) until the context ends."""

    def __init__(self, socket: zmq.Socket[bytes]) -> None:
        super().__init__(name="llmspell-heartbeat", daemon=True)
        self._socket = socket

    def run(self) -> None:
        try:
            zmq.proxy(self._socket, self._socket)
        except zmq.ZMQError as e:
            if e.errno != zmq.ETERM:
                log.error("heartbeat stopped: %s", e)
        finally:
            self._socket.close(linger=0)


class Channel:
    """One request/reply socket (shell, control or stdin) and the thread that owns it."""

    def __init__(self, name: str, socket: zmq.Socket[bytes], session: Session) -> None:
        self.name = name
        self.socket = socket
        self.session = session

    def send(self, msg_type: str, content: dict[str, Any], parent: Message | None, *,
             metadata: dict[str, Any] | None = None) -> None:
        """Send a message addressed to the identities of `parent` (its sender)."""
        frames = self.session.serialize(
            msg_type, content, parent.header if parent is not None else None,
            metadata=metadata, idents=parent.idents if parent is not None else ())
        try:
            send_frames(self.socket, frames)
        except zmq.ZMQError as e:
            log.warning("%s send of %s failed: %s", self.name, msg_type, e)

    def recv(self, flags: int = 0) -> Message | None:
        """Receive one message; None (after logging why) when it is dropped."""
        frames = self.socket.recv_multipart(flags, copy=True)
        try:
            return self.session.deserialize(frames)
        except WireError as e:
            log.warning("dropped a message on %s: %s", self.name, e)
            return None
        except Exception:  # noqa: BLE001 - no frame list may end the serving loop
            log.exception("dropped a message on %s that could not be parsed", self.name)
            return None


class ControlThread(threading.Thread):
    """Serves the control channel on its own thread, so shutdown, interrupt and the debugger never
    queue behind a running cell."""

    def __init__(self, channel: Channel, dispatch: Callable[[Message, Channel], None]) -> None:
        super().__init__(name="llmspell-control", daemon=True)
        self.channel = channel
        self._dispatch = dispatch

    def run(self) -> None:
        sock = self.channel.socket
        try:
            while True:
                msg = self.channel.recv()
                if msg is not None:
                    try:
                        self._dispatch(msg, self.channel)
                    except Exception:  # noqa: BLE001 - one bad request must not stop control
                        log.exception("control handler for %s failed", msg.msg_type)
        except zmq.ZMQError as e:
            if e.errno != zmq.ETERM:
                log.error("control channel stopped: %s", e)
        finally:
            sock.close(linger=200)
