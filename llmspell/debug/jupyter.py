"""The Jupyter debugger: DAP inside debug_request/debug_reply plus JupyterLab's extra requests.

Seam with the kernel: it builds one `JupyterDebugger(runtime=rt, send_event=fn, kernel=kernel)`,
calls `handle_request(content)` on the control thread for every debug_request (the return value
is the debug_reply content), calls `after_reply()` once that reply and its idle status are out
(the `initialized` event, resumes and so `stopped` follow their request's reply), publishes every
`send_event` payload as an iopub debug_event, runs each cell under `chunkname_for(code,
execution_count)` when that is not None, and passes a failed cell's error content through
`clean_error` (cell file paths become `cell[n]`, the debugger's own frames go).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
from collections.abc import Callable
from typing import Any

from llmspell.debug.coordinator import THREAD_ID, DebugCoordinator, DebugError
from llmspell.debug.dap import CAPABILITIES, DapSession, Response
from llmspell.debug.murmur2 import DEFAULT_SEED, murmur2
from llmspell.settings import debug_cells_dir

log = logging.getLogger("llmspell.debug")

SUFFIX = ".lua"
#: Traceback lines of the runtime's and the debugger's own frames (never the user's).
_INTERNAL_FRAMES = ("raw_xpcall", "llmspell.debug:", "llmspell.kernel:", "[C]: in ?", "in function 'xpcall'")


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

    def disconnect(self, terminate: bool, restart: bool = False) -> None:
        self.owner.stop()

    def restart(self, args: dict[str, Any]) -> None:
        raise DebugError("restart the kernel instead (Kernel > Restart Kernel and Debug)")


class JupyterDebugger:
    """One per kernel; thread-safe; requests arrive on the control thread."""

    def __init__(self, runtime: Any, send_event: Callable[[dict[str, Any]], None], kernel: Any = None) -> None:
        self.rt = runtime
        self.kernel = kernel
        self.coord = DebugCoordinator(runtime)
        self.session = DapSession(self.coord, send_event, _KernelProgram(self))
        self.session.send_continued = True
        self.coord.on_run_end = self._run_ended
        self._deferred_thread: int | None = None
        self._cells: dict[str, int] = {}
        self.started = False
        self.hash_seed = DEFAULT_SEED
        # The cells folder carries JupyterLab's "ipykernel_" marker (see settings.debug_cells_dir).
        self.tmp_prefix = str(debug_cells_dir(os.getpid())) + os.sep
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
        self._deferred_thread = threading.get_ident()
        return reply

    def after_reply(self) -> None:
        """Run what must follow the last reply (initialized event, resumes); the kernel calls this
        after the debug_reply and its idle status went out. Other threads' calls do nothing."""
        if self._deferred_thread == threading.get_ident():
            self._deferred_thread = None
            self.session.run_deferred()

    def _run_ended(self, stops: int) -> None:
        """A cell finished: after a stop in it, clear the frontend's paused state (as ipykernel does)."""
        if stops and self.started:
            self.session.emit("continued", {"threadId": THREAD_ID, "allThreadsContinued": True})

    def clean_error(self, err: dict[str, Any]) -> dict[str, Any]:
        """A cell's error content with cell file paths shown as `cell[n]` and internal frames gone."""
        out = dict(err)
        if isinstance(out.get("evalue"), str):
            out["evalue"] = self.clean_text(out["evalue"])
        tb = out.get("traceback")
        if isinstance(tb, list):
            out["traceback"] = [self.clean_text(str(ln)) for ln in tb
                                if not any(n in str(ln) for n in _INTERNAL_FRAMES)]
        return out

    def clean_text(self, text: str) -> str:
        """Cell file paths (also as Lua shortens long ones, `...tail`) replaced by `cell[n]`."""
        if not self._cells:
            return text

        def one(m: re.Match[str]) -> str:
            n = self._cells.get(m.group(2))
            return f"cell[{n}]" if n is not None else m.group(0)

        text = self._cell_re.sub(one, text)
        return re.sub(r"(cell\[\d+\]:\d+:) in upvalue 'fn'", r"\1 in main chunk", text)

    def chunkname_for(self, code: str, execution_count: int) -> str | None:
        """The chunk name of a cell: always its debug file's path, as ipykernel does, so a function
        defined before the debugger started stops at breakpoints set later (the file is written
        when the debugger is on, else at dumpCell)."""
        path = self._dump(code) if self.started else self.cell_path(code)
        self._cells[os.path.basename(path)[: -len(SUFFIX)]] = execution_count
        return "@" + path

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

    @property
    def _cell_re(self) -> re.Pattern[str]:
        return re.compile("(" + re.escape(self.tmp_prefix) + r"|\.\.\.[^\s:]*?)(\d+)" + re.escape(SUFFIX))

    def _dump(self, code: str) -> str:
        path = self.cell_path(code)
        with self._lock:
            os.makedirs(self.tmp_prefix, exist_ok=True)
            if not os.path.exists(path):
                tmp = f"{path}.{threading.get_ident()}.tmp"
                with open(tmp, "w", encoding="utf-8", newline="") as f:
                    f.write(code)
                os.replace(tmp, path)
        self.coord.allow_source(path)
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
