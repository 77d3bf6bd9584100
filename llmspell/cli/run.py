"""`llmspell run FILE [-- args]` and `llmspell exec CODE`."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import Any

from llmspell.cli.common import emit, load_config_or_exit

EXIT_OK, EXIT_SCRIPT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def register(sub: Any, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("run", parents=[parent], help="run a Lua script",
                       description="Run a Lua script. Every token after FILE is a script argument "
                                   "(ARGS/arg); a '--' right after FILE is optional.",
                       epilog="example: llmspell run app.lua -- --input data.txt --verbose pos1")
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
    previous = _install_sigint(rt)
    timer = _script_timer(rt, config)
    code = EXIT_OK
    result = None
    error: ScriptError | None = None
    from llmspell.runtime.tracing import run_span

    try:
        with run_span(source, command=args.command):
            result = go(rt)
        if result.exit_code is not None:
            code = result.exit_code
    except ScriptError as e:
        error = e
        code = EXIT_INTERRUPTED if e.kind == "interrupted" and rt.interrupted_by_signal else EXIT_SCRIPT_ERROR
        if e.kind == "interrupted" and getattr(rt, "interrupted_by_signal", False):
            sys.stderr.write("interrupted\n")
        elif e.kind == "syntax":
            sys.stderr.write(f"Error: syntax error: {e.full_message}\n")
        else:
            sys.stderr.write(f"Error: {e.full_message}\n")
            if e.traceback and e.kind == "runtime":
                sys.stderr.write(_traceback_tail(e.traceback))
    finally:
        if timer is not None:
            timer.cancel()
        signal.signal(signal.SIGINT, previous)
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


def _install_sigint(rt: Any) -> Any:
    """Ctrl-C interrupts the script (it ends with exit 130); a second Ctrl-C aborts at once."""
    rt.interrupted_by_signal = False

    def handler(signum: int, frame: Any) -> None:
        if rt.interrupted_by_signal:
            raise KeyboardInterrupt
        rt.interrupted_by_signal = True
        rt.interrupt("interrupted")

    if threading.current_thread() is threading.main_thread():
        return signal.signal(signal.SIGINT, handler)
    return signal.getsignal(signal.SIGINT)


def _script_timer(rt: Any, config: Any) -> threading.Timer | None:
    secs = float(config.get("runtime.script_timeout_seconds", 0) or 0)
    ms = float(config.get("runtime.security.max_execution_time_ms", 0) or 0)
    limits = [x for x in (secs, ms / 1000.0) if x > 0]
    if not limits:
        return None
    limit = min(limits)
    t = threading.Timer(limit, rt.interrupt, args=(f"script timed out after {limit:g} s",))
    t.daemon = True
    t.start()
    return t


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)
