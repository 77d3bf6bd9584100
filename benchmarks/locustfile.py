"""Locust load test of a Jupyter kernel over ZeroMQ: mixed execute / kernel_info / complete / inspect.

jupyter_client's KernelManager and BlockingKernelClient cannot run under locust's gevent loop, so
this file uses only jupyter_client's synchronous `Session` (signing, serialising) with `zmq.green`
sockets, starts the kernels itself in a test_start listener, and signs with a real random key.

Scenarios (environment variables):
  LOAD_KERNEL=llmspell      kernelspec name to drive (python3 for the ipykernel peer)
  LOAD_KERNELS=1            number of kernels; users are spread round-robin over them
                            (1 = many clients on one kernel; N = users = one client per kernel)
  LOAD_CONNECTION_FILE=...  drive already running kernel(s) instead of starting them (os.pathsep-separated)
  LOAD_REPLY_TIMEOUT=10     seconds before a missing reply counts as lost (a failure)

Run headless and bounded, e.g.:
  locust -f benchmarks/locustfile.py --headless -u 8 -r 8 -t 60s --only-summary \\
         --csv reports/load/one_kernel --html reports/load/one_kernel.html
Scale out with locust's own master/worker mode (see docs/benchmarks.md).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import zmq.green as zmq
from jupyter_client.connect import write_connection_file
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.session import Session
from locust import User, between, events, task

KERNEL_NAME = os.environ.get("LOAD_KERNEL", "llmspell")
N_KERNELS = max(1, int(os.environ.get("LOAD_KERNELS", "1")))
REPLY_TIMEOUT = float(os.environ.get("LOAD_REPLY_TIMEOUT", "10"))
CONNECTION_FILE = os.environ.get("LOAD_CONNECTION_FILE")


@dataclass
class _Kernel:
    """A kernel process started for the run (or attached to), with its connection info."""

    info: dict[str, Any]
    proc: subprocess.Popen[bytes] | None = None
    conn_file: str = ""


@dataclass
class _Tally:
    """Requests sent, replies received, and the ids of replies that never came (timed out)."""

    sent: int = 0
    received: int = 0
    lost: list[str] = field(default_factory=list)


_KERNELS: list[_Kernel] = []
_TALLY = _Tally()
_ROUND_ROBIN = itertools.count()


def _start_kernel(ctx: zmq.Context[Any]) -> _Kernel:
    spec = KernelSpecManager().get_kernel_spec(KERNEL_NAME)
    fd, path = tempfile.mkstemp(prefix="load-kernel-", suffix=".json")
    os.close(fd)
    write_connection_file(path, key=str(uuid.uuid4()).encode(), ip="127.0.0.1")
    argv = [a.format(connection_file=path, resource_dir=spec.resource_dir, prefix=sys.prefix) for a in spec.argv]
    if argv and argv[0] in ("python", "python3"):
        argv[0] = sys.executable
    env = dict(os.environ, **(spec.env or {}))
    proc = subprocess.Popen(argv, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    info = json.loads(open(path).read())  # noqa: SIM115
    k = _Kernel(info=info, proc=proc, conn_file=path)
    _wait_ready(ctx, k)
    return k


def _wait_ready(ctx: zmq.Context[Any], k: _Kernel, timeout: float = 60.0) -> None:
    """Poll kernel_info until the kernel answers (the slow-joiner-safe readiness check)."""
    session = Session(key=k.info["key"].encode(), signature_scheme=k.info["signature_scheme"])
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(f"tcp://{k.info['ip']}:{k.info['shell_port']}")
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            session.send(sock, "kernel_info_request", {})
            if sock.poll(1000):
                session.recv(sock)
                return
        raise RuntimeError(f"kernel {KERNEL_NAME} did not answer kernel_info within {timeout:.0f} s")
    finally:
        sock.close()


@events.test_start.add_listener
def _on_test_start(environment: Any, **kwargs: Any) -> None:
    if _KERNELS:
        return
    ctx: zmq.Context[Any] = zmq.Context.instance()
    if CONNECTION_FILE:
        for path in CONNECTION_FILE.split(os.pathsep):
            k = _Kernel(info=json.loads(open(path).read()), conn_file=path)  # noqa: SIM115
            _wait_ready(ctx, k)
            _KERNELS.append(k)
        return
    for _ in range(N_KERNELS):
        _KERNELS.append(_start_kernel(ctx))


@events.test_stop.add_listener
def _on_test_stop(environment: Any, **kwargs: Any) -> None:
    ctx: zmq.Context[Any] = zmq.Context.instance()
    for k in _KERNELS:
        if k.proc is None:
            continue
        session = Session(key=k.info["key"].encode(), signature_scheme=k.info["signature_scheme"])
        sock = ctx.socket(zmq.DEALER)
        sock.linger = 0
        sock.connect(f"tcp://{k.info['ip']}:{k.info['control_port']}")
        session.send(sock, "shutdown_request", {"restart": False})
        sock.poll(2000)
        sock.close()
        try:
            k.proc.wait(5)
        except subprocess.TimeoutExpired:
            k.proc.kill()
        with contextlib.suppress(OSError):
            os.unlink(k.conn_file)
    _KERNELS.clear()
    # Requests still in flight when locust stopped the users were aborted, not lost: only replies
    # that timed out count.
    lost = len(_TALLY.lost)
    summary = {"kernel": KERNEL_NAME, "kernels": N_KERNELS, "sent": _TALLY.sent,
               "received": _TALLY.received, "lost": lost}
    out = os.environ.get("LOAD_SUMMARY")
    if out:
        # one file per process: with --processes every worker keeps its own tally
        with open(f"{out}.{os.getpid()}", "w") as fh:
            json.dump(summary, fh)
    if lost:
        environment.process_exit_code = 1


class KernelClient:
    """One Jupyter client: its own Session id, shell DEALER and iopub SUB on a shared kernel."""

    def __init__(self, info: dict[str, Any]) -> None:
        ctx: zmq.Context[Any] = zmq.Context.instance()
        self.session = Session(key=info["key"].encode(), signature_scheme=info["signature_scheme"],
                               username="locust")
        self.shell = ctx.socket(zmq.DEALER)
        self.shell.linger = 0
        self.shell.setsockopt(zmq.IDENTITY, uuid.uuid4().bytes)
        self.shell.connect(f"tcp://{info['ip']}:{info['shell_port']}")
        self.iopub = ctx.socket(zmq.SUB)
        self.iopub.linger = 0
        self.iopub.setsockopt(zmq.SUBSCRIBE, b"")
        self.iopub.connect(f"tcp://{info['ip']}:{info['iopub_port']}")
        self._handshake()

    def _handshake(self) -> None:
        # PUB drops messages until the subscription has arrived: wait until our SUB sees traffic.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            self.session.send(self.shell, "kernel_info_request", {})
            self._reply(5.0)
            if self.iopub.poll(200):
                self._narrow(self.iopub.recv_multipart()[0])
                self._drain_iopub()
                return

    def _narrow(self, topic: bytes) -> None:
        """Subscribe to status messages only, once the kernel's topic form is known.

        A user only waits for its own `idle`; with every other message filtered at the publisher,
        the load generator's CPU goes to requests instead of decoding the N^2 broadcast of output.
        Both llmspell and ipykernel publish under `kernel.<id>.<msg_type>`.
        """
        parts = topic.split(b".")
        if len(parts) >= 3 and parts[0] == b"kernel":
            self.iopub.setsockopt(zmq.SUBSCRIBE, b".".join(parts[:2]) + b".status")
            self.iopub.setsockopt(zmq.UNSUBSCRIBE, b"")

    def _drain_iopub(self) -> None:
        while self.iopub.poll(0):
            self.iopub.recv_multipart()

    def _reply(self, timeout: float) -> dict[str, Any] | None:
        if not self.shell.poll(int(timeout * 1000)):
            return None
        _idents, msg = self.session.recv(self.shell, mode=0)
        return msg

    def request(self, msg_type: str, content: dict[str, Any], wait_idle: bool) -> int:
        """Send one request; return the reply size. Raises on a lost reply or an error status."""
        msg = self.session.send(self.shell, msg_type, content)
        if msg is None:  # Session.send gives None only for a closed socket
            raise RuntimeError(f"{msg_type}: the shell socket is closed")
        msg_id = msg["header"]["msg_id"]
        _TALLY.sent += 1
        deadline = time.monotonic() + REPLY_TIMEOUT
        reply = self._await_reply(msg_type, msg_id, deadline)
        _TALLY.received += 1
        if wait_idle:
            self._await_idle(msg_id, deadline)
        status = reply["content"].get("status")
        if status != "ok":
            raise RuntimeError(f"{msg_type}: status {status}: {reply['content'].get('evalue', '')}")
        return len(json.dumps(reply["content"]))

    def _await_reply(self, msg_type: str, msg_id: str, deadline: float) -> dict[str, Any]:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                _TALLY.lost.append(msg_id)
                raise TimeoutError(f"no {msg_type.replace('_request', '_reply')} within {REPLY_TIMEOUT:g} s")
            reply = self._reply(left)
            if reply is not None and reply.get("parent_header", {}).get("msg_id") == msg_id:
                return reply

    def _await_idle(self, msg_id: str, deadline: float) -> None:
        # Every subscriber sees every client's output (N^2 traffic with N clients): reject other clients'
        # messages with a byte search before decoding anything, so the load generator stays cheap.
        needle = msg_id.encode()
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not self.iopub.poll(int(left * 1000)):
                raise TimeoutError("no iopub idle for the execute_request")
            frames = self.iopub.recv_multipart(copy=False)
            n = len(frames)
            # [topic, <IDS|MSG>, signature, header, parent_header, metadata, content]
            if n < 7 or needle not in frames[n - 3].bytes or b'"idle"' not in frames[n - 1].bytes:
                continue
            header = json.loads(frames[n - 4].bytes)
            parent = json.loads(frames[n - 3].bytes or b"{}") or {}
            if header.get("msg_type") == "status" and parent.get("msg_id") == msg_id:
                return

    def close(self) -> None:
        self.shell.close()
        self.iopub.close()


EXECUTE_CODE = {"llmspell": "return 1", "python3": "1"}
COMPLETE_CODE = {"llmspell": ("pri", 3), "python3": ("pri", 3)}
INSPECT_CODE = {"llmspell": ("print", 5), "python3": ("print", 5)}


class JupyterUser(User):
    """A user driving one kernel with a weighted mix of requests."""

    wait_time = between(0.0, 0.005)

    def on_start(self) -> None:
        kernel = _KERNELS[next(_ROUND_ROBIN) % len(_KERNELS)]
        self.client = KernelClient(kernel.info)

    def on_stop(self) -> None:
        self.client.close()

    def _measure(self, name: str, msg_type: str, content: dict[str, Any], wait_idle: bool = False) -> None:
        with self.environment.events.request.measure("jupyter", name) as meta:
            meta["response_length"] = self.client.request(msg_type, content, wait_idle)

    @task(5)
    def execute(self) -> None:
        code = EXECUTE_CODE.get(KERNEL_NAME, "1")
        self._measure("execute", "execute_request",
                      {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                       "allow_stdin": False, "stop_on_error": False}, wait_idle=True)

    @task(3)
    def kernel_info(self) -> None:
        self._measure("kernel_info", "kernel_info_request", {})

    @task(1)
    def complete(self) -> None:
        code, pos = COMPLETE_CODE.get(KERNEL_NAME, ("pri", 3))
        self._measure("complete", "complete_request", {"code": code, "cursor_pos": pos})

    @task(1)
    def inspect(self) -> None:
        code, pos = INSPECT_CODE.get(KERNEL_NAME, ("print", 5))
        self._measure("inspect", "inspect_request", {"code": code, "cursor_pos": pos, "detail_level": 0})
