"""Drives one llmspell kernel through jupyter_client: start, execute an app with ARGS, stream, stop."""

from __future__ import annotations

import os
import queue
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import psutil
from jupyter_client.manager import KernelManager

from .result import RunResult

KERNEL_NAME = "llmspell"
#: Seconds an interrupted execution gets to answer before its kernel is replaced.
INTERRUPT_GRACE_S = 10.0
_POLL_S = 0.05


class KernelStartError(RuntimeError):
    """The kernel could not be started or did not answer kernel_info in time."""


@dataclass
class KernelSettings:
    """Everything a kernel for one app is started with."""

    traffic: str
    cassette_dir: Path
    config_path: Path
    state_dir: Path
    cwd: Path
    allowed_paths: tuple[Path, ...] = ()
    rag: bool = False
    kernel_name: str = KERNEL_NAME
    startup_timeout_s: float = 60.0
    extra_env: dict[str, str] = field(default_factory=dict)

    def environment(self) -> dict[str, str]:
        """The kernel's environment: ours, plus traffic mode, cassettes, config and state."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("LLMSPELL_")}
        env.update({
            "LLMSPELL_TRAFFIC": self.traffic,
            "LLMSPELL_CASSETTE_DIR": str(self.cassette_dir),
            "LLMSPELL_CONFIG": str(self.config_path),
            "LLMSPELL_STATE_PATH": str(self.state_dir / "state.sqlite3"),
        })
        paths = [str(self.cwd), *(str(p) for p in self.allowed_paths), tempfile.gettempdir(), "/tmp"]
        env["LLMSPELL_TOOLS_ALLOWED_PATHS"] = os.pathsep.join(dict.fromkeys(paths))
        if self.rag:
            env["LLMSPELL_RAG_ENABLED"] = "1"
        env.update(self.extra_env)
        return env


@dataclass
class _Execution:
    """What came back for one execute_request while it ran."""

    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    reply: dict[str, Any] | None = None
    idle: bool = False
    error_name: str = ""
    error_value: str = ""


class KernelDriver:
    """One running kernel: executes apps one after another and reports each run."""

    def __init__(self, settings: KernelSettings) -> None:
        self.settings = settings
        self._km: KernelManager | None = None
        self._kc: Any = None

    def start(self) -> None:
        """Start the kernel from its installed kernelspec and wait until it answers."""
        self.settings.state_dir.mkdir(parents=True, exist_ok=True)
        km = KernelManager(kernel_name=self.settings.kernel_name)
        try:
            km.start_kernel(env=self.settings.environment(), cwd=str(self.settings.cwd))
        except Exception as e:  # jupyter_client raises NoSuchKernel, OSError, ...
            raise KernelStartError(f"cannot start kernel '{self.settings.kernel_name}': {e} "
                                   "(install it: python -m llmspell.kernel.kernelspec install --sys-prefix)") from e
        kc = km.client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=self.settings.startup_timeout_s)
        except RuntimeError as e:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
            raise KernelStartError(f"kernel '{self.settings.kernel_name}' did not become ready: {e}") from e
        self._km, self._kc = km, kc

    @property
    def client(self) -> Any:
        """The jupyter_client BlockingKernelClient (for the debugger tests' DAP traffic)."""
        return self._kc

    @property
    def started(self) -> bool:
        return self._km is not None

    def alive(self) -> bool:
        return self._km is not None and self._km.is_alive()

    @property
    def pid(self) -> int:
        prov = getattr(self._km, "provisioner", None)
        return int(getattr(prov, "pid", 0) or 0)

    def rss_bytes(self) -> int:
        """Resident memory of the kernel process (0 if it is gone)."""
        try:
            return int(psutil.Process(self.pid).memory_info().rss) if self.pid else 0
        except psutil.Error:
            return 0

    def shutdown(self) -> None:
        """Stop the kernel (politely, then by force)."""
        if self._kc is not None:
            self._kc.stop_channels()
        if self._km is not None:
            try:
                self._km.shutdown_kernel(now=not self._km.is_alive())
            except Exception:
                self._km.shutdown_kernel(now=True)
        self._km = self._kc = None

    def run(self, app: str, repetition: int, code: str, args: list[str], output_dir: Path,
            log: TextIO, timeout_s: float) -> RunResult:
        """Execute `code` with script ARGS, streaming iopub into `log`; stop it after `timeout_s`."""
        if self._km is None or self._kc is None:
            raise KernelStartError("kernel not started")
        kc = self._kc
        msg = kc.session.msg("execute_request", content={
            "code": code, "silent": False, "store_history": False, "user_expressions": {},
            "allow_stdin": False, "stop_on_error": True,
        }, metadata={"llmspell": {"args": list(args)}})
        msg_id = msg["header"]["msg_id"]
        started = time.monotonic()
        kc.shell_channel.send(msg)
        ex, status = self._collect(msg_id, log, started + timeout_s)
        wall = time.monotonic() - started
        figures: dict[str, Any] = {}
        if ex.reply is not None:
            figures = dict((ex.reply.get("metadata") or {}).get("llmspell") or {})
            content = ex.reply.get("content") or {}
            if content.get("status") != "ok" and status == "ok":
                status = "error"
                ex.error_name = ex.error_name or str(content.get("ename", ""))
                ex.error_value = ex.error_value or str(content.get("evalue", ""))
        if status == "timeout":
            ex.error_value = f"over the runtime budget of {timeout_s:g} s; interrupted"
        elif status == "kernel_died":
            ex.error_value = ex.error_value or "the kernel process died during the run"
        return RunResult(app=app, repetition=repetition, status=status, wall_s=round(wall, 3),
                         output_dir=str(output_dir), stdout="".join(ex.stdout), stderr="".join(ex.stderr),
                         error_name=ex.error_name, error_value=ex.error_value, figures=figures,
                         rss_bytes=self.rss_bytes(), kernel_pid=self.pid, traffic=self.settings.traffic)

    def _collect(self, msg_id: str, log: TextIO, deadline: float) -> tuple[_Execution, str]:
        """Read iopub and shell until reply and idle; handle the budget and a dying kernel."""
        assert self._km is not None
        ex = _Execution()
        interrupted_at: float | None = None
        next_alive_check = 0.0
        while not (ex.reply is not None and ex.idle):
            now = time.monotonic()
            if interrupted_at is None and now > deadline:
                log.write("\n[harness] runtime budget exceeded: interrupting the kernel\n")
                self._km.interrupt_kernel()
                interrupted_at = now
            if interrupted_at is not None and now > interrupted_at + INTERRUPT_GRACE_S:
                log.write("[harness] no answer after the interrupt: the kernel will be replaced\n")
                self.shutdown()
                return ex, "timeout"
            if now >= next_alive_check:
                next_alive_check = now + 0.5
                if not self._km.is_alive():
                    log.write("\n[harness] the kernel process died\n")
                    self.shutdown()
                    return ex, "kernel_died"
            self._drain_iopub(msg_id, ex, log)
            self._poll_shell(msg_id, ex)
        return ex, ("timeout" if interrupted_at is not None else "ok")

    def _drain_iopub(self, msg_id: str, ex: _Execution, log: TextIO) -> None:
        try:
            msg = self._kc.get_iopub_msg(timeout=_POLL_S)
        except queue.Empty:
            return
        while True:
            if msg.get("parent_header", {}).get("msg_id") == msg_id:
                self._on_iopub(msg, ex, log)
            try:
                msg = self._kc.get_iopub_msg(timeout=0)
            except queue.Empty:
                return

    @staticmethod
    def _on_iopub(msg: dict[str, Any], ex: _Execution, log: TextIO) -> None:
        kind, content = msg["msg_type"], msg.get("content", {})
        if kind == "stream":
            text = str(content.get("text", ""))
            (ex.stderr if content.get("name") == "stderr" else ex.stdout).append(text)
            log.write(text if content.get("name") != "stderr" else "".join(
                f"[stderr] {line}\n" for line in text.splitlines()))
            log.flush()
        elif kind == "error":
            ex.error_name, ex.error_value = str(content.get("ename", "")), str(content.get("evalue", ""))
            log.write(f"[error] {ex.error_name}: {ex.error_value}\n")
            for line in content.get("traceback", []) or []:
                log.write(f"[traceback] {line}\n")
        elif kind == "execute_result":
            data = content.get("data", {}).get("text/plain", "")
            log.write(f"[result] {data}\n")
        elif kind == "status" and content.get("execution_state") == "idle":
            ex.idle = True

    def _poll_shell(self, msg_id: str, ex: _Execution) -> None:
        if ex.reply is not None:
            return
        try:
            msg = self._kc.get_shell_msg(timeout=0)
        except queue.Empty:
            return
        if msg.get("parent_header", {}).get("msg_id") == msg_id:
            ex.reply = msg


class KernelPool:
    """One kernel per app, kept across repetitions and replaced when it dies or times out."""

    def __init__(self) -> None:
        self._drivers: dict[str, KernelDriver] = {}

    def get(self, app: str, settings: KernelSettings) -> KernelDriver:
        """The running kernel for `app`, starting a fresh one if needed; other apps' kernels stop."""
        for other in [k for k in self._drivers if k != app]:
            self._drivers.pop(other).shutdown()
        driver = self._drivers.get(app)
        if driver is not None and driver.alive():
            return driver
        if driver is not None:
            driver.shutdown()
        driver = KernelDriver(settings)
        driver.start()
        self._drivers[app] = driver
        return driver

    def close(self) -> None:
        for driver in self._drivers.values():
            driver.shutdown()
        self._drivers.clear()
