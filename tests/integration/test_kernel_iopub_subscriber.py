"""A client whose iopub subscription reaches the kernel after its first requests still gets their
busy, output and idle (the race that hung jupyter console at its first prompt); a client that
never subscribes is still served, after one bounded wait; a peer sending iopub more than
subscriptions is disconnected."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq
from jupyter_client.manager import KernelManager
from jupyter_client.session import Session
from zmq.utils.monitor import recv_monitor_message

from tests.kernel.kernel_support import KERNEL_NAME, jupyter_env, kernel_env  # noqa: F401 - fixture

pytestmark = pytest.mark.timeout(120)

WAIT = 60.0
GAVE_UP = "no client subscribed to iopub within"


class Client:
    """Raw sockets to one kernel: a shell DEALER now, an iopub SUB only when `subscribe` is called."""

    def __init__(self, km: KernelManager) -> None:
        self.info: dict[str, Any] = dict(km.get_connection_info())
        self.session = Session(key=self.info["key"], signature_scheme=self.info["signature_scheme"])
        self.ctx = zmq.Context()
        self.shell = self._socket(zmq.DEALER, "shell")
        self.iopub: zmq.Socket[bytes] | None = None

    def _socket(self, kind: int, channel: str) -> zmq.Socket[bytes]:
        sock = self.ctx.socket(kind)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(f"tcp://{self.info['ip']}:{self.info[channel + '_port']}")
        return sock

    def subscribe(self) -> None:
        self.iopub = self.ctx.socket(zmq.SUB)
        self.iopub.setsockopt(zmq.LINGER, 0)
        self.iopub.setsockopt(zmq.SUBSCRIBE, b"")
        self.iopub.connect(f"tcp://{self.info['ip']}:{self.info['iopub_port']}")

    def request(self, msg_type: str, content: dict[str, Any]) -> str:
        sent = self.session.send(self.shell, msg_type, content)
        assert sent is not None
        return str(sent["header"]["msg_id"])

    def replies(self, msg_ids: set[str]) -> dict[str, dict[str, Any]]:
        """The shell replies to `msg_ids`, by parent msg_id."""
        got: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + WAIT
        while set(got) != msg_ids:
            left = deadline - time.monotonic()
            assert left > 0 and self.shell.poll(int(left * 1000)), f"replies missing for {msg_ids - set(got)}"
            _, msg = self.session.recv(self.shell)
            assert msg is not None
            got[msg["parent_header"]["msg_id"]] = msg
        return got

    def published_until_idle(self, msg_id: str) -> list[dict[str, Any]]:
        """Every iopub message up to the idle of request `msg_id` (fails if that idle never comes)."""
        assert self.iopub is not None
        out: list[dict[str, Any]] = []
        deadline = time.monotonic() + WAIT
        while True:
            left = deadline - time.monotonic()
            assert left > 0 and self.iopub.poll(int(left * 1000)), (
                f"no idle for {msg_id} on iopub; got {[(m['msg_type'], m['content']) for m in out]}")
            _, msg = self.session.recv(self.iopub)
            assert msg is not None
            out.append(msg)
            if (msg["msg_type"] == "status" and msg["parent_header"].get("msg_id") == msg_id
                    and msg["content"]["execution_state"] == "idle"):
                return out

    def close(self) -> None:
        self.ctx.destroy(linger=0)


@pytest.fixture
def kernel(tmp_path: Path, jupyter_env: dict[str, str]) -> Iterator[tuple[KernelManager, Path]]:  # noqa: F811
    """A kernel started from the installed kernelspec and not waited for: no client touched it yet."""
    home = tmp_path / "home"
    home.mkdir()
    log = tmp_path / "kernel.log"
    km = KernelManager(kernel_name=KERNEL_NAME)
    with open(log, "wb") as err:
        km.start_kernel(env={**kernel_env(home), **jupyter_env, "LLMSPELL_LOG": "info"}, stderr=err)
        try:
            yield km, log
        finally:
            km.shutdown_kernel(now=True)


def _of(msgs: list[dict[str, Any]], msg_id: str) -> list[tuple[str, Any]]:
    return [(m["msg_type"], m["content"].get("execution_state", m["content"].get("text")))
            for m in msgs if m["parent_header"].get("msg_id") == msg_id]


def test_requests_sent_before_the_iopub_subscription_still_publish_everything(
        kernel: tuple[KernelManager, Path]) -> None:
    # jupyter console's order at start: kernel_info then the first cell, on a shell socket that may
    # connect before its SUB (each retries its connect on its own timer while the kernel starts).
    # Here the SUB connects only after both requests are sent and the kernel has had a second to
    # answer them: a kernel that serves them before anyone subscribed publishes to nobody.
    c = Client(kernel[0])
    try:
        info_id = c.request("kernel_info_request", {})
        exec_id = c.request("execute_request", {"code": "print('late ' .. 'subscriber')", "silent": False,
                                                "store_history": True, "allow_stdin": False})
        assert not c.shell.poll(1000), "the kernel answered while no client was subscribed to iopub"
        c.subscribe()
        replies = c.replies({info_id, exec_id})
        assert replies[exec_id]["content"]["status"] == "ok"
        published = c.published_until_idle(exec_id)
        assert _of(published, info_id) == [("status", "busy"), ("status", "idle")]
        assert _of(published, exec_id) == [("status", "busy"), ("execute_input", None),
                                           ("stream", "late subscriber\n"), ("status", "idle")]
        assert GAVE_UP not in kernel[1].read_text(encoding="utf-8", errors="replace")
    finally:
        c.close()


def test_a_client_without_iopub_is_served_after_one_bounded_wait(kernel: tuple[KernelManager, Path]) -> None:
    c = Client(kernel[0])
    try:
        first = c.request("kernel_info_request", {})
        assert c.replies({first})[first]["content"]["status"] == "ok"
        second = c.request("execute_request", {"code": "x = 1", "silent": False, "store_history": True,
                                               "allow_stdin": False})
        assert c.replies({second})[second]["content"]["status"] == "ok"
        # One wait, timed out and logged; the second request was served without another.
        assert kernel[1].read_text(encoding="utf-8", errors="replace").count(GAVE_UP) == 1
    finally:
        c.close()


def test_a_peer_sending_large_frames_to_iopub_is_disconnected(kernel: tuple[KernelManager, Path]) -> None:
    # The kernel's XPUB queues what peers send until it reads their subscriptions: a frame over
    # 64 KiB ends that peer's connection instead of waiting in the kernel's memory.
    c = Client(kernel[0])
    c.subscribe()
    peer = c.ctx.socket(zmq.XSUB)
    peer.setsockopt(zmq.LINGER, 0)
    monitor = peer.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED)
    try:
        peer.connect(f"tcp://{c.info['ip']}:{c.info['iopub_port']}")
        events: list[int] = []
        deadline = time.monotonic() + WAIT
        while zmq.EVENT_DISCONNECTED not in events:
            left = deadline - time.monotonic()
            assert left > 0 and monitor.poll(int(left * 1000)), f"the peer was not disconnected: {events}"
            event = recv_monitor_message(monitor)["event"]
            events.append(event)
            if event == zmq.EVENT_HANDSHAKE_SUCCEEDED and len(events) == 1:
                peer.send(b"\x02" + b"x" * (1 << 20))
        first = c.request("execute_request", {"code": "print('still ' .. 'served')", "silent": False,
                                              "store_history": True, "allow_stdin": False})
        assert c.replies({first})[first]["content"]["status"] == "ok"
        assert ("stream", "still served\n") in _of(c.published_until_idle(first), first)
    finally:
        peer.disable_monitor()
        c.close()
