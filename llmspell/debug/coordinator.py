"""The Lua debugging core: breakpoints, stepping, pause, frames, scopes, variables, evaluate.

lupa holds the Lua lock while Lua runs and while Lua is paused inside a Python callback, so no
other thread can read Lua state during a pause. The paused Lua thread therefore serves every
inspection request itself: other threads put work on `_cmds` and wait for the result. When no
script runs, a caller that can take `rt.exec_lock` touches Lua directly.
"""

from __future__ import annotations

import concurrent.futures
import enum
import logging
import os
import queue
import re
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmspell.debug.breakpoints import (
    IDENT,
    Breakpoint,
    BreakpointTable,
    FunctionBreakpoint,
    SourceBreakpoint,
    hit_matches,
    read_source,
)
from llmspell.debug.lines import code_lines
from llmspell.debug.tcp import escape_text
from llmspell.debug.values import builtin_globals, child_expr, describe, key_name
from llmspell.script.engine import serve_call

if TYPE_CHECKING:
    from llmspell.script.engine import ScriptRuntime

log = logging.getLogger("llmspell.debug")

HOOKS_LUA = (Path(__file__).with_name("hooks.lua")).read_text(encoding="utf-8")
THREAD_ID = 1
#: VM instructions between checks for interrupts, pause and breakpoint updates while debugging.
POLL_INSTRUCTIONS = 10_007  # prime: see COUNT in hooks.lua
#: How long a request waits for the paused Lua thread to serve it.
REQUEST_TIMEOUT = 30.0
#: Longest an `evaluate` (debug console, watch, hover) may run before it is stopped with an error.
EVAL_TIMEOUT = 10.0
_INTERNAL_SOURCES = ("=llmspell.debug", "=(eval)", "=(condition)")


class DebugError(Exception):
    """A request that cannot be served (reported to the client as success=false)."""


EventSink = Callable[[str, dict[str, Any]], None]


@dataclass
class Frame:
    """One Lua frame of the current stop."""

    id: int
    index: int
    name: str
    source: str
    path: str | None
    line: int
    what: str
    #: Which Lua thread of the stop the frame is on, as the debugger's Lua side numbers them (a stop
    #: inside a coroutine also lists the frames of the threads that resumed it).
    co: int = 0

    def as_dap(self) -> dict[str, Any]:
        if self.what == "resume":
            return {"id": self.id, "name": self.name, "line": 0, "column": 0, "presentationHint": "label"}
        d: dict[str, Any] = {"id": self.id, "name": self.name, "line": max(self.line, 0), "column": 1}
        if self.path:
            d["source"] = {"path": self.path, "name": os.path.basename(self.path)}
        else:
            d["source"] = {"name": self.source.lstrip("=@"), "sourceReference": 0}
        return d


class Attachment(enum.Enum):
    """Whether the debug hook is in the runtime; attach and detach wait for a running script."""

    DETACHED = "detached"
    #: Attached while a script ran: the hook goes in at its next interrupt check (`rt.on_tick`).
    INSTALL_PENDING = "install_pending"
    INSTALLED = "installed"
    #: Detached while a script ran or was paused: the hook comes out at its next poll or resume.
    DETACH_PENDING = "detach_pending"


class StopState(enum.Enum):
    """What the Lua thread is asked to do about stopping; the Lua side holds step in/over/out itself."""

    #: No stop asked for (a breakpoint or an exception filter may still stop it).
    RUNNING = "running"
    #: Stop at the first line that runs (stopOnEntry) once the hook is in: it is not in yet.
    ENTRY_PENDING = "entry_pending"
    #: The hook steps in: its next step stop is reported with the reason "entry".
    ENTRY = "entry"
    #: A pause was asked: the script stops at its next poll, or inside the blocking call it waits in.
    PAUSE_PENDING = "pause_pending"
    #: The Lua thread is blocked in a stop (`DebugCoordinator.stopped` says why), serving requests.
    STOPPED = "stopped"


@dataclass
class Stop:
    """Why and where the Lua thread is stopped."""

    reason: str
    hit_ids: list[int] = field(default_factory=list)
    text: str | None = None
    frames: list[Frame] | None = None
    #: For an exception stop: the Lua traceback where the error was raised.
    traceback: str | None = None


@dataclass
class _Resume:
    action: tuple[Any, ...]


