"""Shared pieces of the kernel's socket tests: a module-scoped kernel, its log, a raw DEALER socket."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq
from jupyter_client.session import Session as JCSession

from tests.kernel.kernel_support import start_kernel, stop_kernel


def module_kernel(tmp_path_factory: pytest.TempPathFactory, jupyter_env: dict[str, str], name: str,
                  config: str | None = None) -> Iterator[tuple[Any, Any, Path]]:
    """(km, kc, log) of a kernel from the installed kernelspec, with `config` as its llmspell.toml."""
    tmp = tmp_path_factory.mktemp(name)
    extra: dict[str, str] = {}
    if config is not None:
        cfg = tmp / "llmspell.toml"
        cfg.write_text(config, encoding="utf-8")
        extra["LLMSPELL_CONFIG"] = str(cfg)
    km, kc, log = start_kernel(tmp, jupyter_env, **extra)
    yield km, kc, log
    stop_kernel(km, kc)


def log_text(kernel: Any) -> str:
    """The kernel's stderr so far (kernel is the (km, kc, log) triple)."""
    return Path(kernel[2]).read_text(encoding="utf-8", errors="replace")


def wait_for_log(kernel: Any, needle: str, timeout: float = 20.0) -> None:
    """Poll the kernel's log until `needle` appears (the kernel logs a dropped message asynchronously)."""
    deadline = time.monotonic() + timeout
    while needle not in log_text(kernel):
        assert time.monotonic() < deadline, f"{needle!r} not logged; log:\n{log_text(kernel)[-2000:]}"
        time.sleep(0.02)


class RawSocket:
    """A DEALER on one channel of the kernel; `session` signs with `key` (default the kernel's), `good`
    always with the kernel's key."""

    def __init__(self, km: Any, channel: str = "shell", key: bytes | None = None) -> None:
        info = km.get_connection_info()
        self.good = JCSession(key=info["key"], signature_scheme="hmac-sha256")
        self.session = JCSession(key=info["key"] if key is None else key, signature_scheme="hmac-sha256")
        self.sock = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(f"tcp://{info['ip']}:{info[channel + '_port']}")

    def send(self, frames: list[bytes]) -> None:
        self.sock.send_multipart(frames)

    def reply(self, timeout: float = 20.0) -> dict[str, Any] | None:
        """The next message on this socket, read with the kernel's key; None after `timeout` seconds."""
        if not self.sock.poll(int(timeout * 1000)):
            return None
        _, rest = self.good.feed_identities(self.sock.recv_multipart())
        return self.good.deserialize(rest)

    def close(self) -> None:
        self.sock.close(0)
