"""Request handlers: one table msg_type -> handler, each small and uniform, like ipykernel's.

Handlers receive the parsed `Message` and the `Channel` it came on and answer through that
channel; side effects go to iopub through the kernel's one sender. The dispatcher wraps every
request in `busy`/`idle`, logs (and answers with an error reply) any handler failure, and logs
unknown message types without replying. Shell handlers run on the Lua thread; control handlers
(kernel_info, shutdown, interrupt, debug_request) on the control thread.
"""

from __future__ import annotations

import fnmatch
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from llmspell import __version__
from llmspell.kernel.channels import Channel
from llmspell.kernel.wire import MAX_JSON_DEPTH, PROTOCOL_VERSION, Message, json_depth_exceeds
from llmspell.providers import quality, traffic
from llmspell.script.services import RunStats
from llmspell.script.shell import LuaShell, clamp_cursor, exit_word, pager_name, render_values

if TYPE_CHECKING:
    from llmspell.kernel.kernel import Kernel

log = logging.getLogger("llmspell.kernel")

Handler = Callable[[Message, Channel], None]

#: Executions kept for history_request (oldest dropped first).
MAX_HISTORY = 10_000
#: Requests served on the control channel (its own thread).
CONTROL_TYPES = frozenset({"kernel_info_request", "shutdown_request", "interrupt_request", "debug_request"})
#: Requests also accepted on shell (shutdown on shell is deprecated but still sent by old clients).
_ANY_CHANNEL = frozenset({"kernel_info_request", "shutdown_request"})

LANGUAGE_INFO: dict[str, Any] = {
    "name": "lua", "version": "5.4", "mimetype": "text/x-lua", "file_extension": ".lua",
    "pygments_lexer": "lua", "codemirror_mode": "lua", "nbconvert_exporter": "script",
}
BANNER = (f"llmspell {__version__} (Lua 5.4): Lua scripts that orchestrate LLM agents.\n"
          "Globals: Agent, Tool, Workflow, State, Event, Hook, JSON, Config, Logger, Utils, Debug, ...\n"
          "Type ?name for help on a global or function.")
HELP_LINKS = [
    {"text": "Lua 5.4 reference manual", "url": "https://www.lua.org/manual/5.4/"},
    {"text": "Jupyter messaging protocol", "url": "https://jupyter-client.readthedocs.io/en/latest/messaging.html"},
]

_TB_NOISE = ("in function 'xpcall'", '[string "<python>"]', "[C]: in ?", "llmspell.kernel:")

@dataclass
class HistoryEntry:
    """One stored execution: its line number (execution_count), input and text output."""

    line: int
    source: str
    output: str | None = None


@dataclass
class Comm:
    """An open comm: its id and target."""

    comm_id: str
    target_name: str
    data: dict[str, Any] = field(default_factory=dict)


class CommRegistry:
    """Comm targets (name -> handler for comm_msg) and the comms open now."""

    def __init__(self) -> None:
        self.targets: dict[str, Callable[[Comm, dict[str, Any]], dict[str, Any] | None]] = {}
        self.comms: dict[str, Comm] = {}

    def register_target(self, name: str, on_msg: Callable[[Comm, dict[str, Any]], dict[str, Any] | None]) -> None:
        self.targets[name] = on_msg


def clean_traceback(tb: str) -> list[str]:
    """Lua traceback lines without the message line and the runtime's own frames."""
    lines = tb.splitlines()
    if lines and not lines[0].startswith("stack traceback"):
        lines = lines[1:]
    kept = [ln for ln in lines if not any(n in ln for n in _TB_NOISE)]
    return kept if len(kept) > 1 else []


