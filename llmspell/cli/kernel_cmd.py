"""`llmspell kernel install|start|status|stop|connect`: the Jupyter kernel's lifecycle."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


def register(sub: Any, parent: argparse.ArgumentParser) -> None:
    from llmspell.kernel.kernelspec import add_install_arguments

    k = sub.add_parser("kernel", parents=[parent], help="Jupyter kernel: install, start, status, stop, connect",
                       description="Manage llmspell Jupyter kernels.",
                       epilog="example: llmspell kernel install --user && jupyter console --kernel llmspell")
    ks = k.add_subparsers(dest="kernel_command", metavar="SUBCOMMAND", required=True,
                          parser_class=type(k))
    p = ks.add_parser("install", parents=[parent], help="install the kernelspec for Jupyter frontends")
    add_install_arguments(p)
    p.set_defaults(func=cmd_install)

    p = ks.add_parser("start", parents=[parent], help="start a kernel and write its connection file",
                      epilog="example: llmspell kernel start --daemon --idle-timeout 3600")
    p.add_argument("--port", type=int, default=0,
                   help="first of five consecutive ports (shell, iopub, stdin, control, hb); 0: any free port")
    p.add_argument("--ip", default=None, help="address to bind (default: [kernel] ip or 127.0.0.1)")
    p.add_argument("--connection-file", default=None, metavar="PATH",
                   help="connection file (default: kernel-llmspell-<id>.json in the Jupyter runtime dir)")
    p.add_argument("--daemon", action="store_true", help="run in the background and return once it is ready")
    p.add_argument("--idle-timeout", type=float, default=None, metavar="SECONDS",
                   help="exit after this long without a request (default: [kernel] idle_timeout_seconds)")
    p.set_defaults(func=cmd_start)

    p = ks.add_parser("status", parents=[parent], help="list running llmspell kernels")
    p.set_defaults(func=cmd_status)

    p = ks.add_parser("stop", parents=[parent], help="stop kernels (SIGTERM, then SIGKILL)")
    p.add_argument("target", nargs="?", default=None, help="pid, connection file or its name (default: the only one)")
    p.add_argument("--all", action="store_true", help="stop every running llmspell kernel")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait after SIGTERM before SIGKILL")
    p.set_defaults(func=cmd_stop)

    p = ks.add_parser("connect", parents=[parent], help="an interactive console on a running kernel")
    p.add_argument("target", nargs="?", default=None, help="pid, connection file or its name (default: newest)")
    p.set_defaults(func=cmd_connect)


# ------------------------------------------------------------------- install
def cmd_install(args: argparse.Namespace) -> int:
    from llmspell.kernel.kernelspec import install_from_args

    try:
        path = install_from_args(args)
    except OSError as e:
        sys.stderr.write(f"llmspell: cannot install the kernelspec: {e} (try --user or --sys-prefix)\n")
        return EXIT_ERROR
    print(f"Installed kernelspec {args.name} in {path}")
    return EXIT_OK


# --------------------------------------------------------------------- start
def cmd_start(args: argparse.Namespace) -> int:
    from llmspell.cli.common import load_config_or_exit
    from llmspell.settings import kernel_connection_file

    config = load_config_or_exit(args)
    conn = Path(args.connection_file) if args.connection_file else kernel_connection_file(os.urandom(4).hex())
    if args.daemon:
        return _start_daemon(args, conn, config.env)
    from llmspell.kernel.kernel import Kernel

    kernel = Kernel(conn, config=config, idle_timeout=args.idle_timeout, ip=args.ip, port=args.port)
    kernel.start()
    print(f"Kernel pid {os.getpid()}; connection file: {kernel.connection_file}")
    print(f"Connect with: jupyter console --existing {kernel.connection_file}")
    print(f"Stop with: llmspell kernel stop {os.getpid()}")
    sys.stdout.flush()
    return kernel.serve_forever()


def daemon_env(args: argparse.Namespace, base_env: Mapping[str, str]) -> dict[str, str]:
    """The daemon kernel's environment: this one's (config's snapshot) without JPY_PARENT_PID (a daemon
    outlives this process), plus `--traffic`/`--rag` as the variables the kernel's own config reads
    (the command line's overrides cross the process boundary this way)."""
    env = {k: v for k, v in base_env.items() if k != "JPY_PARENT_PID"}
    if getattr(args, "traffic", None):
        env["LLMSPELL_TRAFFIC"] = args.traffic
    if getattr(args, "rag", False):
        env["LLMSPELL_RAG_ENABLED"] = "1"
    return env


def _start_daemon(args: argparse.Namespace, conn: Path, base_env: Mapping[str, str]) -> int:
    from llmspell.settings import kernel_log_file, kernel_registry_file

    cmd = [sys.executable, "-m", "llmspell.kernel", "-f", str(conn)]
    if args.port:
        cmd += ["--port", str(args.port)]
    if args.ip:
        cmd += ["--ip", args.ip]
    if args.idle_timeout is not None:
        cmd += ["--idle-timeout", str(args.idle_timeout)]
    if getattr(args, "config", None):
        cmd += ["--config", args.config]
    from llmspell.runtime.files import open_private

    log_path = kernel_log_file(conn)
    existed = conn.exists()
    env = daemon_env(args, base_env)
    with open_private(log_path, "ab") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                                close_fds=True, env=env)
    deadline = time.monotonic() + 30
    entry = kernel_registry_file(proc.pid)
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.stderr.write(f"llmspell: the kernel exited with {proc.returncode}; see {log_path}\n")
            return EXIT_ERROR
        if entry.exists() and (existed or conn.exists()):
            print(f"Kernel pid {proc.pid}; connection file: {conn.resolve()}")
            print(f"Log: {log_path}")
            return EXIT_OK
        time.sleep(0.02)
    sys.stderr.write(f"llmspell: the kernel did not start within 30 s; see {log_path}\n")
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGKILL)
    return EXIT_ERROR


