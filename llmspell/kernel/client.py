"""A small synchronous client for a running kernel: `llmspell run --connect` and `kernel connect`.

It speaks the wire protocol with this package's `Session` over plain pyzmq sockets (shell and
control DEALER, iopub SUB, stdin DEALER sharing the shell identity), streams the kernel's output
to the local stdout/stderr as it arrives, answers input_request from the local stdin, and turns
Ctrl-C into an interrupt_request.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import zmq

from llmspell.kernel.channels import ConnectionInfo
from llmspell.kernel.wire import Message, Session, WireError

EXIT_OK, EXIT_SCRIPT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TIMEOUT = 0, 1, 2, 130, 124


class KernelConnection:
    """Sockets to one kernel, signed with its connection key."""

    def __init__(self, info: ConnectionInfo) -> None:
        self.info = info
        self.session = Session(info.key, signature_scheme=info.signature_scheme, username=os.environ.get("USER", "user"),
                               max_message_bytes=0)
        self.context = zmq.Context()
        ident = self.session.session.encode()
        self.shell = self._socket(zmq.DEALER, "shell", ident)
        self.stdin = self._socket(zmq.DEALER, "stdin", ident)
        self.control = self._socket(zmq.DEALER, "control", None)
        self.iopub = self._socket(zmq.SUB, "iopub", None)
        self.iopub.setsockopt(zmq.SUBSCRIBE, b"")

    def _socket(self, kind: int, channel: str, ident: bytes | None) -> zmq.Socket[bytes]:
        s = self.context.socket(kind)
        s.setsockopt(zmq.LINGER, 200)
        if ident is not None:
            s.setsockopt(zmq.IDENTITY, ident)
        s.connect(self.info.url(channel))
        return s

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> KernelConnection:
        return cls(ConnectionInfo.load(path))

    def send(self, sock: zmq.Socket[bytes], msg_type: str, content: dict[str, Any],
             metadata: dict[str, Any] | None = None, parent: dict[str, Any] | None = None) -> str:
        header = self.session.header(msg_type)
        sock.send_multipart(self.session.serialize(msg_type, content, parent, metadata=metadata, header=header))
        return str(header["msg_id"])

    def recv(self, sock: zmq.Socket[bytes]) -> Message | None:
        try:
            return self.session.deserialize(sock.recv_multipart(), check_replay=False)
        except WireError:
            return None

    def wait_ready(self, timeout: float = 10.0) -> dict[str, Any]:
        """kernel_info round trips until the reply and an iopub message both arrive (slow joiner)."""
        deadline = time.monotonic() + timeout
        info: dict[str, Any] | None = None
        iopub_seen = False
        poller = zmq.Poller()
        poller.register(self.shell, zmq.POLLIN)
        poller.register(self.iopub, zmq.POLLIN)
        while time.monotonic() < deadline:
            self.send(self.shell, "kernel_info_request", {})
            round_end = min(deadline, time.monotonic() + 0.5)
            while time.monotonic() < round_end:
                events = dict(poller.poll(max(1, int((round_end - time.monotonic()) * 1000))))
                if self.shell in events:
                    msg = self.recv(self.shell)
                    if msg is not None and msg.msg_type == "kernel_info_reply":
                        info = msg.content
                if self.iopub in events:
                    self.recv(self.iopub)
                    iopub_seen = True
                if info is not None and iopub_seen:
                    self._drain(self.iopub)
                    self._drain(self.shell)
                    return info
        raise TimeoutError(f"the kernel did not answer within {timeout:g} s")

    def _drain(self, sock: zmq.Socket[bytes]) -> None:
        while sock.poll(0):
            sock.recv_multipart()

    def execute(self, code: str, *, args: list[str] | None = None, allow_stdin: bool = False,
                on_output: Callable[[Message], None] | None = None,
                on_input: Callable[[str, bool], str] | None = None) -> Message:
        """Run `code`; calls on_output for each iopub message of it; returns the execute_reply
        once the reply and the iopub `idle` have both arrived. Ctrl-C sends interrupt_request."""
        metadata = {"llmspell": {"args": list(args)}} if args else None
        msg_id = self.send(self.shell, "execute_request", {
            "code": code, "silent": False, "store_history": True, "user_expressions": {},
            "allow_stdin": allow_stdin, "stop_on_error": True}, metadata)
        poller = zmq.Poller()
        for s in (self.shell, self.iopub, self.stdin):
            poller.register(s, zmq.POLLIN)
        reply: Message | None = None
        idle = False
        while reply is None or not idle:
            try:
                events = dict(poller.poll(100))
            except KeyboardInterrupt:
                self.interrupt()
                continue
            if self.iopub in events:
                msg = self.recv(self.iopub)
                if msg is not None and msg.parent_header.get("msg_id") == msg_id:
                    if msg.msg_type == "status":
                        idle = idle or msg.content.get("execution_state") == "idle"
                    elif on_output is not None:
                        on_output(msg)
            if self.shell in events:
                msg = self.recv(self.shell)
                if msg is not None and msg.msg_type == "execute_reply" and msg.parent_header.get("msg_id") == msg_id:
                    reply = msg
            if self.stdin in events:
                msg = self.recv(self.stdin)
                if msg is not None and msg.msg_type == "input_request":
                    value = on_input(str(msg.content.get("prompt", "")), bool(msg.content.get("password"))) \
                        if on_input is not None else ""
                    self.send(self.stdin, "input_reply", {"value": value}, parent=msg.header)
        return reply

    def request(self, msg_type: str, content: dict[str, Any], timeout: float = 10.0,
                control: bool = False) -> Message:
        """Send a request and wait for its reply."""
        sock = self.control if control else self.shell
        msg_id = self.send(sock, msg_type, content)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sock.poll(int(max(1, (deadline - time.monotonic()) * 1000))):
                msg = self.recv(sock)
                if msg is not None and msg.parent_header.get("msg_id") == msg_id:
                    return msg
        raise TimeoutError(f"no reply to {msg_type} within {timeout:g} s")

    def interrupt(self) -> None:
        self.send(self.control, "interrupt_request", {})

    def close(self) -> None:
        for s in (self.shell, self.stdin, self.control, self.iopub):
            s.close(linger=200)
        self.context.term()


def _writer(out: TextIO, err: TextIO) -> Callable[[Message], None]:
    def on_output(msg: Message) -> None:
        c = msg.content
        if msg.msg_type == "stream":
            stream = err if c.get("name") == "stderr" else out
            stream.write(str(c.get("text", "")))
            stream.flush()
        elif msg.msg_type == "error" and c.get("ename") != "SystemExit":
            err.write("\n".join(str(t) for t in c.get("traceback") or [f"{c.get('ename')}: {c.get('evalue')}"]))
            err.write("\n")
            err.flush()
        elif msg.msg_type in ("execute_result", "display_data"):
            text = (c.get("data") or {}).get("text/plain")
            if text is not None and msg.msg_type == "display_data":
                out.write(f"{text}\n")
                out.flush()
    return on_output


def read_input(prompt: str, password: bool) -> str:
    """Answer a kernel's input_request from the local terminal (getpass for a password)."""
    if password:
        import getpass

        return getpass.getpass(prompt)
    sys.stdout.write(prompt)
    sys.stdout.flush()
    line = sys.stdin.readline()
    return line[:-1] if line.endswith("\n") else line


