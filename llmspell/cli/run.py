"""`llmspell run FILE [-- args]` and `llmspell exec CODE`."""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import threading
from typing import Any

from llmspell.cli.common import emit, load_config_or_exit
from llmspell.script.watchdog import StopKind, Watchdog
from llmspell.settings import settings_of

EXIT_OK, EXIT_SCRIPT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TIMEOUT = 0, 1, 2, 130, 124


def register(sub: Any, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("run", parents=[parent], help="run a Lua script",
                       description="Run a Lua script. Every token after FILE is a script argument "
                                   "(ARGS/arg); a '--' right after FILE is optional.",
                       epilog="example: llmspell run app.lua -- --input data.txt --verbose pos1. "
                              "Exit codes: 0 ok, 1 script error, 2 usage or config error, 124 timed "
                              "out ([runtime] script_timeout_seconds), 130 Ctrl-C, n for os.exit(n).")
    p.add_argument("file", metavar="FILE", help="the Lua script")
    p.add_argument("script_args", nargs=argparse.REMAINDER, metavar="ARGS", help="arguments for the script")
    p.add_argument("--connect", metavar="CONNECTION_FILE", default=None,
                   help="execute on a running kernel instead of in-process, streaming its output")
    p.set_defaults(func=cmd_run)
    e = sub.add_parser("exec", parents=[parent], help="run a string of Lua code",
                       description="Run Lua code given on the command line.",
                       epilog="example: llmspell exec 'print(1+1)'")
    e.add_argument("code", metavar="CODE", help="Lua source")
    e.add_argument("script_args", nargs=argparse.REMAINDER, metavar="ARGS", help="arguments for the code")
    e.set_defaults(func=cmd_exec)


def cmd_run(args: argparse.Namespace) -> int:
    if args.connect:
        from llmspell.kernel.client import run_on_kernel

        return run_on_kernel(args.connect, args.file, list(args.script_args))
    return _execute(args, lambda rt: rt.run_file(args.file, list(args.script_args)), _source_of(args.file))


def cmd_exec(args: argparse.Namespace) -> int:
    return _execute(args, lambda rt: rt.run_string(args.code, "=(exec)", list(args.script_args),
                                                   script_path="(exec)"), args.code)


def _source_of(path: str) -> str:
    """The script text for application detection ("" when unreadable: the engine reports that)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read(1 << 20)
    except OSError:
        return ""


def _execute(args: argparse.Namespace, go: Any, source: str = "") -> int:
    from llmspell.bootstrap import create_runtime
    from llmspell.script.engine import BufferSink, ScriptError, StreamSink

    config = load_config_or_exit(args)
    fmt = getattr(args, "output", "text")
    out = StreamSink(sys.stdout) if fmt == "text" else BufferSink()
    rt = create_runtime(config, stdout=out, stderr=StreamSink(sys.stderr))
    guard = _RunGuard(rt, config, fmt)
    code = EXIT_OK
    result = None
    error: ScriptError | None = None
    from llmspell.providers import quality, traffic
    from llmspell.runtime.tracing import run_span

    mark = traffic.exchange_mark() if fmt != "text" else None  # an open mark keeps exchanges: only when reported
    try:
        guard.watchdog.start_run()
        with run_span(source, command=args.command):
            result = go(rt)
        if result.exit_code is not None:
            code = result.exit_code
    except ScriptError as e:
        error = e
        stopped = guard.stopped_by if e.kind == "interrupted" else None
        code = stopped.exit_code if stopped is not None else EXIT_SCRIPT_ERROR
        if stopped is StopKind.INTERRUPT:
            sys.stderr.write("interrupted\n")
        elif e.kind == "syntax":
            sys.stderr.write(f"Error: syntax error: {e.full_message}\n")
        else:
            sys.stderr.write(f"Error: {e.full_message}\n")
            if e.traceback and e.kind == "runtime":
                sys.stderr.write(_traceback_tail(e.traceback))
    finally:
        guard.close()
        rt.close()
    if fmt != "text":
        payload: dict[str, Any] = {
            "success": error is None and code == EXIT_OK,
            "exit_code": code,
            "output": out.text if isinstance(out, BufferSink) else "",
            "result": (result.values[0] if result and len(result.values) == 1
                       else (result.values if result and result.values else None)),
            "stats": rt.services.stats.as_dict(),
            "metrics": dict(rt.services.stats.metrics),
            **quality.run_report(traffic.exchanges_since(mark) if mark is not None else []),
        }
        if error is not None:
            payload["error"] = {"message": error.message, "file": error.file, "line": error.line, "kind": error.kind}
        emit(payload, fmt)
    return code


def _traceback_tail(tb: str) -> str:
    lines = tb.splitlines()
    if lines and lines[0].startswith(("stack traceback", " ")) is False:
        lines = lines[1:]
    kept = [ln for ln in lines if "[C]: in ?" not in ln and "xpcall'" not in ln
            and '[string "<python>"]' not in ln and "[C]: in function 'error'" not in ln
            and "(...tail calls...)" not in ln]
    return "\n".join(kept) + "\n" if kept else ""


class _RunGuard:
    """Ctrl-C and the script timeout for one CLI run, held by a watchdog (llmspell.script.watchdog).

    The timeout or the first Ctrl-C interrupt the script (exit 124 or 130 once it stops); if it
    does not stop within `[runtime] interrupt_grace_seconds` (one long C call, a finalizer), or
    on a second Ctrl-C, the process ends at once with the same code.
    """

    def __init__(self, rt: Any, config: Any, fmt: str) -> None:
        self.rt = rt
        self.fmt = fmt
        self.stopped_by: StopKind | None = None
        limits = settings_of(config).runtime
        self._previous: Any = None
        self._wake: tuple[socket.socket, socket.socket] | None = None
        self._old_wakeup = -1
        signal_fd = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)
            r, w = socket.socketpair()
            r.setblocking(False)
            w.setblocking(False)
            self._wake = (r, w)
            self._old_wakeup = signal.set_wakeup_fd(w.fileno(), warn_on_full_buffer=False)
            signal_fd = r.fileno()
        rt.interrupted_by_signal = False
        self.watchdog = Watchdog(self._soft, self._hard, timeout=limits.time_limit,
                                 grace=limits.interrupt_grace_seconds, signal_fd=signal_fd)

    def _on_sigint(self, signum: int, frame: Any) -> None:
        """The Python-level handler: the watchdog reads the signal from the wake-up fd and acts."""

    def _soft(self, reason: str) -> None:
        kind = StopKind.INTERRUPT if reason == "interrupted" else StopKind.TIMEOUT
        if self.stopped_by is None:
            self.stopped_by = kind
        if kind is StopKind.INTERRUPT:
            self.rt.interrupted_by_signal = True
        self.rt.interrupt(reason)

    def _hard(self, kind: StopKind, reason: str) -> None:
        grace = self.watchdog.grace
        msg = (f"{reason}; the script did not stop within {grace:g} s "
               "(one long C call or a finalizer): ended")
        try:
            if self.fmt != "text":
                emit({"success": False, "exit_code": kind.exit_code, "output": "", "result": None,
                      "error": {"message": msg, "file": None, "line": None, "kind": kind.value}}, self.fmt)
            sys.stderr.write("interrupted\n" if kind is StopKind.INTERRUPT else f"Error: {msg}\n")
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(kind.exit_code)

    def close(self) -> None:
        self.watchdog.end_run()
        self.watchdog.close()
        if self._wake is not None:
            try:
                signal.set_wakeup_fd(self._old_wakeup)
            except (ValueError, OSError):  # the earlier fd was closed since (its number reused): none
                signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGINT, self._previous)
            for s in self._wake:
                s.close()


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)
