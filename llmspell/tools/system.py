"""System tools: environment_reader, process_executor, service_checker, system_monitor (§19.5)."""

from __future__ import annotations

import asyncio
import dataclasses
import fnmatch
import os
import socket
import time
from typing import Any

from llmspell.tools.base import (
    Tool,
    ToolContext,
    ToolError,
    ToolOutput,
    ToolParamError,
    choice,
    fail,
    need,
    ok,
)
from llmspell.tools.http import NetworkFailure, check_host, ensure_network_allowed, request
from llmspell.tools.sandbox import SandboxError

_SECRET_PATTERNS = ("*KEY*", "*TOKEN*", "*SECRET*", "*PASSWORD*")


def _masked(name: str, value: str) -> str:
    upper = name.upper()
    return "***" if any(fnmatch.fnmatchcase(upper, p) for p in _SECRET_PATTERNS) else value


class EnvironmentReader(Tool):
    """environment_reader: get/list/pattern/set; secret-looking names read as '***'."""

    def run(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        name = "environment_reader"
        op = choice(params, "operation", name, ("get", "list", "pattern", "set"), "get")
        if op == "get":
            var = need(params, "variable_name", name)
            value = os.environ.get(var)
            return ok(op, {"variable_name": var, "value": None if value is None else _masked(var, value),
                           "exists": value is not None})
        if op == "set":
            var = need(params, "variable_name", name)
            os.environ[var] = str(params.get("value") if params.get("value") is not None else "")
            return ok(op, {"variable_name": var, "set": True})
        pattern = str(params.get("pattern") or "*") if op == "pattern" else "*"
        found = {k: _masked(k, v) for k, v in sorted(os.environ.items()) if fnmatch.fnmatchcase(k, pattern)}
        return ok(op, {"variables": found, "count": len(found)})


class ProcessExecutor(Tool):
    """process_executor: run an executable without a shell; needs [runtime.security] allow_process_spawn."""

    is_async = True

    async def arun(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        name = "process_executor"
        if not ctx.security.allow_process_spawn:
            raise ToolError(f"{name}: refused: process spawning is disabled (set [runtime.security] "
                            "allow_process_spawn = true)")
        exe = need(params, "executable", name)
        allowed = ctx.opt("allowed_commands")
        if allowed and os.path.basename(exe) not in allowed and exe not in allowed:
            raise ToolError(f"{name}: executable '{exe}' is not in [tools.process_executor] allowed_commands")
        args = params.get("arguments") or []
        if not isinstance(args, list):
            raise ToolParamError(f"{name}: parameter 'arguments' must be an array of strings")
        cwd = None
        if params.get("working_directory"):
            try:
                cwd = str(ctx.sandbox.resolve(str(params["working_directory"])))
            except SandboxError as e:
                raise ToolError(f"{name}: {e}") from None
        env = None
        if isinstance(params.get("environment"), dict):
            env = {**os.environ, **{str(k): str(v) for k, v in params["environment"].items()}}
        timeout = float(params.get("timeout_seconds") or 30)
        t0 = time.perf_counter()
        try:
            proc = await asyncio.create_subprocess_exec(exe, *[str(a) for a in args], cwd=cwd, env=env,
                                                        stdout=asyncio.subprocess.PIPE,
                                                        stderr=asyncio.subprocess.PIPE)
        except OSError as e:
            raise ToolError(f"{name}: cannot start '{exe}': {e.strerror or e}") from None
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except (TimeoutError, asyncio.CancelledError):
            proc.kill()
            await proc.wait()
            if asyncio.current_task() is not None and asyncio.current_task().cancelling():  # type: ignore[union-attr]
                raise
            return fail("execute", f"'{exe}' timed out after {timeout:g} s", {"exit_code": None})
        ms = int((time.perf_counter() - t0) * 1000)
        return ok("execute", {"exit_code": proc.returncode, "stdout": out.decode("utf-8", "replace"),
                              "stderr": err.decode("utf-8", "replace"), "duration_ms": ms})


#: Hosts service_checker may reach without configuration (the reference's default allow-list); other
#: private, loopback and link-local addresses stay refused unless [tools.service_checker] allows them.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


class ServiceChecker(Tool):
    """service_checker: TCP connect, HTTP(S) GET or DNS resolution with latency."""

    is_async = True

    async def arun(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        name = "service_checker"
        ensure_network_allowed(name, ctx)
        if ctx.opt("allow_loopback", True) is not False:  # checking local services is this tool's main use
            ctx = dataclasses.replace(ctx, http_allowed_hosts=(*ctx.http_allowed_hosts, *LOOPBACK_HOSTS))
        target = need(params, "target", name)
        kind = choice(params, "check_type", name, ("tcp", "http", "https", "dns"), "tcp")
        timeout = float(params.get("timeout_seconds") or 10)
        t0 = time.perf_counter()
        loop = asyncio.get_running_loop()
        try:
            if kind == "dns":
                infos = await asyncio.wait_for(loop.getaddrinfo(target, None), timeout)
                addrs = sorted({str(i[4][0]) for i in infos})
                return ok(kind, {"reachable": True, "latency_ms": int((time.perf_counter() - t0) * 1000),
                                 "addresses": addrs})
            if kind == "tcp":
                host, _, port = target.rpartition(":")
                host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
                if not host or not port.isdigit():
                    raise ToolParamError(f"{name}: tcp target must be host:port, got '{target}'")
                await check_host(ctx, f"http://{'[' + host + ']' if ':' in host else host}:{port}")
                _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), timeout)
                writer.close()
                return ok(kind, {"reachable": True, "latency_ms": int((time.perf_counter() - t0) * 1000)})
            url = target if "://" in target else f"{kind}://{target}"
            r = await request(ctx, "GET", url, timeout=timeout, max_retries=0)
            return ok(kind, {"reachable": True, "latency_ms": r.elapsed_ms, "status_code": r.status_code})
        except NetworkFailure as e:
            return fail(kind, e.message, {"reachable": False})
        except (OSError, TimeoutError, socket.gaierror) as e:
            return fail(kind, f"{type(e).__name__}: {e}", {"reachable": False})


class SystemMonitor(Tool):
    """system_monitor: CPU percent, memory and disk usage (bytes) via psutil."""

    def run(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        import psutil

        op = choice(params, "operation", "system_monitor", ("all", "stats", "cpu", "memory", "disk"), "all")
        result: dict[str, Any] = {}
        if op in ("all", "stats", "cpu"):
            result["cpu_percent"] = float(psutil.cpu_percent(interval=0.05))
            result["cpu_count"] = psutil.cpu_count() or 1
        if op in ("all", "stats", "memory"):
            m = psutil.virtual_memory()
            result["memory"] = {"total": int(m.total), "used": int(m.used), "available": int(m.available)}
        if op in ("all", "stats", "disk"):
            d = psutil.disk_usage(os.getcwd())
            result["disk"] = {"total": int(d.total), "used": int(d.used), "free": int(d.free)}
        return ok(op, result)
