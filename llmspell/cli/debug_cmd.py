"""`llmspell debug FILE [--port N | --break-at FILE:LINE] [-- args]`: DAP server or terminal debugger."""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from llmspell.cli.common import load_config_or_exit

#: Environment variable that fixes the session token (e.g. to match `${env:...}` in launch.json).
TOKEN_ENV = "LLMSPELL_DEBUG_TOKEN"

EXIT_OK, EXIT_SCRIPT_ERROR, EXIT_USAGE = 0, 1, 2
_OWN_OPTIONS = ("--port", "--host", "--break-at", "--wait-timeout", "--token-file", "--auth-timeout")


def register(sub: Any, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "debug", parents=[parent], help="debug a Lua script (DAP over TCP, or in the terminal)",
        description="Debug a Lua script. With --port, serve DAP clients (VS Code: a 'debugServer' "
                    "launch config, see docs/debugging.md) on 127.0.0.1:PORT (0 picks a free port); the "
                    "port and a per-session secret token are printed on stderr, and a client must give "
                    "the token as \"llmspellToken\" in launch or attach. The server keeps listening after "
                    "a client disconnects with restart. With --break-at, debug in the terminal (type "
                    "help at the (dbg) prompt).",
        epilog="examples: llmspell debug app.lua --port 4711 --token-file .vscode/llmspell.token -- --input x\n"
               "          llmspell debug --port 4711   (the client's launch names the program)\n"
               "          llmspell debug app.lua --break-at app.lua:12\n"
               "environment: LLMSPELL_DEBUG_TOKEN fixes the token (16+ characters) instead of a fresh one")
    p.add_argument("file", metavar="FILE", nargs="?", default=None,
                   help="the Lua script (with --port, a launch request's 'program' replaces it)")
    p.add_argument("--port", type=int, default=None, help="serve DAP on this TCP port")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--break-at", action="append", default=[], metavar="FILE:LINE",
                   help="terminal debugging: stop at FILE:LINE (repeatable)")
    p.add_argument("--wait-timeout", type=float, default=None, metavar="SECONDS",
                   help="with --port: give up when no client connects in time")
    p.add_argument("--token-file", default=None, metavar="PATH",
                   help="with --port: also write the session token to PATH (mode 0600, removed at exit)")
    p.add_argument("--auth-timeout", type=float, default=10.0, metavar="SECONDS",
                   help="with --port: close a connection that has not shown the token in time (default 10)")
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
            elif attr in ("wait_timeout", "auth_timeout"):
                setattr(args, attr, float(value))
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
    if args.port is None and not args.file:
        sys.stderr.write("llmspell debug: --break-at needs the script FILE\n")
        return EXIT_USAGE
    config = load_config_or_exit(args)
    if args.port is not None:
        return _serve_dap(args, config)
    return _terminal(args, config)


def _report(rt: Any, go: Any, err: Any = None) -> int:
    from llmspell.script.engine import ScriptError

    try:
        result = go()
    except ScriptError as e:
        text = f"Error: {e.full_message}\n"
        if err is not None:
            err.write(text)  # the terminal and, as an output event (stderr), the debug client
        else:
            sys.stderr.write(text)
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
        session = self.session
        if session is not None:
            session.emit("output", {"category": self.category, "output": text})


class _Unless:
    """A sink that drops writes while `skip()` is true (the error of a run ended by a restart)."""

    def __init__(self, inner: Any, skip: Any) -> None:
        self.inner = inner
        self.skip = skip

    def write(self, text: str) -> None:
        if not self.skip():
            self.inner.write(text)


def _make_token(env: Mapping[str, str]) -> str:
    """The session secret: LLMSPELL_DEBUG_TOKEN in the environment config captured (16+ characters), else a fresh one."""
    import secrets

    given = env.get(TOKEN_ENV)
    if given:
        if len(given) < 16:
            raise SystemExit(f"llmspell debug: {TOKEN_ENV} must be at least 16 characters")
        return given
    return secrets.token_urlsafe(24)


def _write_token_file(path: str, token: str) -> None:
    """Write the token readable by the user only (0600), replacing the file."""
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, token.encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)


@dataclass
class _Cycle:
    """One runtime and its debugger: a fresh pair for every run (a restart starts from clean globals)."""

    rt: Any
    coord: Any


class _LaunchProgram:
    """launch/attach install the hook; the script starts once launch and configurationDone both came
    (in either order); disconnect never leaves it hanging; restart runs it again."""

    def __init__(self, server: _DapServer) -> None:
        self.server = server
        self.launched = False
        self.configured = False

    def launch(self, args: dict[str, Any]) -> None:
        self.server.set_launch(args)
        if not args.get("noDebug"):
            self.server.cycle.coord.attach()
        self.launched = True
        self._maybe_start()

    def attach(self, args: dict[str, Any]) -> None:
        self.server.cycle.coord.attach()
        self.launched = True
        self._maybe_start()

    def configuration_done(self) -> None:
        self.configured = True
        self._maybe_start()

    def _maybe_start(self) -> None:
        if self.launched and self.configured:
            self.server.request_start()

    def disconnect(self, terminate: bool, restart: bool = False) -> None:
        coord = self.server.cycle.coord
        if restart:
            self.server.expect_reconnect()
        if terminate or restart:
            coord.terminate("terminated by the debug client")
        coord.detach()

    def restart(self, args: dict[str, Any]) -> None:
        self.server.request_restart(args)