class Handlers:
    """The kernel's request handlers and the state they keep (execution count, history, comms)."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.execution_count = 0
        self.history: list[HistoryEntry] = []
        self.history_session = 1
        self.comms = CommRegistry()
        self.comms.register_target("llmspell", self._comm_llmspell)
        self._shell: LuaShell | None = None
        self._dap_seq = 0
        self.table: dict[str, Handler] = {
            "kernel_info_request": self.kernel_info,
            "execute_request": self.execute,
            "complete_request": self.complete,
            "inspect_request": self.inspect,
            "is_complete_request": self.is_complete,
            "history_request": self.history_request,
            "comm_info_request": self.comm_info,
            "comm_open": self.comm_open,
            "comm_msg": self.comm_msg,
            "comm_close": self.comm_close,
            "connect_request": self.connect,
            "shutdown_request": self.shutdown,
            "interrupt_request": self.interrupt,
            "debug_request": self.debug,
        }

    # --------------------------------------------------------------- dispatch
    def dispatch(self, msg: Message, ch: Channel) -> None:
        """Run the handler for `msg` inside busy/idle; unknown types are logged, never answered.

        Nothing a message carries can end the caller's loop: any failure, even in sending the
        status or the error reply, is logged here."""
        try:
            self._dispatch(msg, ch)
        except Exception:  # noqa: BLE001 - the serving loops must survive any message
            log.exception("failed to serve %s on %s", msg.msg_type, ch.name)

    def _dispatch(self, msg: Message, ch: Channel) -> None:
        msg_type = msg.msg_type
        handler = self.table.get(msg_type)
        if handler is None:
            log.warning("ignored a message of unknown type %r on %s", msg_type, ch.name)
            return
        if (ch.name == "control") != (msg_type in CONTROL_TYPES) and msg_type not in _ANY_CHANNEL:
            log.warning("ignored %s: it is not served on the %s channel", msg_type, ch.name)
            return
        iopub = self.kernel.iopub
        parent = msg.header
        iopub.status("busy", parent)
        try:
            handler(msg, ch)
        except Exception as e:  # noqa: BLE001 - a failing handler still answers
            log.exception("handler for %s failed", msg_type)
            if msg_type.endswith("_request"):
                content: dict[str, Any] = {"status": "error", "ename": type(e).__name__, "evalue": str(e),
                                           "traceback": [f"{type(e).__name__}: {e}"]}
                if msg_type == "execute_request":
                    content["execution_count"] = self.execution_count
                ch.send(msg_type[:-8] + "_reply", content, msg)
        finally:
            self.kernel.streams.flush()
            iopub.status("idle", parent)
            self.kernel.after_request()

    # ------------------------------------------------------------ kernel info
    def kernel_info_content(self) -> dict[str, Any]:
        content: dict[str, Any] = {
            "status": "ok", "protocol_version": PROTOCOL_VERSION, "implementation": "llmspell",
            "implementation_version": __version__, "language_info": LANGUAGE_INFO, "banner": BANNER,
            "help_links": HELP_LINKS, "debugger": False,
        }
        if self.kernel.debugger_available:
            content["debugger"] = True
            content["supported_features"] = ["debugger"]
        return content

    def kernel_info(self, msg: Message, ch: Channel) -> None:
        ch.send("kernel_info_reply", self.kernel_info_content(), msg)

    def connect(self, msg: Message, ch: Channel) -> None:
        info = self.kernel.info
        ch.send("connect_reply", {"status": "ok", **{f"{c}_port": info.port(c) for c in
                                                    ("shell", "iopub", "stdin", "control", "hb")}}, msg)

    # ---------------------------------------------------------------- execute
    def execute(self, msg: Message, ch: Channel) -> None:
        kernel = self.kernel
        c = msg.content
        code = c.get("code", "")
        code = code if isinstance(code, str) else str(code)
        silent = bool(c.get("silent", False))
        store = bool(c.get("store_history", True)) and not silent
        if store:
            self.execution_count += 1
        n = self.execution_count
        kernel.start_execute_request()
        try:
            self._execute(msg, ch, code, n, silent, store)
        finally:
            kernel.end_execute_request()

    def _execute(self, msg: Message, ch: Channel, code: str, n: int, silent: bool, store: bool) -> None:
        kernel = self.kernel
        c = msg.content
        parent = msg.header
        iopub = kernel.iopub
        if not silent:
            iopub.send("execute_input", {"code": code, "execution_count": n}, parent)
        metadata: dict[str, Any] = {}
        payload: list[dict[str, Any]] = []
        output_text: str | None = None
        error: dict[str, Any] | None = None
        user_expressions: dict[str, Any] = {}
        pager = pager_name(code)
        try:
            rt = kernel.runtime
            leave = exit_word(code)
            if leave and rt.G[leave] is None:
                # `exit` / `quit` in a console: leave, as ipykernel asks (they are not Lua statements)
                payload.append({"source": "ask_exit", "keepkernel": False})
                rt = None
        except RuntimeError as e:
            error = {"ename": "KernelError", "evalue": str(e), "traceback": [f"KernelError: {e}"]}
            rt = None
        if rt is not None and pager:
            payload.append({"source": "page", "data": {"text/plain": self.shell().help_text(pager, 1)}, "start": 0})
        elif rt is not None:
            kernel.begin_execute(msg, silent)
            try:
                self._fire_hook(rt, "PreExecute", {"code": code, "execution_count": n})
                mark = traffic.exchange_mark()
                values, error = self._run_cell(rt, code, n, _args_of(msg))
                metadata["llmspell"] = rt.services.stats.as_dict()
                metadata["llmspell"].update(quality.run_report(traffic.exchanges_since(mark)))
                self._fire_hook(rt, "PostExecute", {"code": code, "execution_count": n,
                                                    "status": "ok" if error is None else "error"})
            finally:
                kernel.end_execute()
            if error is None and values and not silent:
                output_text = self._publish_result(values, n, parent)
            if error is None:
                user_expressions = self._user_expressions(rt, c.get("user_expressions"))
        if error is not None and not silent:
            iopub.send("error", error, parent)
        if store:
            self.history.append(HistoryEntry(n, code, output_text))
            if len(self.history) > MAX_HISTORY:
                del self.history[: len(self.history) - MAX_HISTORY]
        if error is not None:
            content = {"status": "error", "execution_count": n, **error}
        else:
            content = {"status": "ok", "execution_count": n, "payload": payload,
                       "user_expressions": user_expressions}
        if "llmspell" not in metadata:  # the harness always finds the figures, zero when nothing ran
            metadata["llmspell"] = {**RunStats().as_dict(), **quality.run_report([])}
        kernel.streams.flush()
        ch.send("execute_reply", content, msg, metadata=metadata)
        if error is not None and c.get("stop_on_error", True):
            kernel.abort_queued()

    def _publish_result(self, values: list[Any], n: int, parent: dict[str, Any]) -> str:
        """execute_result for a cell's returned values; returns its text (kept in history)."""
        text = render_values(values)
        data: dict[str, Any] = {"text/plain": text}
        if len(values) == 1 and isinstance(values[0], dict | list) and not json_depth_exceeds(values[0], MAX_JSON_DEPTH):
            data["application/json"] = values[0]
        self.kernel.iopub.send("execute_result", {"execution_count": n, "data": data, "metadata": {}}, parent)
        return text

    def abort_reply(self, msg: Message, ch: Channel) -> None:
        """Answer an execute_request queued behind a failed one (stop_on_error) without running it."""
        iopub = self.kernel.iopub
        iopub.status("busy", msg.header)
        ch.send("execute_reply", {
            "status": "error", "execution_count": self.execution_count, "ename": "ExecutionAborted",
            "evalue": "not run: an earlier cell failed (stop_on_error)", "traceback": []}, msg)
        iopub.status("idle", msg.header)

    def _run_cell(self, rt: Any, code: str, n: int, args: list[str]) -> tuple[list[Any], dict[str, Any] | None]:
        from llmspell.script.args import set_script_args
        from llmspell.script.engine import ScriptError

        debugger = self.kernel.debugger
        chunk = None
        if debugger is not None:
            try:
                chunk = debugger.chunkname_for(code, n)
            except Exception:  # noqa: BLE001 - the debugger must not break execution
                log.exception("debugger.chunkname_for failed")
        chunk = chunk or f"=cell[{n}]"
        try:
            fn = self.shell(rt).compile_cell(code, chunk)
            set_script_args(rt, f"cell[{n}]", args)
            self.kernel.apply_pending_interrupt()
            result = rt.call_chunk(fn, *args)
        except ScriptError as e:
            err = _script_error(e)
            return [], debugger.clean_error(err) if debugger is not None else err
        except Exception as e:  # noqa: BLE001 - an engine bug must not kill the kernel
            log.exception("execution failed inside the runtime")
            return [], {"ename": type(e).__name__, "evalue": str(e), "traceback": [f"{type(e).__name__}: {e}"]}
        if result.exit_code is not None:
            text = f"os.exit({result.exit_code}) called"
            return [], {"ename": "SystemExit", "evalue": text, "traceback": [f"SystemExit: {text}"],
                        "exit_code": result.exit_code}
        return list(result.values), None

    def _user_expressions(self, rt: Any, exprs: Any) -> dict[str, Any]:
        if not isinstance(exprs, dict) or not exprs:
            return {}
        from llmspell.script.engine import ScriptError

        out: dict[str, Any] = {}
        for key, expr in exprs.items():
            try:
                result = rt.call_chunk(rt.compile("return " + str(expr), "=user_expression"))
                text = render_values(result.values)
                out[key] = {"status": "ok", "data": {"text/plain": text}, "metadata": {}}
            except ScriptError as e:
                err = _script_error(e)
                out[key] = {"status": "error", "ename": err["ename"], "evalue": err["evalue"],
                            "traceback": err["traceback"]}
        return out

    def _fire_hook(self, rt: Any, point: str, data: dict[str, Any]) -> None:
        hooks = getattr(rt.services, "hooks", None)
        if hooks is None:
            return
        try:
            if hooks.active(point):
                hooks.run(point, data, component=("kernel", "llmspell"))
        except Exception:  # noqa: BLE001 - hooks never fail an execution
            log.warning("%s hook failed", point, exc_info=True)

    # ------------------------------------------------------- complete/inspect
    def shell(self, rt: Any = None) -> LuaShell:
        """The Lua shell of the kernel's current runtime (a new one after the runtime was replaced)."""
        rt = rt if rt is not None else self.kernel.runtime
        if self._shell is None or self._shell.rt is not rt:
            self._shell = LuaShell(rt)
        return self._shell

    def complete(self, msg: Message, ch: Channel) -> None:
        code = str(msg.content.get("code", ""))
        got = self.shell().complete(code, clamp_cursor(code, msg.content.get("cursor_pos")))
        ch.send("complete_reply", {"status": "ok", "matches": got.matches, "cursor_start": got.start,
                                   "cursor_end": got.end, "metadata": {}}, msg)

    def inspect(self, msg: Message, ch: Channel) -> None:
        code = str(msg.content.get("code", ""))
        detail = int(msg.content.get("detail_level", 0) or 0)
        text = self.shell().inspect(code, clamp_cursor(code, msg.content.get("cursor_pos")), detail)
        content: dict[str, Any] = {"status": "ok", "found": text is not None, "data": {}, "metadata": {}}
        if text is not None:
            content["data"] = {"text/plain": text}
        ch.send("inspect_reply", content, msg)

    def is_complete(self, msg: Message, ch: Channel) -> None:
        code = str(msg.content.get("code", ""))
        ch.send("is_complete_reply", self.shell().is_complete(code).as_reply(), msg)

    # ---------------------------------------------------------------- history
    def history_request(self, msg: Message, ch: Channel) -> None:
        c = msg.content
        output = bool(c.get("output", False))
        kind = c.get("hist_access_type", "tail")
        entries = self.history
        if kind == "range":
            session = int(c.get("session", 0) or 0)
            if session not in (0, self.history_session) and session > 0:
                entries = []
            start = int(c.get("start", 1) or 1)
            stop = c.get("stop")
            entries = [e for e in entries if e.line >= start and (stop is None or e.line < int(stop))]
        elif kind == "search":
            pattern = str(c.get("pattern", "*") or "*")
            entries = [e for e in entries if fnmatch.fnmatchcase(e.source, pattern)]
            if c.get("unique"):
                seen: set[str] = set()
                unique = []
                for e in reversed(entries):
                    if e.source not in seen:
                        seen.add(e.source)
                        unique.append(e)
                entries = unique[::-1]
            n = c.get("n")
            if n:
                entries = entries[-int(n):]
        else:
            n = c.get("n")
            entries = entries[-int(n):] if n else list(entries)
        sess = self.history_session
        if output:
            history = [[sess, e.line, [e.source, e.output]] for e in entries]
        else:
            history = [[sess, e.line, e.source] for e in entries]
        ch.send("history_reply", {"status": "ok", "history": history}, msg)

    # ------------------------------------------------------------------ comms
    def comm_info(self, msg: Message, ch: Channel) -> None:
        target = msg.content.get("target_name")
        comms = {cid: {"target_name": cm.target_name} for cid, cm in self.comms.comms.items()
                 if target is None or cm.target_name == target}
        ch.send("comm_info_reply", {"status": "ok", "comms": comms}, msg)

    def comm_open(self, msg: Message, ch: Channel) -> None:
        c = msg.content
        comm_id = str(c.get("comm_id") or uuid.uuid4().hex)
        target = str(c.get("target_name", ""))
        if target not in self.comms.targets:
            log.warning("comm_open for unknown target %r: closing comm %s", target, comm_id)
            self.kernel.iopub.send("comm_close", {"comm_id": comm_id, "data": {}}, msg.header)
            return
        self.comms.comms[comm_id] = Comm(comm_id, target, dict(c.get("data") or {}))

    def comm_msg(self, msg: Message, ch: Channel) -> None:
        comm_id = str(msg.content.get("comm_id", ""))
        comm = self.comms.comms.get(comm_id)
        if comm is None:
            log.warning("comm_msg for unknown comm %s", comm_id)
            return
        answer = self.comms.targets[comm.target_name](comm, dict(msg.content.get("data") or {}))
        if answer is not None:
            self.kernel.iopub.send("comm_msg", {"comm_id": comm_id, "data": answer}, msg.header)

    def comm_close(self, msg: Message, ch: Channel) -> None:
        comm_id = str(msg.content.get("comm_id", ""))
        if self.comms.comms.pop(comm_id, None) is None:
            log.warning("comm_close for unknown comm %s", comm_id)

    def _comm_llmspell(self, comm: Comm, data: dict[str, Any]) -> dict[str, Any] | None:
        """The built-in `llmspell` target: answers {"request": "stats"|"globals"|"echo"}."""
        req = data.get("request")
        if req == "stats":
            return {"stats": self.kernel.runtime.services.stats.as_dict(),
                    "execution_count": self.execution_count}
        if req == "globals":
            return {"globals": list(self.kernel.runtime.installed_globals)}
        return {"echo": data}

    # --------------------------------------------------------------- control
    def shutdown(self, msg: Message, ch: Channel) -> None:
        restart = bool(msg.content.get("restart", False))
        ch.send("shutdown_reply", {"status": "ok", "restart": restart}, msg)
        self.kernel.request_stop(restart=restart)

    def interrupt(self, msg: Message, ch: Channel) -> None:
        self.kernel.interrupt()
        ch.send("interrupt_reply", {"status": "ok"}, msg)

    def debug(self, msg: Message, ch: Channel) -> None:
        request = msg.content
        debugger = self.kernel.get_debugger()
        if debugger is None:
            self._dap_seq += 1
            reply = {"type": "response", "seq": self._dap_seq, "request_seq": request.get("seq", 0),
                     "success": False, "command": request.get("command", ""),
                     "message": "the llmspell debugger is not available in this kernel"}
        else:
            self.kernel.debug_parent = msg.header
            reply = debugger.handle_request(request)
        ch.send("debug_reply", reply, msg)


def _args_of(msg: Message) -> list[str]:
    meta = msg.metadata.get("llmspell")
    args = meta.get("args") if isinstance(meta, dict) else None
    return [str(a) for a in args] if isinstance(args, list) else []


def _script_error(e: Any) -> dict[str, Any]:
    kind = getattr(e, "kind", "runtime")
    ename = {"syntax": "SyntaxError", "interrupted": "Interrupted"}.get(kind, "LuaError")
    evalue = e.full_message
    if kind == "interrupted" and evalue.startswith("script timed out"):
        ename = "Timeout"  # as the watchdog's hard stop names it; `run --connect` exits 124
    return {"ename": ename, "evalue": evalue,
            "traceback": [f"{ename}: {evalue}", *clean_traceback(getattr(e, "traceback", "") or "")]}
