"""The llmspell Jupyter kernel: sockets, threads, the runtime and the request loop.

Threads (architecture.md): the main thread is the Lua thread and serves shell (and stdin while a
cell waits in io.read); control has its own thread; heartbeat is a C-level zmq echo on its own
thread; iopub is one locked sender used by all; a small flusher thread publishes buffered
output. The ScriptRuntime is built on a helper thread while the sockets already answer
kernel_info, so a frontend sees the kernel ready as soon as the process has bound its ports.
"""

from __future__ import annotations

import contextlib
import enum
import gc
import importlib
import importlib.util
import json
import logging
import os
import secrets
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import zmq

from llmspell.kernel.channels import Channel, Channels, ConnectionInfo, ControlThread, Heartbeat
from llmspell.kernel.handlers import Handlers
from llmspell.kernel.iostream import OutputStreams
from llmspell.kernel.wire import Message, Session
from llmspell.runtime.files import open_private
from llmspell.script.watchdog import StopKind, Watchdog
from llmspell.settings import (
    KERNEL_RESUME_PREFIX,
    kernel_connection_file,
    kernel_registry_file,
    kernel_resume_file,
    runtime_dir,
)

log = logging.getLogger("llmspell.kernel")

#: Set (JSON) for the process that replaces a kernel which ended a stuck cell the hard way.
RESUME_ENV = "LLMSPELL_KERNEL_RESUME"
#: How long a restarted kernel waits for a client to subscribe to iopub again before serving.
RESUME_SUBSCRIBER_WAIT_SECONDS = 5.0
#: How long a shell request waits for a client to subscribe to iopub when none is subscribed.
SUBSCRIBER_WAIT_SECONDS = 3.0
#: Seconds the main thread gets to finish after a stop request before the process is ended.
STOP_GRACE_SECONDS = 3.0


class ExecState(enum.Enum):
    """Where the kernel is with execute_requests (one at a time, on the Lua thread)."""

    #: No execute_request in progress: interrupts are ignored.
    IDLE = "idle"
    #: An execute_request's handler started, its chunk does not run yet: an interrupt is kept.
    PENDING = "pending"
    #: The cell's chunk runs: an interrupt reaches it at once, the watchdog watches it.
    RUNNING = "running"
    #: The watchdog answered the running cell itself and is replacing the process.
    TAKEN_OVER = "taken_over"


