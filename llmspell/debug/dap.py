"""DAP request dispatcher: envelopes (seq, request_seq, success, message, body) and events.

Transport-neutral: a transport hands each decoded request to `DapSession.handle`, sends the
returned response, then calls `run_deferred()` (resumes happen only after their response is out,
so a `stopped` event never overtakes the reply to `next`). Events go through `send`.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from llmspell.debug.coordinator import THREAD_ID, DebugCoordinator, DebugError, SourceBreakpoint

log = logging.getLogger("llmspell.debug")

CAPABILITIES: dict[str, Any] = {
    "supportsConfigurationDoneRequest": True,
    "supportsEvaluateForHovers": True,
    "supportsConditionalBreakpoints": True,
    "supportsHitConditionalBreakpoints": True,
    "supportsLogPoints": True,
    "supportsSetVariable": True,
    "supportsTerminateRequest": True,
    "supportsLoadedSourcesRequest": True,
    "supportsDelayedStackTraceLoading": True,
    "supportsValueFormattingOptions": False,
    "supportTerminateDebuggee": True,
    "exceptionBreakpointFilters": [
        {"filter": "uncaught", "label": "Uncaught Lua errors", "default": False,
         "description": "Stop where an error that no pcall catches is raised"},
    ],
}


@dataclass
class Request:
    """A decoded DAP request."""

    seq: int
    command: str
    arguments: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Request:
        args = d.get("arguments")
        return cls(int(d.get("seq", 0) or 0), str(d.get("command", "")), args if isinstance(args, dict) else {})


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
    """What launch/attach/configurationDone/disconnect mean for one front end."""

    def launch(self, args: dict[str, Any]) -> None: ...

    def attach(self, args: dict[str, Any]) -> None: ...

    def configuration_done(self) -> None: ...

    def disconnect(self, terminate: bool) -> None: ...


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

    def disconnect(self, terminate: bool) -> None:
        if terminate and self.coord.stopped is not None:
            self.coord.terminate()
        self.coord.detach()


class DapSession:
    """Dispatches DAP requests to a DebugCoordinator and numbers every outgoing message."""

    def __init__(self, coord: DebugCoordinator, send: Callable[[dict[str, Any]], None],
                 program: Program | None = None) -> None:
        self.coord = coord
        self._send = send
        self.program: Program = program or AttachProgram(coord)
        self._seq = itertools.count(1)
        self._seq_lock = threading.Lock()
        self._deferred: list[Callable[[], None]] = []
        self.initialized = False
        self.disconnected = threading.Event()
        coord.on_event = self.emit

    # ------------------------------------------------------------------ envelopes
    def next_seq(self) -> int:
        with self._seq_lock:
            return next(self._seq)

    def emit(self, event: str, body: dict[str, Any] | None = None) -> None:
        """Send an event (thread-safe)."""
        try:
            self._send(Event(event, body).to_dict(self.next_seq()))
        except Exception:  # noqa: BLE001 - a dead client must not break the debuggee
            log.debug("could not send %s event", event, exc_info=True)

    def handle(self, message: dict[str, Any]) -> dict[str, Any]:
        """Answer one request; call run_deferred() after the response was sent."""
        req = Request.from_dict(message)
        handler = getattr(self, "_on_" + req.command, None) if req.command.isidentifier() else None
        if message.get("type", "request") != "request":
            resp = Response(req.seq, req.command, False, message="only requests are accepted")
        elif handler is None:
            resp = Response(req.seq, req.command, False, message=f"unknown command '{req.command}'")
        else:
            try:
                body = handler(req.arguments)
                resp = Response(req.seq, req.command, True, body if body is not None else {})
            except DebugError as e:
                resp = Response(req.seq, req.command, False, message=str(e))
            except Exception as e:  # noqa: BLE001 - every request gets a response
                log.exception("DAP %s failed", req.command)
                resp = Response(req.seq, req.command, False, message=f"{type(e).__name__}: {e}")
        return resp.to_dict(self.next_seq())

    def run_deferred(self) -> None:
        """Run the actions that must follow the last response (resumes, the initialized event)."""
        todo, self._deferred = self._deferred, []
        for fn in todo:
            fn()

    def dispatch(self, message: dict[str, Any]) -> None:
        """handle + send + run_deferred, for transports that send responses through `send`."""
        self._send(self.handle(message))
        self.run_deferred()

    # ------------------------------------------------------------------ lifecycle
    def _on_initialize(self, args: dict[str, Any]) -> dict[str, Any]:
        self.initialized = True
        self._deferred.append(lambda: self.emit("initialized"))
        return dict(CAPABILITIES)

    def _on_launch(self, args: dict[str, Any]) -> None:
        self.program.launch(args)

    def _on_attach(self, args: dict[str, Any]) -> None:
        self.program.attach(args)

    def _on_configurationDone(self, args: dict[str, Any]) -> None:
        self.program.configuration_done()

    def _on_disconnect(self, args: dict[str, Any]) -> None:
        terminate = bool(args.get("terminateDebuggee", False))
        self._deferred.append(lambda: self._disconnect(terminate))

    def _disconnect(self, terminate: bool) -> None:
        self.program.disconnect(terminate)
        self.disconnected.set()

    def _on_terminate(self, args: dict[str, Any]) -> None:
        self._deferred.append(lambda: self.coord.terminate())

    # ------------------------------------------------------------------ breakpoints
    def _on_setBreakpoints(self, args: dict[str, Any]) -> dict[str, Any]:
        source = args.get("source") or {}
        path = source.get("path") or source.get("name")
        if not path:
            raise DebugError("setBreakpoints needs source.path")
        wanted = args.get("breakpoints")
        if wanted is None:
            wanted = [{"line": ln} for ln in args.get("lines", [])]
        reqs = [SourceBreakpoint(int(b["line"]), b.get("condition"), b.get("hitCondition"), b.get("logMessage"))
                for b in wanted]
        bps = self.coord.set_breakpoints(str(path), reqs)
        out = []
        for bp in bps:
            d = bp.as_dap()
            d["source"] = {"path": str(path), "name": os.path.basename(str(path))}
            out.append(d)
        return {"breakpoints": out}

    def _on_setExceptionBreakpoints(self, args: dict[str, Any]) -> dict[str, Any]:
        filters = list(args.get("filters") or [])
        unknown = [f for f in filters if f not in {x["filter"] for x in CAPABILITIES["exceptionBreakpointFilters"]}]
        self.coord.set_exception_filters([f for f in filters if f not in unknown])
        return {"breakpoints": [{"verified": False, "message": f"unknown filter {f}"} for f in unknown]}

    def _on_setFunctionBreakpoints(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"breakpoints": [{"verified": False, "message": "function breakpoints are not supported"}
                                for _ in args.get("breakpoints", [])]}

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
        return {"stackFrames": [f.as_dap() for f in frames], "totalFrames": total}

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

    def _on_source(self, args: dict[str, Any]) -> dict[str, Any]:
        source = args.get("source") or {}
        path = source.get("path")
        if not path:
            raise DebugError("source: only sources with a path can be read")
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                return {"content": f.read(), "mimeType": "text/x-lua"}
        except OSError as e:
            raise DebugError(f"cannot read {path}: {e.strerror}") from None

    def _on_loadedSources(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"sources": self.coord.loaded_sources()}
