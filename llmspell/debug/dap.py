"""DAP request dispatcher: envelopes (seq, request_seq, success, message, body) and events.

Transport-neutral: a transport hands each decoded request to `DapSession.handle`, sends the
returned response, then calls `run_deferred()` (resumes happen only after their response is out,
so a `stopped` event never overtakes the reply to `next`). Events go through `send`.
"""

from __future__ import annotations

import hmac
import itertools
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from llmspell.debug.breakpoints import FunctionBreakpoint, SourceBreakpoint
from llmspell.debug.coordinator import THREAD_ID, DebugCoordinator, DebugError
from llmspell.debug.tcp import escape_surrogates

log = logging.getLogger("llmspell.debug")

CAPABILITIES: dict[str, Any] = {
    "supportsConfigurationDoneRequest": True,
    "supportsEvaluateForHovers": True,
    "supportsConditionalBreakpoints": True,
    "supportsHitConditionalBreakpoints": True,
    "supportsLogPoints": True,
    "supportsFunctionBreakpoints": True,
    "supportsSetVariable": True,
    "supportsTerminateRequest": True,
    "supportsRestartRequest": True,
    "supportsExceptionInfoRequest": True,
    "supportsCompletionsRequest": True,
    "completionTriggerCharacters": [".", ":"],
    "supportsLoadedSourcesRequest": True,
    "supportsDelayedStackTraceLoading": True,
    "supportsValueFormattingOptions": False,
    "supportTerminateDebuggee": True,
    "exceptionBreakpointFilters": [
        {"filter": "uncaught", "label": "Uncaught Lua errors", "default": False,
         "description": "Stop where an error that no pcall catches is raised"},
    ],
}
#: The launch/attach (or initialize) argument that carries the session token of `llmspell debug --port`.
TOKEN_ARG = "llmspellToken"
#: Requests a client may send before it has shown the token.
_BEFORE_AUTH = frozenset({"initialize", "launch", "attach", "disconnect"})


@dataclass
class Request:
    """A decoded DAP request."""

    seq: int
    command: str
    arguments: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Request:
        args = d.get("arguments")
        seq = d.get("seq", 0)
        seq = seq if isinstance(seq, int) and not isinstance(seq, bool) else 0  # a bad seq is answered as 0
        return cls(seq, str(d.get("command", "")), args if isinstance(args, dict) else {})


@dataclass
class Response:
    """A DAP response envelope."""

    request_seq: int
    command: str
    success: bool = True
    body: dict[str, Any] | None = None
    message: str | None = None

    def to_dict(self, seq: int) -> dict[str, Any]:
        d: dict[str, Any] = {"seq": seq, "type": "response", "request_seq": self.request_seq,
                             "command": self.command, "success": self.success}
        if self.body is not None:
            d["body"] = self.body
        if self.message is not None:
            d["message"] = self.message
            if not self.success:
                d.setdefault("body", {})["error"] = {"id": 1, "format": self.message, "showUser": False}
        return d


@dataclass
class Event:
    """A DAP event envelope."""

    event: str
    body: dict[str, Any] | None = None

    def to_dict(self, seq: int) -> dict[str, Any]:
        d: dict[str, Any] = {"seq": seq, "type": "event", "event": self.event}
        if self.body is not None:
            d["body"] = self.body
        return d


class Program(Protocol):
    """What launch/attach/configurationDone/disconnect/restart mean for one front end."""

    def launch(self, args: dict[str, Any]) -> None: ...

    def attach(self, args: dict[str, Any]) -> None: ...

    def configuration_done(self) -> None: ...

    def disconnect(self, terminate: bool, restart: bool = False) -> None: ...

    def restart(self, args: dict[str, Any]) -> None: ...


class AttachProgram:
    """Attach semantics: the debuggee is already there; disconnect leaves it running."""

    def __init__(self, coord: DebugCoordinator) -> None:
        self.coord = coord

    def launch(self, args: dict[str, Any]) -> None:
        self.coord.attach()

    def attach(self, args: dict[str, Any]) -> None:
        self.coord.attach()

    def configuration_done(self) -> None:
        return None

    def disconnect(self, terminate: bool, restart: bool = False) -> None:
        if terminate and self.coord.stopped is not None:
            self.coord.terminate()
        self.coord.detach()

    def restart(self, args: dict[str, Any]) -> None:
        raise DebugError("restart is not available here")


