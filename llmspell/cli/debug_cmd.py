"""`llmspell debug FILE [--port N | --break-at FILE:LINE] [-- args]`: DAP server or terminal debugger."""

from __future__ import annotations

import argparse
import sys
import threading
from typing import Any

from llmspell.cli.common import load_config_or_exit

EXIT_OK, EXIT_SCRIPT_ERROR, EXIT_USAGE = 0, 1, 2
_OWN_OPTIONS = ("--port", "--host", "--break-at", "--wait-timeout")


def register(sub: Any, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "debug", parents=[parent], help="debug a Lua script (DAP over TCP, or in the terminal)",
        description="Debug a Lua script. With --port, wait for a DAP client (VS Code: a 'debugServer' "
                    "launch config) on 127.0.0.1:PORT (0 picks a free port, printed on stderr). With "
                    "--break-at, debug in the terminal (type help at the (dbg) prompt).",
        epilog="examples: llmspell debug app.lua --port 4711 -- --input x.txt\n"
               "          llmspell debug app.lua --break-at app.lua:12")
    p.add_argument("file", metavar="FILE", help="the Lua script")
    p.add_argument("--port", type=int, default=None, help="serve DAP on this TCP port")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--break-at", action="append", default=[], metavar="FILE:LINE",
                   help="terminal debugging: stop at FILE:LINE (repeatable)")
    p.add_argument("--wait-timeout", type=float, default=None, metavar="SECONDS",
                   help="with --port: give up when no client connects in time")
    p.add_argument("script_args", nargs=argparse.REMAINDER, metavar="ARGS", help="arguments for the script")
    p.set_defaults(func=cmd_debug)


def _split_args(args: argparse.Namespace) -> None:
    """Options given after FILE are ours until a '--'; the rest goes to the script."""
    rest = list(args.script_args)
    script: list[str] = []
    i = 0
    while i < len(rest):
        tok = rest[i]
        if tok == "--":
            script.extend(rest[i + 1:])
            break
        name, eq, value = tok.partition("=")
        if name in _OWN_OPTIONS:
            if not eq:
                i += 1
                if i >= len(rest):
                    raise SystemExit(f"llmspell debug: {name} needs a value")
                value = rest[i]
            attr = name[2:].replace("-", "_")
            if attr == "break_at":
                args.break_at.append(value)
            elif attr in ("port",):
                args.port = int(value)
            elif attr == "wait_timeout":
                args.wait_timeout = float(value)
            else:
                setattr(args, attr, value)
        else:
            script.append(tok)
        i += 1
    args.script_args = script


def cmd_debug(args: argparse.Namespace) -> int:
    _split_args(args)
    if args.port is None and not args.break_at:
        sys.stderr.write("llmspell debug: give --port N (DAP client) or --break-at FILE:LINE (terminal)\n")
        return EXIT_USAGE
    config = load_config_or_exit(args)
    if args.port is not None:
        return _serve_dap(args, config)
    return _terminal(args, config)


def _report(rt: Any, go: Any) -> int:
    from llmspell.script.engine import ScriptError

    try:
        result = go()
    except ScriptError as e:
        sys.stderr.write(f"Error: {e.full_message}\n")
        return EXIT_SCRIPT_ERROR
    return result.exit_code if result.exit_code is not None else EXIT_OK


def _terminal(args: argparse.Namespace, config: Any) -> int:
    from llmspell.bootstrap import create_runtime
    from llmspell.debug.console import DebugConsole
    from llmspell.debug.coordinator import DebugCoordinator, DebugError
    from llmspell.script.engine import StreamSink

    rt = create_runtime(config, stdout=StreamSink(sys.stdout), stderr=StreamSink(sys.stderr))
    coord = DebugCoordinator(rt)

    def read_line(prompt: str) -> str | None:
        sys.stdout.write(prompt)
        sys.stdout.flush()
        line = sys.stdin.readline()
        return None if not line else line.rstrip("\n")

    def write(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    console = DebugConsole(coord, read_line, write)
    coord.attach()
    for spec in args.break_at:
        try:
            console.add_breakpoint(spec)
        except DebugError as e:
            sys.stderr.write(f"llmspell debug: {e}\n")
            return EXIT_USAGE
    try:
        return _report(rt, lambda: rt.run_file(args.file, list(args.script_args)))
    finally:
        coord.detach()
        rt.close()


class _TeeSink:
    """Writes to the terminal and mirrors each write as a DAP output event."""

    def __init__(self, inner: Any, category: str) -> None:
        self.inner = inner
        self.category = category
        self.session: Any = None

    def write(self, text: str) -> None:
        self.inner.write(text)
        if self.session is not None:
            self.session.emit("output", {"category": self.category, "output": text})


class _LaunchProgram:
    """launch/attach install the hook; configurationDone starts the script; disconnect never hangs it."""

    def __init__(self, coord: Any) -> None:
        self.coord = coord
        self.start = threading.Event()
        self.stop_on_entry = False

    def launch(self, args: dict[str, Any]) -> None:
        self.stop_on_entry = bool(args.get("stopOnEntry", False))
        if not args.get("noDebug"):
            self.coord.attach()

    def attach(self, args: dict[str, Any]) -> None:
        self.coord.attach()

    def configuration_done(self) -> None:
        if self.stop_on_entry and self.coord.attached:
            self.coord.step_in_next()
        self.start.set()

    def disconnect(self, terminate: bool) -> None:
        if terminate:
            self.coord.terminate("terminated by the debug client")
        self.coord.detach()
        self.start.set()


def _serve_dap(args: argparse.Namespace, config: Any) -> int:
    from llmspell.bootstrap import create_runtime
    from llmspell.debug.coordinator import DebugCoordinator
    from llmspell.debug.dap import DapSession
    from llmspell.debug.tcp import DapStream, listen, serve_connection
    from llmspell.script.engine import StreamSink

    out, err = _TeeSink(StreamSink(sys.stdout), "stdout"), _TeeSink(StreamSink(sys.stderr), "stderr")
    rt = create_runtime(config, stdout=out, stderr=err)
    coord = DebugCoordinator(rt)
    program = _LaunchProgram(coord)
    srv = listen(args.host, args.port)
    host, port = srv.getsockname()[:2]
    sys.stderr.write(f"llmspell debug: waiting for a DAP client on {host}:{port}\n")
    sys.stderr.flush()
    srv.settimeout(args.wait_timeout)
    try:
        conn, _ = srv.accept()
    except TimeoutError:
        sys.stderr.write("llmspell debug: no client connected\n")
        return EXIT_SCRIPT_ERROR
    finally:
        srv.close()
    conn.settimeout(None)
    stream = DapStream(conn)
    session = DapSession(coord, stream.send, program)
    out.session = err.session = session
    closed = threading.Event()

    def on_close() -> None:
        closed.set()
        program.disconnect(False)

    serve_connection(stream, session.dispatch, on_close)
    program.start.wait()
    code = EXIT_OK
    if not session.disconnected.is_set() and not closed.is_set():
        code = _report(rt, lambda: rt.run_file(args.file, list(args.script_args)))
        session.emit("exited", {"exitCode": code})
        session.emit("terminated", {})
        # give the client a moment to send disconnect; never wait forever
        for _ in range(50):
            if session.disconnected.is_set() or closed.wait(0.1):
                break
    coord.detach()
    out.session = err.session = None
    stream.close()
    rt.close()
    return code
