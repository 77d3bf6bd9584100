"""ScriptRuntime: one lupa Lua 5.4 state, its globals, output sinks, and the Lua-thread discipline.

All Lua runs on the thread that calls `run_*` (the Lua thread). API calls that do I/O submit a
coroutine to the global IO runtime and wait in `block_on`, which keeps serving Lua callbacks
queued by other threads (hooks, function steps of parallel branches) and notices interrupts.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import queue
import re
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from lupa import lua54

from llmspell.runtime.io import get_io
from llmspell.script.args import set_script_args
from llmspell.script.bridge import Bridge, Interrupted, LuaApiError, lua_bytes
from llmspell.script.services import RunStats, Services
from llmspell.settings import settings_of

log = logging.getLogger("llmspell.script")
T = TypeVar("T")

#: Installs the Lua globals into a new runtime and returns the names installed (the bindings'
#: `install_globals`, handed in by the composition root: the engine does not import its bindings).
GlobalsInstaller = Callable[["ScriptRuntime"], list[str]]

#: VM instructions between interrupt checks: ~1 ms of pure Lua, so an interrupt lands promptly.
INTERRUPT_CHECK_INSTRUCTIONS = 100_000

_POS_RE = re.compile(r"^(?P<file>[^\n]*?):(?P<line>\d+): (?P<msg>.*)$", re.S)


def _deny_get(obj: Any, name: Any) -> Any:
    """lupa attribute getter: Lua code may call the Python functions it is given, never look inside."""
    raise AttributeError("Python objects have no fields visible to Lua")


def _deny_set(obj: Any, name: Any, value: Any) -> None:
    """lupa attribute setter: no Python object can be changed from Lua."""
    raise AttributeError("Python objects have no fields visible to Lua")


class OutputSink(Protocol):
    """Where print / io.write (stdout) or io.stderr / Debug / Logger (stderr) text goes."""

    def write(self, text: str) -> None: ...


class StreamSink:
    """A sink writing the exact bytes to a binary stream, flushing on every call (CLI)."""

    def __init__(self, stream: Any) -> None:
        self._stream = getattr(stream, "buffer", stream)

    def write(self, text: str) -> None:
        self._stream.write(lua_bytes(text))
        self._stream.flush()

    def isatty(self) -> bool:
        """Whether the stream is a terminal (Debug colours its level only then, §16)."""
        fn = getattr(self._stream, "isatty", None)
        return bool(fn()) if callable(fn) else False


class BufferSink:
    """Collects output in memory (tests, `--output json`)."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> None:
        self.parts.append(text)

    @property
    def text(self) -> str:
        return "".join(self.parts)


class CallbackSink:
    """Forwards each write to a callable (the kernel's iopub stream sender)."""

    def __init__(self, fn: Callable[[str], None]) -> None:
        self._fn = fn

    def write(self, text: str) -> None:
        self._fn(text)


class ScriptError(Exception):
    """A Lua error that ended a script: file, line and message, plus the Lua traceback."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 traceback: str = "", kind: str = "runtime") -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.traceback = traceback
        self.kind = kind  # "runtime", "syntax", "interrupted", "exit", "encoding", "io"

    @classmethod
    def from_lua(cls, message: str, traceback: str = "", kind: str = "runtime") -> ScriptError:
        m = _POS_RE.match(message)
        if m:
            return cls(m.group("msg"), file=m.group("file"), line=int(m.group("line")),
                       traceback=traceback, kind=kind)
        return cls(message, traceback=traceback, kind=kind)

    @property
    def full_message(self) -> str:
        """`file:line: message` when the position is known."""
        if self.file is not None and self.line is not None:
            return f"{self.file}:{self.line}: {self.message}"
        return self.message

    def __str__(self) -> str:
        return self.full_message


class ScriptExit(Exception):
    """os.exit() was called from Lua."""

    _llmspell_passthrough = True

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class ExecutionResult:
    """What one run produced: Lua return values (as Python data) and the run's figures."""

    values: list[Any] = field(default_factory=list)
    stats: RunStats = field(default_factory=RunStats)
    wall_ms: float = 0.0
    exit_code: int | None = None