def exit_code_of(reply: Message) -> int:
    """The CLI exit code for an execute_reply: 0, the os.exit code, 130 if interrupted, 124 if timed out, else 1."""
    c = reply.content
    if c.get("status") == "ok":
        return EXIT_OK
    if c.get("ename") == "SystemExit" and isinstance(c.get("exit_code"), int):
        return int(c["exit_code"])
    if c.get("ename") == "Interrupted":
        return EXIT_INTERRUPTED
    if c.get("ename") == "Timeout":
        return EXIT_TIMEOUT
    return EXIT_SCRIPT_ERROR


def run_on_kernel(connection_file: str, script: str, args: list[str] | None = None, *,
                  timeout: float = 10.0) -> int:
    """Execute a script file on a running kernel, streaming its output; returns the exit code."""
    if args and args[0] == "--":
        args = args[1:]
    try:
        code = Path(script).read_text(encoding="utf-8")
    except OSError as e:
        sys.stderr.write(f"Error: cannot open {script}: {e.strerror}\n")
        return EXIT_SCRIPT_ERROR
    except UnicodeDecodeError:
        sys.stderr.write(f"Error: {script}: script is not valid UTF-8\n")
        return EXIT_SCRIPT_ERROR
    if code.startswith("#!"):
        code = "--" + code
    try:
        conn = KernelConnection.from_file(connection_file)
    except (OSError, ValueError, TypeError) as e:
        sys.stderr.write(f"llmspell: cannot read connection file {connection_file}: {e}\n")
        return EXIT_USAGE
    previous = signal.getsignal(signal.SIGINT)
    interrupted = False

    def on_sigint(signum: int, frame: Any) -> None:
        nonlocal interrupted
        if interrupted:
            raise KeyboardInterrupt
        interrupted = True
        conn.interrupt()

    try:
        try:
            conn.wait_ready(timeout)
        except TimeoutError as e:
            sys.stderr.write(f"llmspell: {e} ({connection_file})\n")
            return EXIT_SCRIPT_ERROR
        signal.signal(signal.SIGINT, on_sigint)
        reply = conn.execute(code, args=list(args or []), allow_stdin=True,
                             on_output=_writer(sys.stdout, sys.stderr), on_input=read_input)
        code_ = exit_code_of(reply)
        return EXIT_INTERRUPTED if interrupted and code_ != EXIT_OK else code_
    finally:
        signal.signal(signal.SIGINT, previous)
        conn.close()