class Kernel:
    """One kernel process: binds the connection's sockets and serves requests until shutdown."""

    def __init__(self, connection_file: str | os.PathLike[str] | None = None, *, config: Any = None,
                 idle_timeout: float | None = None, ip: str | None = None, port: int = 0,
                 watch_parent: bool = False) -> None:
        if config is None:
            from llmspell.config import load_config

            config = load_config()
        self.config = config
        ks, limits = config.settings.kernel, config.settings.runtime  # [kernel], [runtime], parsed by config
        path = Path(connection_file) if connection_file else kernel_connection_file(secrets.token_hex(4))
        self.connection_file = path.resolve()
        self.owns_connection_file = not path.exists()
        resume = _resume_state()
        if resume.get("owns_connection_file"):
            self.owns_connection_file = True
        if self.owns_connection_file:
            info = ConnectionInfo(ip=ip or ks.ip)
            if port:
                for i, name in enumerate(("shell", "iopub", "stdin", "control", "hb")):
                    setattr(info, f"{name}_port", port + i)
        else:
            info = ConnectionInfo.load(path)
        self.info = info
        max_bytes = ks.max_message_bytes
        self.session = Session(info.key, signature_scheme=info.signature_scheme, max_message_bytes=max_bytes)
        self.channels = Channels(info, self.session)
        if self.owns_connection_file:
            info.write(self.connection_file)
        socks = self.channels.sockets
        self.iopub = self.channels.iopub
        self.shell = Channel("shell", socks["shell"], self.session)
        self.stdin = Channel("stdin", socks["stdin"], self.session)
        self.control = Channel("control", socks["control"], self.session)
        self.streams = OutputStreams(self._publish_stream)
        self.handlers = Handlers(self)
        self.handlers.execution_count = int(resume.get("execution_count", 0) or 0)
        self.resumed = bool(resume)
        self._resume = resume
        if idle_timeout is None:
            idle_timeout = ks.idle_timeout_seconds
        self.idle_timeout = idle_timeout if idle_timeout and idle_timeout > 0 else None
        debug_enabled = ks.debug_enabled
        self.debugger_available = debug_enabled and _module_exists("llmspell.debug.jupyter")
        self.debugger: Any = None
        self.debug_parent: dict[str, Any] = {}
        self._runtime: Any = None
        self._runtime_error: BaseException | None = None
        self._runtime_ready = threading.Event()
        self._main_thread = threading.current_thread()
        self._current: Message | None = None
        self._allow_stdin = False
        #: Changed only under _exec_lock (the Lua, control, signal and watchdog threads read it).
        self._state = ExecState.IDLE
        self._pending_interrupt: str | None = None
        self._exec_lock = threading.RLock()
        self._deferred: list[Message] = []
        self._stop = threading.Event()
        self.restart_requested = False
        self._remove_file_on_exit = self.owns_connection_file
        self._config_path = getattr(config, "path", None)
        self._last_activity = time.monotonic()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._registry_entry: Path | None = None
        #: [runtime] script_timeout_seconds / max_execution_time_ms, applied to each cell.
        self._cell_timeout: float | None = limits.time_limit
        #: Ends a cell that the interrupt hook cannot stop (one long C call, a finalizer): see _hard_stop.
        self._watchdog = Watchdog(self._soft_interrupt, self._hard_stop, timeout=self._cell_timeout,
                                  grace=limits.interrupt_grace_seconds,
                                  signal_fd=self._wake_r.fileno(), escalate_on_repeat=False)
        self._grace: threading.Timer | None = None
        self._stopped = threading.Event()
        #: With watch_parent, JPY_PARENT_PID (set by jupyter_client's launcher): exit when that
        #: manager process dies (the kernel is then re-parented).
        self._parent_pid = _parent_pid() if watch_parent else None
        self._closed = False
        #: Whether a shell request waits for an iopub subscriber (off after a wait that timed out).
        self._hold_for_subscriber = True

    # ------------------------------------------------------------- lifecycle
    def start(self) -> None:
        """Start the heartbeat, control and runtime threads; publish `starting`; install signals."""
        if self.resumed:
            self._await_subscriber(RESUME_SUBSCRIBER_WAIT_SECONDS)
        Heartbeat(self.channels.sockets["hb"]).start()
        ControlThread(self.control, self.handlers.dispatch).start()
        threading.Thread(target=self._build_runtime, name="llmspell-runtime-init", daemon=True).start()
        self.iopub.status("starting")
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, self._on_sigint)
            signal.signal(signal.SIGTERM, self._on_sigterm)
            signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)
        self._write_registry_entry()
        log.info("kernel started: connection file %s", self.connection_file)

    def _await_subscriber(self, timeout: float) -> None:
        """After an in-place restart: wait (bounded) until a client's SUB socket has subscribed
        again, so the first reply's busy/output/idle are not published to nobody (PUB drops them).
        Called before the other threads start."""
        if not self.iopub.wait_for_subscriber(timeout):
            log.warning("no client re-subscribed to iopub within %g s of the restart", timeout)

    def _await_iopub_subscriber(self) -> None:
        """Before a shell request is served: while no client is subscribed to iopub, wait (bounded)
        until one is. A client connects its SUB and shell sockets together, but the subscription can
        reach the kernel after its first requests (each socket retries its connect on its own timer
        while the kernel starts): what is published before then is dropped, and a frontend waiting
        for its request's idle (jupyter console) hangs. After a wait that timed out (a client without
        iopub), requests are served at once until a subscriber has come again."""
        if self.iopub.has_subscriber():
            self._hold_for_subscriber = True
            return
        if not self._hold_for_subscriber:
            return
        if not self.iopub.wait_for_subscriber(SUBSCRIBER_WAIT_SECONDS, cancel=self._stop) and not self._stop.is_set():
            log.info("no client subscribed to iopub within %g s: serving without one", SUBSCRIBER_WAIT_SECONDS)
            self._hold_for_subscriber = False

    def _build_runtime(self) -> None:
        # Short GIL slices while this thread imports and builds: the main thread keeps answering
        # kernel_info promptly during start-up. Restored once the runtime is ready.
        interval = sys.getswitchinterval()
        sys.setswitchinterval(min(interval, 0.0005))
        try:
            from llmspell.bootstrap import create_runtime

            rt = create_runtime(self.config, stdout=self.streams.sink("stdout"),
                                stderr=self.streams.sink("stderr"), input_fn=self._input)
            self._runtime = rt
            if self.debugger_available:
                self._make_debugger(rt)
            # Everything built so far lives as long as the kernel: keep it out of the cyclic GC's
            # full collections, which otherwise add ~10 ms to one request in a few hundred.
            gc.freeze()
        except BaseException as e:  # noqa: BLE001 - reported to every request that needs it
            log.exception("the Lua runtime failed to start")
            self._runtime_error = e
        finally:
            sys.setswitchinterval(interval)
            self._runtime_ready.set()

    def _make_debugger(self, rt: Any) -> None:
        try:
            from llmspell.debug.jupyter import JupyterDebugger
        except ImportError:
            log.info("llmspell.debug.jupyter is not importable: the debugger is off")
            self.debugger_available = False
            return
        try:
            self.debugger = JupyterDebugger(runtime=rt, send_event=self._send_debug_event, kernel=self)
        except Exception:  # noqa: BLE001 - the kernel runs without a debugger
            log.exception("the debugger failed to start")
            self.debugger_available = False

    @property
    def runtime(self) -> Any:
        """The ScriptRuntime (waits for its start-up); RuntimeError if it failed to start."""
        self._runtime_ready.wait()
        if self._runtime is None:
            raise RuntimeError(f"the Lua runtime failed to start: {self._runtime_error}")
        return self._runtime

    @property
    def execution_count(self) -> int:
        return self.handlers.execution_count

    def get_debugger(self) -> Any:
        """The JupyterDebugger, or None when it is absent or disabled (waits for the runtime)."""
        if not self.debugger_available:
            return None
        self._runtime_ready.wait()
        return self.debugger

    def serve_forever(self) -> int:
        """Serve shell requests on this (the Lua) thread until shutdown; returns the exit code."""
        shell_sock = self.shell.socket
        poller = zmq.Poller()
        poller.register(shell_sock, zmq.POLLIN)
        wake_fd = self._wake_r.fileno()
        poller.register(wake_fd, zmq.POLLIN)
        dispatch = self.handlers.dispatch
        try:
            if self.resumed:
                self._finish_handover()
            while not self._stop.is_set():
                timeout: int | None = None
                if self._parent_pid is not None:
                    if os.getppid() != self._parent_pid:
                        log.warning("the process that started the kernel (pid %d) is gone: shutting down",
                                    self._parent_pid)
                        self._remove_file_on_exit = True
                        break
                    timeout = 1000
                if self.idle_timeout is not None:
                    left = self._last_activity + self.idle_timeout - time.monotonic()
                    if left <= 0:
                        log.warning("no request for %g s: shutting down (idle timeout)", self.idle_timeout)
                        self._remove_file_on_exit = True
                        break
                    timeout = max(1, min(timeout or 1 << 30, int(left * 1000.0)))
                events = dict(poller.poll(timeout))
                if wake_fd in events:
                    self._drain_wake()
                if shell_sock in events:
                    for _ in range(256):
                        try:
                            msg = self.shell.recv(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                        self._last_activity = time.monotonic()
                        if msg is not None:
                            self._await_iopub_subscriber()
                            dispatch(msg, self.shell)  # never raises (it logs every failure)
                            while self._deferred:
                                dispatch(self._deferred.pop(0), self.shell)
                        if self._stop.is_set():
                            break
        finally:
            self.close()
        return 0

    def close(self) -> None:
        """Stop the runtime, close the sockets, remove the connection file if this kernel owns it."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            signal.set_wakeup_fd(-1)
        if self._runtime is not None:
            try:
                self._runtime.close()
            except Exception:  # noqa: BLE001 - best effort at exit
                log.warning("error while closing the runtime", exc_info=True)
        self._watchdog.close()
        self.streams.close()
        self._remove_files()
        self.iopub.close()
        self.channels.close()
        for s in (self._wake_r, self._wake_w):
            s.close()
        if self._grace is not None:
            self._grace.cancel()
        self._stopped.set()
        log.info("kernel stopped")

    def request_stop(self, restart: bool = False) -> None:
        """Stop after the current request (thread-safe); a running cell is interrupted."""
        self.restart_requested = restart
        self._stop.set()
        self.interrupt("kernel shutting down")
        if threading.current_thread() is not self._main_thread:
            self._grace = threading.Timer(STOP_GRACE_SECONDS, self._force_exit)
            self._grace.daemon = True
            self._grace.start()

    def after_request(self) -> None:
        """Called after every request's idle: wakes the main loop when a stop was requested."""
        if self.debugger is not None:  # events a debug_request caused follow its reply (and idle)
            self.debugger.after_reply()
        if self._stop.is_set():
            self._wake()

    def _remove_files(self) -> None:
        """Remove the connection file (when this kernel wrote it) and the kernel registry entry."""
        if self._remove_file_on_exit:
            with contextlib.suppress(OSError):
                self.connection_file.unlink()
        if self._registry_entry is not None:
            with contextlib.suppress(OSError):
                self._registry_entry.unlink()

    def _force_exit(self) -> None:
        if self._stopped.is_set():
            return
        log.error("the Lua thread did not stop within %g s: exiting", STOP_GRACE_SECONDS)
        self._remove_files()
        os._exit(0)

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    def _drain_wake(self) -> None:
        with contextlib.suppress(OSError):
            while self._wake_r.recv(4096):
                pass

    # --------------------------------------------------------------- signals
    def _on_sigint(self, signum: int, frame: Any) -> None:
        # While a cell runs the watchdog also reads this SIGINT from the wake-up fd (this handler cannot
        # run while the Lua thread sits in a C call); a kernel's watchdog takes a repeat as the same one.
        self.interrupt()

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        log.warning("SIGTERM: shutting down")
        self._remove_file_on_exit = True
        self.request_stop()
        self._wake()

    # ------------------------------------------------------------- execution
    # An execute_request is "in progress" from its handler's start (before execute_input is
    # published) to its end; an interrupt in that span always reaches the cell: at once while Lua
    # runs, else it is kept and applied just before the chunk is called. Idle interrupts are ignored.
    def interrupt(self, reason: str = "interrupted") -> None:
        """Interrupt the cell in progress (thread-safe, also from the SIGINT handler)."""
        if self._watchdog.running:  # the cell is running: soft now, the hard way after the grace period
            self._watchdog.interrupt(reason, StopKind.INTERRUPT)
            return
        self._soft_interrupt(reason)

    def _soft_interrupt(self, reason: str) -> None:
        with self._exec_lock:
            if self._state is ExecState.IDLE:
                return
            self._pending_interrupt = reason
            if self._state is ExecState.RUNNING and self._runtime is not None:
                self._runtime.interrupt(reason)

    @property
    def exec_state(self) -> ExecState:
        """The execution state (see ExecState)."""
        return self._state

    def start_execute_request(self) -> None:
        """An execute_request's handler starts (IDLE -> PENDING): interrupts from now on are kept."""
        with self._exec_lock:
            self._state = ExecState.PENDING
            self._pending_interrupt = "kernel shutting down" if self._stop.is_set() else None

    def end_execute_request(self) -> None:
        """The handler ends: a request whose cell never ran (PENDING) goes back to IDLE."""
        with self._exec_lock:
            if self._state is ExecState.PENDING:
                self._state = ExecState.IDLE
                self._pending_interrupt = None

    def begin_execute(self, msg: Message, silent: bool) -> None:
        """The cell is about to run on this (the Lua) thread (PENDING -> RUNNING)."""
        self._current = msg
        self._allow_stdin = bool(msg.content.get("allow_stdin", False))
        self.streams.parent = msg.header
        self.streams.enabled = not silent
        with self._exec_lock:
            self._state = ExecState.RUNNING
        # Signals that came before this point were handled by _on_sigint (this thread runs Python
        # now): their wake-up bytes must not reach the watchdog as a new interrupt of this cell.
        self._drain_wake()
        self._watchdog.start_run()

    def apply_pending_interrupt(self) -> None:
        """Called right before the cell's chunk runs: an interrupt that came early still lands."""
        with self._exec_lock:
            if self._pending_interrupt is not None and self._runtime is not None:
                self._runtime.interrupt(self._pending_interrupt)

    def end_execute(self) -> None:
        """The cell's chunk finished (RUNNING -> IDLE): later interrupts are ignored, none is left pending."""
        self._wait_if_taken_over()
        self._watchdog.end_run()
        self._wait_if_taken_over()
        with self._exec_lock:
            self._state = ExecState.IDLE
            self._pending_interrupt = None
            if self._runtime is not None:
                self._runtime.clear_interrupt()
        self.streams.flush()
        self.streams.enabled = True
        self._current = None

    def _wait_if_taken_over(self) -> None:
        """The watchdog answered this cell and is replacing the process: the Lua thread waits for that."""
        with self._exec_lock:
            taken_over = self._state is ExecState.TAKEN_OVER
        if taken_over:
            threading.Event().wait()

    def _hard_stop(self, kind: StopKind, reason: str) -> None:
        """On the watchdog thread: the cell ignored its interrupt for the grace period (the Lua thread
        sits in one C call or a finalizer, and no Lua state can be recovered from there). Answer the
        cell with an error, then replace this process in place (same pid, connection file, ports
        and key), so clients keep talking to the same kernel; Lua globals of earlier cells are lost."""
        with self._exec_lock:
            msg = self._current
            if self._state is not ExecState.RUNNING or msg is None:
                return
            self._state = ExecState.TAKEN_OVER
        if self._stop.is_set():  # shutting down anyway: no restart
            self._remove_files()
            os._exit(0)
        n = self.handlers.execution_count
        grace = self._watchdog.grace
        ename = "Timeout" if kind is StopKind.TIMEOUT else "Interrupted"
        evalue = (f"{reason}; the cell did not stop within {grace:g} s (one long C call or a finalizer), "
                  "so the kernel restarted its Lua runtime: globals and state of earlier cells are gone")
        log.error("%s", evalue)
        # The successor answers the cell: a reply sent from here would let the client send its next
        # request to this process's sockets, where it would be lost. Requests already queued on shell
        # are handed over too (the Lua thread never touches the shell socket again, see end_execute).
        queued: list[list[str]] = []
        with contextlib.suppress(Exception):
            while self.shell.socket.poll(0):
                queued.append([f.hex() for f in self.shell.socket.recv_multipart(zmq.NOBLOCK)])
        cell = {"idents": [i.hex() for i in msg.idents], "header": msg.header, "silent": not self.streams.enabled,
                "stop_on_error": bool(msg.content.get("stop_on_error", True)),
                "error": {"ename": ename, "evalue": evalue, "traceback": [f"{ename}: {evalue}"]}}
        self._reexec({"execution_count": n, "owns_connection_file": self.owns_connection_file,
                      "cell": cell, "queued": queued})

    def _reexec(self, resume: dict[str, Any]) -> None:
        """Replace this process with a fresh kernel on the same connection file (after a hard stop)."""
        argv = [sys.executable, "-m", "llmspell.kernel", "-f", str(self.connection_file)]
        if self._config_path is not None:
            argv += ["-c", str(self._config_path)]
        if self.idle_timeout is not None:
            argv += ["--idle-timeout", str(self.idle_timeout)]
        env = dict(os.environ)
        handover = kernel_resume_file(os.getpid(), secrets.token_hex(4))
        try:
            with open_private(handover, "w", encoding="utf-8") as f:
                json.dump(resume, f)
            env[RESUME_ENV] = str(handover)
        except OSError:
            log.exception("could not write the restart hand-over file: the stuck cell gets no reply")
        # Release the ports for the new process (it binds the same ones); nothing is left to send.
        self.iopub.close()
        for name in ("shell", "iopub", "stdin"):
            with contextlib.suppress(Exception):
                self.channels.sockets[name].close(linger=0)
        term = threading.Thread(target=self.channels.context.term, daemon=True)
        term.start()
        term.join(2.0)
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            os.execve(sys.executable, argv, env)
        except OSError:
            log.exception("could not restart the kernel process")
            os._exit(1)

    def _finish_handover(self) -> None:
        """In the process that replaced a stuck one: answer its cell (error output, execute_reply,
        idle), then serve the requests it had queued (execute requests aborted under stop_on_error)."""
        cell = self._resume.get("cell")
        if isinstance(cell, dict):
            from llmspell.script.services import RunStats

            header = cell.get("header") or {}
            error = cell.get("error") or {}
            if not cell.get("silent"):
                self.iopub.send("error", error, header)
            frames = self.session.serialize(
                "execute_reply", {"status": "error", "execution_count": self.handlers.execution_count, **error},
                header, metadata={"llmspell": RunStats().as_dict()},
                idents=[bytes.fromhex(i) for i in cell.get("idents", [])])
            self._send_when_routable(frames, RESUME_SUBSCRIBER_WAIT_SECONDS)
            self.iopub.status("idle", header)
        stop_on_error = isinstance(cell, dict) and cell.get("stop_on_error", True)
        for raw in self._resume.get("queued") or []:
            msg = None
            with contextlib.suppress(Exception):
                msg = self.session.deserialize([bytes.fromhex(f) for f in raw])
            if msg is None:
                continue
            if stop_on_error and msg.msg_type == "execute_request":
                self.handlers.abort_reply(msg, self.shell)
            else:
                self._deferred.append(msg)
        while self._deferred:
            self.handlers.dispatch(self._deferred.pop(0), self.shell)

    def _send_when_routable(self, frames: list[bytes], timeout: float) -> None:
        """Send on shell once the addressed client has reconnected (ROUTER_MANDATORY until then)."""
        sock = self.shell.socket
        sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    sock.send_multipart(frames, zmq.NOBLOCK)
                    return
                except zmq.ZMQError as e:
                    if e.errno not in (zmq.EHOSTUNREACH, zmq.EAGAIN) or time.monotonic() >= deadline:
                        log.warning("could not send the stuck cell's reply: %s", e)
                        return
                time.sleep(0.02)  # the client reconnects within its reconnect interval (100 ms)
        finally:
            sock.setsockopt(zmq.ROUTER_MANDATORY, 0)

    def abort_queued(self) -> None:
        """After a failed cell with stop_on_error (before its idle): answer the execute requests
        already queued on shell with an abort error; other queued requests are served after."""
        while self.shell.socket.poll(0):
            msg = self.shell.recv(zmq.NOBLOCK)
            if msg is None:
                continue
            if msg.msg_type == "execute_request":
                self.handlers.abort_reply(msg, self.shell)
            else:
                self._deferred.append(msg)

    def _publish_stream(self, name: str, text: str, parent: dict[str, Any]) -> None:
        self.iopub.send("stream", {"name": name, "text": text}, parent)

    def _send_debug_event(self, event: dict[str, Any]) -> None:
        self.iopub.send("debug_event", event, self.debug_parent)

    def _input(self, prompt: str, password: bool) -> str:
        """io.read in a cell: an input_request to the client that sent the execute_request."""
        from llmspell.script.bridge import Interrupted, LuaApiError

        req = self._current
        if req is None or not self._allow_stdin:
            raise LuaApiError("stdin is not available")
        self.streams.flush()
        sock = self.stdin.socket
        while sock.poll(0):  # stale replies of an earlier, interrupted request
            sock.recv_multipart()
        self.stdin.send("input_request", {"prompt": prompt, "password": bool(password)}, req)
        rt = self._runtime
        while True:
            reason = rt.interrupted if rt is not None else None
            if reason is not None:
                raise Interrupted(reason)
            if sock.poll(50):
                msg = self.stdin.recv()
                if msg is not None and msg.msg_type == "input_reply":
                    return str(msg.content.get("value", ""))

    # -------------------------------------------------------------- registry
    def _write_registry_entry(self) -> None:
        entry = kernel_registry_file(os.getpid())
        # create_time identifies this process: `kernel stop` never signals a later process that
        # happens to get the same pid once this one is gone.
        data = {"pid": os.getpid(), "create_time": process_create_time(os.getpid()),
                "connection_file": str(self.connection_file),
                "owns_connection_file": self.owns_connection_file, "started": time.time(),
                "argv": sys.argv, "idle_timeout": self.idle_timeout}
        try:
            tmp = entry.with_name(f".{entry.name}.{secrets.token_hex(4)}.tmp")
            with open_private(tmp, "w", encoding="utf-8") as f:
                f.write(json.dumps(data))
            os.replace(tmp, entry)
            self._registry_entry = entry
        except OSError as e:
            log.warning("could not write %s: %s", entry, e)


def process_create_time(pid: int) -> float | None:
    """The start time of process `pid` as psutil reports it (None when it cannot be read)."""
    try:
        import psutil

        return float(psutil.Process(pid).create_time())
    except Exception:  # noqa: BLE001 - psutil.Error, ImportError: the identity is then unknown
        return None


def _resume_state() -> dict[str, Any]:
    """What a kernel replaced after a hard stop hands to its successor (empty otherwise): read from
    the hand-over file named by LLMSPELL_KERNEL_RESUME, which is then removed."""
    path = os.environ.pop(RESUME_ENV, "")
    if not path:
        return {}
    p = Path(path)
    if not p.name.startswith(KERNEL_RESUME_PREFIX) or p.parent.resolve() != runtime_dir().resolve():
        log.warning("ignored %s=%s: not a hand-over file of this kernel's runtime dir", RESUME_ENV, path)
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        log.warning("unreadable restart hand-over file %s", path)
        return {"resumed": True}
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
    return data if isinstance(data, dict) else {"resumed": True}


def _parent_pid() -> int | None:
    try:
        pid = int(os.environ.get("JPY_PARENT_PID", "0"))
    except ValueError:
        return None
    if pid <= 1 or sys.platform == "win32":
        return None
    return pid


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False