class ScriptRuntime:
    """A Lua 5.4 state with the llmspell globals installed (lua-api.md §1)."""

    def __init__(
        self,
        services: Services,
        *,
        stdout: OutputSink | None = None,
        stderr: OutputSink | None = None,
        input_fn: Callable[[str, bool], str] | None = None,
        install_globals: GlobalsInstaller | None = None,
    ) -> None:
        self.services = services
        self.config = services.config
        self.stdout: OutputSink = stdout or StreamSink(sys.stdout)
        self.stderr: OutputSink = stderr or StreamSink(sys.stderr)
        self.input_fn = input_fn
        self.runtime_settings = settings_of(self.config).runtime
        max_memory = self.runtime_settings.max_memory_bytes
        kwargs: dict[str, Any] = {}
        if max_memory > 0:
            kwargs["max_memory"] = max_memory
        # Scripts never reach Python objects: no python.eval/builtins, and every attribute or item
        # access on a Python object that reaches Lua (a wrapped function, an exception) is refused.
        self.lua = lua54.LuaRuntime(
            register_eval=False, register_builtins=False, unpack_returned_tuples=True,
            encoding="llmspell-utf8", attribute_handlers=(_deny_get, _deny_set), **kwargs,
        )
        self.bridge = Bridge(self.lua, self)
        self.G = self.lua.globals()
        self._inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._interrupt_reason: str | None = None
        #: The code given to os.exit during the current run (None when it was not called).
        self._exit_code: int | None = None
        self._lua_thread: threading.Thread | None = None
        self._closed = False
        self.interrupted_by_signal = False
        self._close_callbacks: list[Callable[[], None]] = []
        #: Held by the Lua thread while a chunk runs; other threads touch Lua only if they can take it.
        self.exec_lock = threading.RLock()
        #: Called on the Lua thread at every interrupt check (the debugger installs its hook from here).
        self.on_tick: Callable[[], Any] | None = None
        self._install_base()
        self.installed_globals: list[str] = install_globals(self) if install_globals is not None else []

    # ------------------------------------------------------------------ setup
    def _install_base(self) -> None:
        m = self.bridge.m
        m.install_output(self._write_stdout, self._write_stderr)
        m.install_interrupt(self._check_interrupt, INTERRUPT_CHECK_INSTRUCTIONS)
        m.guard_sethook()
        m.install_exit(self._os_exit)
        if not self.runtime_settings.allow_binary_chunks:
            m.text_only_loading()
        if self.input_fn is not None:
            self.G.io.read = self.bridge.function(self._io_read, "io.read")

    def _os_exit(self, code: Any = None) -> str:
        """os.exit(code): record the exit code and stop the run like an interrupt (pcall cannot catch it)."""
        if code is None or code is True:
            n = 0
        elif code is False:
            n = 1
        elif isinstance(code, int | float) and not isinstance(code, bool) and float(code).is_integer():
            n = int(code)
        else:
            n = 1
        if self._exit_code is None:
            self._exit_code = n
        reason = f"os.exit({self._exit_code})"
        self._interrupt_reason = reason
        self._inbox.put(None)
        return reason

    def _write_stdout(self, text: str) -> None:
        self.stdout.write(text)

    def _write_stderr(self, text: str) -> None:
        self.stderr.write(text)

    def _io_read(self, fmt: Any = "l") -> Any:
        if self.input_fn is None:
            raise LuaApiError("stdin is not available")
        fmt = fmt if isinstance(fmt, str) else "l"
        text = self.input_fn("", False)
        if fmt.lstrip("*").startswith("n"):
            try:
                return int(text)
            except ValueError:
                try:
                    return float(text)
                except ValueError:
                    return None
        if fmt.lstrip("*").startswith("L"):
            return text + "\n"
        return text

    # ------------------------------------------------------------- interrupts
    def _check_interrupt(self) -> Any:
        tick = self.on_tick
        if tick is not None:
            tick()
        return self._interrupt_reason

    def interrupt(self, reason: str = "interrupted") -> None:
        """Stop the running script with `reason` as its Lua error (thread-safe)."""
        self._interrupt_reason = reason
        self._inbox.put(None)

    def clear_interrupt(self) -> None:
        self._interrupt_reason = None

    @property
    def interrupted(self) -> str | None:
        return self._interrupt_reason

    def check_interrupt(self) -> None:
        """Raise Interrupted if an interrupt is pending (for long Python-side loops)."""
        if self._interrupt_reason is not None:
            raise Interrupted(self._interrupt_reason)

    # --------------------------------------------------- Lua-thread discipline
    def on_lua_thread(self) -> bool:
        return self._lua_thread is None or threading.current_thread() is self._lua_thread

    def block_on(self, work: Coroutine[Any, Any, T] | concurrent.futures.Future[T],
                 timeout: float | None = None) -> T:
        """Run a coroutine on the IO loop and wait, serving Lua callbacks; interruptible.

        Called on the Lua thread by API functions. Raises Interrupted (and cancels the work) when
        the script is interrupted, TimeoutError when `timeout` passes.
        """
        fut = get_io().submit(work) if not isinstance(work, concurrent.futures.Future) else work
        inbox = self._inbox
        fut.add_done_callback(lambda _f: inbox.put(None))
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if fut.done():
                if fut.cancelled() and self._interrupt_reason is not None:
                    raise Interrupted(self._interrupt_reason)  # the work stopped for this interrupt
                return fut.result()
            if self._interrupt_reason is not None:
                fut.cancel()
                raise Interrupted(self._interrupt_reason)
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            if wait == 0.0:
                fut.cancel()
                raise TimeoutError
            try:
                item = inbox.get(timeout=wait)
            except queue.Empty:
                continue
            if item is not None:
                serve_call(item)

    def sleep(self, seconds: float) -> None:
        """Interruptible sleep on the Lua thread that keeps serving callbacks."""
        deadline = time.monotonic() + seconds
        while True:
            self.check_interrupt()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                item = self._inbox.get(timeout=left)
            except queue.Empty:
                return
            if item is not None:
                serve_call(item)

    def call_on_lua_thread(self, fn: Callable[..., T], *args: Any) -> concurrent.futures.Future[T]:
        """Queue `fn(*args)` for the Lua thread; it runs when the Lua thread next waits in block_on.

        On the Lua thread itself the call runs at once.
        """
        fut: concurrent.futures.Future[T] = concurrent.futures.Future()
        if self.on_lua_thread():
            serve_call((fn, args, fut))
        else:
            self._inbox.put((fn, args, fut))
        return fut

    def queue_for_wait(self, fn: Callable[[], Any]) -> None:
        """Queue `fn()` to run on the Lua thread at its next wait in block_on or sleep (never inline)."""
        self._inbox.put((fn, (), concurrent.futures.Future()))

    async def call_lua_async(self, fn: Callable[..., T], *args: Any) -> T:
        """Await `fn(*args)` run on the Lua thread (from a coroutine on the IO loop)."""
        import asyncio

        return await asyncio.wrap_future(self.call_on_lua_thread(fn, *args))

    # -------------------------------------------------------------- running
    def compile(self, code: str, chunkname: str) -> Any:
        """Compile without running; raises ScriptError(kind='syntax')."""
        fn, err = self.bridge.m.compile(code, chunkname)
        if fn is False:
            raise ScriptError.from_lua(str(err), kind="syntax")
        return fn

    def run_string(self, code: str, chunkname: str = "=(exec)", args: Sequence[str] | None = None,
                   script_path: str | None = None) -> ExecutionResult:
        """Compile and run a chunk on this thread. Raises ScriptError; os.exit sets exit_code."""
        fn = self.compile(code, chunkname)
        tokens = list(args or [])
        if tokens and tokens[0] == "--":
            tokens = tokens[1:]  # the optional separator is not a script argument (§1.9), nor part of `...`
        set_script_args(self, script_path if script_path is not None else chunkname.lstrip("=@"), tokens)
        return self.call_chunk(fn, *tokens)

    def run_file(self, path: str, args: Sequence[str] | None = None) -> ExecutionResult:
        """Run a script file: chunk name is the path as given (§1.1)."""
        try:
            data = open(path, "rb").read()  # noqa: SIM115
        except FileNotFoundError:
            raise ScriptError(f"cannot open {path}: no such file", kind="io") from None
        except IsADirectoryError:
            raise ScriptError(f"cannot open {path}: is a directory", kind="io") from None
        except OSError as e:
            raise ScriptError(f"cannot open {path}: {e.strerror}", kind="io") from None
        try:
            code = data.decode("utf-8")
        except UnicodeDecodeError as e:
            line = data[: e.start].count(b"\n") + 1
            col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
            raise ScriptError(
                f"script is not valid UTF-8 (byte 0x{data[e.start]:02x} at column {col}); save the file as UTF-8",
                file=path, line=line, kind="encoding") from None
        if code.startswith("#!"):
            code = "--" + code  # keep line numbers; Lua's own loader skips shebangs the same way
        self._set_package_path(path)
        try:
            return self.run_string(code, "@" + path, args, script_path=path)
        except ScriptError as e:
            # Lua shortens long chunk names to "...<tail>"; errors name the script path as given (§1.1).
            if e.file is not None and e.file.startswith("...") and path.endswith(e.file[3:]):
                e.file = path
            raise

    def _set_package_path(self, path: str) -> None:
        import os

        d = os.path.dirname(path) or "."
        pkg = self.G.package
        prefix = f"{d}/?.lua;{d}/?/init.lua;"
        if not str(pkg.path).startswith(prefix):
            pkg.path = prefix + str(pkg.path)

    def call_chunk(self, fn: Any, *args: Any) -> ExecutionResult:
        """Call a compiled chunk protected, on the current thread (which becomes the Lua thread)."""
        with self.exec_lock:
            return self._call_chunk(fn, *args)

    def _call_chunk(self, fn: Any, *args: Any) -> ExecutionResult:
        self._lua_thread = threading.current_thread()
        self._exit_code = None
        self.services.stats.reset()
        if self.services.events is not None:
            self.services.events.new_root_context()  # one correlation root per run / execute_request (§10.2)
        result = ExecutionResult(stats=self.services.stats)
        t0 = time.perf_counter()
        try:
            try:
                out = self.bridge.m.run(fn, *args)
            except ScriptExit as e:
                result.exit_code = e.code
                return result
            except Interrupted as e:
                if self._exit_code is not None:
                    result.exit_code = self._exit_code
                    return result
                raise ScriptError(e.reason, kind="interrupted") from None
            except (MemoryError, lua54.LuaMemoryError):
                self._collect_after_memory_error()
                raise ScriptError("not enough memory") from None
            if self._exit_code is not None:  # os.exit was called, whatever caught its error since
                result.exit_code = self._exit_code
                return result
            if isinstance(out, tuple):
                ok, *rest = out
            else:
                ok, rest = out, []
            if not ok:
                raw = rest[2] if len(rest) > 2 else None
                if isinstance(raw, ScriptExit):
                    result.exit_code = raw.code
                    return result
                if isinstance(raw, Interrupted):
                    raise ScriptError(raw.reason, kind="interrupted")
                message = str(rest[0]) if rest else "unknown error"
                if message.endswith("not enough memory"):
                    self._collect_after_memory_error()
                tb = str(rest[1]) if len(rest) > 1 and rest[1] is not None else ""
                reason = self._interrupt_reason
                kind = "interrupted" if reason is not None and message.endswith(reason) else "runtime"
                if kind == "interrupted":
                    raise ScriptError(reason or "interrupted", traceback=tb, kind=kind)
                raise ScriptError.from_lua(message, tb)
            n = int(rest[0]) if rest else 0
            values = []
            for v in rest[1 : 1 + n]:
                try:
                    values.append(self.bridge.to_py(v))
                except LuaApiError:
                    values.append(self.display(v))
            result.values = values
            return result
        finally:
            result.wall_ms = (time.perf_counter() - t0) * 1000.0
            result.stats.wall_ms = result.wall_ms
            self._interrupt_reason = None
            self._exit_code = None

    def _collect_after_memory_error(self) -> None:
        """A full Lua collection: the failed run's garbage would otherwise stay until the next cycle."""
        with contextlib.suppress(Exception):
            self.lua.gccollect()

    def display(self, value: Any) -> str:
        """Render a Lua value as print would."""
        return str(self.bridge.m.render(value))

    # ------------------------------------------------------------- lifecycle
    def on_close(self, fn: Callable[[], None]) -> None:
        self._close_callbacks.append(fn)

    def close(self) -> None:
        """Fire shutdown hooks and release resources (idempotent)."""
        if self._closed:
            return
        self._closed = True
        for fn in reversed(self._close_callbacks):
            try:
                fn()
            except Exception:  # noqa: BLE001 - close is best effort
                log.warning("error while closing the runtime", exc_info=True)

    def __enter__(self) -> ScriptRuntime:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def serve_call(item: tuple[Callable[..., Any], tuple[Any, ...], concurrent.futures.Future[Any]]) -> None:
    """Run one queued `(fn, args, future)` call on this thread and settle its future (unless cancelled)."""
    fn, args, fut = item
    if not fut.set_running_or_notify_cancel():
        return
    try:
        fut.set_result(fn(*args))
    except BaseException as e:  # noqa: BLE001 - delivered to the waiting thread
        fut.set_exception(e)