class DebugCoordinator:
    """Debugger for one ScriptRuntime; thread-safe front, Lua work on the Lua thread."""

    def __init__(self, rt: ScriptRuntime, on_event: EventSink | None = None,
                 stop_handler: Callable[[Stop], None] | None = None) -> None:
        self.rt = rt
        self.on_event: EventSink = on_event or (lambda name, body: None)
        #: When set, called on the Lua thread at each stop instead of waiting for queued requests
        #: (terminal debugger and REPL); it calls the methods below directly and then `resume`.
        self.stop_handler = stop_handler
        self._lock = threading.RLock()
        self._cmds: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._D: Any = None
        #: Makes Lua state readable from Python while a coroutine runs (see Bridge.for_coroutines).
        self._settle: Callable[[], None] = rt.bridge.settle
        self._py_table: Any = None
        self._orig_run: Any = None
        self._interrupt_hook: tuple[Any, Any] = (None, 0)
        self._hook = Attachment.DETACHED
        self._state = StopState.RUNNING
        #: Why and where the script is stopped: set exactly while the state is STOPPED.
        self._stop: Stop | None = None
        #: Breakpoints changed while the script ran: the hook takes them at its next poll.
        self._sync_pending = False
        self._lua_thread: threading.Thread | None = None
        self._pending_resume: tuple[Any, ...] | None = None
        self._bps = BreakpointTable()
        #: Real path (the breakpoint key) -> the path the client or the chunk named it by.
        self._shown: dict[str, str] = {}
        #: Real paths of sources a `source` request may read (run chunks, the program, dumped cells).
        self._readable: set[str] = set()
        self._eval_cancel: str | None = None
        self._eval_running = False
        self._eval_limit = EVAL_TIMEOUT
        self.last_exception: Stop | None = None
        self._ids = 0
        self._refs: dict[int, tuple[Any, ...]] = {}
        self._frames_by_id: dict[int, Frame] = {}
        self._norm: dict[str, str | None] = {}
        self._sources: dict[str, str] = {}
        self.exception_filters: list[str] = []
        self._request_thread: threading.Thread | None = None
        self.runs_finished = 0
        #: Called on the Lua thread when a run (script, cell) ends, with the number of stops in it.
        self.on_run_end: Callable[[int], None] | None = None
        self._stops_in_run = 0

    # ------------------------------------------------------------ states
    @property
    def attached(self) -> bool:
        return self._hook in (Attachment.INSTALL_PENDING, Attachment.INSTALLED)

    @property
    def attachment(self) -> Attachment:
        return self._hook

    @property
    def state(self) -> StopState:
        return self._state

    @property
    def stopped(self) -> Stop | None:
        return self._stop

    def _move(self, to: StopState, *, only_from: Collection[StopState] | None = None,
              stop: Stop | None = None) -> bool:
        """The one place the stop state changes: to `to` when it is one of `only_from` (any when None).

        A stop carries its `Stop` and ends only by its resume (STOPPED -> RUNNING); a pending pause or
        entry is satisfied by whatever stop comes first.
        """
        with self._lock:
            cur = self._state
            if only_from is not None and cur not in only_from:
                return False
            if cur is StopState.STOPPED and to is not StopState.RUNNING:
                raise RuntimeError(f"a stop ends only by its resume, not by a move to {to.name}")
            if (to is StopState.STOPPED) != (stop is not None):
                raise ValueError("the STOPPED state and its Stop go together")
            self._state, self._stop = to, stop
            return True

    def _set_hook(self, to: Attachment, *, only_from: Collection[Attachment] | None = None) -> bool:
        """The one place the attachment changes: to `to` when it is one of `only_from` (any when None)."""
        with self._lock:
            if only_from is not None and self._hook not in only_from:
                return False
            self._hook = to
            return True

    # ------------------------------------------------------------ lifecycle
    def attach(self) -> None:
        """Install the debug hook (now when idle, else at the running script's next check)."""
        if not self._set_hook(Attachment.INSTALL_PENDING,
                              only_from=(Attachment.DETACHED, Attachment.DETACH_PENDING)):
            return
        if not self._with_lua(self._install):
            self.rt.on_tick = self._tick

    def detach(self) -> None:
        """Remove the hook and breakpoints; a paused script resumes (never left hanging)."""
        with self._lock:
            if not self.attached:
                return
            self._bps.clear()
            self._move(StopState.RUNNING, only_from=(StopState.PAUSE_PENDING, StopState.ENTRY_PENDING))
            if self._hook is Attachment.INSTALL_PENDING:
                self._set_hook(Attachment.DETACHED)
                self.rt.on_tick = None
                return
            self._set_hook(Attachment.DETACH_PENDING)
            paused = self._stop is not None
        if paused:
            self._cmds.put(_Resume(self._detach_action()))
            return
        self._with_lua(self._uninstall)

    def terminate(self, reason: str = "terminated by the debugger") -> None:
        """End the running script with `reason` as its error (resumes it first when paused)."""
        self.rt.interrupt(reason)
        if self._stop is not None:
            self._cmds.put(_Resume(("terminate", reason)))

    def _detach_action(self) -> tuple[Any, ...]:
        return ("detach", *self._interrupt_hook)

    def _install(self) -> None:
        self._ensure_D()
        m = self.rt.bridge.m
        self._interrupt_hook = (m.interrupt_hook, m.interrupt_count)
        if self._orig_run is None:
            self._orig_run = m.run
            m.run = self._D.wrap_run(self._orig_run)
        self._D.install(POLL_INSTRUCTIONS)
        self._set_hook(Attachment.INSTALLED)
        self._push_breakpoints()
        if self._move(StopState.ENTRY, only_from=(StopState.ENTRY_PENDING,)):
            self._D.step_in()

    def _uninstall(self) -> None:
        m = self.rt.bridge.m
        if self._orig_run is not None:
            m.run = self._orig_run
            self._orig_run = None
        if self._D is not None:
            self._D.uninstall(m.interrupt_hook, m.interrupt_count)
        self._set_hook(Attachment.DETACHED, only_from=(Attachment.DETACH_PENDING,))

    def _tick(self) -> None:
        """Called at the interrupt hook's check while a script runs: install the debug hook."""
        self.rt.on_tick = None
        if self._hook is Attachment.INSTALL_PENDING:
            self._lua_thread = threading.current_thread()
            self._install()

    # ------------------------------------------------------ access to Lua
    def _with_lua(self, fn: Callable[[], Any]) -> bool:
        """Run fn now if Lua is free (idle) or this is the Lua thread; False when it is busy elsewhere."""
        if self._on_paused_thread() or self.rt.exec_lock.acquire(blocking=False):
            owned = not self._on_paused_thread()
            try:
                fn()
            finally:
                if owned:
                    self.rt.exec_lock.release()
            return True
        return False

    def _on_paused_thread(self) -> bool:
        return self._stop is not None and threading.current_thread() is self._lua_thread

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run fn on the Lua thread: directly when possible, else through the paused thread's queue."""
        if self._on_paused_thread():
            return fn(*args)
        with self._lock:
            paused = self._stop is not None
            if paused:
                fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
                self._cmds.put((fn, args, fut))
        if paused:
            try:
                return fut.result(REQUEST_TIMEOUT)
            except concurrent.futures.TimeoutError:
                raise DebugError("the paused Lua thread did not answer in time") from None
        if self.rt.exec_lock.acquire(blocking=False):
            self._request_thread = threading.current_thread()
            try:
                return fn(*args)
            finally:
                self._request_thread = None
                self.rt.exec_lock.release()
        raise DebugError("the script is running (pause it first)")

    # -------------------------------------------------- Python callbacks (Lua thread)
    def _py_norm(self, source: Any) -> str | None:
        src = str(source)
        if src in self._norm:
            return self._norm[src]
        key: str | None = None
        if src.startswith("@"):
            shown = os.path.normpath(os.path.abspath(src[1:]))
            key = os.path.realpath(shown)
            self._shown.setdefault(key, shown)
            self._readable.add(key)
        elif src.startswith("=") and src not in _INTERNAL_SOURCES:
            key = src[1:]
        self._norm[src] = key
        if key is not None:
            self._sources.setdefault(key, src)
        return key

    def shown_path(self, key: str) -> str:
        """The path to show for a source key: as the client named it, else as the chunk did."""
        return self._shown.get(key, key)

    def allow_source(self, path: str) -> None:
        """Let `source` requests read this file (the launched program, a dumped cell)."""
        self._readable.add(os.path.realpath(os.path.abspath(path)))

    def source_text(self, path: str) -> str:
        """The text of a loaded script source; any other file is refused (the debugger serves only
        what it runs)."""
        real = os.path.realpath(os.path.abspath(path))
        if real not in self._readable:
            raise DebugError(f"source: {path} is not a script source loaded in this session")
        text = read_source(real)
        if text is None:
            raise DebugError(f"cannot read {path}")
        return text

    def _py_poll(self) -> Any:
        try:
            reason = self.rt.interrupted
            if reason is not None:
                return ("terminate", reason)
            if self._hook is Attachment.DETACH_PENDING:
                self._uninstall_from_hook()
                return self._detach_action()
            if self._sync_pending:
                self._sync_pending = False
                lines, by_src, fns = self._bp_tables()
                return ("sync", lines, by_src, "uncaught" in self.exception_filters, fns)
            if self._state is StopState.PAUSE_PENDING:
                return self._enter_stop(Stop("pause"))
        except Exception:  # noqa: BLE001 - never raise into the user's Lua code
            log.exception("debugger poll failed")
        return None

    def _uninstall_from_hook(self) -> None:
        m = self.rt.bridge.m
        if self._orig_run is not None:
            m.run = self._orig_run
            self._orig_run = None
        self._set_hook(Attachment.DETACHED, only_from=(Attachment.DETACH_PENDING,))

    def _py_hit(self, key: str, line: int, co: Any) -> Any:
        try:
            bps = self._bps.at(key, int(line))
            if not bps:
                return None
            self._lua_thread = threading.current_thread()
            self._settle()
            hit = [bp.id for bp in list(bps) if self._bp_fires(bp, co, f"{os.path.basename(key)}:{line}")]
            if not hit:
                return None
            return self._enter_stop(Stop("breakpoint", hit))
        except Exception:  # noqa: BLE001 - never raise into the user's Lua code
            log.exception("debugger breakpoint handling failed")
            return None

    def _bp_fires(self, bp: Breakpoint, co: Any, where: str) -> bool:
        """Condition, hit count and log message of one breakpoint: True when it stops."""
        if bp.condition:
            ok, vals = self._eval_raw(co, 0, bp.condition)
            if not ok:
                self._output(f"breakpoint condition error at {where}: {vals}\n", "stderr")
            elif not (vals and vals[0] is not None and vals[0] is not False):
                return False
        bp.hits += 1
        if bp.hit_condition and not hit_matches(bp.hit_condition, bp.hits):
            return False
        if bp.log_message is not None:
            self._output(self._interpolate(co, bp.log_message) + "\n", "console")
            return False
        return True

    def _py_fn_hit(self, name: str, co: Any) -> Any:
        """A call hook saw a call of a function named like a function breakpoint."""
        try:
            bp = self._bps.functions.get(str(name))
            if bp is None or not self._bp_fires(bp, co, f"function {name}"):
                return None
            return self._enter_stop(Stop("function breakpoint", [bp.id]))
        except Exception:  # noqa: BLE001 - never raise into the user's Lua code
            log.exception("debugger function breakpoint handling failed")
            return None

    def _py_stop(self, reason: str) -> Any:
        try:
            if self._state is StopState.ENTRY:
                reason = "entry"
            return self._enter_stop(Stop(str(reason)))
        except Exception:  # noqa: BLE001
            log.exception("debugger stop failed")
            return ("continue",)

    def _py_stop_error(self, message: str, tb: str) -> Any:
        try:
            if self.rt.interrupted is not None or "uncaught" not in self.exception_filters:
                return None
            st = Stop("exception", text=escape_text(str(message)), traceback=escape_text(str(tb)))
            self.last_exception = st
            return self._enter_stop(st)
        except Exception:  # noqa: BLE001
            log.exception("debugger exception stop failed")
            return None

    def set_exception_filters(self, filters: list[str]) -> None:
        """Exception breakpoints: "uncaught" stops where an uncaught Lua error is raised."""
        self.exception_filters = list(filters)
        self._request_sync()

    def _py_run_end(self) -> None:
        self.runs_finished += 1
        # a pause that found no line to stop at ends with its run
        self._move(StopState.RUNNING, only_from=(StopState.PAUSE_PENDING,))
        stops, self._stops_in_run = self._stops_in_run, 0
        if self.on_run_end is not None:
            try:
                self.on_run_end(stops)
            except Exception:  # noqa: BLE001 - never raise into the user's Lua code
                log.exception("run-end callback failed")

    # ---------------------------------------------------------------- the stop
    def _enter_stop(self, st: Stop) -> tuple[Any, ...] | None:
        """Block the Lua thread, serving requests, until a resume; returns the action for the hook.

        No stop (None) for code the debugger itself runs: an evaluate while stopped, or one made by
        a request thread while no script runs (that thread would wait for itself).
        """
        if self._stop is not None or self._request_thread is threading.current_thread():
            return None
        self._lua_thread = threading.current_thread()
        self._settle()
        with self._lock:
            if not self.attached:
                return ("continue",)
            self._move(StopState.STOPPED, stop=st)
            self._stops_in_run += 1
            self._pending_resume = None
        body: dict[str, Any] = {"reason": st.reason, "threadId": THREAD_ID, "allThreadsStopped": True,
                                "preserveFocusHint": False}
        if st.hit_ids:
            body["hitBreakpointIds"] = list(st.hit_ids)
        if st.text:
            body["text"] = st.text
        if st.reason == "exception":
            body["description"] = "Uncaught Lua error"
        action: tuple[Any, ...] = ("continue",)
        try:
            self.on_event("stopped", body)
            if self.stop_handler is not None:
                self.stop_handler(st)
                action = self._pending_resume or ("continue",)
            else:
                action = self._serve_until_resume()
        finally:
            with self._lock:
                self._move(StopState.RUNNING)
                self._refs.clear()
                self._frames_by_id.clear()
                leftovers = []
                while True:
                    try:
                        leftovers.append(self._cmds.get_nowait())
                    except queue.Empty:
                        break
            for item in leftovers:
                if isinstance(item, tuple):
                    item[2].set_exception(DebugError("the script is no longer stopped"))
        if action[0] == "detach":
            self._uninstall_from_hook()
        if self.rt.interrupted is not None and action[0] != "terminate":
            action = ("terminate", self.rt.interrupted)
        return action

    def _serve_until_resume(self) -> tuple[Any, ...]:
        while True:
            try:
                item = self._cmds.get(timeout=0.1)
            except queue.Empty:
                if self.rt.interrupted is not None:
                    return ("terminate", self.rt.interrupted)
                continue
            if isinstance(item, _Resume):
                return item.action
            serve_call(item)

    # ------------------------------------------------------------ control
    def resume(self, action: str = "continue") -> None:
        """Continue or step ("continue", "in", "over", "out") from a stop."""
        if action not in ("continue", "in", "over", "out"):
            raise DebugError(f"unknown resume action {action!r}")
        with self._lock:
            if self._stop is None:
                raise DebugError("the script is not stopped")
            if self._on_paused_thread():
                self._pending_resume = (action,)
                return
            self._cmds.put(_Resume((action,)))

    def is_running(self) -> bool:
        """True while a chunk runs on the Lua thread (paused or not)."""
        if self.rt.exec_lock.acquire(blocking=False):
            self.rt.exec_lock.release()
            return self._stop is not None
        return True

    def pause(self) -> bool:
        """Ask the running script to stop at its next check; False when nothing runs."""
        if not self.attached:
            raise DebugError("the debugger is not attached")
        if self._state in (StopState.STOPPED, StopState.ENTRY_PENDING):
            return True  # stopped, or the hook's install steps in to the first line
        if self.rt.exec_lock.acquire(blocking=False):
            self.rt.exec_lock.release()
            return False
        self._move(StopState.PAUSE_PENDING, only_from=(StopState.RUNNING, StopState.ENTRY))
        # a script waiting in a blocking API call runs no Lua: it serves this queued check instead
        self.rt.queue_for_wait(self._pause_while_waiting)
        return True

    def _pause_while_waiting(self) -> None:
        """The pause of a script that waits in a blocking API call (an LLM request, a sleep).

        Runs on the Lua thread inside the wait. The stop shows the Lua frames that made the call;
        the work goes on meanwhile and the call returns its result after the resume.
        """
        if self._state is not StopState.PAUSE_PENDING or not self.attached or self._D is None:
            return
        try:
            # the frames and a step start from the innermost Lua code (see hooks.lua, walk)
            action = self._enter_stop(Stop("pause"))
            if action is None:
                return
            if action[0] in ("in", "over", "out"):
                self._D.wait_step(action[0])
            elif action[0] == "detach":
                self._uninstall()
        except Exception:  # noqa: BLE001 - never break the waiting API call
            log.exception("debugger pause during a blocking call failed")

    def step_in_next(self) -> None:
        """Stop at the first line that runs next (stopOnEntry; the stop's reason is "entry")."""
        D = self._D
        if self._hook is Attachment.INSTALLED and D is not None and self._with_lua(D.step_in):
            self._move(StopState.ENTRY, only_from=(StopState.RUNNING, StopState.PAUSE_PENDING,
                                                   StopState.ENTRY_PENDING))
            return
        self._move(StopState.ENTRY_PENDING, only_from=(StopState.RUNNING, StopState.PAUSE_PENDING,
                                                       StopState.ENTRY))

    # -------------------------------------------------------- breakpoints
    def set_breakpoints(self, path: str, requested: list[SourceBreakpoint],
                        source_text: str | None = None) -> list[Breakpoint]:
        """Replace the breakpoints of one source; lines without code move to the next line with code.

        Code lines come from the compiled chunk's line info (lines.py); a source that does not compile
        falls back to a textual guess. Several requests that land on one line all stay (each answered
        at that line); the line stops when any of them fires. The source is keyed by its real path,
        so a script reached through a symlinked directory hits breakpoints set on either path.
        """
        key = self._key_for_path(path)
        if os.path.isabs(key):
            self._shown[key] = path if os.path.isabs(path) else os.path.abspath(path)
        text = source_text if source_text is not None else read_source(key)
        active = code_lines(text) if text is not None else None
        result = self._bps.set_source(key, path, requested, text, active, self._check_condition)
        self._request_sync()
        return result

    def set_function_breakpoints(self, requested: list[FunctionBreakpoint]) -> list[Breakpoint]:
        """Replace the function breakpoints: stop at the first line of any call of a function with that
        name (as Lua names it at the call: `f`, `obj:method` and `M.f` match by their last part)."""
        result = self._bps.set_functions(requested, self._check_condition)
        self._request_sync()
        return result

    def breakpoints(self) -> dict[str, list[Breakpoint]]:
        return {self.shown_path(k): [bp for lst in v.values() for bp in lst] for k, v in self._bps.by_source.items()}

    def _key_for_path(self, path: str) -> str:
        if path.startswith(("@", "=")):
            return self._py_norm(path) or path
        if "/" in path or os.sep in path or os.path.exists(path):
            return os.path.realpath(os.path.abspath(path))
        return path

    def _check_condition(self, cond: str) -> str | None:
        try:
            return self._call(lambda: self._lua_check(cond))
        except DebugError:
            return None

    def _lua_check(self, cond: str) -> str | None:
        self._ensure_D()
        r = self._D.check(cond)
        return None if r is None else str(r)

    def _bp_tables(self) -> tuple[Any, Any, Any]:
        lua = self.rt.lua
        lines: dict[int, bool] = {}
        by_src = lua.table()
        for key, bps in self._bps.by_source.items():
            t = lua.table()
            for line in bps:
                t[line] = True
                lines[line] = True
            by_src[key] = t
        return lua.table_from(lines), by_src, lua.table_from({n: True for n in self._bps.functions})

    def _request_sync(self) -> None:
        if not self.attached or self._D is None:
            return
        if not self._with_lua(self._push_breakpoints):
            if self._stop is not None:
                try:
                    self._call(self._push_breakpoints)
                    return
                except DebugError:
                    pass
            self._sync_pending = True

    def _push_breakpoints(self) -> None:
        lines, by_src, fns = self._bp_tables()
        self._D.sync(lines, by_src, "uncaught" in self.exception_filters, fns)

    # ------------------------------------------------------------ inspection
    def stack_trace(self, start: int = 0, levels: int = 0) -> tuple[list[Frame], int]:
        frames = self._frames()
        total = len(frames)
        end = total if not levels else min(total, start + levels)
        return frames[start:end], total

    def _frames(self) -> list[Frame]:
        st = self._require_stop()
        if st.frames is None:
            st.frames = self._call(self._load_frames, st)
        return st.frames

    def _load_frames(self, st: Stop) -> list[Frame]:
        out: list[Frame] = []
        raw = self._D.frames()
        marker: Frame | None = None
        for i in range(1, len(raw) + 1):
            f = raw[i]
            j, what, source, line, name = f[1], f[2], str(f[3]), f[4], f[5]
            if what == "resume":  # the frames below are the main thread's, which resumed the coroutine
                self._ids += 1
                marker = Frame(self._ids, -1, "coroutine resumed from", "", None, 0, "resume")
                self._frames_by_id[marker.id] = marker
                continue
            if what == "C" or source in _INTERNAL_SOURCES or not source.startswith(("@", "=")):
                continue
            if marker is not None:
                if out:
                    out.append(marker)
                marker = None
            key = self._py_norm(source)
            path = self.shown_path(key) if source.startswith("@") and key else (
                key if key and os.path.isabs(key) else None)
            if what == "main":
                label = "main chunk"
            elif name:
                label = str(name)
            else:
                label = f"function <{os.path.basename(source.lstrip('@='))}:{f[6]}>"
            self._ids += 1
            fr = Frame(self._ids, int(j), label, source, path, int(line or 0), str(what), int(f[8]))
            self._frames_by_id[fr.id] = fr
            out.append(fr)
        return out

    def _frame(self, frame_id: int | None) -> Frame:
        frames = self._frames()
        if frame_id is None:
            if not frames:
                raise DebugError("no Lua frame")
            return frames[0]
        fr = self._frames_by_id.get(int(frame_id))
        if fr is None:
            raise DebugError(f"unknown or expired frameId {frame_id}")
        if fr.what == "resume":
            raise DebugError(f"frameId {frame_id} marks where a coroutine was resumed; pick the frame below it")
        return fr

    def _require_stop(self) -> Stop:
        st = self._stop
        if st is None:
            raise DebugError("the script is not stopped")
        return st

    def _new_ref(self, *target: Any) -> int:
        self._ids += 1
        self._refs[self._ids] = target
        return self._ids

    def scopes(self, frame_id: int) -> list[dict[str, Any]]:
        fr = self._frame(frame_id)
        return [
            {"name": "Locals", "presentationHint": "locals", "expensive": False,
             "variablesReference": self._new_ref("locals", fr)},
            {"name": "Upvalues", "expensive": False, "variablesReference": self._new_ref("upvalues", fr)},
            {"name": "Globals", "expensive": True, "variablesReference": self._new_ref("globals")},
        ]

    def variables(self, ref: int, filter_: str | None = None, start: int = 0,
                  count: int = 0) -> list[dict[str, Any]]:
        target = self._refs.get(int(ref))
        if target is None:
            raise DebugError(f"unknown or expired variablesReference {ref} (references end when the script resumes)")
        return self._call(self._load_variables, target, filter_, int(start or 0), int(count or 0))

    def _load_variables(self, target: tuple[Any, ...], filter_: str | None, start: int,
                        count: int) -> list[dict[str, Any]]:
        kind = target[0]
        self._require_stop()
        D = self._D
        pairs: list[tuple[str, Any, str]] = []
        if kind == "locals":
            n, names, vals, _ = D.locals(target[1].co, target[1].index)
            pairs = [(str(names[i]), vals[i], str(names[i])) for i in range(1, n + 1)]
        elif kind == "upvalues":
            n, names, vals = D.upvalues(D.frame_func(target[1].co, target[1].index))
            pairs = [(str(names[i]), vals[i], str(names[i])) for i in range(1, n + 1)]
        elif kind == "globals":
            return self._table_children(self.rt.G, "_G", filter_, start, count, globals_=True)
        elif kind == "table":
            return self._table_children(target[1], target[2], filter_, start, count)
        sel = pairs[start:start + count] if count else pairs[start:]
        return [self._variable(name, v, ev) for name, v, ev in sel]

    def _table_children(self, t: Any, ev: str | None, filter_: str | None, start: int, count: int,
                        globals_: bool = False) -> list[dict[str, Any]]:
        total, n_arr, keys = self._D.tkeys(t)
        if filter_ == "indexed":
            idx = list(range(1, n_arr + 1))
        elif filter_ == "named":
            idx = list(range(n_arr + 1, total + 1))
        else:
            idx = list(range(1, total + 1))
        idx = idx[start:start + count] if count else idx[start:]
        out = []
        for i in idx:
            k = keys[i]
            v = self._D.tget(t, k)
            name = key_name(k, self._D)
            child_ev = name if globals_ and isinstance(k, str) and IDENT.match(k) else child_expr(ev, k)
            out.append(self._variable(f"[{name}]" if isinstance(k, int) else name, v, child_ev))
        return out

    def _variable(self, name: str, v: Any, evaluate_name: str | None) -> dict[str, Any]:
        value, typ = self._describe(v)
        d: dict[str, Any] = {"name": name, "value": value, "type": typ, "variablesReference": 0}
        if evaluate_name:
            d["evaluateName"] = evaluate_name
        if typ == "table":
            d["variablesReference"] = self._new_ref("table", v, evaluate_name)
            named, n_arr = self._D.tcount(v)
            if n_arr > 100:
                d["indexedVariables"] = n_arr
                d["namedVariables"] = named - n_arr
        return d

    def _describe(self, v: Any) -> tuple[str, str]:
        return describe(v, self._D)

    def evaluate(self, expression: str, frame_id: int | None = None,
                 context: str | None = None) -> dict[str, Any]:
        """Evaluate in a frame (or globals when not stopped); a Lua error raises DebugError.

        The code runs with a count hook of its own: `cancel_evaluation` (a terminate or disconnect
        arriving meanwhile), a terminate of the script, or EVAL_TIMEOUT end an endless one."""
        if self._stop is None:
            ok, vals = self._call(self._eval_global, expression)
        else:
            fr = self._frame(frame_id)
            ok, vals = self._call(self._eval_raw, fr.co, fr.index, expression, EVAL_TIMEOUT)
        if not ok:
            raise DebugError(escape_text(str(vals)))
        return self._call(self._eval_result, vals, expression)

    def cancel_evaluation(self, reason: str = "evaluation cancelled") -> None:
        """End the running evaluate and any queued before `clear_cancel` (their requests get an error)."""
        self._eval_cancel = reason

    def clear_cancel(self) -> None:
        """Evaluations may run again (the request that cancelled them has been handled)."""
        self._eval_cancel = None

    def _py_eval_check(self, started: float) -> str | None:
        """Called by an evaluation's count hook: the reason to stop it, or None to go on."""
        if self._eval_cancel is not None:
            return self._eval_cancel
        if self.rt.interrupted is not None:
            return f"evaluation stopped: {self.rt.interrupted}"
        if time.monotonic() - started > self._eval_limit:
            return f"evaluation stopped after {self._eval_limit:g} s (an endless loop?)"
        return None

    def exception_info(self) -> dict[str, Any]:
        """DAP exceptionInfo for the current exception stop."""
        st = self._require_stop()
        if st.reason != "exception":
            raise DebugError("the script is not stopped at an exception")
        return {"exceptionId": "LuaError", "description": st.text or "", "breakMode": "unhandled",
                "details": {"message": st.text or "", "typeName": "LuaError",
                            "stackTrace": st.traceback or ""}}

    def completions(self, text: str, frame_id: int | None = None) -> list[dict[str, Any]]:
        """Debug-console completions for the name (or `a.b.` / `a:` path) that ends `text`."""
        m = re.search(r"((?:[A-Za-z_][A-Za-z0-9_]*\s*[.:]\s*)*)([A-Za-z_][A-Za-z0-9_]*)?$", text)
        if m is None:
            return []
        path, prefix = m.group(1) or "", m.group(2) or ""
        parts = [p for p in re.split(r"\s*[.:]\s*", path) if p]
        methods = path.rstrip().endswith(":")
        co, j = (None, -1)
        if self._stop is not None:
            fr = self._frame(frame_id)
            co, j = fr.co, fr.index
        names = self._call(self._complete_names, co, j, parts, methods)
        start = len(text) - len(prefix)
        targets = []
        for name, kind in sorted(names):
            if name.startswith(prefix):
                targets.append({"label": name, "text": name, "type": kind, "start": start, "length": len(prefix)})
        return targets[:200]

    def _complete_names(self, co: Any, j: int, parts: list[str], methods: bool) -> set[tuple[str, str]]:
        self._ensure_D()
        r = self._D.complete(co, j, self.rt.lua.table_from(parts), methods)
        out: set[tuple[str, str]] = set()
        if r is None:
            return out
        for i in range(1, len(r) + 1):
            name, kind = str(r[i][1]), str(r[i][2])
            out.add((name, "function" if kind == "function" else ("module" if kind == "table" else "variable")))
        return out

    def _eval_global(self, expression: str) -> tuple[bool, Any]:
        self._ensure_D()
        return self._eval_raw(None, 0, expression, EVAL_TIMEOUT)

    def _ensure_D(self) -> None:
        if self._D is None:
            lua = self.rt.lua
            py = lua.table_from({"norm": self._py_norm, "hit": self._py_hit, "poll": self._py_poll,
                                 "stop": self._py_stop, "run_end": self._py_run_end,
                                 "stop_error": self._py_stop_error, "fn_hit": self._py_fn_hit,
                                 "eval_check": self._py_eval_check, "now": time.monotonic,
                                 "errstring": self.rt.bridge.m.errstring,
                                 "pass_hooks": self.rt.bridge.m.pass_hooks,
                                 "raw_resume": self.rt.bridge.m.raw_resume,
                                 "raw_sethook": self.rt.bridge.m.raw_sethook})
            self._py_table = py
            self._D = self.rt.compile(HOOKS_LUA, "=llmspell.debug")(py)

    def _eval_raw(self, co: Any, j: int, expression: str, limit: float | None = None) -> tuple[bool, Any]:
        """Run `expression` in frame j of thread co; with a limit, under a cancellable count hook."""
        self._eval_limit = limit or EVAL_TIMEOUT
        self._eval_running = limit is not None
        try:
            r = self._D.eval(co, j, expression, limit is not None)
        finally:
            self._eval_running = False
        if not isinstance(r, tuple):
            r = (r,)
        if not r[0]:
            return False, str(r[1]) if len(r) > 1 else "error"
        n = int(r[1])
        return True, list(r[2:2 + n]) + [None] * max(0, n - len(r[2:]))

    def _eval_result(self, vals: list[Any], expression: str) -> dict[str, Any]:
        if not vals:
            return {"result": "", "type": "nil", "variablesReference": 0}
        if len(vals) == 1:
            var = self._variable("result", vals[0], expression)
            return {"result": var["value"], "type": var["type"], "variablesReference": var["variablesReference"]}
        parts = [self._describe(v)[0] for v in vals]
        return {"result": ", ".join(parts), "type": "tuple", "variablesReference": 0}

    def set_variable(self, ref: int, name: str, value: str) -> dict[str, Any]:
        """Assign `value` (a Lua expression evaluated in the top frame) to a variable of a container."""
        target = self._refs.get(int(ref))
        if target is None:
            raise DebugError(f"unknown or expired variablesReference {ref}")
        self._require_stop()
        frame = target[1] if target[0] in ("locals", "upvalues") else self._frame(None)
        ok, vals = self._call(self._eval_raw, frame.co, frame.index, value)
        if not ok:
            raise DebugError(str(vals))
        new = vals[0] if vals else None
        return self._call(self._assign, target, name, new)

    def _assign(self, target: tuple[Any, ...], name: str, new: Any) -> dict[str, Any]:
        D = self._D
        kind = target[0]
        if kind == "locals":
            fr = target[1]
            n, names, _, idx = D.locals(fr.co, fr.index)
            for i in range(n, 0, -1):
                if str(names[i]) == name:
                    D.setlocal(fr.co, fr.index, idx[i], new)
                    break
            else:
                raise DebugError(f"no local named {name!r}")
        elif kind == "upvalues":
            func = D.frame_func(target[1].co, target[1].index)
            n, names, _ = D.upvalues(func)
            for i in range(1, n + 1):
                if str(names[i]) == name:
                    D.setupvalue(func, i, new)
                    break
            else:
                raise DebugError(f"no upvalue named {name!r}")
        else:
            t = self.rt.G if kind == "globals" else target[1]
            key: Any = name
            m = re.fullmatch(r"\[(-?\d+)\]", name)
            if m:
                key = int(m.group(1))
            elif name.startswith('"') and name.endswith('"'):
                key = name[1:-1]
            D.tset(t, key, new)
        return self._variable(name, new, None)

    def globals_snapshot(self) -> list[dict[str, Any]]:
        """User globals (not the standard library or the llmspell API) as DAP variables."""
        return self._call(self._globals_snapshot)

    def _globals_snapshot(self) -> list[dict[str, Any]]:
        self._ensure_D()
        builtin = builtin_globals(self.rt)
        total, _, keys = self._D.tkeys(self.rt.G)
        out = []
        for i in range(1, total + 1):
            k = keys[i]
            if not isinstance(k, str) or k in builtin:
                continue
            out.append(self._variable(k, self._D.tget(self.rt.G, k), k))
        return out

    def loaded_sources(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for key, src in sorted(self._sources.items()):
            if src.startswith("@"):
                out.append({"name": os.path.basename(key), "path": key})
            else:
                out.append({"name": key, "sourceReference": 0})
        return out

    # ------------------------------------------------------------ output
    def _output(self, text: str, category: str) -> None:
        self.on_event("output", {"category": category, "output": text})

    def _interpolate(self, co: Any, message: str) -> str:
        def one(m: re.Match[str]) -> str:
            ok, vals = self._eval_raw(co, 0, m.group(1))
            if not ok:
                return f"<error: {vals}>"
            return ", ".join(self._describe(v)[0] if not isinstance(v, str) else v for v in vals) or "nil"

        return re.sub(r"\{([^{}]+)\}", one, message)
