"""The Jupyter debugger: DAP inside debug_request/debug_reply plus JupyterLab's extra requests.

Seam with the kernel: it builds one `JupyterDebugger(runtime=rt, send_event=fn, kernel=kernel)`,
calls `handle_request(content)` on the control thread for every debug_request (the return value
is the debug_reply content), publishes every `send_event` payload as an iopub debug_event, and
runs each cell under `chunkname_for(code, execution_count)` when that is not None.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
from collections.abc import Callable
from typing import Any

from llmspell.debug.coordinator import THREAD_ID, DebugCoordinator, DebugError
from llmspell.debug.dap import CAPABILITIES, DapSession, Response
from llmspell.debug.murmur2 import DEFAULT_SEED, murmur2

log = logging.getLogger("llmspell.debug")

SUFFIX = ".lua"


class _KernelProgram:
    """attach installs the hook (and fires PreDebug); disconnect removes it, the cell keeps running."""

    def __init__(self, owner: JupyterDebugger) -> None:
        self.owner = owner

    def launch(self, args: dict[str, Any]) -> None:
        self.attach(args)

    def attach(self, args: dict[str, Any]) -> None:
        self.owner.coord.attach()
        self.owner.fire_pre_debug()

    def configuration_done(self) -> None:
        return None

    def disconnect(self, terminate: bool) -> None:
        self.owner.stop()


class JupyterDebugger:
    """One per kernel; thread-safe; requests arrive on the control thread."""

    def __init__(self, runtime: Any, send_event: Callable[[dict[str, Any]], None], kernel: Any = None) -> None:
        self.rt = runtime
        self.kernel = kernel
        self.coord = DebugCoordinator(runtime)
        self.session = DapSession(self.coord, send_event, _KernelProgram(self))
        self.started = False
        self.hash_seed = DEFAULT_SEED
        self.tmp_prefix = os.path.join(tempfile.gettempdir(), f"llmspell_{os.getpid()}") + os.sep
        self._globals_cache: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ seam
    def handle_request(self, content: dict[str, Any]) -> dict[str, Any]:
        """Answer one debug_request content (a DAP request) with the debug_reply content."""
        command = str(content.get("command", ""))
        extra = getattr(self, "_jp_" + command, None) if command.isidentifier() else None
        if extra is not None:
            seq = int(content.get("seq", 0) or 0)
            args = content.get("arguments") if isinstance(content.get("arguments"), dict) else {}
            try:
                body = extra(args)
                resp = Response(seq, command, True, body)
            except DebugError as e:
                resp = Response(seq, command, False, message=str(e))
            except Exception as e:  # noqa: BLE001 - the frontend always gets a reply
                log.exception("debug request %s failed", command)
                resp = Response(seq, command, False, message=f"{type(e).__name__}: {e}")
            return resp.to_dict(self.session.next_seq())
        if command == "initialize":
            self.started = True
        reply = self.session.handle(content)
        if command == "initialize" and reply.get("success"):
            reply["body"] = dict(reply.get("body") or {}, supportsModulesRequest=True)
        self.session.run_deferred()
        return reply

    def chunkname_for(self, code: str, execution_count: int) -> str | None:
        """The chunk name a cell must run under while the debugger is on (None when off)."""
        if not self.started:
            return None
        return "@" + self._dump(code)

    def fire_pre_debug(self) -> None:
        """Run the PreDebug hook point (lua-api §11), off the control thread."""
        hooks = getattr(getattr(self.rt, "services", None), "hooks", None)
        if hooks is None or not hasattr(hooks, "run"):
            return
        active = getattr(hooks, "active", None)
        if callable(active) and not active("PreDebug"):
            return

        def go() -> None:
            try:
                hooks.run("PreDebug", {}, component=("debugger", "llmspell"))
            except Exception:  # noqa: BLE001 - a failing hook must not break the debugger
                log.warning("PreDebug hook failed", exc_info=True)

        threading.Thread(target=go, name="llmspell-predebug", daemon=True).start()

    def stop(self) -> None:
        """Switch the debugger off (disconnect): hook removed, breakpoints cleared, the cell resumes."""
        self.started = False
        self.coord.detach()

    # ------------------------------------------------------------------ helpers
    def cell_path(self, code: str) -> str:
        return f"{self.tmp_prefix}{murmur2(code, self.hash_seed)}{SUFFIX}"

    def _dump(self, code: str) -> str:
        path = self.cell_path(code)
        with self._lock:
            os.makedirs(self.tmp_prefix, exist_ok=True)
            if not os.path.exists(path):
                tmp = f"{path}.{threading.get_ident()}.tmp"
                with open(tmp, "w", encoding="utf-8", newline="") as f:
                    f.write(code)
                os.replace(tmp, path)
        return path

    # ------------------------------------------------------------------ JupyterLab's requests
    def _jp_debugInfo(self, args: dict[str, Any]) -> dict[str, Any]:
        bps = [{"source": path, "breakpoints": [{"line": b.requested_line} for b in lst]}
               for path, lst in self.coord.breakpoints().items()]
        return {
            "isStarted": self.started,
            "hashMethod": "Murmur2",
            "hashSeed": self.hash_seed,
            "tmpFilePrefix": self.tmp_prefix,
            "tmpFileSuffix": SUFFIX,
            "breakpoints": bps,
            "stoppedThreads": [THREAD_ID] if self.coord.stopped is not None else [],
            "richRendering": True,
            "exceptionPaths": ["Lua errors"],
            "copyToGlobals": True,
        }

    def _jp_dumpCell(self, args: dict[str, Any]) -> dict[str, Any]:
        code = args.get("code")
        if not isinstance(code, str):
            raise DebugError("dumpCell needs arguments.code")
        return {"sourcePath": self._dump(code)}

    def _jp_inspectVariables(self, args: dict[str, Any]) -> dict[str, Any]:
        with contextlib.suppress(DebugError):  # a cell is running: answer with the last snapshot
            self._globals_cache = self.coord.globals_snapshot()
        return {"variables": self._globals_cache}

    def _jp_richInspectVariables(self, args: dict[str, Any]) -> dict[str, Any]:
        name = args.get("variableName")
        if not isinstance(name, str) or not name:
            raise DebugError("richInspectVariables needs variableName")
        frame = args.get("frameId")
        if self.coord.stopped is None:
            frame = None
        try:
            r = self.coord.evaluate(name, int(frame) if frame is not None else None, "variables")
        except DebugError as e:
            return {"data": {"text/plain": f"<error: {e}>"}, "metadata": {}}
        return {"data": {"text/plain": r["result"]}, "metadata": {}}

    def _jp_copyToGlobals(self, args: dict[str, Any]) -> dict[str, Any]:
        src, dst = args.get("srcVariableName"), args.get("dstVariableName")
        if not isinstance(src, str) or not isinstance(dst, str) or not dst.isidentifier():
            raise DebugError("copyToGlobals needs srcVariableName and an identifier dstVariableName")
        frame = args.get("srcFrameId")
        frame_id = int(frame) if frame is not None and self.coord.stopped is not None else None
        self.coord.evaluate(f"_G[{dst!r}] = {src}", frame_id, "repl")
        r = self.coord.evaluate(f"_G[{dst!r}]", frame_id, "repl")
        return {"value": r["result"], "type": r.get("type"), "variablesReference": r["variablesReference"]}

    def _jp_modules(self, args: dict[str, Any]) -> dict[str, Any]:
        mods = [{"id": i, "name": s.get("name"), "path": s["path"]}
                for i, s in enumerate(self.coord.loaded_sources(), 1) if s.get("path")]
        start = int(args.get("startModule", 0) or 0)
        count = int(args.get("moduleCount", 0) or 0)
        page = mods[start:start + count] if count else mods[start:]
        return {"modules": page, "totalModules": len(mods)}

    def capabilities(self) -> dict[str, Any]:
        return dict(CAPABILITIES, supportsModulesRequest=True)
