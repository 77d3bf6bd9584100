"""Shared HTTP for network tools: the IO runtime's pooled clients, host policy, retries, graceful failures."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from llmspell.providers import retry
from llmspell.providers.base import parse_retry_after
from llmspell.runtime.io import get_io
from llmspell.tools.base import ToolContext, ToolError, ToolParamError


def _retryable(status: int) -> bool:
    """429 and every 5xx are retried (§19.1)."""
    return status == 429 or 500 <= status < 600


class NetworkFailure(Exception):
    """A graceful network failure (DNS, connect, timeout, refused host, replay miss)."""

    def __init__(self, message: str, retries: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.retries = retries


@dataclass
class HttpResult:
    """A completed HTTP exchange (any status)."""

    status_code: int
    reason: str
    headers: dict[str, str]
    body: str
    elapsed_ms: int
    retries: int = 0
    json: Any = None
    is_json: bool = False
    url: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def check_url(tool: str, url: Any) -> str:
    """Validate an http(s) URL parameter (raises on misuse)."""
    if not isinstance(url, str) or not url:
        raise ToolParamError(f"{tool}: missing required parameter 'input' (the URL)")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ToolParamError(f"{tool}: invalid URL '{url}' (expected http:// or https:// with a host)")
    return url


def ensure_network_allowed(tool: str, ctx: ToolContext) -> None:
    if not ctx.security.allow_network_access:
        raise ToolError(f"tool '{tool}' is disabled by config ([runtime.security] allow_network_access = false)")


def _private(ip: str) -> bool:
    addr = ipaddress.ip_address(ip.split("%", 1)[0])
    return addr.is_private or addr.is_loopback or addr.is_link_local or addr.is_reserved or addr.is_unspecified


def _offline_traffic() -> bool:
    """Replay and fault modes answer from cassettes: no DNS lookups either."""
    from llmspell.providers import traffic

    return traffic.installed().mode in ("replay", "fault")


async def check_host(ctx: ToolContext, url: str) -> None:
    """Refuse (gracefully) hosts that resolve to private/loopback/link-local addresses unless allowed."""
    host = (urlsplit(url).hostname or "").lower()
    if ctx.opt("allow_private_networks") is True or host in ctx.http_allowed_hosts:
        return
    try:
        ipaddress.ip_address(host)
        addrs = [host]
    except ValueError:
        if host == "localhost" or host.endswith(".localhost"):
            addrs = ["127.0.0.1"]
        elif _offline_traffic():
            return  # names are not resolved in replay: the cassette decides
        else:
            addrs = []
    if not addrs:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except OSError as e:
            raise NetworkFailure(f"DNS lookup failed for {host}: {e}") from None
        addrs = [str(i[4][0]) for i in infos]
    if any(_private(a) for a in addrs):
        raise NetworkFailure(
            f"host '{host}' resolves to a private or loopback address; refused (list it in "
            f"[tools.http_request] allowed_hosts or set [tools.{ctx.name}] allow_private_networks = true)")


def _origin(url: str) -> str:
    p = urlsplit(url)
    return f"{p.scheme}://{p.netloc}"


async def request(ctx: ToolContext, method: str, url: str, *, headers: dict[str, str] | None = None,
                  content: bytes | None = None, json_body: Any = None, timeout: float = 30.0,
                  max_retries: int = 3, auth: Any = None) -> HttpResult:
    """Send one request with retries; raises NetworkFailure for graceful failures."""
    await check_host(ctx, url)
    client = get_io().http_client(_origin(url), kind="tools")
    if json_body is not None:
        content = orjson.dumps(json_body, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
        headers = {"content-type": "application/json", **(headers or {})}
    policy = retry.RetryPolicy(max_retries=max_retries)
    attempt = 0
    while True:
        t0 = time.perf_counter()
        try:
            resp = await client.request(method, url, headers=headers, content=content, auth=auth,
                                        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)))
            body = resp.text
        except httpx.ConnectError as e:
            msg = str(e) or type(e).__name__
            if "Name or service not known" in msg or "nodename nor servname" in msg or "getaddrinfo" in msg:
                raise NetworkFailure(f"DNS lookup failed for {urlsplit(url).hostname}: {msg}", attempt) from None
            err = f"connection failed: {msg}"
        except httpx.TimeoutException as e:
            err = f"request timed out after {timeout:g} s ({type(e).__name__})"
        except httpx.HTTPError as e:
            err = f"{type(e).__name__}: {e}"
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - transports (replay) raise their own errors: graceful
            raise NetworkFailure(f"{type(e).__name__}: {e}", attempt) from None
        else:
            if _retryable(resp.status_code) and attempt < max_retries:
                await retry.sleep(policy.delay(attempt, parse_retry_after(resp.headers)))
                attempt += 1
                continue
            ms = int((time.perf_counter() - t0) * 1000)
            result = HttpResult(resp.status_code, resp.reason_phrase, dict(resp.headers), body, ms, attempt,
                                url=str(resp.url))
            ctype = resp.headers.get("content-type", "")
            if body and ("json" in ctype or body.lstrip()[:1] in ("{", "[")):
                try:
                    result.json = orjson.loads(body)
                    result.is_json = True
                except orjson.JSONDecodeError:
                    pass
            return result
        if attempt >= max_retries:
            raise NetworkFailure(err, attempt)
        await retry.sleep(policy.delay(attempt))
        attempt += 1


def number(params: dict[str, Any], key: str, default: float) -> float:
    v = params.get(key)
    return default if v is None else float(v)