def console(connection_file: str, *, stdin: TextIO | None = None, stdout: TextIO | None = None,
            stderr: TextIO | None = None, timeout: float = 10.0) -> int:
    """A line console on a running kernel: `In [n]:` prompts, multi-line input by is_complete."""
    stdin = stdin or sys.stdin
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    conn = KernelConnection.from_file(connection_file)
    try:
        info = conn.wait_ready(timeout)
        out.write(str(info.get("banner", "")) + "\n")
        count = 1
        on_output = _writer(out, err)
        while True:
            out.write(f"In [{count}]: ")
            out.flush()
            lines: list[str] = []
            while True:
                line = stdin.readline()
                if not line:
                    if lines:
                        break
                    out.write("\n")
                    return EXIT_OK
                lines.append(line.rstrip("\n"))
                code = "\n".join(lines)
                status = conn.request("is_complete_request", {"code": code}).content
                if status.get("status") != "incomplete":
                    break
                out.write("   ...: " + str(status.get("indent", "")))
                out.flush()
            code = "\n".join(lines)
            if not code.strip():
                continue
            if code.strip() in ("exit", "quit", "exit()", "quit()"):
                return EXIT_OK

            def show(msg: Message, _n: list[int] = [count]) -> None:  # noqa: B006 - bound per cell
                if msg.msg_type == "execute_result":
                    text = (msg.content.get("data") or {}).get("text/plain", "")
                    out.write(f"Out[{msg.content.get('execution_count', _n[0])}]: {text}\n")
                    out.flush()
                else:
                    on_output(msg)

            reply = conn.execute(code, allow_stdin=True, on_output=show, on_input=read_input)
            for item in reply.content.get("payload") or []:  # `?name`: the kernel's Lua shell help
                if isinstance(item, dict) and item.get("source") == "page":
                    out.write(str((item.get("data") or {}).get("text/plain", "")) + "\n")
                    out.flush()
            count = int(reply.content.get("execution_count", count)) + 1
    finally:
        conn.close()