class DapSession:
    """Dispatches DAP requests to a DebugCoordinator and numbers every outgoing message.

    Every message goes out through one writer that assigns its `seq` at send time under a lock, so
    seq numbers are in wire order whatever thread sends. With a `token`, a client must show it (the
    `llmspellToken` argument of initialize, launch or attach) before anything else; a wrong or
    missing one gets an error response and `close()` ends the connection.
    """

    def __init__(self, coord: DebugCoordinator, send: Callable[[dict[str, Any]], None],
                 program: Program | None = None, token: str | None = None,
                 close: Callable[[], None] | None = None) -> None:
        self.coord = coord
        self._send = send
        self.program: Program = program or AttachProgram(coord)
        self._seq = itertools.count(1)
        self._seq_lock = threading.Lock()
        self._deferred: list[Callable[[], None]] = []
        self.initialized = False
        self.disconnected = threading.Event()
        self.restart_requested = False
        self._token = token
        self.authenticated = token is None
        self._close = close
        self._initialized_sent = False
        #: 0 when the client counts lines (columns) from 0 (`linesStartAt1: false`).
        self.line_base = 1
        self.column_base = 1
        #: Send `continued` after each resume a request caused (JupyterLab clears its paused UI on it).
        self.send_continued = False
        coord.on_event = self.emit

    # ------------------------------------------------------------------ envelopes
    def next_seq(self) -> int:
        with self._seq_lock:
            return next(self._seq)

    def _write(self, d: dict[str, Any]) -> None:
        """Number and send one message: the seq is taken under the same lock as the send."""
        d = escape_surrogates(d)
        with self._seq_lock:
            d["seq"] = next(self._seq)
            self._send(d)

    def emit(self, event: str, body: dict[str, Any] | None = None) -> None:
        """Send an event (thread-safe)."""
        try:
            self._write(Event(event, body).to_dict(0))
        except Exception:  # noqa: BLE001 - a dead client must not break the debuggee
            log.debug("could not send %s event", event, exc_info=True)

    def handle(self, message: dict[str, Any]) -> dict[str, Any]:
        """Answer one request with a numbered response dict; call run_deferred() after sending it."""
        resp = self.respond(message)
        with self._seq_lock:
            d = escape_surrogates(resp.to_dict(0))
            d["seq"] = next(self._seq)
        return d

    def respond(self, message: dict[str, Any]) -> Response:
        """The response to one request (not yet numbered)."""
        req = Request.from_dict(message)
        handler = getattr(self, "_on_" + req.command, None) if req.command.isidentifier() else None
        if message.get("type", "request") != "request":
            return Response(req.seq, req.command, False, message="only requests are accepted")
        if not self.authenticated:
            refusal = self._check_token(req)
            if refusal is not None:
                self._deferred.append(self._refuse)
                return Response(req.seq, req.command, False, message=refusal)
        if handler is None:
            return Response(req.seq, req.command, False, message=f"unknown command '{req.command}'")
        try:
            body = handler(req.arguments)
            return Response(req.seq, req.command, True, body if body is not None else {})
        except DebugError as e:
            return Response(req.seq, req.command, False, message=str(e))
        except Exception as e:  # noqa: BLE001 - every request gets a response
            log.exception("DAP %s failed", req.command)
            return Response(req.seq, req.command, False, message=f"{type(e).__name__}: {e}")

    def _check_token(self, req: Request) -> str | None:
        """None when the request may go on (token shown, or not needed yet), else the refusal."""
        given = req.arguments.get(TOKEN_ARG)
        if req.command not in _BEFORE_AUTH:
            return f"'{req.command}' before authentication: send {TOKEN_ARG} in launch or attach first"
        if given is None:
            if req.command in ("initialize", "disconnect"):
                return None  # VS Code cannot add arguments to initialize; launch/attach carry the token
            return f"{req.command} needs the session token in '{TOKEN_ARG}' (printed by llmspell debug --port)"
        assert self._token is not None
        if not isinstance(given, str) or not hmac.compare_digest(given.encode("utf-8", "surrogatepass"),
                                                                 self._token.encode()):
            return f"wrong {TOKEN_ARG}"
        self.authenticated = True
        return None

    def _refuse(self) -> None:
        self.disconnected.set()
        if self._close is not None:
            self._close()

    def run_deferred(self) -> None:
        """Run the actions that must follow the last response (resumes, the initialized event)."""
        todo, self._deferred = self._deferred, []
        for fn in todo:
            fn()

    def dispatch(self, message: dict[str, Any]) -> None:
        """respond + send + run_deferred, for transports that send responses through `send`."""
        self._write(self.respond(message).to_dict(0))
        self.run_deferred()

    def preview(self, message: dict[str, Any]) -> None:
        """Seen by the transport's reader before the request queues: a terminate or disconnect ends
        an evaluation that the worker may be stuck in (an endless loop typed in the debug console)."""
        if message.get("command") in ("terminate", "disconnect", "restart"):
            self.coord.cancel_evaluation("evaluation cancelled: the session is ending")

    def _send_initialized(self) -> None:
        if self.initialized and self.authenticated and not self._initialized_sent:
            self._initialized_sent = True
            self.emit("initialized")

    # ------------------------------------------------------------------ lines
    def _in_line(self, n: Any) -> int:
        return int(n) + (1 - self.line_base)

    def _out_line(self, n: int) -> int:
        return n - (1 - self.line_base) if n > 0 else n

    def _out_bp(self, d: dict[str, Any]) -> dict[str, Any]:
        if "line" in d:
            d["line"] = self._out_line(int(d["line"]))
        return d

    # ------------------------------------------------------------------ lifecycle
    def _on_initialize(self, args: dict[str, Any]) -> dict[str, Any]:
        self.initialized = True
        self._initialized_sent = False  # a frontend that switches the debugger on again gets it again
        self.line_base = 1 if args.get("linesStartAt1", True) is not False else 0
        self.column_base = 1 if args.get("columnsStartAt1", True) is not False else 0
        self._deferred.append(self._send_initialized)
        return dict(CAPABILITIES)

    def _on_launch(self, args: dict[str, Any]) -> None:
        self.program.launch(args)
        self._deferred.append(self._send_initialized)

    def _on_attach(self, args: dict[str, Any]) -> None:
        self.program.attach(args)
        self._deferred.append(self._send_initialized)

    def _on_configurationDone(self, args: dict[str, Any]) -> None:
        self.program.configuration_done()

    def _on_disconnect(self, args: dict[str, Any]) -> None:
        self.coord.clear_cancel()
        terminate = bool(args.get("terminateDebuggee", False))
        restart = bool(args.get("restart", False))
        self._deferred.append(lambda: self._disconnect(terminate, restart))

    def _disconnect(self, terminate: bool, restart: bool) -> None:
        self.restart_requested = restart
        self.program.disconnect(terminate, restart)
        self.disconnected.set()

    def _on_terminate(self, args: dict[str, Any]) -> None:
        self.coord.clear_cancel()
        self._deferred.append(lambda: self.coord.terminate())

    def _on_restart(self, args: dict[str, Any]) -> None:
        self.coord.clear_cancel()
        launch_args = args.get("arguments")
        self.program.restart(launch_args if isinstance(launch_args, dict) else {})

    # ------------------------------------------------------------------ breakpoints
    def _on_setBreakpoints(self, args: dict[str, Any]) -> dict[str, Any]:
        source = args.get("source") or {}
        path = source.get("path") or source.get("name")
        if not path:
            raise DebugError("setBreakpoints needs source.path")
        wanted = args.get("breakpoints")
        if wanted is None:
            wanted = [{"line": ln} for ln in args.get("lines", [])]
        if not isinstance(wanted, list) or not all(isinstance(b, dict) and "line" in b for b in wanted):
            raise DebugError("setBreakpoints: each breakpoint needs a line")
        reqs = [SourceBreakpoint(self._in_line(b["line"]), b.get("condition"), b.get("hitCondition"),
                                 b.get("logMessage"))
                for b in wanted]
        bps = self.coord.set_breakpoints(str(path), reqs)
        out = []
        for bp in bps:
            d = self._out_bp(bp.as_dap())
            d["source"] = {"path": str(path), "name": os.path.basename(str(path))}
            out.append(d)
        return {"breakpoints": out}

    def _on_setExceptionBreakpoints(self, args: dict[str, Any]) -> dict[str, Any]:
        filters = list(args.get("filters") or [])
        unknown = [f for f in filters if f not in {x["filter"] for x in CAPABILITIES["exceptionBreakpointFilters"]}]
        self.coord.set_exception_filters([f for f in filters if f not in unknown])
        return {"breakpoints": [{"verified": False, "message": f"unknown filter {f}"} for f in unknown]}

    def _on_setFunctionBreakpoints(self, args: dict[str, Any]) -> dict[str, Any]:
        wanted = args.get("breakpoints") or []
        if not isinstance(wanted, list) or not all(isinstance(b, dict) for b in wanted):
            raise DebugError("setFunctionBreakpoints needs a list of breakpoints")
        bps = self.coord.set_function_breakpoints(
            [FunctionBreakpoint(str(b.get("name") or ""), b.get("condition"), b.get("hitCondition")) for b in wanted])
        return {"breakpoints": [self._out_bp(bp.as_dap()) for bp in bps]}

    def _on_exceptionInfo(self, args: dict[str, Any]) -> dict[str, Any]:
        return self.coord.exception_info()

    # ------------------------------------------------------------------ execution
    def _on_threads(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"threads": [{"id": THREAD_ID, "name": "main"}]}

    def _on_continue(self, args: dict[str, Any]) -> dict[str, Any]:
        self._resume("continue")
        return {"allThreadsContinued": True}

    def _on_next(self, args: dict[str, Any]) -> None:
        self._resume("over")

    def _on_stepIn(self, args: dict[str, Any]) -> None:
        self._resume("in")

    def _on_stepOut(self, args: dict[str, Any]) -> None:
        self._resume("out")

    def _resume(self, action: str) -> None:
        if self.coord.stopped is None:
            raise DebugError("the script is not stopped")
        self._deferred.append(lambda: self._safe_resume(action))

    def _safe_resume(self, action: str) -> None:
        try:
            self.coord.resume(action)
        except DebugError:
            log.debug("resume %s: no longer stopped", action)
            return
        if self.send_continued:
            self.emit("continued", {"threadId": THREAD_ID, "allThreadsContinued": True})

    def _on_pause(self, args: dict[str, Any]) -> None:
        if not self.coord.attached:
            raise DebugError("the debugger is not attached")
        if self.coord.stopped is None and not self.coord.is_running():
            raise DebugError("nothing is running")
        self._deferred.append(self._pause_now)

    def _pause_now(self) -> None:
        self.coord.pause()

    # ------------------------------------------------------------------ inspection
    def _on_stackTrace(self, args: dict[str, Any]) -> dict[str, Any]:
        frames, total = self.coord.stack_trace(int(args.get("startFrame", 0) or 0), int(args.get("levels", 0) or 0))
        out = []
        for f in frames:
            d = f.as_dap()
            d["line"] = self._out_line(int(d["line"]))
            if d["column"]:
                d["column"] = d["column"] - (1 - self.column_base)
            out.append(d)
        return {"stackFrames": out, "totalFrames": total}

    def _on_scopes(self, args: dict[str, Any]) -> dict[str, Any]:
        if "frameId" not in args:
            raise DebugError("scopes needs frameId")
        return {"scopes": self.coord.scopes(int(args["frameId"]))}

    def _on_variables(self, args: dict[str, Any]) -> dict[str, Any]:
        ref = args.get("variablesReference")
        if ref is None:
            raise DebugError("variables needs variablesReference")
        return {"variables": self.coord.variables(int(ref), args.get("filter"), int(args.get("start", 0) or 0),
                                                  int(args.get("count", 0) or 0))}

    def _on_setVariable(self, args: dict[str, Any]) -> dict[str, Any]:
        var = self.coord.set_variable(int(args["variablesReference"]), str(args["name"]), str(args["value"]))
        return {"value": var["value"], "type": var.get("type"), "variablesReference": var["variablesReference"]}

    def _on_evaluate(self, args: dict[str, Any]) -> dict[str, Any]:
        expr = args.get("expression")
        if not isinstance(expr, str):
            raise DebugError("evaluate needs an expression")
        frame = args.get("frameId")
        return self.coord.evaluate(expr, int(frame) if frame is not None else None, args.get("context"))

    def _on_completions(self, args: dict[str, Any]) -> dict[str, Any]:
        text = args.get("text")
        if not isinstance(text, str):
            raise DebugError("completions needs text")
        lines = text.split("\n")
        row = int(args["line"]) - self.line_base if args.get("line") is not None else 0
        row = min(max(row, 0), len(lines) - 1)
        column = int(args.get("column", len(lines[row]) + self.column_base)) - self.column_base
        head = lines[row][:max(column, 0)]
        frame = args.get("frameId")
        targets = self.coord.completions("\n".join([*lines[:row], head]), int(frame) if frame is not None else None)
        before = len("\n".join([*lines[:row], head])) - len(head)  # `start` counts within the line
        for t in targets:
            t["start"] = t["start"] - before + self.column_base
        return {"targets": targets}

    def _on_source(self, args: dict[str, Any]) -> dict[str, Any]:
        source = args.get("source") or {}
        path = source.get("path") if isinstance(source, dict) else None
        if not path:
            raise DebugError("source: only sources with a path can be read")
        return {"content": self.coord.source_text(str(path)), "mimeType": "text/x-lua"}

    def _on_loadedSources(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"sources": self.coord.loaded_sources()}