# ----------------------------------------------------------- status and stop
def running_kernels(clean: bool = True) -> list[dict[str, Any]]:
    """Registry entries of llmspell kernels whose process is alive (stale entries are removed)."""
    from llmspell.settings import KERNEL_REGISTRY_PREFIX, runtime_dir

    found = []
    for entry in sorted(runtime_dir().glob(f"{KERNEL_REGISTRY_PREFIX}*.json")):
        try:
            data = json.loads(entry.read_text(encoding="utf-8"))
            pid = int(data["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if not _alive(pid) or not same_process(data):  # gone, or its pid now belongs to another process
            if clean:
                with contextlib.suppress(OSError):
                    entry.unlink()
            continue
        data["entry"] = str(entry)
        found.append(data)
    found.sort(key=lambda d: d.get("started", 0))
    return found


def same_process(record: dict[str, Any]) -> bool:
    """Whether the process now holding record["pid"] is the kernel that wrote the record.

    A record holds the process's start time (psutil create_time); a pid reused by a later process
    has another. Records without one (older kernels) are trusted only if that process runs llmspell.
    """
    try:
        import psutil

        proc = psutil.Process(int(record["pid"]))
        recorded = record.get("create_time")
        if isinstance(recorded, int | float) and not isinstance(recorded, bool):
            return abs(proc.create_time() - float(recorded)) < 0.05
        return any("llmspell" in part for part in proc.cmdline())
    except (psutil.Error, KeyError, TypeError, ValueError):
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _probe(connection_file: str, timeout: float = 1.0) -> str:
    from llmspell.kernel.client import KernelConnection

    try:
        conn = KernelConnection.from_file(connection_file)
    except (OSError, ValueError, TypeError):
        return "no connection file"
    try:
        conn.request("kernel_info_request", {}, timeout=timeout)
        return "ready"
    except TimeoutError:
        return "busy or not responding"
    finally:
        conn.close()


def cmd_status(args: argparse.Namespace) -> int:
    kernels = running_kernels()
    rows = []
    for k in kernels:
        rows.append({"pid": k["pid"], "connection_file": k.get("connection_file"),
                     "state": _probe(str(k.get("connection_file"))),
                     "uptime_s": round(time.time() - float(k.get("started", time.time())), 1),
                     "idle_timeout_s": k.get("idle_timeout")})
    fmt = getattr(args, "output", "text")
    if fmt != "text":
        from llmspell.cli.common import emit

        emit({"kernels": rows}, fmt)
        return EXIT_OK
    if not rows:
        print("No llmspell kernels are running.")
        return EXIT_OK
    for r in rows:
        print(f"pid {r['pid']}  {r['state']}  up {r['uptime_s']:g} s  {r['connection_file']}")
    return EXIT_OK


def _select(target: str | None, kernels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if target is None:
        return kernels
    return [k for k in kernels if _matches(target, k)]


def _matches(target: str, k: dict[str, Any]) -> bool:
    conn = str(k.get("connection_file", ""))
    if target in (str(k["pid"]), conn, Path(conn).name, Path(conn).stem):
        return True
    return os.path.exists(target) and os.path.realpath(target) == os.path.realpath(conn)


def stop_kernel(k: dict[str, Any], timeout: float = 5.0) -> str:
    """SIGTERM, wait, then SIGKILL; remove the files a killed kernel could not remove.

    The process identity (start time) is checked before each signal: a pid that now belongs to
    another process is never signalled."""
    pid = int(k["pid"])
    if not same_process(k):
        _remove_records(k)
        return "not signalled: the kernel is gone and its pid belongs to another process now"
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return "already stopped"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return "stopped"
        time.sleep(0.02)
    if same_process(k):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _remove_records(k)
    return "killed"


def _remove_records(k: dict[str, Any]) -> None:
    """Remove a kernel's registry entry (and its connection file when it wrote it)."""
    for path in (k.get("entry"), k.get("connection_file") if k.get("owns_connection_file") else None):
        if path:
            with contextlib.suppress(OSError):
                os.unlink(path)


def cmd_stop(args: argparse.Namespace) -> int:
    kernels = running_kernels()
    chosen = kernels if args.all else _select(args.target, kernels)
    if not chosen:
        sys.stderr.write("llmspell: no matching llmspell kernel is running\n")
        return EXIT_ERROR
    if len(chosen) > 1 and not args.all:
        sys.stderr.write("llmspell: several kernels are running; name one (pid or connection file) or use --all\n")
        for k in chosen:
            sys.stderr.write(f"  pid {k['pid']}  {k.get('connection_file')}\n")
        return EXIT_USAGE
    for k in chosen:
        print(f"pid {k['pid']}: {stop_kernel(k, args.timeout)}")
    return EXIT_OK


def cmd_connect(args: argparse.Namespace) -> int:
    from llmspell.kernel.client import console

    target = args.target
    if target is not None and os.path.exists(target):
        conn = target
    else:
        chosen = _select(target, running_kernels())
        if not chosen:
            sys.stderr.write("llmspell: no matching llmspell kernel is running (start one with "
                             "'llmspell kernel start --daemon')\n")
            return EXIT_ERROR
        conn = str(chosen[-1]["connection_file"])
    try:
        return console(conn)
    except TimeoutError as e:
        sys.stderr.write(f"llmspell: {e}\n")
        return EXIT_ERROR