class _DapServer:
    """`llmspell debug --port`: serves one DAP client at a time and keeps listening, so a client that
    reconnects (VS Code's restart, a dropped connection) is served again; the script runs on the
    main thread."""

    def __init__(self, args: argparse.Namespace, config: Any, srv: socket.socket, token: str) -> None:
        self.args = args
        self.config = config
        self.srv = srv
        self.token = token
        from llmspell.script.engine import StreamSink

        self.out = _TeeSink(StreamSink(sys.stdout), "stdout")
        self.err = _TeeSink(StreamSink(sys.stderr), "stderr")
        self.cycle = self._new_cycle()
        self.program = str(args.file) if args.file else None
        self.script_args = list(args.script_args)
        self.cwd: str | None = None
        self.stop_on_entry = False
        self.session: Any = None
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._start = False
        self._restart: dict[str, Any] | None = None
        self._quit: str | None = None
        self._running = False
        self._finished = False
        self._reconnect = False
        self._bp_requests: list[dict[str, Any]] = []

    def _new_cycle(self) -> _Cycle:
        from llmspell.bootstrap import create_runtime
        from llmspell.debug.coordinator import DebugCoordinator

        rt = create_runtime(self.config, stdout=self.out, stderr=self.err)
        return _Cycle(rt, DebugCoordinator(rt))

    # ------------------------------------------------------------ requests from the session thread
    def set_launch(self, args: dict[str, Any]) -> None:
        """Apply launch's `program`, `args`, `cwd` and `stopOnEntry` (a bad one fails the launch)."""
        from llmspell.debug.coordinator import DebugError

        cwd = args.get("cwd")
        if cwd is not None:
            if not isinstance(cwd, str) or not os.path.isdir(cwd):
                raise DebugError(f"launch: cwd {cwd!r} is not a directory")
            self.cwd = os.path.abspath(cwd)
        program = args.get("program")
        if program is not None:
            if not isinstance(program, str) or not program:
                raise DebugError("launch: program must be a path")
            self.program = os.path.join(self.cwd or os.getcwd(), program)
        if self.program is None:
            raise DebugError("launch needs 'program' (no FILE was given to llmspell debug)")
        if not os.path.isfile(os.path.join(self.cwd or os.getcwd(), self.program)):
            raise DebugError(f"launch: program {self.program} does not exist")
        script_args = args.get("args")
        if script_args is not None:
            if not isinstance(script_args, list):
                raise DebugError("launch: args must be a list of strings")
            self.script_args = [str(a) for a in script_args]
        self.stop_on_entry = bool(args.get("stopOnEntry", False))
        self.cycle.coord.allow_source(os.path.join(self.cwd or os.getcwd(), self.program))

    def request_start(self) -> None:
        with self._wake:
            if not self._running and not self._finished:
                self._start = True
                self._wake.notify_all()

    def expect_reconnect(self) -> None:
        """A disconnect with restart: the next connection gets a fresh run (VS Code reconnects)."""
        with self._wake:
            self._reconnect = True
            self._wake.notify_all()

    def request_restart(self, args: dict[str, Any]) -> None:
        if args:
            self.set_launch(args)
        with self._wake:
            self._restart = dict(args)
            self._wake.notify_all()
        if self._running:
            self.cycle.coord.terminate("restarting")

    def note_breakpoints(self, message: dict[str, Any]) -> None:
        """Remember breakpoint requests so a restart's fresh runtime gets them again."""
        cmd = message.get("command")
        if cmd in ("setBreakpoints", "setFunctionBreakpoints", "setExceptionBreakpoints"):
            if cmd == "setBreakpoints":
                path = ((message.get("arguments") or {}).get("source") or {}).get("path")
                self._bp_requests = [m for m in self._bp_requests
                                     if not (m.get("command") == cmd
                                             and ((m.get("arguments") or {}).get("source") or {}).get("path") == path)]
            else:
                self._bp_requests = [m for m in self._bp_requests if m.get("command") != cmd]
            self._bp_requests.append(message)

    # ------------------------------------------------------------ connections (accept thread)
    def accept_loop(self) -> None:
        from llmspell.debug.dap import DapSession
        from llmspell.debug.tcp import DapStream, serve_connection

        first = True
        while True:
            self.srv.settimeout(self.args.wait_timeout if first else None)
            try:
                conn, _ = self.srv.accept()
            except TimeoutError:
                self.quit("no client connected")
                return
            except OSError:
                return  # the listening socket was closed: the server is ending
            first = False
            conn.settimeout(None)
            stream = DapStream(conn)
            program = _LaunchProgram(self)
            session = DapSession(self.cycle.coord, stream.send, program, token=self.token, close=stream.close)
            done = threading.Event()

            def handle(msg: dict[str, Any], session: Any = session) -> None:
                session.dispatch(msg)
                if session.authenticated:
                    self.note_breakpoints(msg)

            def on_close(session: Any = session, program: _LaunchProgram = program, done: threading.Event = done) -> None:
                if not session.disconnected.is_set():
                    program.disconnect(False)  # dropped: a paused script resumes
                with self._wake:
                    if self.session is session:
                        self.session = None
                        self.out.session = self.err.session = None
                    self._wake.notify_all()
                done.set()

            with self._wake:
                self.session = session
                self.out.session = self.err.session = session
            def on_bad(text: str, session: Any = session) -> None:
                session.emit("output", {"category": "important", "output": text})

            serve_connection(stream, handle, on_close, preview=session.preview, on_bad=on_bad)
            # a client that never shows the token must not hold the only seat
            if not done.wait(self.args.auth_timeout) and not session.authenticated:
                on_bad("llmspell debug: no session token within "
                       f"{self.args.auth_timeout:g} s; closing the connection\n")
                stream.close()
            done.wait()
            with self._wake:  # the next client gets the next run: wait until this one is over
                while (self._running or self._reconnect) and self._quit is None:
                    self._wake.wait()
                if self._quit is not None:
                    return

    def quit(self, why: str) -> None:
        with self._wake:
            self._quit = why
            self._wake.notify_all()

    # ------------------------------------------------------------ the script (main thread)
    def serve(self) -> int:
        acceptor = threading.Thread(target=self.accept_loop, name="llmspell-dap-accept", daemon=True)
        acceptor.start()
        code = EXIT_OK
        ran = False
        try:
            while True:
                with self._wake:
                    while not self._start and self._restart is None and self._quit is None:
                        if ran and self.session is None:
                            return code  # the script ran and no client is connected: done
                        self._wake.wait()
                    if self._quit is not None:
                        if not ran:
                            sys.stderr.write(f"llmspell debug: {self._quit}\n")
                            return EXIT_SCRIPT_ERROR
                        return code
                    self._start = False
                    self._restart = None
                code = self._run_once()
                ran = True
                with self._wake:
                    session = self.session
                    restart_now = self._restart is not None
                if session is not None and not restart_now:
                    session.emit("exited", {"exitCode": code})
                    session.emit("terminated", {})
                    self._await_end(session)
                with self._wake:
                    restart_now = self._restart is not None
                    reconnect = self._reconnect
                if restart_now or reconnect:
                    self._fresh_cycle()
                    with self._wake:
                        self._reconnect = False
                        if reconnect and not restart_now:
                            ran = False  # wait for the client that comes back
                        self._wake.notify_all()
                    continue
                return code
        finally:
            self.srv.close()
            self.cycle.coord.detach()
            self.out.session = self.err.session = None
            self.cycle.rt.close()

    def _await_end(self, session: Any) -> None:
        """After `terminated`: wait for the client's disconnect or restart (or its going away)."""
        with self._wake:
            while self.session is session and not session.disconnected.is_set() and self._restart is None:
                self._wake.wait(0.5)

    def _fresh_cycle(self) -> None:
        """A new runtime for the next run; the connected session moves to it with its breakpoints."""
        old = self.cycle
        with contextlib.suppress(Exception):
            old.coord.detach()
        self.cycle = self._new_cycle()
        old.rt.close()
        session = self.session
        self._running = False
        self._finished = False
        if session is not None:
            session.coord = self.cycle.coord
            self.cycle.coord.on_event = session.emit
            self.cycle.coord.attach()
            for msg in list(self._bp_requests):
                session.respond(msg)
            session.run_deferred()
        if self.program:
            self.cycle.coord.allow_source(os.path.join(self.cwd or os.getcwd(), self.program))

    def _run_once(self) -> int:
        if self.cwd:
            os.chdir(self.cwd)
        assert self.program is not None
        coord = self.cycle.coord
        if self.stop_on_entry and coord.attached:
            coord.step_in_next()
        with self._wake:
            self._running = True
        try:
            code = _report(self.cycle.rt, lambda: self.cycle.rt.run_file(self.program, list(self.script_args)),
                           _Unless(self.err, lambda: self._restart is not None))
            return code
        finally:
            with self._wake:
                self._running = False
                self._finished = True
                self._wake.notify_all()


def _serve_dap(args: argparse.Namespace, config: Any) -> int:
    from llmspell.debug.dap import TOKEN_ARG
    from llmspell.debug.tcp import listen

    token = _make_token(config.env)
    srv = listen(args.host, args.port)
    host, port = srv.getsockname()[:2]
    if args.token_file:
        _write_token_file(args.token_file, token)
    sys.stderr.write(f"llmspell debug: waiting for a DAP client on {host}:{port}\n")
    sys.stderr.write(f"llmspell debug: session token {token} (give it as \"{TOKEN_ARG}\" in launch or attach)\n")
    sys.stderr.flush()
    server = _DapServer(args, config, srv, token)
    try:
        return server.serve()
    finally:
        if args.token_file:
            with contextlib.suppress(OSError):
                os.unlink(args.token_file)
