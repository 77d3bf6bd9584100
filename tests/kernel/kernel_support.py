"""Shared helpers for the kernel tests: an installed kernelspec, kernels over real sockets, message I/O."""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

KERNEL_NAME = "llmspell"
TIMEOUT = 20.0


def install_kernelspec(base: Path) -> Path:
    """Install the kernelspec under `base` (a prefix) and return the JUPYTER_PATH entry for it."""
    from llmspell.kernel.kernelspec import install

    install(prefix=str(base))
    return base / "share" / "jupyter"


def kernel_env(home: Path) -> dict[str, str]:
    """Environment for a kernel process: isolated home and state, no provider keys."""
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith("LLMSPELL_") or k.endswith("_API_KEY"))}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), XDG_DATA_HOME=str(home / ".local" / "share"),
               LLMSPELL_STATE_PATH=str(home / "state.sqlite3"))
    return env


@contextlib.contextmanager
def temporary_jupyter_path(base: Path) -> Iterator[dict[str, str]]:
    """Install the kernelspec under `base`, put it first on JUPYTER_PATH with a private runtime dir;
    the two variables are restored on exit. Yields them."""
    data = install_kernelspec(base / "prefix")
    runtime = base / "runtime"
    runtime.mkdir()
    saved = {k: os.environ.get(k) for k in ("JUPYTER_PATH", "JUPYTER_RUNTIME_DIR")}
    old_path = saved["JUPYTER_PATH"]
    os.environ["JUPYTER_PATH"] = str(data) + (os.pathsep + old_path if old_path else "")
    os.environ["JUPYTER_RUNTIME_DIR"] = str(runtime)
    try:
        yield {"JUPYTER_PATH": os.environ["JUPYTER_PATH"], "JUPYTER_RUNTIME_DIR": str(runtime)}
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="session")
def jupyter_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The kernelspec installed into a temporary JUPYTER_PATH entry, and a private runtime dir."""
    with temporary_jupyter_path(tmp_path_factory.mktemp("jupyter")) as env:
        yield env


def start_kernel(tmp: Path, jupyter_env: dict[str, str], **extra_env: str) -> tuple[Any, Any, Path]:
    """A kernel from the installed kernelspec, with its stderr in a log file; returns (km, kc, log)."""
    from jupyter_client.manager import start_new_kernel

    home = tmp / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = {**kernel_env(home), **jupyter_env, **extra_env}
    log = tmp / "kernel.log"
    err = open(log, "wb")  # noqa: SIM115 - kept open for restarts; closed by stop_kernel
    km, kc = start_new_kernel(kernel_name=KERNEL_NAME, startup_timeout=60, env=env, stderr=err)
    km.__dict__["_test_log"] = err
    return km, kc, log


@contextlib.contextmanager
def kernel_in_thread(kernel: Any, connection_file: Path) -> Iterator[tuple[Any, threading.Thread]]:
    """A `Kernel` of this process started and served from a daemon thread, and a ready client for it;
    at the end the client stops, the kernel is asked to stop and the thread is joined (10 s)."""
    from jupyter_client import BlockingKernelClient

    kernel.start()
    thread = threading.Thread(target=kernel.serve_forever, daemon=True)
    thread.start()
    kc = BlockingKernelClient(connection_file=str(connection_file))
    kc.load_connection_file()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=30)
        yield kc, thread
    finally:
        kc.stop_channels()
        kernel.request_stop()
        kernel.after_request()
        thread.join(10)


def stop_kernel(km: Any, kc: Any, now: bool = False) -> None:
    kc.stop_channels()
    km.shutdown_kernel(now=now)
    log = km.__dict__.pop("_test_log", None)
    if log is not None:
        log.close()


def execute(kc: Any, code: str, timeout: float = TIMEOUT, **kwargs: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run code; return (execute_reply, iopub messages of this request from busy to idle inclusive)."""
    msg_id = kc.execute(code, **kwargs)
    outputs = iopub_until_idle(kc, msg_id, timeout)
    reply = shell_reply(kc, msg_id, timeout)
    return reply, outputs


def iopub_until_idle(kc: Any, msg_id: str, timeout: float = TIMEOUT) -> list[dict[str, Any]]:
    """The iopub messages whose parent is msg_id, up to and including its idle status."""
    deadline = time.monotonic() + timeout
    out: list[dict[str, Any]] = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no idle for {msg_id}; got {[m['msg_type'] for m in out]}")
        try:
            msg = kc.iopub_channel.get_msg(timeout=left)
        except queue.Empty:
            continue
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        out.append(msg)
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return out


def _reply(kc: Any, channel: str, msg_id: str, timeout: float) -> dict[str, Any]:
    """The reply to msg_id; replies to other requests that arrive first are kept for their waiter."""
    stash: dict[str, dict[str, Any]] = kc.__dict__.setdefault("_test_stash", {})
    if msg_id in stash:
        return stash.pop(msg_id)
    ch = getattr(kc, f"{channel}_channel")
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no {channel} reply for {msg_id}")
        try:
            msg = ch.get_msg(timeout=left)
        except queue.Empty:
            continue
        parent = msg["parent_header"].get("msg_id")
        if parent == msg_id:
            return msg
        stash[parent] = msg


def shell_reply(kc: Any, msg_id: str, timeout: float = TIMEOUT) -> dict[str, Any]:
    return _reply(kc, "shell", msg_id, timeout)


def control_reply(kc: Any, msg_id: str, timeout: float = TIMEOUT) -> dict[str, Any]:
    return _reply(kc, "control", msg_id, timeout)


def request(kc: Any, msg_type: str, content: dict[str, Any], timeout: float = TIMEOUT,
            channel: str = "shell") -> dict[str, Any]:
    """Send any request with the client's session and wait for its reply."""
    ch = getattr(kc, f"{channel}_channel")
    msg = kc.session.msg(msg_type, content)
    ch.send(msg)
    if channel == "control":
        return control_reply(kc, msg["header"]["msg_id"], timeout)
    return shell_reply(kc, msg["header"]["msg_id"], timeout)


def kernel_info_ok(kc: Any, timeout: float = TIMEOUT) -> dict[str, Any]:
    """Assert the kernel answers kernel_info on shell; return the reply content."""
    reply = request(kc, "kernel_info_request", {}, timeout)
    assert reply["content"]["status"] == "ok"
    assert reply["content"]["implementation"] == "llmspell"
    return reply["content"]


def stream_text(outputs: list[dict[str, Any]], name: str = "stdout") -> str:
    return "".join(m["content"]["text"] for m in outputs
                   if m["msg_type"] == "stream" and m["content"]["name"] == name)
